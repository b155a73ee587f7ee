"""``python -m recsys_checks.cli``: the same as ``recsys-checks``."""

import sys

from recsys_checks.cli.commands import main

sys.exit(main())
