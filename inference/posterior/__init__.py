"""Stage 3, the posterior: networks drawn from the fitted guide, and what they say about each input."""

from inference.posterior.sampling import (
    NUM_SAMPLES,
    SCORING_SEED,
    Method,
    default_chunk_size,
    iter_predictive_probs,
    predictive_probs,
    sample_weights,
)
from inference.posterior.summaries import PosteriorSummary, entropy, mutual_information, percentile_levels, summarise

__all__ = [
    "NUM_SAMPLES",
    "SCORING_SEED",
    "Method",
    "PosteriorSummary",
    "default_chunk_size",
    "entropy",
    "iter_predictive_probs",
    "mutual_information",
    "percentile_levels",
    "predictive_probs",
    "sample_weights",
    "summarise",
]
