"""selfinstruct: grow instruction-tuning data from seed tasks with an LLM.

The library is the product; the ``selfinstruct`` command is a thin client of it.
"""

from selfinstruct.errors import UserError

__all__ = ["UserError", "__version__"]

__version__ = "0.1.0"
