"""`python -m coda_cli ...` is `coda ...` (torchrun starts the trainer this way)."""

import sys

from .main import main

sys.exit(main())
