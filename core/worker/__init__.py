"""The torch process: a model variant loaded and compressed once (variant, variant_cache), then
timed at each input size (windows) by its workload (workloads/, a registry like models/).
May import: spec, models, compression, quality, store.
"""
