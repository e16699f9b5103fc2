"""python -m ccstack: the controller CLI."""

import sys

from ccstack.cli import main

sys.exit(main())
