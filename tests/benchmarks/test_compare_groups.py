"""benchmarks/compare_groups.py: groups of run files from any folder, against the first."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_groups.py"


def load():
    if "compare_groups" not in sys.modules:
        sys.path.insert(0, str(PATH.parent))
        spec = importlib.util.spec_from_file_location("compare_groups", PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["compare_groups"] = module
        spec.loader.exec_module(module)
    return sys.modules["compare_groups"]


def write(folder: Path, name: str, seed: int, score: float, reach: int | None, wall: float, boot: str) -> None:
    curve = [{"frames": 0, "normalized": 0.0}] + ([{"frames": reach, "normalized": 0.85}] if reach else [])
    run = {"name": name, "seed": seed, "grid": "2x5", "evals": {"2x5": {"normalized": score}}, "curve": curve,
           "train_wall_s": wall, "machine": {"cpu": "cpu X", "boot_id": boot}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(run))


def test_groups_give_means_learns_frames_and_welch(tmp_path):
    cg = load()
    for seed, (a, b) in enumerate([(0.9, 0.4), (0.8, 0.6), (1.0, 0.5)]):
        write(tmp_path / "x", f"main_transformer_2x5_s{seed}", seed, a, 1000 * (seed + 1), 10.0 + seed, "b1")
        write(tmp_path / "y" / "runs", f"main_lstm_2x5_tag_s{seed}", seed, b, None, 5.0, "b1")
    rows = cg.main([f"t={tmp_path}/x/*.json", f"l={tmp_path}/y/runs/*_s*.json", "--json", str(tmp_path / "o.json")])
    t, f = rows
    assert (t["runs"], t["learns"], f["learns"]) == (3, 3, 2)  # 0.4 is below 0.5
    assert t["mean"] == pytest.approx(0.9) and f["mean"] == pytest.approx(0.5)
    assert t["std"] == pytest.approx(0.1) and t["scores"] == [0.9, 0.8, 1.0]
    assert t["median_frames_to_0.8"] == 2000 and f["median_frames_to_0.8"] is None
    assert t["median_wall_s"] == 11.0 and t["boots"] == 1
    from scipy import stats
    p = stats.ttest_ind([0.4, 0.6, 0.5], [0.9, 0.8, 1.0], equal_var=False)[1]
    assert f["welch_vs_first"]["p"] == pytest.approx(p)
    assert "one machine and boot" in cg.markdown(rows)
    assert json.loads((tmp_path / "o.json").read_text())["rows"][1]["label"] == "l"
    with pytest.raises(SystemExit, match="exists"):  # never overwrites a result file
        cg.main([f"t={tmp_path}/x/*.json", "--json", str(tmp_path / "o.json")])


def test_other_boots_are_flagged_and_bad_arguments_say_what_came(tmp_path):
    cg = load()
    write(tmp_path, "a_s0", 0, 0.9, 100, 1.0, "b1")
    write(tmp_path, "b_s0", 0, 0.9, 100, 1.0, "b2")
    rows = cg.compare([("a", f"{tmp_path}/a_*.json"), ("b", f"{tmp_path}/b_*.json")])
    assert "do not divide" in cg.markdown(rows)
    two = cg.compare([("ab", f"{tmp_path}/a_*.json,{tmp_path}/nothing_*.json")])
    assert two[0]["runs"] == 1
    with pytest.raises(SystemExit, match="a seed twice"):
        cg.compare([("ab", f"{tmp_path}/a_*.json,{tmp_path}/b_*.json")])
    with pytest.raises(SystemExit, match="no run file matches"):
        cg.compare([("c", f"{tmp_path}/nothing_*.json")])
    with pytest.raises(SystemExit):
        cg.main(["no-equals-sign"])
