"""``python -m streamnet``: the command line of :mod:`streamnet._cli`."""

import sys

from streamnet._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
