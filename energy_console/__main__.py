"""`python -m energy_console`: the same as the `energy-console` command."""

import sys

from energy_console.tui.main import main

sys.exit(main())
