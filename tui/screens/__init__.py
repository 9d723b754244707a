"""The console's screens: setup, live, results, trade-offs, plots and the dialogs."""
