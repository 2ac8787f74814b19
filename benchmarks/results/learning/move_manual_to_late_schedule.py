"""The manual-ADVANCE default schedule (op entropy 0.2, then 0.2 -> 0.05 over the second half of the
run; commit after 098ecd9). Ran once, on 2026-12-02.

- Every manual-ADVANCE run of this folder was made with the constant default of before (op 0.2):
  main, scaffolding, mixed and specialists. Each moves to ``../ablation/runs`` under the name that
  reproduces it now (``..._ppo.entropy_coeff.op-0.2``: an explicit coefficient is constant).
- The runs made with ``--set ppo.entropy_coeff_end.op=0.05,ppo.entropy_decay_start=0.5`` (the
  same schedule as the new default, tested in ``tests/benchmarks/test_compare_training.py``) are
  copied here under the default's names.
Each written file has a ``provenance`` field. The 5x10 runs (auto_advance) are not touched: there
every head is 0.05 from the start and nothing moves.
"""

import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]  # benchmarks/results
learning, ablation = root / "learning" / "runs", root / "ablation" / "runs"
LATE = "_ppo.entropy_coeff_end.op-0.05_ppo.entropy_decay_start-0.5"
moved = copied = 0
for f in sorted(learning.glob("*.json")):
    r = json.loads(f.read_text())
    if r["lifecycle"].get("auto_advance"):
        continue
    assert "entropy_coeff.op" not in r["ppo"], f
    stem, seed = r["name"].rsplit("_s", 1)
    name = f"{stem}_ppo.entropy_coeff.op-0.2_s{seed}"
    r.update(name=name, ppo={**r["ppo"], "entropy_coeff.op": 0.2},
             provenance=f"trained as {f.stem} with the default of the time (op entropy 0.2, constant); "
                        "moved here when the manual-ADVANCE default became the late schedule")
    (ablation / f"{name}.json").write_text(json.dumps(r))
    f.unlink()
    moved += 1
for f in sorted(ablation.glob(f"main_*{LATE}_s*.json")):
    r = json.loads(f.read_text())
    stem, seed = r["name"].rsplit("_s", 1)
    name = f"{stem.replace(LATE, '')}_s{seed}"
    r.update(name=name, ppo={}, provenance=f"trained as {f.stem} (../ablation/invocations.json); that "
                                           "schedule is the manual-ADVANCE default since this move")
    (learning / f"{name}.json").write_text(json.dumps(r))
    copied += 1
print(f"moved {moved} constant-0.2 runs to ablation, copied {copied} late-schedule runs to learning")
