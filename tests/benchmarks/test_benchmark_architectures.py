"""benchmarks/benchmark_architectures.py on tiny settings: every metric present, files written."""

import json
import math
from pathlib import Path

import pytest

import torchrl_slots.policy

TINY = ["--slots", "3", "--batch-size", "2", "--seq-len", "4", "--iterations", "2", "--warmup", "1",
        "--inference-envs", "4", "--inference-iterations", "2", "--no-compile", "--threads", "1"]
METRICS = ["forward_time_ms", "backward_time_ms", "fwd_bwd_time_ms", "trunk_fwd_bwd_ms", "memory_mb", "parameters",
           "inference_ms"]


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("benchmark_architectures")


@pytest.fixture(autouse=True)
def private_registry(monkeypatch):
    """main() registers the "reference" policy: keep it out of the registry other tests (and the
    create_policy doctest) see."""
    monkeypatch.setattr(torchrl_slots.policy, "_REGISTRY", dict(torchrl_slots.policy._REGISTRY))


def run(bench, tmp_path, *extra):
    paths = ["--json", str(tmp_path / "out.json"), "--markdown", str(tmp_path / "out.md")]
    results = bench.main([*TINY, *paths, *extra])
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(json.dumps(results))
    md = (tmp_path / "out.md").read_text()
    assert md.count("\n| 3 |") == len(results["results"])
    return results


def check_row(row):
    for key in METRICS:
        assert isinstance(row[key], (int, float)) and math.isfinite(row[key]) and row[key] > 0, key
    for key in ("forward_time_ms", "backward_time_ms", "inference_ms"):
        st = row["spread"][key]
        assert st["n"] == 2 and 0 < st["min"] <= st["q1"] <= st["median"] <= st["q3"] <= st["max"], key
    assert row["compile_time_s"] is None and row["inference_compiled_ms"] is None
    assert row["inference_compiled_speedup"] is None


def test_lstm_and_transformer_rows_with_every_metric(bench, tmp_path):
    results = run(bench, tmp_path)
    assert [r["name"] for r in results["results"]] == ["lstm", "transformer"]
    for row in results["results"]:
        check_row(row)
    lstm, transformer = results["results"]
    assert lstm["vs_lstm"] is None
    assert transformer["vs_lstm"]["fwd_bwd_time"] == pytest.approx(
        transformer["fwd_bwd_time_ms"] / lstm["fwd_bwd_time_ms"])
    assert transformer["vs_lstm"]["memory"] == pytest.approx(transformer["memory_mb"] / lstm["memory_mb"])
    assert transformer["vs_lstm"]["trunk_time"] == pytest.approx(
        transformer["trunk_fwd_bwd_ms"] / lstm["trunk_fwd_bwd_ms"])
    machine = results["machine"]
    for key in ("cpu", "cores", "torch", "torchrl", "tensordict", "date", "device_name"):
        assert machine[key], key
    assert "saved_tensors_hooks" in results["memory_method"]
    assert "GAE" in results["advantage_method"]


def test_reference_and_variant_rows(bench, tmp_path):
    results = run(bench, tmp_path, "--archs", "lstm", "--variant", "k32:key_dim=32", "--reference",
                  "--enabled-slots", "2")
    rows = {r["name"]: r for r in results["results"]}
    assert list(rows) == ["lstm", "transformer[k32]", "reference"]
    for row in rows.values():
        check_row(row)
        assert row["enabled_slots"] == 2
    assert rows["transformer[k32]"]["overrides"] == {"key_dim": 32}
    assert rows["transformer[k32]"]["config"]["key_dim"] == 32
    assert rows["reference"]["arch"] == "reference"
    assert rows["transformer[k32]"]["speedup_vs_reference"]["fwd_bwd_time"] > 0
    assert {(r["row"], r["against"]) for r in results["ratios"]} == {
        ("transformer[k32]", "lstm"), ("reference", "lstm"), ("lstm", "reference"), ("transformer[k32]", "reference")}


def test_parse_variant(bench):
    row = bench.parse_variant("ckpt:key_dim=32,dropout=0.1,positional=fourier")
    assert row.name == "transformer[ckpt]" and row.arch == "transformer"
    assert row.overrides == {"key_dim": 32, "dropout": 0.1, "positional": "fourier"}
    assert [bench.parse_value(v) for v in ("true", "False", "None", "bf16")] == [True, False, None, "bf16"]
    with pytest.raises(ValueError, match="unknown PolicyConfig fields"):
        bench.parse_variant("x:no_such_field=1")
    with pytest.raises(ValueError, match="NAME:field=value"):
        bench.parse_variant("key_dim=32")


def test_markdown_goes_where_asked_or_next_to_the_json(bench, tmp_path):
    """``--json X`` alone must not overwrite the committed benchmarks/results Markdown."""
    args = bench.parse_args(["--json", str(tmp_path / "x.json")])
    assert args.json == tmp_path / "x.json" and args.markdown == tmp_path / "x.md"
    args = bench.parse_args(["--json", str(tmp_path / "x.json"), "--markdown", str(tmp_path / "y.md")])
    assert args.markdown == tmp_path / "y.md"
    args = bench.parse_args(["--device", "cuda:1"])
    assert args.json == Path("benchmarks/results/benchmark_architectures_cuda.json")
    assert args.markdown == Path("benchmarks/results/benchmark_architectures_cuda.md")
