"""benchmarks/bench_env.py: each mode rewrites its own rows of the JSON and keeps the other mode's."""

from __future__ import annotations

import json
import sys

import pytest
import torch


@pytest.fixture(scope="module")
def bench_env(benchmark_script):
    return benchmark_script("bench_env")


def _run(module, monkeypatch, *argv: str) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_env.py", *argv])
    threads = torch.get_num_threads()
    try:
        module.main()
    finally:  # --env host sets the thread count: the next tests keep theirs
        torch.set_num_threads(threads)


def test_surrogate_rows_rewrite_keeps_the_host_rows(bench_env, tmp_path, monkeypatch):
    out = tmp_path / "bench_env.json"
    host = {"host_machine": {"note": "kept"}, "host_results": [{"policy": "wait", "step_ms_median": 12.5}]}
    out.write_text(json.dumps({**host, "machine": {"old": True}, "results": [{"num_envs": 1}]}))
    _run(bench_env, monkeypatch, "--num-envs", "4", "--slots", "3", "--steps", "10", "--json", str(out))
    data = json.loads(out.read_text())
    assert data["host_machine"] == host["host_machine"] and data["host_results"] == host["host_results"]
    assert "old" not in data["machine"]  # the surrogate rows themselves are new
    assert [(r["num_envs"], r["slots"], r["grid"]) for r in data["results"]] == [(4, 3, "1x3")]
    assert data["results"][0]["step_ms_median"] > 0


def test_host_rows_rewrite_keeps_the_surrogate_rows(bench_env, tmp_path, monkeypatch):
    out = tmp_path / "bench_env.json"
    sur = {"machine": {"threads": 2}, "results": [{"num_envs": 64, "slots": 3, "step_ms_median": 1.7}]}
    out.write_text(json.dumps({**sur, "host_results": [{"policy": "old"}]}))
    monkeypatch.setattr(bench_env, "bench_host", lambda e, n, steps, policy: {"policy": policy, "num_envs": e,
                                                                             "slots": n, "grid": "2x5",
                                                                             "step_ms_median": 1.0,
                                                                             "step_ms_p10": 1.0,
                                                                             "step_ms_p90": 1.0,
                                                                             "env_steps_per_s": 16.0})
    _run(bench_env, monkeypatch, "--env", "host", "--steps", "10", "--json", str(out), "--note", "test")
    data = json.loads(out.read_text())
    assert data["machine"] == sur["machine"] and data["results"] == sur["results"]
    assert [r["policy"] for r in data["host_results"]] == ["wait", "random", "heuristic"]
    assert data["host_machine"]["note"] == "test" and data["host_machine"]["threads"] == 1
