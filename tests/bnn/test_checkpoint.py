import os
import pickle

import pytest
import torch

from bnn import BNNConfig, CheckpointError, TrainedBNN, load_checkpoint, load_model, save_checkpoint
from bnn.checkpoint import FORMAT_VERSION


def test_round_trip_restores_guide_and_config(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny, {"epoch": 3})
    loaded, state = load_checkpoint(path)
    assert loaded.config == tiny.config
    assert state == {"epoch": 3}
    for (name, a), (_, b) in zip(tiny.guide.state_dict().items(), loaded.guide.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert isinstance(load_model(path), TrainedBNN)


def test_round_trip_of_row_column_scales(tmp_path):
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=8, num_data=100, row_column_scales=True))
    loaded = load_model(save_checkpoint(tmp_path / "m.pt", trained))
    assert loaded.config.row_column_scales
    for (name, a), (_, b) in zip(trained.guide.state_dict().items(), loaded.guide.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, tiny):
    path = tmp_path / "m.pt"
    save_checkpoint(path, tiny)
    save_checkpoint(path, tiny)
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


@pytest.mark.fault("crash while writing a checkpoint")
def test_a_save_that_fails_halfway_leaves_the_previous_checkpoint(tmp_path, tiny, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", tiny, {"epoch": 1})
    before = path.read_bytes()

    def write_half_then_die(obj, f, *args, **kwargs):
        f.write(before[: len(before) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tiny, {"epoch": 2})
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]


def _payload(path):
    return torch.load(path, weights_only=True)


@pytest.mark.fault("checkpoint for another architecture")
def test_architecture_mismatch_is_a_clear_error(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    payload = _payload(path)
    payload["config"]["hidden_dim"] = 32  # tensors are for 16 hidden units
    torch.save(payload, path)
    with pytest.raises(
        CheckpointError,
        match=r"fc1_weight_loc is \(16, 784\) torch.float32, but the architecture .*784-32-10.* needs \(32, 784\)",
    ):
        load_checkpoint(path)


@pytest.mark.fault("checkpoint from a newer format version")
def test_newer_format_version_is_refused(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    payload = _payload(path)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"\(upgrade this package to read it\)"):
        load_checkpoint(path)
    payload["format_version"] = 0
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"format version 0; .*\(re-train or convert it\)"):
        load_checkpoint(path)


@pytest.mark.fault("foreign, truncated and missing checkpoint files")
def test_foreign_file_truncated_file_and_missing_file(tmp_path, tiny):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a bnn-checkpoint"):
        load_checkpoint(foreign)
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.pt")


@pytest.mark.fault("checkpoint holding NaN parameters")
def test_non_finite_parameters_are_refused(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    payload = _payload(path)
    payload["guide"]["fc1_weight_loc"][0, 0] = float("nan")
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_checkpoint(path)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


@pytest.mark.fault("checkpoint whose pickle carries code")
def test_pickle_carrying_code_is_refused_without_running_it(tmp_path, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"format": "bnn-checkpoint", "payload": _RunsCode()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="nothing in it was run") as refused:
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()
    # The detail names what the file asked to import, not torch's advice to turn the check off.
    assert "system" in str(refused.value) and "weights_only" not in str(refused.value)


def test_a_pickle_refusal_without_a_message_is_still_a_checkpoint_error(tmp_path, tiny, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", tiny)

    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError("")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError, match=r"nothing in it was run\)\.$"):
        load_checkpoint(path)


def test_a_training_state_that_is_not_a_dict_is_refused(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    torch.save(_payload(path) | {"training": [1, 2]}, path)
    with pytest.raises(CheckpointError, match=r"m.pt: 'training' must be a dict, got list"):
        load_checkpoint(path)


def test_invalid_config_in_checkpoint(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    payload = _payload(path)
    payload["config"]["layers"] = 3
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="unknown BNNConfig fields"):
        load_checkpoint(path)


def test_config_validation():
    with pytest.raises(ValueError, match=r"BNNConfig.prior_scale must be a positive finite number, got 0.0"):
        BNNConfig(prior_scale=0.0)
    with pytest.raises(ValueError, match="hidden_dim"):
        BNNConfig(hidden_dim=-3)


def test_fields_without_a_check_do_not_stop_the_checks():
    from dataclasses import dataclass, field

    from bnn.config import check_fields, option

    @dataclass
    class Mixed:
        note: str = field(default="free text")  # no check
        width: int = option(3, "positive_int", "a width")

    check_fields(Mixed())
    with pytest.raises(ValueError, match=r"Mixed.width must be a positive integer, got 0"):
        check_fields(Mixed(width=0))


def test_saving_creates_missing_folders(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "runs" / "today" / "m.pt", tiny)
    assert load_checkpoint(path)[0].config == tiny.config


def test_a_missing_guide_parameter_is_named(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "m.pt", tiny)
    payload = _payload(path)
    del payload["guide"]["fc2_bias_rho"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"holds guide parameters \[.*\], expected .*fc2_bias_rho"):
        load_checkpoint(path)
    payload["guide"]["fc2_bias_rho"] = [0.0] * 10  # a parameter that is no tensor is named with its type
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"parameter fc2_bias_rho is list, but the architecture"):
        load_checkpoint(path)
