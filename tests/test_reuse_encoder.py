"""examples/reuse_encoder.py and the README's "Use the encoder in your own env" snippet."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest
import torch
from torchrl.modules import ProbabilisticActor

ROOT = Path(__file__).resolve().parents[1]
KEYS = {
    "frames", "seconds", "final_train_return",
    *(f"{p}_{k}" for p in ("train", "eval") for k in ("learned", "random", "best_rule", "oracle")),
}


def load_example():
    spec = importlib.util.spec_from_file_location("reuse_encoder", ROOT / "examples" / "reuse_encoder.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def one_thread():
    """One torch thread, as the example uses: on a busy 2-core box two threads ran 3x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use the encoder in your own env", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_example_runs_on_a_tiny_budget_and_returns_consistent_numbers(one_thread):
    argv = ["--total-frames", "2048", "--num-envs", "64", "--frames-per-batch", "1024", "--epochs", "1",
            "--num-items", "6", "--eval-items", "10", "--eval-episodes", "512", "--embed-dim", "16"]
    results = load_example().main(argv)
    assert set(results) == KEYS
    assert all(math.isfinite(v) for v in results.values())
    assert results["frames"] == 2048
    for p in ("train", "eval"):
        oracle = results[f"{p}_oracle"]
        assert oracle >= max(results[f"{p}_learned"], results[f"{p}_best_rule"], results[f"{p}_random"])
        assert results[f"{p}_best_rule"] > results[f"{p}_random"] + 0.5  # own quality is informative
    assert results["eval_oracle"] > results["train_oracle"]  # more items, more neighbours


def test_readme_snippet_runs_and_trains_legally(one_thread):
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(readme_snippet(), "README.md", "exec"), namespace)
    actor, data, out = namespace["actor"], namespace["data"], namespace["out"]
    assert isinstance(actor, ProbabilisticActor)
    assert data.shape == (64, 16) and data["items", "mask"].gather(-1, data["action"][..., None]).all()
    assert all(torch.isfinite(out[k]).all() for k in ("loss_objective", "loss_critic", "entropy"))
    steps = {int(state["step"]) for state in namespace["optim"].state.values()}
    assert steps == {16}  # 4 batches x 4 minibatches
    assert len(namespace["optim"].state) == len(list(namespace["loss_fn"].parameters()))  # all updated


@pytest.mark.slow
def test_example_learns_beyond_random_and_the_one_item_rule(one_thread):
    results = load_example().main(["--seed", "0"])
    assert results["train_learned"] > results["train_random"] + 1.0
    assert results["train_learned"] > results["train_best_rule"] + 0.05
    assert results["eval_learned"] > results["eval_random"] + 1.0
