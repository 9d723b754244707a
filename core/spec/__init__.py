"""What a session measures, as plain data: the profile's dataclasses, the limits of every
number, the strict YAML reader, the workloads' settings. Imports nothing of the project.
"""
