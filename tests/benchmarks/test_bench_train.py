"""benchmarks/bench_train.py: arms parse, rounds interleave, ratios are per round, and each
invocation appends to the JSON without losing earlier entries."""

from __future__ import annotations

import json

import pytest


def test_parse_arm(benchmark_script):
    bt = benchmark_script("bench_train")
    assert bt.parse_arm("lstm") == ("lstm", {})
    assert bt.parse_arm("transformer:autocast=bf16,num_layers=1") == (
        "transformer", {"autocast": "bf16", "num_layers": 1})
    with pytest.raises(ValueError, match="expected field=value after ':', got 'autocast'"):
        bt.parse_arm("transformer:autocast")


def test_bench_interleaves_rounds_and_divides_per_round(benchmark_script, monkeypatch):
    bt = benchmark_script("bench_train")
    calls = []
    fake = {"lstm": [1.0, 2.0, 1.0], "transformer": [3.0, 3.0, 1.5]}

    def time_arm(arch, overrides, rows, cols, frames, seed):
        calls.append((arch, seed))
        ms = fake[arch][seed]
        return {"frames": frames, "wall_s": 0.0, "collect_ms_per_frame": ms / 2, "update_ms_per_frame": ms / 2,
                "ms_per_frame": ms}

    monkeypatch.setattr(bt, "time_arm", time_arm)
    rows = bt.bench(["lstm", "transformer"], rounds=3, frames=800, rows=2, cols=5)
    assert calls == [("lstm", 0), ("transformer", 0), ("lstm", 1), ("transformer", 1), ("lstm", 2),
                     ("transformer", 2)]
    t = rows[1]
    assert t["ms_per_frame_median"] == 3.0
    assert t["ratio_to_lstm_median"] == 1.5  # median of 3.0, 1.5, 1.5, not 3.0 / 1.0
    assert (t["ratio_to_lstm_min"], t["ratio_to_lstm_max"]) == (1.5, 3.0)
    assert rows[0]["ratio_to_lstm_median"] == 1.0
    table = bt.markdown(rows, {"cpu": "x", "torch_threads": 1})
    assert "| transformer | 3.000 | 1.500 | 1.500 | 1.50 [1.50, 3.00] |" in table


def test_main_trains_both_archs_and_appends_to_the_json(benchmark_script, tmp_path):
    bt = benchmark_script("bench_train")
    path = tmp_path / "bench_train.json"
    path.write_text(json.dumps([{"earlier": True}]))
    entry = bt.main(["--rounds", "1", "--frames", "800", "--grid", "1x3", "--json", str(path)])
    saved = json.loads(path.read_text())
    assert saved[0] == {"earlier": True} and saved[1]["rows"] == entry["rows"]
    for row in entry["rows"]:
        (r,) = row["rounds"]
        assert r["frames"] == 800 and r["ms_per_frame"] > 0
        assert r["ms_per_frame"] == pytest.approx(r["collect_ms_per_frame"] + r["update_ms_per_frame"])
    assert [r["arm"] for r in entry["rows"]] == ["lstm", "transformer"]
    assert entry["machine"]["cpu"] and entry["machine"]["boot_id"]


def test_main_refuses_too_few_frames(benchmark_script, tmp_path):
    with pytest.raises(SystemExit):
        benchmark_script("bench_train").main(["--frames", "100", "--json", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_repeated_arm_carries_several_overrides_and_replaces_arms(benchmark_script, tmp_path, monkeypatch):
    bt = benchmark_script("bench_train")
    seen = []

    def time_arm(arch, overrides, rows, cols, frames, seed):
        seen.append((arch, overrides))
        return {"frames": frames, "wall_s": 0.0, "collect_ms_per_frame": 1.0, "update_ms_per_frame": 1.0,
                "ms_per_frame": 2.0}

    monkeypatch.setattr(bt, "time_arm", time_arm)
    entry = bt.main(["--rounds", "1", "--arms", "ignored", "--arm", "lstm",
                     "--arm", "transformer:num_layers=1,ffn_dim=128", "--json", str(tmp_path / "b.json")])
    assert seen == [("lstm", {}), ("transformer", {"num_layers": 1, "ffn_dim": 128})]
    assert [r["arm"] for r in entry["rows"]] == ["lstm", "transformer:num_layers=1,ffn_dim=128"]


def test_ppo_fields_of_an_arm_reach_ppoconfig_and_the_rest_policyconfig(benchmark_script, monkeypatch):
    bt = benchmark_script("bench_train")
    assert bt.parse_arm("lstm:ppo.epochs=2,feature_dim=64") == ("lstm", {"ppo.epochs": 2, "feature_dim": 64})
    seen = {}

    class Stop(Exception):
        pass

    def fake_train(arch, env, pcfg, ppo, options, log):
        seen.update(arch=arch, epochs=ppo.epochs, feature_dim=pcfg.feature_dim)
        raise Stop

    monkeypatch.setattr(bt, "train", fake_train)
    with pytest.raises(Stop):
        bt.time_arm("lstm", {"ppo.epochs": 2, "feature_dim": 64}, 2, 5, 800, seed=0)
    assert seen == {"arch": "lstm", "epochs": 2, "feature_dim": 64}
