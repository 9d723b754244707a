"""The runner: the profile checked and expanded into runs (plan, preflight), one unit of work
in a worker (unit), its record (recorder), and the session rules every way of running shares
(rules). May import every package below scale/.
"""
