"""``selfinstruct playground``: check everything, then serve the page.

Bad flags, a template that names no column and an unreachable server stop the command
with one line before any page is served, as they stop ``distill`` before any request.
Gradio is imported only after those checks, and a missing one says how to install it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import sys

from selfinstruct.errors import UserError
from selfinstruct.ui.session import Playground, PlaygroundSettings

#: The host the page binds unless told: this machine only.
LOCAL_HOST = "127.0.0.1"


def start(settings: PlaygroundSettings, host: str = LOCAL_HOST, port: int | None = None) -> None:
    """Check the prompts and the server, then serve the page until Ctrl-C."""
    playground = Playground(settings)
    asyncio.run(playground.check())
    try:
        from selfinstruct.ui.page import serve
    except ImportError as err:
        raise UserError(f"the playground needs Gradio ({err.name} is missing): pip install "
                        "'selfinstruct[ui]'") from None
    if not is_loopback(host):
        print(f"warning: --host {host} serves the playground to every machine that can reach "
              "this one: anyone there can read your prompts and rows and send requests to "
              "your model (with your API key). Use it on a network you trust.",
              file=sys.stderr, flush=True)
    serve(playground, host, port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (``localhost``, 127.x, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
