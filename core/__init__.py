"""energy-console's API: everything but the console, in layers (see tests/test_architecture.py).

From the top down; a package imports only the packages below it, deferred imports included:

    cli/          the headless commands (run, report, list, attach, compare, doctor, ...)
    scale/        where a session's runs go: this box, one lane per GPU, a Ray cluster
    session/      the runner: profile checks, plan, pre-flight, one unit of work, the session rules
    analysis/     pure functions of records: changes with intervals, findings, report, exports
    worker/       the torch process: a variant loaded and compressed once; workloads/ time it
    measure/      sensors/, the sampler, energy figures and their intervals, carbon, host facts
    store/        the session directory: typed records and events, writer, reader, snapshots
    quality/      datasets and the quality of a variant's outputs
    compression/  techniques, one module per family, one registry
    models/       model sources, one module per source, one registry
    spec/         what a session measures, as plain data: the profile's dataclasses and limits
"""
