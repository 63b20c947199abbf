"""The ``selfinstruct`` command: a thin client of the library."""

from selfinstruct.cli.commands import app, main

__all__ = ["app", "main"]
