"""Runs and their outputs: the runner, metrics, figures, provenance and the command line.

* :mod:`sim.output.runner` — run a config and write its Parquet tables, summary and figures;
* :mod:`sim.output.metrics` — headline metrics of a finished run (``summary.json``);
* :mod:`sim.output.figures` — the per-run figures;
* :mod:`sim.output.provenance` — fingerprints of a run's config and code;
* :mod:`sim.output.cli` — ``python -m sim`` (Hydra app, sweeps, one-line errors).
"""
