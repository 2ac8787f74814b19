"""benchmarks/compare_training.py on a tiny budget: runs, resumable run files, well-formed tables."""

import importlib.util
import json
import math
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_training.py"
TINY = ["--grids", "1x3", "--frames", "1x3=200,2x5=200",
        "--num-envs", "4", "--frames-per-batch", "100", "--eval-interval", "1", "--eval-episodes", "4",
        "--final-episodes", "4", "--small-policy", "--jobs", "1"]


def load():
    if "compare_training" not in sys.modules:
        spec = importlib.util.spec_from_file_location("compare_training", PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["compare_training"] = module
        spec.loader.exec_module(module)
    return sys.modules["compare_training"]


def test_tiny_suite_writes_runs_tables_and_plot(tmp_path):
    ct = load()
    ct.main(["--suites", "main", "--seeds", "2", *TINY, "--out", str(tmp_path)])
    summary = ct.main(["--suites", "zeroshot", "--seeds", "1", *TINY, "--out", str(tmp_path)])
    runs = sorted(p.name for p in (tmp_path / "runs").glob("*.json"))
    assert len(runs) == 6 and summary["runs"] == 6
    groups = {r["group"]: r for r in summary["table"]}
    assert set(groups) == {"main_lstm_1x3", "main_transformer_1x3",
                           "zeroshot_transformer_2x5_auto_advance-True_max_epochs-40_positional-learned",
                           "zeroshot_transformer_2x5_auto_advance-True_max_epochs-40_positional-fourier"}
    for row in summary["table"]:
        n = 2 if row["suite"] == "main" else 1
        assert row["seeds"] == list(range(n)) and row["parameters"] > 0 and row["train_wall_s"]["mean"] > 0
        for key in ("normalized", "score", "return", "normalized_at_12500_frames"):
            assert row[key]["n"] == n and math.isfinite(row[key]["mean"]) and row[key]["std"] >= 0, key
        b = row["baselines"]
        assert b["wait"] == 0.0 and b["oracle"] > b["heuristic"] > b["random"]
        # normalized = (score - random) / (oracle - random), per run, on the same final episodes
        assert row["normalized"]["mean"] * (b["oracle"] - b["random"]) + b["random"] == \
            __import__("pytest").approx(row["score"]["mean"], abs=1e-6)
    zs = groups["zeroshot_transformer_2x5_auto_advance-True_max_epochs-40_positional-learned"]["zero_shot"]
    assert set(zs) == {"5x5", "5x10"} and all(math.isfinite(z["score"]["mean"]) for z in zs.values())
    assert summary["welch"]["1x3"]["n_transformer"] == 2 and math.isfinite(summary["welch"]["1x3"]["p"])
    assert json.loads((tmp_path / "compare_training.json").read_text())["runs"] == 6
    assert "Welch" in (tmp_path / "compare_training.md").read_text()
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    # A rerun skips finished runs (their files are not rewritten).
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    ct.main(["--suites", "main", "--seeds", "2", *TINY, "--out", str(tmp_path)])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")} == stamp


def test_op_override_of_auto_advance_runs_equals_the_new_default():
    """The 5x10 runs made with ``--set ppo.entropy_coeff.op=0.05`` before auto_advance got its own
    default train exactly as the default does now; with manual ADVANCE the override still differs."""
    from torchrl_slots.training import PPOConfig

    ct = load()
    base = {"frames_per_batch": 800, "frames": 100_000}
    auto = {**base, "lifecycle": {"auto_advance": True, "max_epochs": 40}}
    over = PPOConfig(**ct.ppo_kwargs({**auto, "ppo": {"entropy_coeff.op": 0.05}})).entropy_coeffs(True)
    assert PPOConfig(**ct.ppo_kwargs(auto)).entropy_coeffs(True) == over == {h: 0.05 for h in over}
    manual = PPOConfig(**ct.ppo_kwargs({**base, "ppo": {"entropy_coeff.op": 0.2}})).entropy_coeffs(False)
    assert manual == PPOConfig(**ct.ppo_kwargs(base)).entropy_coeffs(False)
    assert manual["op"] == 0.2 and PPOConfig(**ct.ppo_kwargs(auto)).entropy_coeffs(False)["op"] == 0.2


def test_runs_named_by_their_schedule_equal_the_defaults_they_stand_for():
    """Manual ADVANCE: the runs made with ``--set ppo.entropy_coeff_end.op=0.05,ppo.entropy_decay_start=0.5``
    have the default schedule of now, and ``--set ppo.entropy_coeff.op=0.2`` is the constant default of before."""
    from torchrl_slots.training import PPOConfig

    ct = load()
    base = {"frames_per_batch": 800, "frames": 80_000}
    frames = range(0, 80_001, 800)
    schedule = lambda spec: [PPOConfig(**ct.ppo_kwargs(spec)).entropy_coeffs_at(f) for f in frames]  # noqa: E731
    late = {**base, "ppo": {"entropy_coeff_end.op": 0.05, "entropy_decay_start": 0.5}}
    assert schedule(late) == schedule(base)
    constant = schedule({**base, "ppo": {"entropy_coeff.op": 0.2}})
    assert constant == [PPOConfig().entropy_coeffs()] * len(constant) != schedule(base)


def _run(arch: str, seed: int, wall: float, reach: int, machine: dict | None) -> dict:
    """A finished 2x5 main-suite run as the aggregate reads it: 1000 frames, first at 0.8 at ``reach``."""
    run = {"name": f"main_{arch}_2x5_s{seed}", "grid": "2x5", "train_wall_s": wall, "frames_done": 1000,
           "evals": {"2x5": {"normalized": 0.9}},
           "curve": [{"frames": 0, "normalized": 0.0}, {"frames": reach, "normalized": 0.9}]}
    if machine is not None:
        run["machine"] = machine
    return run


def _crit7(transformer: list[dict], lstm: list[dict]) -> dict:
    ct = load()
    out = ct.criteria({"main_transformer_2x5": transformer, "main_lstm_2x5": lstm})
    return next(c for c in out if c["name"].startswith("7."))


def test_criterion_7_divides_wall_times_only_within_one_machine():
    ct = load()
    here = ct.run_machine()
    assert here["cpu"] and here["boot_id"] != "" and here["torch_threads"] >= 1
    other = {**here, "boot_id": "another-boot"}
    # Same machine: the ratio of mean wall per frame, and both halves decide.
    c = _crit7([_run("transformer", 0, 3.0, 400, here)], [_run("lstm", 0, 2.0, 500, here)])
    assert c["met"] is True and "1.50x" in c["result"]
    c = _crit7([_run("transformer", 0, 4.0, 400, here)], [_run("lstm", 0, 2.0, 500, here)])
    assert c["met"] is False and "2.00x" in c["result"]
    # Two boots (sessions), or a run that recorded no machine: no verdict, and the table says so.
    for lstm_machine in (other, None):
        c = _crit7([_run("transformer", 0, 3.0, 400, here)], [_run("lstm", 0, 2.0, 500, lstm_machine)])
        assert c["met"] is None and "not comparable" in c["result"] and "x (" not in c["result"]
        md = ct.markdown({"table": [], "criteria": [c], "welch": {}})
        assert "| no verdict |" in md
    # ...but more frames to 0.8 than the LSTM fails whatever the wall times.
    c = _crit7([_run("transformer", 0, 1.0, 600, here)], [_run("lstm", 0, 2.0, 500, None)])
    assert c["met"] is False
    assert ct.wall_ratio([], [_run("lstm", 0, 2.0, 500, here)]) == (None, "no runs")


def test_large_suite_takes_the_archs_it_is_given():
    ct = load()

    def names(*argv):
        return [s["name"].split("_5x10")[0] for s in ct.make_specs(ct.build_parser().parse_args(list(argv)))]

    assert names("--suites", "large", "--seeds", "1") == ["large_transformer"]
    assert names("--suites", "large", "--seeds", "1", "--large-lstm") == ["large_transformer", "large_lstm"]
    assert names("--suites", "large", "--seeds", "2", "--large-lstm", "--archs", "lstm") == ["large_lstm"] * 2
    assert names("--suites", "large", "--seeds", "1", "--archs", "transformer", "--large-lstm") == ["large_transformer"]
