"""`python -m energy_console.core.cli`: the headless commands."""

import os
import sys

from energy_console.core.cli.commands import main

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.exit(main())
