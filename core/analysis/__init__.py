"""Pure functions of a session's records: changes with intervals, findings, the report and its
exports, power traces. May import: spec, store, measure.
"""
