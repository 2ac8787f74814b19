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
    "frames", "seconds", "final_train_return", "reload_max_abs_diff",
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


def readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use the encoder in your own env", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_example_runs_on_a_tiny_budget_and_returns_consistent_numbers(one_thread, tmp_path):
    argv = ["--total-frames", "2048", "--num-envs", "64", "--frames-per-batch", "1024", "--epochs", "1",
            "--num-items", "6", "--eval-items", "10", "--eval-episodes", "512", "--embed-dim", "16",
            "--save-path", str(tmp_path / "policy.pt")]
    results = load_example().main(argv)
    assert set(results) == KEYS
    assert results["reload_max_abs_diff"] == 0.0 and (tmp_path / "policy.pt").is_file()
    assert all(math.isfinite(v) for v in results.values())
    assert results["frames"] == 2048
    for p in ("train", "eval"):
        oracle = results[f"{p}_oracle"]
        assert oracle >= max(results[f"{p}_learned"], results[f"{p}_best_rule"], results[f"{p}_random"])
        assert results[f"{p}_best_rule"] > results[f"{p}_random"] + 0.5  # own quality is informative
    assert results["eval_oracle"] > results["train_oracle"]  # more items, more neighbours


def test_readme_snippets_run_train_legally_and_save_load(one_thread, tmp_path, monkeypatch):
    snippets = readme_snippets()
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)  # the snippet saves items_policy.pt in the working folder
    namespace: dict = {}
    torch.manual_seed(0)
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), namespace)
    actor, data, out = namespace["actor"], namespace["data"], namespace["out"]
    assert isinstance(actor, ProbabilisticActor)
    assert data.shape == (64, 16) and data["items", "mask"].gather(-1, data["action"][..., None]).all()
    assert all(torch.isfinite(out[k]).all() for k in ("loss_objective", "loss_critic", "entropy"))
    steps = {int(state["step"]) for state in namespace["optim"].state.values()}
    assert steps == {16}  # 4 batches x 4 minibatches
    assert len(namespace["optim"].state) == len(list(namespace["loss_fn"].parameters()))  # all updated
    # the saved and reloaded pair computes what the trained one does
    loaded, obs = namespace["loaded"], data[:, 0].exclude("next")
    key = ("params", "entity", "logits")
    torch.testing.assert_close(loaded.actor.module[0](obs.clone())[key], actor.module[0](obs.clone())[key],
                               atol=0, rtol=0)
    torch.testing.assert_close(loaded.critic(obs.clone())["state_value"],
                               namespace["critic"](obs.clone())["state_value"], atol=0, rtol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["items_policy.pt"]
    # the context + query-entity snippet: legal picks, a value per state, one shared encoder pass
    state, route_actor, route_critic = namespace["state"], namespace["route_actor"], namespace["route_critic"]
    assert state["open"].gather(-1, state["action"][:, None]).all() and state["state_value"].shape == (32, 1)
    assert route_critic.module.encoder is route_actor.module[0][0].net
    assert route_actor.in_keys == ["stops", "exists", "budget", "open", "last"]


@pytest.mark.slow
def test_example_learns_beyond_random_and_the_one_item_rule(one_thread, tmp_path):
    results = load_example().main(["--seed", "0", "--save-path", str(tmp_path / "policy.pt")])
    assert results["train_learned"] > results["train_random"] + 1.0
    assert results["train_learned"] > results["train_best_rule"] + 0.05
    assert results["eval_learned"] > results["eval_random"] + 1.0
