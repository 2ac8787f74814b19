"""benchmarks/sim_to_real.py: normalisation, counts and resume on synthetic part files (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def s2r(benchmark_script):
    return benchmark_script("sim_to_real")


def _res(score: float, se: float = 0.1) -> dict:
    return {"score": score, "score_se": se, "return": score, "return_se": se, "episodes": 64}


def _write_parts(out: Path) -> None:
    runs = out / "runs"
    runs.mkdir(parents=True)
    host = {"wait": _res(0.0, 0.0), "random": _res(-2.0), "heuristic": _res(1.0), "plan": _res(2.0)}
    sur = {"wait": _res(0.0, 0.0), "random": _res(0.0), "heuristic": _res(5.0), "oracle": _res(10.0)}
    (runs / "baselines.json").write_text(json.dumps({"host": host, "surrogate": sur}))
    for seed, score in ((0, 1.5), (1, -1.0)):
        (runs / f"host_s{seed}.json").write_text(json.dumps(
            {"trained_on": "host", "seed": seed, "frames": 800, "train_wall_s": 1.0,
             "eval_host": {**_res(score), "normalized": (score + 2.0) / 4.0}}))
    (runs / "surrogate_s0.json").write_text(json.dumps(
        {"trained_on": "surrogate", "seed": 0, "frames": 800, "train_wall_s": 1.0,
         "eval_host": {**_res(0.0), "normalized": 0.5}, "eval_surrogate": {**_res(8.0), "normalized": 0.8}}))


def test_aggregate_normalises_between_random_and_best_plan(s2r, tmp_path):
    _write_parts(tmp_path)
    summary = s2r.aggregate(tmp_path)
    base = summary["baselines"]
    assert base["random"]["normalized"] == 0.0 and base["plan"]["normalized"] == 1.0
    assert base["wait"]["normalized"] == pytest.approx(0.5) and base["heuristic"]["normalized"] == pytest.approx(0.75)
    host = summary["policies"]["host"]
    assert host["seeds"] == [0, 1] and host["host_scores"] == [1.5, -1.0]
    assert host["host_normalized_mean"] == pytest.approx((0.875 + 0.25) / 2)
    assert host["beats_heuristic"] == 1 and host["beats_wait"] == 1
    assert summary["policies"]["surrogate"]["surrogate_normalized"] == [0.8]
    table = (tmp_path / "sim_to_real.md").read_text()
    assert "trained on the host (800 frames, 2 seeds)" in table and "1.50, -1.00" in table
    assert json.loads((tmp_path / "sim_to_real.json").read_text())["policies"]["host"]["beats_wait"] == 1


def test_finished_parts_are_not_rerun(s2r, tmp_path, monkeypatch):
    _write_parts(tmp_path)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished part was trained again")

    monkeypatch.setattr(s2r, "train", no_training)
    rec = s2r.run_part(tmp_path, "host", 1, 800, 64, {})
    assert rec["eval_host"]["score"] == -1.0


def test_bad_arguments_are_refused(s2r, tmp_path):
    with pytest.raises(SystemExit, match="--host-frames"):
        s2r.main(["--host-frames", "10", "--out", str(tmp_path)])
