"""PolicyConfig's default positional encoding becomes ``"fourier"`` (it was ``"learned"``). Ran once,
on 2026-12-02; it refuses to run twice (it asserts that what it moves is still there).

- Every transformer run of ``learning/`` and ``large_200k/`` made with the default of the time
  (no ``positional-`` tag in its name: learned row/col tables) gets the tag ``_positional-learned``,
  the name that reproduces it now. ``learning/``'s go to ``ablation/runs``, ``large_200k/``'s stay
  in their folder (run names do not carry the budget, so 200k runs never mix with 100k ones), and
  ``ablation/``'s own (the op-entropy arms) are renamed in place.
- The runs made with ``--set policy.positional=fourier`` (``fourier/run.sh``, ``run2.sh``: the same
  PolicyConfig as the new default) are copied under the default's names: ``fourier/runs`` into
  ``learning/runs``, ``fourier_200k/runs`` into ``large_200k/runs``.
The mixed and zero-shot runs name their positional encoding explicitly and are not touched; the LSTM
runs are not touched (the flat trunk has no positional encoding). Each written file has a
``provenance`` field.
"""

import json
from pathlib import Path

root = Path(__file__).resolve().parents[1]  # benchmarks/results
TAG = "_positional-fourier"


def run_name(r: dict) -> str:
    """The name compare_training.py gives a run (lifecycle, then policy, then ppo overrides, sorted)."""
    tag = "".join(f"_{k}-{v}" for k, v in sorted(r["lifecycle"].items())) + "".join(
        f"_{k}-{v}" for k, v in sorted(r["policy"].items())) + "".join(
        f"_ppo.{k}-{v}" for k, v in sorted(r["ppo"].items()))
    return f"{r['suite']}_{r['arch']}_{r['grid']}{tag}_s{r['seed']}"


def retag_learned(src: Path, dst: Path) -> int:
    n = 0
    for f in sorted(src.glob("*_transformer_*.json")):
        r = json.loads(f.read_text())
        if "positional" in r["policy"]:
            continue
        assert run_name(r) == r["name"] == f.stem, f
        r["policy"] = {**r["policy"], "positional": "learned"}
        name = run_name(r)
        r.update(name=name,
                 provenance=f"trained as {f.stem} with the default of the time (learned row/col tables); "
                            "renamed when PolicyConfig's default became positional='fourier'")
        assert not (dst / f"{name}.json").exists(), name
        (dst / f"{name}.json").write_text(json.dumps(r))
        f.unlink()
        n += 1
    return n


def copy_fourier(src: Path, dst: Path, invocations: str) -> int:
    n = 0
    for f in sorted(src.glob(f"*_transformer_*{TAG}_s*.json")):
        r = json.loads(f.read_text())
        if r["suite"] == "mixed":
            continue
        assert r["policy"] == {"positional": "fourier"}, (f, r["policy"])
        assert run_name(r) == r["name"] == f.stem, f
        r["policy"] = {}
        name = run_name(r)
        r.update(name=name, provenance=f"trained as {f.stem} ({invocations}); Fourier positions are "
                                                  "PolicyConfig's default since this move")
        assert not (dst / f"{name}.json").exists(), name
        (dst / f"{name}.json").write_text(json.dumps(r))
        n += 1
    return n


learning, ablation = root / "learning" / "runs", root / "ablation" / "runs"
big = root / "large_200k" / "runs"
print("retagged", retag_learned(learning, ablation), "learned runs of learning/ (to ablation/),",
      retag_learned(ablation, ablation), "of ablation/,", retag_learned(big, big), "of large_200k/")
print("copied", copy_fourier(root / "fourier" / "runs", learning, "../fourier/invocations.json"),
      "Fourier runs to learning/,",
      copy_fourier(root / "fourier_200k" / "runs", big, "../fourier_200k/invocations.json"), "to large_200k/")
