"""Stage 5, prediction: the rule, its result, :func:`predict_with_abstain` and streaming over large collections."""

from inference.predictive.predict import predict_with_abstain
from inference.predictive.result import AbstainResult
from inference.predictive.rule import (
    ABSTAIN,
    ANSWERED,
    DEFAULT_RULE,
    EXPLANATIONS,
    MODES,
    NO_CANDIDATE,
    NO_INK,
    REASONS,
    TOO_UNCERTAIN,
    UNFAMILIAR,
    Mode,
    Rule,
    answer,
    decide,
)

__all__ = [
    "ABSTAIN",
    "ANSWERED",
    "DEFAULT_RULE",
    "EXPLANATIONS",
    "MODES",
    "NO_CANDIDATE",
    "NO_INK",
    "REASONS",
    "TOO_UNCERTAIN",
    "UNFAMILIAR",
    "AbstainResult",
    "Mode",
    "Rule",
    "answer",
    "decide",
    "predict_with_abstain",
]
