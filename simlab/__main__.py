"""``python -m simlab`` runs the ``simlab`` command."""

import sys

from simlab.cli import main

sys.exit(main())
