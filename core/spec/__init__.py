"""What a session measures, as plain data: the profile's dataclasses, the tasks, the technique
steps a profile names, the limits of every number, the strict YAML reader, the workloads'
settings. Imports nothing of the project outside spec/: the model sources and techniques import
it, and core.session.profile_check checks a profile against them.
"""
