"""Quality of a run: task accuracy or perplexity on a dataset, and fidelity to the uncompressed
model on the same inputs.

The worker calls `prepare_reference` on the uncompressed model before compression, then `evaluate`
on the compressed module after the energy measurement, never inside an energy window.

The package imports none of its modules: records import `quality.result` alone, and a view that
reads a session never loads the datasets and evaluation code.
"""
