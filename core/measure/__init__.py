"""Turning sensor readings into figures: sensors/ (one module per source), the sampler thread,
energy per window with its interval, statistics, CPU load, carbon, host facts. No torch.
May import: spec, store.
"""
