"""Imported last by the runner's forkserver (after what the session's models and techniques name:
core.session.worker_process.preload_modules), so every worker forks with torch and the worker's
own code loaded, and nothing the forkserver imported in the collector's sight.
"""

import gc

import energy_console.core.models.demo_tokenizer  # noqa: F401
import energy_console.core.quality.datasets  # noqa: F401
import energy_console.core.quality.evaluate  # noqa: F401
import energy_console.core.quality.reference  # noqa: F401
import energy_console.core.worker.entry  # noqa: F401
import PIL.Image  # noqa: F401
import torch  # noqa: F401
import torch.ao.quantization  # noqa: F401
from energy_console.core.compression import techniques
from energy_console.core.worker.workloads import workloads

techniques()  # registers every technique family module
workloads()  # imports every workload module

# What the imports made lives as long as the forkserver: out of the collector's sight, so that
# no worker's collections walk it (nor touch its pages, which stay shared with the forkserver).
gc.collect()
gc.freeze()
