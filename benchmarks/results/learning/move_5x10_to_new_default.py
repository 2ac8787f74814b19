"""Criterion 4 under the new auto_advance default (commit a4413f0: entropy_coeff=None resolves to 0.05
for every head under auto_advance). The runs trained before that with the default of the time
(op 0.2) move to the ablation folder as the op-0.2 arm; the runs trained with --set
ppo.entropy_coeff.op=0.05 (identical PPOConfig, tested in tests/benchmarks/test_compare_training.py)
are copied into the learning folder under the default's name. Each moved file records where it came from
(its "provenance" field). Ran once, on 2026-12-02; it refuses to run again (the sources are gone)."""
import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]  # benchmarks/results
base = "large_{arch}_5x10_auto_advance-True_max_epochs-40"
for arch in ("transformer", "lstm"):
    for s in range(5):
        old = root / "learning/runs" / f"{base.format(arch=arch)}_s{s}.json"
        new_name = f"{base.format(arch=arch)}_ppo.entropy_coeff.op-0.2_s{s}"
        r = json.loads(old.read_text())
        assert r["ppo"] == {}, r["ppo"]
        r.update(name=new_name, ppo={"entropy_coeff.op": 0.2},
                 provenance=f"trained as {r['name']} with the default of the time (op entropy 0.2, commit cd206b9 "
                            "code); moved here when auto_advance's default became 0.05 (a4413f0)")
        (root / "ablation/runs" / f"{new_name}.json").write_text(json.dumps(r))
        old.unlink()
        src = root / "ablation/runs" / f"{base.format(arch=arch)}_ppo.entropy_coeff.op-0.05_s{s}.json"
        r = json.loads(src.read_text())
        assert r["ppo"] == {"entropy_coeff.op": 0.05}, r["ppo"]
        r.update(name=f"{base.format(arch=arch)}_s{s}", ppo={},
                 provenance=f"trained as {src.stem} (benchmarks/results/ablation/invocations.json); "
                            "that setting is the auto_advance default since a4413f0")
        (root / "learning/runs" / f"{base.format(arch=arch)}_s{s}.json").write_text(json.dumps(r))
print("moved")
