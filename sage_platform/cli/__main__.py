"""``python -m sage_platform.cli``: the ``sage`` command."""

import sys

from sage_platform.cli import main

sys.exit(main())
