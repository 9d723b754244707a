"""The session directory, the only channel between the runner and every view: typed events and
records, the writer and the reader (follow), snapshots for views, the control file.
May import: spec, quality (a run's quality result travels in its record).
"""
