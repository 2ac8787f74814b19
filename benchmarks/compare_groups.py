"""Compare finished ``compare_training.py`` runs across results folders, group against group.

``compare_training.py`` aggregates one results folder and names groups by their runs' names, so
runs of one setting made in two folders, or under a ``--set`` tag that has since become the
default, cannot meet in its tables. This script takes groups as ``LABEL=GLOB`` (run files; one
glob, or several joined by ``,``) and prints, per group: runs, how many learn (final normalized
>= 0.5), mean +- std, the per-seed scores, the median frames to 0.8 normalized, and the median
training wall time with the CPUs the runs were timed on; then Welch's t-test of every group
against the first.

    python benchmarks/compare_groups.py \\
        "transformer=benchmarks/results/speed_2x5/runs/main_transformer_2x5_s*.json" \\
        "lstm 2 epochs=benchmarks/results/tuning_s9/runs/main_lstm_2x5_ppo.epochs-2_s*.json" [--json OUT]

Wall times are comparable only between runs of one machine and boot (see ``compare_training.py``'s
criterion 7): the table names the CPU and the number of boots behind each median.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_training import LEARNED, _first_frames, _main_grid, _median_or_none, welch  # noqa: E402  (a sibling script)


def load_group(pattern: str) -> list[dict]:
    """The run files matching ``pattern`` (one glob, or several joined by ``,``), sorted by seed;
    raises when none does, or when a seed comes twice."""
    files = sorted({f for part in pattern.split(",") for f in glob.glob(part)})
    if not files:
        raise SystemExit(f"no run file matches {pattern!r}")
    runs = sorted((json.loads(Path(f).read_text()) for f in files), key=lambda r: r["seed"])
    seeds = [r["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"{pattern!r} matches a seed twice ({seeds}): a group holds one run per seed")
    return runs


def summarize(label: str, runs: list[dict]) -> dict:
    """One group's row (see the module docstring)."""
    scores = [r["evals"][_main_grid(r)]["normalized"] for r in runs]
    frames = [_first_frames(r["curve"], 0.8) for r in runs]
    walls = [r["train_wall_s"] for r in runs if "train_wall_s" in r]
    machines = [r.get("machine") or {} for r in runs]
    boot_ids = sorted({m["boot_id"] for m in machines if m.get("boot_id")})
    return {"label": label, "runs": len(runs), "seeds": [r["seed"] for r in runs],
            "learns": sum(s >= LEARNED for s in scores), "mean": statistics.mean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else 0.0, "scores": scores,
            "median_frames_to_0.8": _median_or_none(frames),  # None: the median seed never got there
            "median_wall_s": statistics.median(walls) if walls else None,
            "cpus": sorted({m.get("cpu", "unknown") for m in machines}),
            "boots": len(boot_ids), "boot_ids": boot_ids}


def compare(groups: list[tuple[str, str]]) -> list[dict]:
    """Rows for ``[(label, glob), ...]``; each row after the first has its Welch test against the first."""
    rows = [summarize(label, load_group(pattern)) for label, pattern in groups]
    for row in rows[1:]:
        row["welch_vs_first"] = welch(row["scores"], rows[0]["scores"])
    return rows


def markdown(rows: list[dict]) -> str:
    head = ("| group | runs | learns | mean ± std | per seed | frames to 0.8 (median) | wall s (median) | "
            f"Welch p vs {rows[0]['label']} |\n|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        frames = "never" if r["median_frames_to_0.8"] is None else f"{r['median_frames_to_0.8'] / 1000:.1f}k"
        wall = "-" if r["median_wall_s"] is None else (
            f"{r['median_wall_s']:.0f} ({', '.join(r['cpus'])}; {r['boots']} boot(s))")
        p = r.get("welch_vs_first", {}).get("p")
        lines.append(f"| {r['label']} | {r['runs']} | {r['learns']} of {r['runs']} | "
                     f"{r['mean']:.2f} ± {r['std']:.2f} | "
                     f"{', '.join(f'{s:.2f}' for s in r['scores'])} | {frames} | {wall} | "
                     f"{'-' if p is None else f'{p:.2g}'} |")
    boots = {b for r in rows for b in r["boot_ids"]}
    untimed = sum(r["boots"] == 0 for r in rows)
    lines.append("")
    lines.append("All groups timed on one machine and boot: wall times comparable." if len(boots) == 1 and not untimed
                 else f"Runs from {len(boots)} boots ({untimed} group(s) without a machine record): do not divide "
                      f"wall times across groups.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("groups", nargs="+", metavar="LABEL=GLOB", help="a label and a glob of run files")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here (refuses to overwrite)")
    args = p.parse_args(argv)
    groups = []
    for item in args.groups:
        label, sep, pattern = item.partition("=")
        if not sep or not label or not pattern:
            p.error(f"expected LABEL=GLOB, got {item!r}")
        groups.append((label, pattern))
    rows = compare(groups)
    print(markdown(rows))
    if args.json is not None:
        if args.json.exists():
            raise SystemExit(f"{args.json} exists; choose another path (nothing was overwritten)")
        args.json.write_text(json.dumps({"argv": sys.argv[1:] if argv is None else argv, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
