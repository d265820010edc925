"""Code that measures the library: the abstention evaluation, metrics, plots, the guarantee check,
the speed benchmark, and the one module that publishes results (:mod:`inference.evaluation.report`).

Nothing in :mod:`bnn` or :mod:`inference`'s runtime modules imports this package.
"""
