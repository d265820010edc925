from bnn import BNNConfig
from inference.evaluation import study
from inference.training import TrainConfig


def test_rows_train_as_they_did_when_published_whatever_today_s_defaults():
    assert TrainConfig().scale_lr != 0.02  # the default changed after this study ran
    for name, overrides in study.CONFIGURATIONS.items():
        train_fields = {k: v for k, v in overrides.items() if k not in BNNConfig.__dataclass_fields__}
        assert TrainConfig(**train_fields).scale_lr == 0.02, name
    assert study.CONFIGURATIONS["NCP 0.3, prior 1.5"] == {
        "scale_lr": 0.02,
        "bf16_variance": False,
        "contrast_weight": 0.3,
        "prior_scale": 1.5,
    }
