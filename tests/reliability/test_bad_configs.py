"""Config validation: every field of LifecycleConfig, PolicyConfig, PPOConfig and RunOptions is
checked up front (finite, sign, int-ness), and the env refuses to step past its last epoch."""

import math

import pytest

from torchrl_slots.envs import LifecycleConfig, SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig
from torchrl_slots.training import EnvConfig, PPOConfig, RunOptions, train

TINY = PolicyConfig(embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, feature_dim=8, lstm_hidden=8, key_dim=8)


@pytest.mark.parametrize("field, value", [
    ("op_cost", -0.02), ("rent_scale", -0.2), ("pbrs_scale", math.nan), ("gain_noise", math.inf),
    ("val_noise", -1.0), ("fossil_bonus", -0.5), ("fossil_bonus_threshold", math.nan),
    ("max_epochs", 25.0), ("max_epochs", True), ("enabled_slots", (1.0, 3)), ("enabled_slots", (1, 2.5)),
    ("embargo_epochs", 2.5), ("resetting_epochs", -1), ("task_seed", 0.5), ("max_seeds", 1.5),
    ("gamma", math.nan), ("style_affinity", (0.7, math.inf)), ("scaffolding", 1), ("auto_advance", "yes"),
])
def test_lifecycle_config_refuses_bad_field_naming_it(field, value):
    cfg = LifecycleConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        cfg.validate(rows=1, cols=3)
    with pytest.raises(ValueError, match=field):
        SeedLifecycleEnv(2, 1, 3, config=cfg)


def test_env_step_after_last_epoch_without_reset_raises():
    env = SeedLifecycleEnv(2, 1, 3, config=LifecycleConfig(max_epochs=2), seed=0)
    td = env.reset()
    for _ in range(2):
        td = env.step(env.rand_action(td))["next"]
    assert td["done"].all()
    with pytest.raises(RuntimeError, match=r"after the last epoch \(max_epochs=2\) of envs \[0, 1\]"):
        env.step(env.rand_action(td))
    td = env.reset()  # a reset makes it steppable again
    assert env.step(env.rand_action(td))["next", "reward"].shape == (2, 1)


@pytest.mark.parametrize("field, value", [
    ("num_layers", 0), ("num_layers", -1), ("num_layers", 1.0), ("embed_dim", 0), ("num_heads", -2),
    ("lstm_hidden", 0), ("chunk_rows", 0), ("dropout", 1.0), ("dropout", math.nan), ("positional", "rope"),
    ("conditioning", "joint"), ("autocast", "fp16"), ("pack_slots", 1),
])
def test_policy_config_refuses_no_blocks_and_other_bad_fields(field, value):
    with pytest.raises(ValueError, match=f"PolicyConfig.{field}"):
        PolicyConfig(**{field: value})


def test_encoder_refuses_zero_layers():
    from torchrl_slots.modules import SlotTransformerEncoder

    with pytest.raises(ValueError, match="num_layers must be a positive int"):
        SlotTransformerEncoder(embed_dim=8, num_heads=2, num_layers=0)


@pytest.mark.parametrize("field, value, match", [
    ("entropy_coeff", -1.0, "entropy_coeff"), ("entropy_coeff", math.nan, "entropy_coeff"),
    ("clip_epsilon", 50.0, "clip_epsilon"), ("clip_epsilon", 0.0, "clip_epsilon"),
    ("total_frames", 150, "total_frames=150 must be a multiple of frames_per_batch=64.*192 frames"),
    ("critic_coeff", 0.0, "critic_coeff must be > 0"), ("epochs", 2.0, "epochs"), ("minibatches", 2.0, "minibatches"),
    ("lr", math.inf, "lr"), ("max_grad_norm", -1.0, "max_grad_norm"), ("max_bad_updates", 0, "max_bad_updates"),
    ("gamma", math.nan, "gamma"), ("anneal_lr", 1, "anneal_lr"), ("frames_per_batch", 64.0, "frames_per_batch"),
    ("target_kl", "x", "target_kl must be a finite number, got 'x'"), ("target_kl", 0.0, "target_kl"),
    ("entropy_coeff_end", -0.1, "entropy_coeff_end"), ("entropy_coeff_end", {"op": 0.1}, "entropy_coeff_end map"),
    ("entropy_decay_start", 1.0, r"entropy_decay_start must be in \[0, 1\), got 1.0"),
    ("entropy_decay_start", "half", "entropy_decay_start must be a finite number"),
])
def test_ppo_config_refuses_bad_field_up_front(field, value, match):
    cfg = PPOConfig(**{"frames_per_batch": 64, "total_frames": 128, "minibatches": 2, field: value})
    with pytest.raises(ValueError, match=match):
        cfg.validate(num_envs=4)


def test_ppo_config_entropy_map_refuses_negative_head():
    from torchrl_slots import layout

    coeffs = {h: 0.01 for h in layout.HEADS} | {"slot": -0.1}
    with pytest.raises(ValueError, match=r"entropy_coeff\['slot'\]"):
        PPOConfig(entropy_coeff=coeffs).validate(num_envs=16)


@pytest.mark.parametrize("field, value", [("eval_interval", 0), ("eval_episodes", 1.5), ("keep_checkpoints", 0),
                                          ("seed", 0.5), ("workers", 0)])
def test_run_options_refused_before_any_work(field, value):
    with pytest.raises(ValueError, match=f"RunOptions.{field}"):
        train("transformer", EnvConfig(num_envs=4), TINY, PPOConfig(frames_per_batch=8, total_frames=8, minibatches=2),
              options=RunOptions(**{field: value}), log=None)


def test_output_dir_that_is_a_file_is_refused_at_the_start(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        train("transformer", EnvConfig(num_envs=4), TINY, PPOConfig(frames_per_batch=8, total_frames=8, minibatches=2),
              options=RunOptions(eval_episodes=2), output_dir=path)


def test_output_dir_with_another_runs_logs_is_refused(tmp_path):
    (tmp_path / "logs" / "eval").mkdir(parents=True)
    (tmp_path / "logs" / "eval" / "return.csv").write_text("0,1.0\n")
    with pytest.raises(ValueError, match="already holds another run's logs"):
        train("transformer", EnvConfig(num_envs=4), TINY, PPOConfig(frames_per_batch=8, total_frames=8, minibatches=2),
              options=RunOptions(eval_episodes=2), output_dir=tmp_path)
    assert (tmp_path / "logs" / "eval" / "return.csv").read_text() == "0,1.0\n"
