"""Code that measures the library against the literature: baselines (deterministic classifiers,
temperature scaling, a VAE, feature densities), one detector per file behind one interface,
adversarial attacks, and the OOD benchmark that ranks them all on the same sets.
"""
