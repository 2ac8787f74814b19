"""HostTrainingEnv: the env contract mixin plus what only a real host can break (exact no-op
grafts, gradient isolation, frozen fossils, bit-for-bit reproducibility, real rent).

Every env here uses a data subset (256 train, 128 validation images) and short episodes, so a
test takes seconds.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from tensordict import TensorDictBase
from torchrl.envs.utils import check_env_specs, step_mdp

from torchrl_slots import layout
from torchrl_slots.envs import (
    HeuristicPolicy,
    HostConfig,
    HostTrainingEnv,
    LifecycleConfig,
    PlanPolicy,
    RandomPolicy,
    WaitPolicy,
)
from torchrl_slots.envs.host_net import HostNets
from torchrl_slots.layout import Algorithm, Op, Stage

from test_env_contract import NUM_ENVS, EnvContractMixin, assert_actions_legal, assert_mask_invariants

SMALL = {"train_size": 256, "val_size": 128, "batches_per_epoch": 2, "lr": 5e-3, "max_epochs": 12}
CASES: dict[str, tuple[int, int, dict]] = {
    "1x3": (1, 3, {}),
    "2x2-enabled-1-3-no-scaffolding": (2, 2, {"enabled_slots": (1, 3), "scaffolding": False}),
}


def make(num_envs: int = 4, rows: int = 1, cols: int = 3, seed: int = 0, **overrides) -> HostTrainingEnv:
    return HostTrainingEnv(num_envs, rows, cols, config=HostConfig(**{**SMALL, **overrides}), seed=seed)


class TestHostTrainingEnvContract(EnvContractMixin):
    @pytest.fixture(scope="class", params=list(CASES), ids=list(CASES))
    def env_factory(self, request) -> Callable[[int, int], HostTrainingEnv]:
        rows, cols, overrides = CASES[request.param]
        return lambda num_envs, seed: make(num_envs, rows, cols, seed, **overrides)

    def test_oracle_actions_legal(self, env_factory):
        """No oracle on a real host: the fixed plans that replace it act legally instead."""
        env = env_factory(NUM_ENVS, 0)
        td = env.rollout(env.config.max_epochs, PlanPolicy(env, "mlp"), break_when_any_done=False)
        assert_actions_legal(td, all_heads=False)
        assert_mask_invariants(td["next"], env.config)
        assert (td["next", "info", "fossilized"][:, -1] > 0).all()


def _play(env: HostTrainingEnv, actions: Callable[[TensorDictBase, int], None]) -> list[TensorDictBase]:
    """Step by hand; ``actions(td, t)`` writes the action (starting from WAIT)."""
    td, out = env.reset(), []
    for t in range(env.config.max_epochs):
        td = WaitPolicy(env)(td)
        actions(td, t)
        td = env.step(td)
        out.append(td["next"].clone())
        td = step_mdp(td)
    return out


def _germinate_then(env: HostTrainingEnv, blueprint: int, style: int, ops: dict[int, Op]):
    """Germinate ``blueprint`` in slot 0 at step 0, then op ``ops[t]`` on slot 0 at step t."""

    def act(td: TensorDictBase, t: int) -> None:
        op = Op.GERMINATE if t == 0 else ops.get(t, Op.WAIT)
        td["action", "op"] = torch.full_like(td["action", "op"], int(op))
        if op == Op.GERMINATE:
            td["action", "blueprint"] = torch.full_like(td["action", "op"], blueprint)
            td["action", "style"] = torch.full_like(td["action", "op"], style)
            td["action", "alpha_target"] = torch.full_like(td["action", "op"], 2)

    return act


def test_check_env_specs_2x5():
    check_env_specs(make(2, 2, 5))


def test_config_errors():
    with pytest.raises(TypeError, match="HostConfig"):
        HostTrainingEnv(2, 1, 3, config=LifecycleConfig())
    with pytest.raises(ValueError, match="lane_width"):
        HostConfig(lane_width=12).validate(1, 3)
    with pytest.raises(ValueError, match="train_size"):
        make(2, train_size=5000)


def test_same_seed_same_accuracies_bit_for_bit():
    runs = []
    for _ in range(2):
        env = make(3, 1, 3, seed=11)
        td = env.rollout(env.config.max_epochs, HeuristicPolicy(env), break_when_any_done=False)
        runs.append((td, env.state))
    (a, sa), (b, sb) = runs
    for key in (("next", "info", "val_acc"), ("next", "info", "score"), ("next", "observation", "slots")):
        assert torch.equal(a[key], b[key]), key
    assert torch.equal(sa.host, sb.host) and torch.equal(sa.seeds, sb.seeds)
    assert (a["next", "info", "val_acc"][:, -1] > a["next", "info", "val_acc"][:, 0]).all(), "the hosts did not learn"
    other = make(3, 1, 3, seed=12).rollout(5, break_when_any_done=False)
    assert not torch.equal(other["next", "info", "val_acc"], a["next", "info", "val_acc"][:, :5])


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_fresh_seed_at_alpha_one_and_trained_seed_at_alpha_zero_leave_the_host_unchanged(algorithm):
    env = make(4, 1, 3, seed=2)
    nets, x = env.nets, env.x_val
    env.reset()
    s = env.state
    without = nets.forward(nets.host_params(s.host[:, :1]), x)  # [E, 1, M, 10], no seeds
    bps = torch.arange(1, layout.NUM_BLUEPRINTS)
    s.blueprint = torch.stack([bps[(torch.arange(3) + 3 * e) % 12] for e in range(4)])  # 12 families
    s.algorithm = torch.full_like(s.blueprint, int(algorithm))
    s.seeds = s.bank * nets.families.init_std[s.blueprint]  # freshly germinated
    coef = torch.ones(4, 1, 3)
    seeds = {"columns": nets.seed_columns(s.seeds), "coef": coef, "inc": None, "blueprint": s.blueprint,
             "algorithm": s.algorithm}
    assert torch.equal(nets.forward(nets.host_params(s.host[:, :1]), x, seeds), without), "fresh seeds changed the host"
    s.seeds = s.bank * (nets.families.init_std[s.blueprint] > -1)  # every weight nonzero: a "trained" seed
    seeds["columns"] = nets.seed_columns(s.seeds)
    assert not torch.equal(nets.forward(nets.host_params(s.host[:, :1]), x, seeds), without)
    seeds["coef"] = torch.zeros(4, 1, 3)
    seeds["inc"] = torch.zeros(4, 3, dtype=torch.bool)
    assert torch.equal(nets.forward(nets.host_params(s.host[:, :1]), x, seeds), without), "alpha=0 changed the host"


def test_training_seed_learns_but_does_not_touch_the_host():
    """TRAINING = incubator: the seed learns on the host loss, the host trains exactly as its twin."""
    env = make(2, 1, 3, seed=4, max_epochs=8)
    mlp = [b.name for b in layout.BLUEPRINTS].index("mlp")
    recs = _play(env, _germinate_then(env, mlp, int(layout.Style.LINEAR_ADD), {1: Op.ADVANCE}))
    s = env.state
    assert (s.stage[:, 0] == Stage.TRAINING).all() and (s.trained[:, 0] == 7).all()
    assert torch.equal(s.host[:, 0], s.host[:, 1]), "a TRAINING seed changed the host's training"
    fresh = s.bank[:, 0] * env.nets.families.init_std[mlp]
    assert not torch.equal(s.seeds[:, 0], fresh), "the seed did not learn"
    assert (recs[-1]["info", "val_acc"] == s.twin_acc).all()
    pre_alpha = recs[-1]["observation", "slots"][:, 0, 12] * 5.0  # probe at alpha 1 (pp)
    assert torch.isfinite(pre_alpha).all() and (pre_alpha != 0).any()


def test_blending_changes_the_host_and_fossils_freeze():
    env = make(2, 1, 3, seed=5, max_epochs=12)
    bp = [b.name for b in layout.BLUEPRINTS].index("bottleneck")
    ops = {1: Op.ADVANCE, 2: Op.ADVANCE, 6: Op.ADVANCE, 7: Op.FOSSILIZE}  # blend over 3 epochs
    snaps = {}

    def act(td, t):
        _germinate_then(env, bp, int(layout.Style.LINEAR_ADD), ops)(td, t)
        snaps[t] = env.state.seeds[:, 0].clone()

    recs = _play(env, act)
    s = env.state
    assert (s.stage[:, 0] == Stage.FOSSILIZED).all() and (s.alpha[:, 0] == 1).all()
    assert not torch.equal(s.host[:, 0], s.host[:, 1]), "a blended seed must change the host's training"
    assert not torch.equal(snaps[3], snaps[5]), "a blending seed learns"
    assert torch.equal(snaps[8], s.seeds[:, 0]), "a fossilized seed must be frozen"
    contrib = recs[-1]["observation", "slots"][:, 0, 12] * 5.0
    torch.testing.assert_close(contrib, s.contribution[:, 0])
    assert (recs[-1]["info", "score"] == s.final_gain - s.rent_total).all()


def test_rent_is_the_real_parameter_count():
    nets = HostNets(2, 5, 8)
    w, h = 8, 16
    assert nets.host_size == 64 * h + h + 5 * (h * h + h) + h * 10 + 10
    names = [b.name for b in layout.BLUEPRINTS]
    assert int(nets.families.sizes[names.index("mlp")]) == 2 * w * w + 2 * w
    assert int(nets.families.sizes[names.index("lora")]) == 2 * 2 * w
    torch.testing.assert_close(nets.cost, nets.families.sizes.float() / nets.host_size)
    env = make(2, 1, 3, seed=6, max_epochs=8)
    bp = names.index("lora")
    recs = _play(env, _germinate_then(env, bp, int(layout.Style.GATED_GATE), {1: Op.ADVANCE, 2: Op.ADVANCE}))
    s = env.state
    cost = (env.nets.families.sizes[bp] + w + 1) / env.nets.host_size  # GATE adds its gate
    expected = env.config.rent_scale * (s.alpha[:, 0] * cost)
    torch.testing.assert_close(env._rent(s), expected)
    assert (recs[-1]["observation", "base"][:, 21] > 0).all()


def test_reference_policies_run_and_score():
    scores = {}
    for name, cls in (("wait", WaitPolicy), ("random", RandomPolicy), ("heuristic", HeuristicPolicy)):
        env = make(6, 1, 3, seed=8)
        td = env.rollout(env.config.max_epochs, cls(env), break_when_any_done=False)
        score = td["next", "info", "score"]
        assert (score[:, :-1] == 0).all() and torch.isfinite(score).all()
        scores[name] = score[:, -1]
    assert (scores["wait"] == 0).all(), "wait-only is the twin: its score is exactly 0"
    assert (scores["heuristic"] != 0).any() and (scores["random"] != 0).any()


def test_env_config_and_make_env_take_the_host():
    from torchrl_slots.envs import make_env
    from torchrl_slots.training import EnvConfig

    cfg = EnvConfig(num_envs=4, rows=1, cols=2, env="host", lifecycle=HostConfig(**SMALL))
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg and "env" not in EnvConfig().to_dict()
    with pytest.raises(ValueError, match="HostConfig"):
        EnvConfig(env="host").validate()
    with pytest.raises(ValueError, match="env kind"):
        EnvConfig(env="real").validate()
    env = make_env("host", 2, 1, 2, config=HostConfig(**SMALL), seed=0)
    assert isinstance(env, HostTrainingEnv) and env.num_slots == 2
    with pytest.raises(TypeError, match="HostConfig"):
        make_env("host", 2, 1, 2, config=LifecycleConfig())


@pytest.mark.slow
def test_train_runs_on_the_host_env_and_evaluate_reads_it(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    from torchrl_slots.policy import PolicyConfig
    from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train

    cfg = EnvConfig(num_envs=4, rows=1, cols=2, env="host", lifecycle=HostConfig(**{**SMALL, "max_epochs": 8}))
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="HostConfig"):
        EnvConfig(env="host").validate()
    res = train("transformer", cfg,
                PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16,
                             key_dim=8),
                PPOConfig(frames_per_batch=32, total_frames=64, minibatches=2, epochs=1),
                options=RunOptions(eval_episodes=2, checkpoint_interval=1), output_dir=tmp_path, log=None)
    assert res.frames == 64 and sorted(res.baselines) == ["heuristic", "plan", "random", "wait"]
    assert res.baselines["wait"]["score"] == 0.0
    scores = [v for row in res.history for k, v in row.items() if k.startswith("eval/score")]
    assert scores and all(torch.isfinite(torch.tensor(scores)))
    path = Path(__file__).resolve().parents[2] / "examples" / "evaluate.py"
    spec = importlib.util.spec_from_file_location("evaluate_example", path)
    evaluate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluate)
    ckpt = sorted(tmp_path.glob("checkpoint_*.pt"))[-1]
    out = evaluate.main(["--checkpoint", str(ckpt), "--episodes", "2"])  # the training env: the host
    assert "(host env)" in capsys.readouterr().out and out["wait"] == 0.0 and "plan" in out
    out = evaluate.main(["--checkpoint", str(ckpt), "--episodes", "2", "--env", "surrogate"])
    assert "(surrogate env)" in capsys.readouterr().out and "oracle" in out


def test_adam_clamp_before_sqrt_is_bit_identical_to_the_plain_formula():
    """host_net.adam takes sqrt of max(v_hat, FLT_MIN) (sqrt of zeros is slow on CPU): the steps
    equal those of the textbook formula bit for bit, for zero, denormal and normal second moments."""
    from torchrl_slots.envs.host_net import ADAM_BETAS, ADAM_EPS, adam

    g = torch.Generator().manual_seed(0)
    p = torch.randn(3, 64, generator=g)
    grad = torch.randn(3, 64, generator=g) * torch.tensor([0.0, 1e-21, 1.0])[:, None]  # v: 0, denormal, normal
    m, v, t = torch.zeros(3, 64), torch.zeros(3, 64), torch.zeros(3, 1, dtype=torch.long)
    ref_p, ref_m, ref_v, ref_t = p.clone(), m.clone(), v.clone(), t.clone()
    b1, b2 = ADAM_BETAS
    for _ in range(3):
        adam(p, grad, m, v, t, lr=1e-3)
        ref_t += 1  # the same in-place steps as adam, without the clamp
        ref_m.mul_(b1).add_(grad, alpha=1 - b1)
        ref_v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        tf = ref_t.float()
        ref_p.sub_((ref_m * (1e-3 / (1 - b1**tf))).div_((ref_v / (1 - b2**tf)).sqrt_().add_(ADAM_EPS)))
    assert bool(((v[1] > 0) & (v[1] < torch.finfo(torch.float32).tiny)).any())  # the denormal case is exercised
    assert torch.equal(p, ref_p) and torch.equal(v, ref_v)


def test_host_loss_matches_cross_entropy_in_value_and_gradient():
    """HostNets.loss (logsumexp - logit[y], written out for speed) is F.cross_entropy's mean, also for
    large logits (the shift), and so is its gradient."""
    import torch.nn.functional as F

    from torchrl_slots.envs.host_net import HostNets

    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(3, 2, 50, 10, generator=g) * torch.tensor([1.0, 30.0])[:, None, None]).requires_grad_()
    y = torch.randint(10, (3, 1, 50), generator=g)
    ours = HostNets.loss(logits, y)
    ref = F.cross_entropy(logits.flatten(0, -2), y.expand(3, 2, 50).flatten(), reduction="none").view(3, 2, 50).mean(-1)
    assert ours.shape == (3, 2) and torch.allclose(ours, ref, rtol=1e-6, atol=1e-6)
    g_ours, = torch.autograd.grad(ours.sum(), logits)
    g_ref, = torch.autograd.grad(ref.sum(), logits)
    assert torch.allclose(g_ours, g_ref, rtol=1e-5, atol=1e-7)
