"""``python -m baseten_training_async``: the ``baseten-training`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
