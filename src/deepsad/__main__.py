"""``python -m deepsad`` runs the command line."""

import sys

from deepsad.cli import main

sys.exit(main())
