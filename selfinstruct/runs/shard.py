"""Split a stage's records across machines: ``--shard i/n`` takes every n-th record.

The per-record stages (instances, reason) are embarrassingly parallel; each machine
runs its shard into its own directory, and the outputs are concatenated afterwards.
Records keep their ids, so shards never collide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from selfinstruct.errors import UserError

T = TypeVar("T")

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based); the default is everything."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """Read ``i/n`` as given to ``--shard``."""
        if text is None:
            return cls()
        match = _SPEC.match(text)
        if not match or not 0 <= int(match.group(1)) < int(match.group(2)):
            raise UserError(f"--shard {text!r}: write i/n with 0 <= i < n, e.g. --shard 0/8")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, value: str | Shard | None) -> Shard:
        """``shard=`` as the library takes it: a :class:`Shard`, the flag's ``I/N``, or
        None (everything)."""
        return value if isinstance(value, Shard) else cls.parse(value)

    def select(self, items: Sequence[T]) -> list[T]:
        """This shard's records, in their original order."""
        return list(items[self.index :: self.count])


#: The whole input: the default when no ``--shard`` is given.
EVERYTHING = Shard()
