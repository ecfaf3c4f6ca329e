"""``python -m deltapref ...`` (what launchers such as torchrun run)."""

import sys

from deltapref.cli import main

sys.exit(main())
