"""train(): configs, a tiny run of each arch, checkpoints/resume, Ctrl-C, the NaN guard."""

import math

import pytest
import torch
from torchrl.modules import set_recurrent_mode
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots import layout
from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import (
    CheckpointManager,
    EnvConfig,
    PPOConfig,
    RunOptions,
    TrainingDivergedError,
    evaluate_policy,
    load_policy,
    load_training_checkpoint,
    train,
)

SMALL = PolicyConfig(embed_dim=16, num_heads=2, num_layers=1, ffn_dim=32, feature_dim=16, lstm_hidden=16, key_dim=8)
ENV = EnvConfig(num_envs=4, rows=1, cols=3)
PPO = PPOConfig(frames_per_batch=100, total_frames=200, minibatches=2, epochs=2)
OPTS = RunOptions(eval_episodes=4, eval_interval=1, checkpoint_interval=1, keep_checkpoints=2)


def run(tmp_path=None, arch="transformer", ppo=PPO, **kw):
    kw.setdefault("options", OPTS)
    return train(arch, ENV, SMALL, ppo, output_dir=tmp_path, **kw)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="frames_per_batch=90 must be a multiple of num_envs=4"):
        run(ppo=PPOConfig(frames_per_batch=90))
    with pytest.raises(ValueError, match=r"missing \['style'"):
        run(ppo=PPOConfig(entropy_coeff={h: 0.01 for h in layout.HEADS if h != "style"}))
    with pytest.raises(ValueError, match="PPOConfig.gamma=0.99 must equal the env's PBRS"):
        run(ppo=PPOConfig(gamma=0.99, frames_per_batch=100))
    with pytest.raises(ValueError, match="minibatches=3 must divide num_envs=4"):
        run(ppo=PPOConfig(frames_per_batch=100, minibatches=3))
    assert PPOConfig(entropy_coeff={h: 0.1 for h in layout.HEADS}).entropy_coeffs()["op"] == 0.1


@pytest.mark.parametrize("auto_advance, op", [(False, 0.2), (True, 0.05)])
def test_default_entropy_coeffs_follow_the_env_and_reach_the_loss(monkeypatch, auto_advance, op):
    """entropy_coeff=None: op 0.2 with manual ADVANCE, 0.05 under auto_advance; set values win."""
    import torchrl_slots.training.trainer as trainer

    losses = []
    real = trainer._Updater

    def spy(*args, **kwargs):
        up = real(*args, **kwargs)
        losses.append(up.loss)
        return up

    monkeypatch.setattr(trainer, "_Updater", spy)
    env = EnvConfig(num_envs=4, rows=1, cols=3, lifecycle=LifecycleConfig(auto_advance=auto_advance))
    train("lstm", env, SMALL, PPOConfig(frames_per_batch=100, total_frames=100, minibatches=2, epochs=1),
          options=RunOptions(eval_episodes=2, eval_interval=1))
    coeffs = losses[-1]._entropy_coeff_map
    assert coeffs[("action", "op_entropy")] == op
    assert {h: coeffs[("action", f"{h}_entropy")] for h in layout.HEADS if h != "op"} == {
        h: 0.05 for h in layout.HEADS if h != "op"}
    assert PPOConfig(entropy_coeff=0.3).entropy_coeffs(auto_advance) == {h: 0.3 for h in layout.HEADS}
    assert PPOConfig().entropy_coeffs(auto_advance)["op"] == op
    # Checkpoints record the resolved map, so one saved with the explicit old default still resumes.
    from torchrl_slots.training.config import DEFAULT_ENTROPY_COEFFS

    runs = [trainer._run_dict("lstm", env, SMALL, p, RunOptions())["ppo"]["entropy_coeff"]
            for p in (PPOConfig(), PPOConfig(entropy_coeff=dict(DEFAULT_ENTROPY_COEFFS)))]
    assert (runs[0] == runs[1]) is not auto_advance and runs[0]["op"] == op


def test_entropy_schedule_moves_linearly_and_reaches_the_loss(monkeypatch):
    """entropy_coeff_end: the coefficients each batch's update uses move linearly to the end value."""
    import torchrl_slots.training.trainer as trainer

    seen = []
    real = trainer._Updater.__call__

    def spy(self, batch):
        seen.append(dict(self.loss._entropy_coeff_map))
        return real(self, batch)

    monkeypatch.setattr(trainer._Updater, "__call__", spy)
    end = {h: (0.05 if h == "op" else 0.01) for h in layout.HEADS}
    ppo = PPOConfig(frames_per_batch=100, total_frames=400, minibatches=2, epochs=1, entropy_coeff_end=end,
                    entropy_decay_start=0.0)
    res = run(ppo=ppo, options=RunOptions(eval_episodes=2, eval_interval=4))
    op = [c[("action", "op_entropy")] for c in seen]
    assert op == pytest.approx([0.2, 0.1625, 0.125, 0.0875])  # frames 0, 100, 200, 300 of 400
    assert [c[("action", "slot_entropy")] for c in seen] == pytest.approx([0.05, 0.04, 0.03, 0.02])
    assert [r["optim/op_entropy_coeff"] for r in res.history if "optim/op_entropy_coeff" in r] == pytest.approx(op)
    assert ppo.entropy_coeffs_at(400) == end and ppo.entropy_coeffs_at(10_000) == end
    late = PPOConfig(total_frames=400, entropy_coeff_end=end, entropy_decay_start=0.5)
    assert [late.entropy_coeffs_at(f)["op"] for f in (0, 200, 300, 400)] == pytest.approx([0.2, 0.2, 0.125, 0.05])
    assert late.entropy_coeffs_at(199) == PPOConfig().entropy_coeffs()  # exactly the constant run before


def test_default_entropy_schedule():
    """The defaults: op 0.2 until half-way, then linearly to 0.05 (manual ADVANCE); 0.05 constant
    under auto_advance; constant whenever entropy_coeff is set and entropy_coeff_end is not."""
    cfg = PPOConfig(total_frames=1000)
    assert [cfg.entropy_coeffs_at(f)["op"] for f in (0, 499, 500, 750, 1000)] == pytest.approx(
        [0.2, 0.2, 0.2, 0.125, 0.05])
    assert all(cfg.entropy_coeffs_at(f)[h] == 0.05 for f in (0, 750, 1000) for h in layout.HEADS if h != "op")
    assert all(cfg.entropy_coeffs_at(f, auto_advance=True) == {h: 0.05 for h in layout.HEADS} for f in (0, 750, 1000))
    fixed = PPOConfig(total_frames=1000, entropy_coeff={h: (0.2 if h == "op" else 0.05) for h in layout.HEADS})
    assert fixed.entropy_coeffs_at(1000) == fixed.entropy_coeffs_at(0) == PPOConfig().entropy_coeffs()
    with pytest.raises(ValueError, match=r"entropy_coeff_end map must give a value for every head"):
        PPOConfig(entropy_coeff_end={"op": 0.05}).validate(num_envs=16)
    with pytest.raises(ValueError, match=r"entropy_coeff_end"):
        PPOConfig(entropy_coeff_end=-0.1).validate(num_envs=16)


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_tiny_run_learns_something_and_writes_logs_and_checkpoints(tmp_path, arch):
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in SeedLifecycleEnv_policy_state(arch).items()}
    res = run(tmp_path, arch)
    assert res.frames == 200 and not res.interrupted
    assert [r["frames"] for r in res.history] == [0.0, 100.0, 200.0]
    row = res.history[-1]
    for key in ("loss/loss_objective", "loss/kl_approx", "loss/clip_fraction", "loss/explained_variance",
                "optim/grad_norm", "optim/lr", "time/env_steps_per_s", "train/live_seeds", "eval/score"):
        assert math.isfinite(row[key]), key
    assert sum(row[f"actions/{op.name}"] for op in layout.Op) == pytest.approx(1.0)
    assert {f"entropy/{h}" for h in layout.HEADS} <= set(row)
    assert row["train/invalid_action_rate"] == 0.0
    assert res.baselines["wait"]["score"] == 0.0
    # Weights moved, every parameter stayed finite.
    after = res.policy.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert all(v.isfinite().all() for v in after.values() if v.is_floating_point())
    # Checkpoints: the last 2 of 2 batches; CSV logs per scalar.
    names = [p.name for p in CheckpointManager(tmp_path).list()]
    assert names == ["checkpoint_000000000100.pt", "checkpoint_000000000200.pt"]
    ret = (tmp_path / "logs" / "scalars" / "eval" / "score.csv").read_text().splitlines()
    assert [int(line.split(",")[0]) for line in ret] == [0, 100, 200]


def SeedLifecycleEnv_policy_state(arch):
    """The initial weights train() builds (same seed, same sizes)."""
    from torchrl_slots.policy import create_policy

    torch.manual_seed(OPTS.seed)
    return create_policy(arch, SeedLifecycleEnv(1, 1, 3, seed=0), SMALL).state_dict()


def test_checkpoint_holds_a_policy_that_evaluate_reads(tmp_path):
    res = run(tmp_path)
    payload = load_training_checkpoint(CheckpointManager(tmp_path).latest())
    assert payload["frames"] == 200 and len(payload["history"]) == 3
    env = SeedLifecycleEnv(1, 1, 3, seed=0)
    loaded = load_policy(CheckpointManager(tmp_path).latest(), env)
    a = evaluate_policy(res.policy, rows=1, cols=3, config=LifecycleConfig(), episodes=8, seed=3)
    b = evaluate_policy(loaded, rows=1, cols=3, config=LifecycleConfig(), episodes=8, seed=3)
    assert a == b
    zero_shot = evaluate_policy(loaded, rows=2, cols=5, config=LifecycleConfig(), episodes=4, seed=3)
    assert math.isfinite(zero_shot.score)


def test_resume_continues_the_frame_counter_and_the_logs(tmp_path):
    first = run(tmp_path)
    second = run(tmp_path, ppo=PPOConfig(frames_per_batch=100, total_frames=400, minibatches=2, epochs=2),
                 resume=True)
    assert second.frames == 400
    assert [r["frames"] for r in second.history] == [0.0, 100.0, 200.0, 300.0, 400.0]
    assert second.history[:3] == first.history
    steps = [int(line.split(",")[0]) for line in
             (tmp_path / "logs" / "scalars" / "loss" / "loss_objective.csv").read_text().splitlines()]
    assert steps == [100, 200, 300, 400]
    again = run(tmp_path, ppo=PPOConfig(frames_per_batch=100, total_frames=400, minibatches=2, epochs=2),
                resume=True)  # a finished run resumed as is: nothing to do, nothing lost
    assert again.frames == 400 and again.history == second.history


def test_incompatible_resume_and_fresh_run_into_a_used_dir_are_refused_and_nothing_is_touched(tmp_path):
    run(tmp_path)
    files = {p: p.read_bytes() for p in CheckpointManager(tmp_path).list()}
    with pytest.raises(ValueError, match="cannot resume .* arch: saved 'transformer', now 'lstm'"):
        run(tmp_path, "lstm", resume=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run(tmp_path)
    assert {p: p.read_bytes() for p in CheckpointManager(tmp_path).list()} == files


def test_ctrl_c_saves_a_checkpoint_then_resume_finishes(tmp_path):
    def interrupt(row):
        raise KeyboardInterrupt

    res = run(tmp_path, options=RunOptions(eval_episodes=4, checkpoint_interval=100), callback=interrupt)
    assert res.interrupted and res.frames == 100
    assert res.checkpoint is not None and load_training_checkpoint(res.checkpoint)["frames"] == 100
    done = run(tmp_path, options=RunOptions(eval_episodes=4, checkpoint_interval=100), resume=True)
    assert done.frames == 200 and not done.interrupted


def _nan_loss_on(monkeypatch, bad):
    """Make ClipPPOLoss's objective NaN on the calls ``n`` (1-based) for which ``bad(n)``."""
    calls = {"n": 0}
    forward = ClipPPOLoss.forward

    def patched(self, td):
        out = forward(self, td)
        calls["n"] += 1
        if bad(calls["n"]):
            out["loss_objective"] = out["loss_objective"] * float("nan")
        return out

    monkeypatch.setattr(ClipPPOLoss, "forward", patched)


def test_one_nan_loss_is_skipped_and_logged(monkeypatch, caplog):
    _nan_loss_on(monkeypatch, lambda n: n == 2)
    res = run()
    assert [r.get("optim/skipped_updates") for r in res.history[1:]] == [1.0, 0.0]
    assert "non-finite loss or gradient" in caplog.text
    assert all(v.isfinite().all() for v in res.policy.state_dict().values() if v.is_floating_point())


def test_nan_in_a_row_stops_with_the_last_good_checkpoint_intact(tmp_path, monkeypatch):
    updates_per_batch = PPO.epochs * PPO.minibatches
    _nan_loss_on(monkeypatch, lambda n: n > updates_per_batch)  # batch 1 fine, batch 2 all NaN
    with pytest.raises(TrainingDivergedError, match="4 consecutive non-finite updates"):
        run(tmp_path, ppo=PPOConfig(frames_per_batch=100, total_frames=200, minibatches=2, epochs=2,
                                    max_bad_updates=4))
    last = CheckpointManager(tmp_path).latest()
    payload = load_training_checkpoint(last)
    assert payload["frames"] == 100
    assert all(v.isfinite().all() for v in payload["policy"]["state_dict"].values() if v.is_floating_point())


def test_mixed_grid_run_trains_one_policy_that_acts_on_every_grid():
    torch.manual_seed(0)
    env = EnvConfig(num_envs=4, rows=2, cols=5, grids=((1, 3), (2, 5)))
    res = train("transformer", env, SMALL, PPO, options=OPTS, log=None)
    assert res.frames == 200
    for rows, cols in ((1, 3), (2, 5), (2, 4)):  # trained grids and one it never saw
        out = evaluate_policy(res.policy, rows=rows, cols=cols, config=LifecycleConfig(), episodes=2, seed=0)
        assert math.isfinite(out.score)
    with pytest.raises(ValueError, match="must be one of grids"):
        train("transformer", EnvConfig(num_envs=4, rows=1, cols=3, grids=((2, 5), (3, 6))), SMALL, PPO, log=None)
    with pytest.raises(ValueError, match="multiple of the number of grids"):
        train("transformer", EnvConfig(num_envs=4, rows=1, cols=3, grids=((1, 3), (2, 5), (2, 4))), SMALL, PPO,
              log=None)


def test_floors_follow_the_schedule_and_are_logged():
    ppo = PPOConfig(frames_per_batch=100, total_frames=300, minibatches=2, epochs=1, op_floor=0.3, slot_floor=0.1,
                    floor_decay_to=0.0)
    res = train("transformer", ENV, SMALL, ppo, options=OPTS, log=None)
    rows = [r for r in res.history if "optim/op_floor" in r]
    assert [round(r["optim/op_floor"], 4) for r in rows] == [0.3, 0.2, 0.1]  # collected at 0, 100, 200 frames
    assert [round(r["optim/slot_floor"], 4) for r in rows] == [0.1, round(0.1 * 2 / 3, 4), round(0.1 / 3, 4)]
    assert res.policy.heads_net.floors.tolist() == [0.0, 0.0]  # at total_frames the schedule reaches 0
    for bad, match in (({"op_floor": 1.0}, "op_floor must be a number in"), ({"floor_decay_to": 2.0}, "floor_decay_to"),
                       ({"target_kl": 0.0}, "target_kl must be positive")):
        with pytest.raises(ValueError, match=match):
            PPOConfig(**bad).validate(num_envs=4)


def test_target_kl_stops_the_epochs_of_a_batch_early():
    torch.manual_seed(0)
    ppo = PPOConfig(frames_per_batch=100, total_frames=100, minibatches=2, epochs=6, lr=3e-2, target_kl=1e-9)
    res = train("transformer", ENV, SMALL, ppo, options=OPTS, log=None)
    assert res.history[-1]["optim/epochs"] == 1.0  # any update moves the policy by more than 1.5e-9
    res = train("transformer", ENV, SMALL, PPOConfig(frames_per_batch=100, total_frames=100, minibatches=2, epochs=3),
                options=OPTS, log=None)
    assert res.history[-1]["optim/epochs"] == 3.0


@pytest.mark.parametrize("arch", ["transformer", "lstm"])
def test_update_gae_one_pass_equals_two_passes_and_truncation_takes_two(arch, monkeypatch, rollout_batch):
    """The updater's GAE: TorchRL's shifted (one value pass over [T + 1]) gives the two-pass
    advantages on a batch that crosses episode ends (terminated); a batch with a truncation
    inside takes the two-pass GAE; the helper key "shifted_valid" stays out of the batch."""
    from torchrl_slots.training.updater import _Updater

    policy, batch = rollout_batch(arch, SMALL)
    assert batch["next", "terminated"][:, :-1].any() and not batch["next", "truncated"].any()
    ppo = PPOConfig(frames_per_batch=160, total_frames=160, epochs=1, minibatches=2)
    up = _Updater(policy, ppo, 4)
    used = []
    for name in ("gae", "gae_shifted"):
        est = getattr(up, name)
        monkeypatch.setattr(up, name, lambda td, est=est, name=name: used.append(name) or est(td))
    reference = batch.clone()
    with torch.no_grad(), set_recurrent_mode(True):
        GAE(gamma=ppo.gamma, lmbda=ppo.gae_lambda, value_network=policy.value_network, average_gae=False,
            deactivate_vmap=True)(reference)
    one = batch.clone()
    up(one)
    assert used == ["gae_shifted"] and "shifted_valid" not in one.keys()
    torch.testing.assert_close(one["advantage"], reference["advantage"], atol=1e-5, rtol=0)
    truncated = batch.clone()
    truncated["next", "truncated"][:, 10] = True
    truncated["next", "done"][:, 10] = True
    up(truncated)
    assert used == ["gae_shifted", "gae"]
