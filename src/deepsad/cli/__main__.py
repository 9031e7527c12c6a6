"""``python -m deepsad.cli`` runs the command line (as ``python -m deepsad`` does)."""

import sys

from deepsad.cli import main

sys.exit(main())
