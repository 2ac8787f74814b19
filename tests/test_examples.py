"""The two PPO examples run end to end on tiny budgets and write what they promise."""

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--num-envs", "4", "--frames-per-batch", "100", "--total-frames", "200", "--minibatches", "2",
        "--epochs", "1", "--eval-episodes", "4", "--eval-interval", "1", "--quiet"]


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_ppo_slots_then_evaluate(tmp_path, arch, capsys):
    ppo, evaluate = load("ppo_slots"), load("evaluate")
    out = tmp_path / arch
    assert ppo.main(["--arch", arch, "--output-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for name in ("this run", "wait", "random", "heuristic", "oracle", "200 frames"):
        assert name in printed
    normalized = float(next(ln for ln in printed.splitlines() if ln.strip().startswith("this run")).split()[-1])
    verdict = [ln.split(":")[0] for ln in printed.splitlines() if ln.startswith(("learned:", "did not learn:"))]
    assert verdict == ["learned" if normalized >= 0.5 else "did not learn"]
    assert (out / "learning_curve.png").stat().st_size > 10_000
    assert (out / "attention.png").exists() == (arch == "transformer")
    assert (out / "logs" / "scalars" / "eval" / "score.csv").read_text().count("\n") == 3
    ckpt = sorted(out.glob("checkpoint_*.pt"))[-1]
    res = evaluate.main(["--checkpoint", str(ckpt), "--episodes", "8"])
    assert res["wait"] == 0.0 and res["oracle"] > res["random"]
    assert all(math.isfinite(v) for v in res.values())
    if arch == "transformer":
        zero_shot = evaluate.main(["--checkpoint", str(ckpt), "--rows", "2", "--cols", "5", "--episodes", "4"])
        assert math.isfinite(zero_shot["policy"]) and "(zero-shot)" in capsys.readouterr().out
    else:
        with pytest.raises(SystemExit) as err:
            evaluate.main(["--checkpoint", str(ckpt), "--rows", "2", "--cols", "5", "--episodes", "4"])
        assert err.value.code == 2 and "does not fit" in capsys.readouterr().err


def test_ppo_slots_refuses_a_used_output_dir_then_resumes(tmp_path, capsys):
    ppo = load("ppo_slots")
    args = ["--output-dir", str(tmp_path), "--no-plots", *TINY]
    assert ppo.main(args) == 0
    assert ppo.main(args) == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    longer = [a if a != "200" else "300" for a in args]
    assert ppo.main([*longer, "--resume"]) == 0
    assert "300 frames" in capsys.readouterr().out


@pytest.mark.slow
def test_ppo_slots_multisync_two_workers(tmp_path):
    ppo = load("ppo_slots")
    assert ppo.main(["--collector", "multisync", "--workers", "2", "--output-dir", str(tmp_path), "--no-plots",
                     *TINY]) == 0
    from torchrl_slots.training import load_training_checkpoint

    (ckpt,) = tmp_path.glob("checkpoint_*.pt")  # checkpoint_interval 10 > 2 batches: the final one only
    payload = load_training_checkpoint(ckpt)
    assert payload["frames"] == 200 and [r["frames"] for r in payload["history"]] == [0.0, 100.0, 200.0]
    assert all(math.isfinite(r["loss/loss_objective"]) for r in payload["history"][1:])


@pytest.mark.slow  # the Ray path's real run in the fast suite is tests/training/test_ray_collector.py
def test_ppo_slots_ray_collector(tmp_path):
    pytest.importorskip("ray")
    ppo = load("ppo_slots")
    assert ppo.main(["--collector", "ray", "--workers", "2", "--output-dir", str(tmp_path), "--no-plots",
                     *TINY]) == 0


def test_ppo_slots_mixed_grids_default_to_fourier_positions():
    ppo = load("ppo_slots")
    env, pcfg, _, _ = ppo.configs(ppo.parse_args(["--grids", "1x3,2x5", "--num-envs", "4"]))
    assert env.grids == ((1, 3), (2, 5)) and (env.rows, env.cols) == (2, 5)
    assert pcfg.positional == "fourier"  # a learned row/col table would mean different places per grid
    assert ppo.configs(ppo.parse_args([]))[1].positional == "fourier"  # PolicyConfig's default
    explicit = ppo.parse_args(["--grids", "1x3,2x5", "--num-envs", "4", "--positional", "learned"])
    assert ppo.configs(explicit)[1].positional == "learned"
