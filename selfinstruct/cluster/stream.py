"""A dataset's output, read on a thread of its own and handed to the event loop.

Iterating a Ray dataset blocks; the coordinator's event loop must not (Ctrl-C, the
progress bar). So a daemon thread opens the dataset (building it puts every request in
Ray's object store, about a millisecond per batch) and pulls its output blocks, and
the loop awaits them. Closing the stream stops the pulling at the next block and closes
the iterator, which shuts the dataset's execution down; a thread still waiting for a
block when the process ends does not keep it alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: The end of the output.
_END = object()


class _Failed:
    """The error the dataset's iteration raised, carried to the loop."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class BlockStream:
    """The blocks of ``open_blocks()``, awaitable one at a time; start it in the loop."""

    def __init__(self, open_blocks: Callable[[], Iterator[Any]]) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closing = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._pump, args=(open_blocks,),
                                        name="selfinstruct-ray-output", daemon=True)
        self._thread.start()

    async def next(self, stop: asyncio.Event) -> Any | None:
        """The next block; None at the end, or once ``stop`` is set and every block that
        has arrived was taken. An error of the dataset is raised here."""
        if self._ended:
            return None
        if self._queue.empty():
            if stop.is_set():
                return None
            item = await self._wait(stop)
            if item is None:
                return None
        else:
            item = self._queue.get_nowait()
        if item is _END:
            self._ended = True
            return None
        if isinstance(item, _Failed):
            self._ended = True
            raise item.error
        return item

    def close(self) -> None:
        """Stop pulling; the iterator is closed at the next block (or is done already)."""
        self._closing.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the thread to end; whether it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    async def _wait(self, stop: asyncio.Event) -> Any | None:
        getter = asyncio.ensure_future(self._queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    def _pump(self, open_blocks: Callable[[], Iterator[Any]]) -> None:
        blocks: Iterator[Any] | None = None
        try:
            blocks = open_blocks()
            for block in blocks:
                self._put(block)
                if self._closing.is_set():
                    break
            self._put(_END)
        except BaseException as err:  # carried to the loop, raised there
            self._put(_Failed(err))
        finally:
            close = getattr(blocks, "close", None)
            # Shutting down an execution that already failed may fail again.
            with contextlib.suppress(Exception):
                if close is not None:
                    close()

    def _put(self, item: Any) -> None:
        # A closed loop raises RuntimeError: nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
