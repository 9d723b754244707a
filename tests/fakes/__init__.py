"""Fakes of hardware this machine lacks (RAPL powercap trees, NVML), at the lowest level."""
