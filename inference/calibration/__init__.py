"""Stage 4, calibration: the conformal gate's arithmetic, the density model, and fitting both to held-out digits."""

from inference.calibration.conformal import (
    GATE_COMPONENTS,
    RISK_GRID,
    bonferroni,
    certified_threshold,
    component_p_values,
    conformal_p_values,
    fisher_p_values,
    gate_scores,
    risk_threshold,
    two_sided_p_values,
    unfamiliarity_p_value,
)
from inference.calibration.density import class_doubt, density_scores, train_vae, vae_elbo
from inference.calibration.fit import CalibrationConfig, calibrate, held_out_size, smallest_gate_p_value

__all__ = [
    "GATE_COMPONENTS",
    "RISK_GRID",
    "CalibrationConfig",
    "bonferroni",
    "calibrate",
    "class_doubt",
    "certified_threshold",
    "component_p_values",
    "conformal_p_values",
    "density_scores",
    "fisher_p_values",
    "gate_scores",
    "held_out_size",
    "risk_threshold",
    "smallest_gate_p_value",
    "train_vae",
    "two_sided_p_values",
    "unfamiliarity_p_value",
    "vae_elbo",
]
