"""``python -m deltapref ...`` (what launchers such as torchrun run)."""

import sys

from .cli import main

sys.exit(main())
