"""What a run times, one module per workload (infer, generate, detect, train).
"""
