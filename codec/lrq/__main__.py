"""``python -m lrq``: the ``lrq`` command."""

import sys

from .cli import main

sys.exit(main())
