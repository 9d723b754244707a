"""The headless commands (run, report, list, attach, compare, doctor): views of the session
directory and starters of sessions. May import every package of core.
"""
