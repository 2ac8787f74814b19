"""Damaged, foreign and older files: checksums, this library's own error message (never torch's
``weights_only=False`` advice), resume from the newest intact checkpoint, named keys, the grid in
the policy file, and evaluate.py's one-line errors."""

import importlib.util
import logging
import os
from pathlib import Path

import pytest
import torch

from torchrl_slots._integrity import CHECKSUM_KEY, DamagedFileError
from torchrl_slots.envs import SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig, SlotPolicy, create_policy
from torchrl_slots.training import CheckpointManager, load_policy, load_training_checkpoint
from torchrl_slots.training.checkpoint import TRAINING_FORMAT

SMALL = PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16, key_dim=8)
DAMAGED = "not a torchrl_slots checkpoint, or damaged"
ROOT = Path(__file__).resolve().parents[2]


def _policy_file(tmp_path, rows=1, cols=3, arch="transformer"):
    torch.manual_seed(0)
    policy = create_policy(arch, SeedLifecycleEnv(1, rows, cols, seed=0), SMALL)
    path = tmp_path / "policy.pt"
    policy.save(path)
    return policy, path


def _evaluate():
    spec = importlib.util.spec_from_file_location("evaluate", ROOT / "examples" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_changed_weight_fails_the_checksum(tmp_path):
    _, path = _policy_file(tmp_path)
    payload = torch.load(path, weights_only=True)
    key = next(k for k in payload["state_dict"] if k.endswith("weight"))
    payload["state_dict"][key].view(-1)[3] += 1e-3  # one weight, checksum left as it was
    torch.save(payload, path)
    with pytest.raises(DamagedFileError, match=f"{DAMAGED}: {path} \\(sha256 checksum mismatch"):
        SlotPolicy.load(path, SeedLifecycleEnv(1, 1, 3, seed=0))


def test_64_flipped_bytes_in_the_middle_never_load_silently(tmp_path):
    _, path = _policy_file(tmp_path)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=DAMAGED) as info:
        load_policy(path, SeedLifecycleEnv(1, 1, 3, seed=0))
    assert "weights_only" not in str(info.value)


def test_training_checkpoint_checksum_covers_optimizer_and_rng(tmp_path):
    m = CheckpointManager(tmp_path, keep=2)
    path = m.save({"format": TRAINING_FORMAT, "frames": 10, "rng": {"torch": torch.get_rng_state()},
                   "optimizer": {"state": {0: {"exp_avg": torch.zeros(3)}}}})
    payload = torch.load(path, weights_only=True)
    assert len(payload[CHECKSUM_KEY]) == 64
    payload["optimizer"]["state"][0]["exp_avg"][1] = 1.0
    torch.save(payload, path)
    with pytest.raises(DamagedFileError, match="checksum mismatch"):
        load_training_checkpoint(path)


def test_older_policy_file_without_checksum_or_grid_still_loads(tmp_path):
    policy, path = _policy_file(tmp_path)
    payload = torch.load(path, weights_only=True)
    del payload[CHECKSUM_KEY], payload["grid"]
    torch.save(payload, path)
    loaded = SlotPolicy.load(path, SeedLifecycleEnv(1, 1, 3, seed=0))
    for (k, a), b in zip(policy.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "text", "pickled_object"])
def test_unreadable_checkpoint_says_damaged_and_never_suggests_weights_only_false(tmp_path, damage):
    _, path = _policy_file(tmp_path)
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif damage == "random":
        path.write_bytes(os.urandom(4096))
    elif damage == "text":
        path.write_text("hello\n")
    else:
        torch.save({"format": "x", "obj": logging.Formatter()}, path)
    for load in (lambda: load_policy(path, SeedLifecycleEnv(1, 1, 3, seed=0)), lambda: load_training_checkpoint(path),
                 lambda: SlotPolicy.load(path, SeedLifecycleEnv(1, 1, 3, seed=0))):
        with pytest.raises(ValueError, match=f"{DAMAGED}: {path} \\(") as info:
            load()
        assert "weights_only" not in str(info.value)


def test_missing_checkpoint_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        load_policy(tmp_path / "nope.pt", SeedLifecycleEnv(1, 1, 3, seed=0))


def test_resume_falls_back_to_the_newest_intact_checkpoint_and_keeps_the_damaged_one(tmp_path, caplog):
    m = CheckpointManager(tmp_path, keep=3)
    for frames in (100, 200, 300):
        m.save({"format": TRAINING_FORMAT, "frames": frames, "w": torch.full((4,), float(frames))})
    newest = tmp_path / "checkpoint_000000000300.pt"
    newest.write_bytes(newest.read_bytes()[:50])
    with caplog.at_level(logging.WARNING, logger="torchrl_slots.training.checkpoint"):
        payload, path = m.load_latest_with_path()
    assert payload["frames"] == 200 and path.name == "checkpoint_000000000200.pt"
    text = caplog.text
    assert "checkpoint_000000000300.pt" in text and "checkpoint_000000000200.pt" in text
    kept = tmp_path / "damaged_checkpoint_000000000300.pt"
    assert kept.exists() and len(kept.read_bytes()) == 50, "the damaged file is kept, never deleted"
    m.save({"format": TRAINING_FORMAT, "frames": 300, "w": torch.zeros(4)})  # the next save cannot overwrite it
    assert len(kept.read_bytes()) == 50


def test_resume_when_every_checkpoint_is_damaged_raises_naming_them(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save({"format": TRAINING_FORMAT, "frames": 1})
    (tmp_path / "checkpoint_000000000001.pt").write_bytes(b"junk")
    with pytest.raises(DamagedFileError, match="every checkpoint in the folder is damaged"):
        m.load_latest()
    assert (tmp_path / "checkpoint_000000000001.pt").exists()


def test_state_dict_missing_a_key_names_missing_and_unexpected_keys(tmp_path):
    policy, path = _policy_file(tmp_path, arch="lstm")
    payload = policy.payload()
    payload["state_dict"] = dict(payload["state_dict"])
    gone = next(iter(payload["state_dict"]))
    payload["state_dict"]["extra.weight"] = payload["state_dict"].pop(gone)
    del payload[CHECKSUM_KEY]
    with pytest.raises(ValueError, match=rf"missing keys \['{gone}'.*unexpected keys \['extra.weight'\]"):
        SlotPolicy.from_payload(payload, SeedLifecycleEnv(1, 1, 3, seed=0))


@pytest.mark.parametrize("entry", ["arch", "config", "state_dict"])
def test_payload_without_arch_names_the_missing_entry(tmp_path, entry):
    policy, _ = _policy_file(tmp_path)
    payload = policy.payload()
    del payload[entry], payload[CHECKSUM_KEY]
    with pytest.raises(ValueError, match=rf"lacks the entries \['{entry}'\]"):
        SlotPolicy.from_payload(payload, SeedLifecycleEnv(1, 1, 3, seed=0))


def test_policy_file_saves_its_grid_and_evaluate_reads_it(tmp_path):
    _, path = _policy_file(tmp_path, rows=2, cols=5)
    assert torch.load(path, weights_only=True)["grid"] == [2, 5]
    rows, cols, _, kind = _evaluate().training_env(path)
    assert kind == "surrogate"
    assert (rows, cols) == (2, 5)


@pytest.mark.parametrize("argv", [["--rows", "0"], ["--cols", "-1"], ["--episodes", "0"]])
def test_evaluate_refuses_non_positive_sizes(tmp_path, capsys, argv):
    _, path = _policy_file(tmp_path)
    with pytest.raises(SystemExit) as info:
        _evaluate().main(["--checkpoint", str(path), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --") and "must be a positive int" in err[0]


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_evaluate_on_a_corrupt_or_missing_file_prints_one_error_line(tmp_path, capsys, kind):
    path = tmp_path / "policy.pt"
    if kind == "corrupt":
        path.write_bytes(b"\x00" * 100)
    with pytest.raises(SystemExit) as info:
        _evaluate().main(["--checkpoint", str(path), "--episodes", "2"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert ("no such checkpoint file" if kind == "missing" else DAMAGED) in err[0]
