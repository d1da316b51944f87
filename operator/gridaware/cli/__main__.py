"""``python -m gridaware.cli``: the same as the ``gridaware`` command."""

import sys

from gridaware.cli import main

sys.exit(main())
