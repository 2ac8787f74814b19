"""The env contract (docs/design.md "TensorDict contract", docs/simulator.md masks), one mixin for every config.

:class:`EnvContractMixin` holds the tests (dm_env ``test_utils`` style); a subclass provides the
``env_factory`` fixture. :class:`TestSeedLifecycleEnvContract` runs them over the shipped configs.
Covered: ``check_env_specs``; exact keys, dtypes and shapes; batched rollouts (random legal actions
and the heuristic) of shape ``[num_envs, T]`` whose every action is legal in the mask rows stored
in the rollout; the mask invariants on every step (every row has a legal value, index-0 placeholder
rows for irrelevant heads and illegal ops, op legal => a real legal value in each relevant row,
WAIT always legal, small-head rows depend on the op only, slot rows match the stages);
features finite, ``|x| <= 3``, zero on disabled slots; info diagnostics consistent with the
observation; determinism and ``set_seed``; reset of some envs only; last step terminated; score
only at the last step.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.envs.utils import check_env_specs, step_mdp

from torchrl_slots import layout
from torchrl_slots.envs import HeuristicPolicy, LifecycleConfig, OraclePolicy, RandomPolicy, SeedLifecycleEnv
from torchrl_slots.layout import HEAD_RELEVANCE, HEADS, Op, Stage

NUM_ENVS = 12

#: name -> (rows, cols, LifecycleConfig overrides)
CASES: dict[str, tuple[int, int, dict]] = {
    "1x3": (1, 3, {}),
    "2x5": (2, 5, {}),
    "5x10": (5, 10, {}),
    "2x5-enabled-2-6": (2, 5, {"enabled_slots": (2, 6)}),
    "1x3-no-scaffolding": (1, 3, {"scaffolding": False}),
    "1x3-sparse": (1, 3, {"reward": "sparse"}),
    "5x10-auto-advance": (5, 10, {"auto_advance": True}),
    "2x5-max-seeds-2": (2, 5, {"max_seeds": 2}),
}

OBS_KEYS = {
    ("observation", "base"): (torch.float32, (layout.BASE_FEATURES,)),
    ("observation", "slots"): (torch.float32, ("N", layout.SLOT_FEATURES)),
    ("observation", "slot_mask"): (torch.bool, ("N",)),
    ("observation", "slot_row"): (torch.int64, ("N",)),
    ("observation", "slot_col"): (torch.int64, ("N",)),
    ("action_mask", "op"): (torch.bool, (layout.NUM_OPS,)),
    **{("action_mask", h): (torch.bool, (layout.NUM_OPS, "n_" + h)) for h in HEADS[1:]},
    ("info", "score"): (torch.float32, ()),
    ("info", "val_acc"): (torch.float32, ()),
    ("info", "live_seeds"): (torch.int64, ()),
    ("info", "fossilized"): (torch.int64, ()),
    ("info", "invalid_action"): (torch.bool, ()),
    "done": (torch.bool, (1,)),
    "terminated": (torch.bool, (1,)),
    "truncated": (torch.bool, (1,)),
}
ACTION_KEYS = {("action", h): (torch.int64, ()) for h in HEADS}

# ---------------------------------------------------------------------------------- check helpers


def _stage_from_obs(obs: TensorDictBase) -> torch.Tensor:
    """Stage id of every slot from the one-hot features 1-9; -1 for disabled slots."""
    onehot = obs["observation", "slots"][..., 1:10]
    return torch.where(obs["observation", "slot_mask"], onehot.argmax(-1), -1)


def assert_actions_legal(td: TensorDictBase, *, all_heads: bool) -> None:
    """Every stored action lies in the mask rows stored next to it (op row, then row ``op`` of
    every relevant head; of every head when ``all_heads``)."""
    masks, op = td["action_mask"], td["action", "op"]
    assert td["action_mask", "op"].gather(-1, op[..., None]).all(), "sampled an illegal op"
    relevance = layout.relevance_matrix()[op]  # [..., 8]
    for i, h in enumerate(HEADS[1:], start=1):
        m = masks[h]  # [..., 6, n]
        row = m.gather(-2, op[..., None, None].expand(*op.shape, 1, m.shape[-1])).squeeze(-2)  # [..., n]
        ok = row.gather(-1, td["action", h][..., None]).squeeze(-1)
        must = torch.ones_like(ok) if all_heads else relevance[..., i]
        assert (ok | ~must).all(), f"head {h!r} holds a value outside row op of its mask"


def assert_mask_invariants(obs: TensorDictBase, config: LifecycleConfig) -> None:
    """docs/simulator.md's mask rules on a batch of observations (any leading shape)."""
    m = obs["action_mask"]
    op = m["op"]  # [..., 6]
    assert op[..., Op.WAIT].all(), "WAIT must always be legal"
    for h in HEADS[1:]:
        mh = m[h]  # [..., 6, n]
        assert mh.any(-1).all(), f"a row of head {h!r} has no legal value"
        placeholder = torch.zeros(mh.shape[-1], dtype=torch.bool)
        placeholder[0] = True
        for o in Op:
            row = mh[..., o, :]  # [..., n]
            relevant = h in HEAD_RELEVANCE[o]
            only_zero = ~op[..., o] if relevant else torch.ones_like(op[..., o])
            assert (row[only_zero] == placeholder).all(), (
                f"head {h!r}, op {o.name}: irrelevant or illegal-op row must be exactly index 0")
            if not relevant:
                continue
            legal_rows = row[op[..., o]]  # [K, n]
            assert legal_rows.any(-1).all(), f"op {o.name} legal but head {h!r} has no legal value"
            if h == "blueprint":
                assert not legal_rows[:, 0].any(), "NOOP must not be a legal GERMINATE blueprint"
            if h != "slot" and legal_rows.shape[0] > 0:
                # legality of the small heads depends on the op only (never on the state or slot)
                assert (legal_rows == legal_rows[0]).all(), f"head {h!r} rows of op {o.name} vary"
    _assert_slot_rows_match_stages(obs, config)


def _assert_slot_rows_match_stages(obs: TensorDictBase, config: LifecycleConfig) -> None:
    """A legal op's slot row holds only slots whose (observed) stage allows the op, so a legal op
    always has a REAL legal slot (not the index-0 placeholder)."""
    stage = _stage_from_obs(obs)  # [..., N]
    op, slot = obs["action_mask", "op"], obs["action_mask", "slot"]
    features = obs["observation", "slots"]
    idle = (features[..., 10] == 0) & (features[..., 16] == 0)  # not pruning, alpha controller idle
    live = (stage >= Stage.GERMINATED) & (stage <= Stage.HOLDING)
    allowed = {
        Op.GERMINATE: stage == Stage.DORMANT,
        Op.SET_ALPHA_TARGET: ((stage == Stage.BLENDING) | (stage == Stage.HOLDING)) & idle,
        Op.PRUNE: live & idle,
        Op.FOSSILIZE: (stage == Stage.HOLDING) & idle,
        Op.ADVANCE: ((stage == Stage.GERMINATED) | (stage == Stage.TRAINING) | (stage == Stage.BLENDING)) & idle,
    }
    for o, ok in allowed.items():
        legal = slot[..., o, :] & op[..., o, None]
        assert not (legal & ~ok).any(), f"op {o.name} legal on a slot whose stage forbids it"
    n_live = obs["info", "live_seeds"]
    room = torch.ones_like(n_live, dtype=torch.bool) if config.max_seeds is None else n_live < config.max_seeds
    dormant = (stage == Stage.DORMANT).any(-1)
    assert torch.equal(op[..., Op.GERMINATE], dormant & room), "GERMINATE legal iff enabled DORMANT slot and room"
    if config.max_seeds is not None:
        assert (n_live <= config.max_seeds).all()
    # FOSSILIZE is legal exactly on idle HOLDING seeds
    assert torch.equal(op[..., Op.FOSSILIZE], allowed[Op.FOSSILIZE].any(-1))
    if config.auto_advance:
        assert not op[..., Op.ADVANCE].any(), "ADVANCE must never be legal with auto_advance"


def assert_features_valid(obs: TensorDictBase, config: LifecycleConfig, rows: int, cols: int) -> None:
    base, slots = obs["observation", "base"], obs["observation", "slots"]
    enabled = obs["observation", "slot_mask"]
    for name, x in (("base", base), ("slots", slots)):
        assert torch.isfinite(x).all(), f"{name} features not finite"
        assert x.abs().max() <= 3.0, f"{name} features exceed |x| <= 3: {x.abs().max()}"
    assert (slots[~enabled] == 0).all(), "disabled slots must have all-zero features"
    live = slots[..., 1:10][enabled]  # [K, 9]
    assert (live.sum(-1) == 1).all(), "enabled slots need exactly one stage"
    assert (slots[..., 26:39][enabled].sum(-1) == 1).all(), "blueprint one-hot"
    alpha = slots[..., 11]
    assert ((alpha >= 0) & (alpha <= 1)).all()
    if not config.scaffolding:
        assert (slots[..., 22:26] == 0).all(), "scaffolding=False must zero features 22-25"
    r, c = layout.grid_ids(rows, cols)
    assert torch.equal(obs["observation", "slot_row"], r.expand_as(obs["observation", "slot_row"]))
    assert torch.equal(obs["observation", "slot_col"], c.expand_as(obs["observation", "slot_col"]))
    n_enabled = enabled.sum(-1)
    lo, hi = config.enabled_slots if config.enabled_slots is not None else (rows * cols, rows * cols)
    assert ((n_enabled >= lo) & (n_enabled <= hi)).all()
    # diagnostics agree with the observation
    stage = _stage_from_obs(obs)
    live_n = ((stage >= Stage.GERMINATED) & (stage <= Stage.HOLDING)).sum(-1)
    assert torch.equal(obs["info", "live_seeds"], live_n)
    assert torch.equal(obs["info", "fossilized"], (stage == Stage.FOSSILIZED).sum(-1))
    torch.testing.assert_close(base[..., 6], obs["info", "val_acc"] / 100.0)
    assert not obs["info", "invalid_action"].any()


def _assert_tds_identical(a: TensorDictBase, b: TensorDictBase) -> None:
    keys_a, keys_b = set(a.keys(True, True)), set(b.keys(True, True))
    assert keys_a == keys_b
    for k in keys_a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


# ---------------------------------------------------------------------------------- the mixin


class EnvContractMixin:
    """Contract tests; a subclass provides ``env_factory``: ``(num_envs, seed) -> env``."""

    @pytest.fixture(scope="class")
    def random_rollout(self, env_factory) -> tuple[SeedLifecycleEnv, TensorDictBase]:
        env = env_factory(NUM_ENVS, 0)
        return env, env.rollout(env.config.max_epochs, break_when_any_done=False)

    @pytest.fixture(scope="class")
    def heuristic_rollout(self, env_factory) -> tuple[SeedLifecycleEnv, TensorDictBase]:
        env = env_factory(NUM_ENVS, 0)
        return env, env.rollout(env.config.max_epochs, HeuristicPolicy(env), break_when_any_done=False)

    def test_check_env_specs(self, env_factory):
        env = env_factory(4, 0)
        check_env_specs(env)
        sizes = layout.head_sizes(env.num_slots)
        for h in HEADS:
            assert env.full_action_spec["action", h].space.n == sizes[h]

    def test_exact_keys_dtypes_and_shapes(self, random_rollout):
        env, td = random_rollout
        n, t = env.num_slots, env.config.max_epochs
        dims = {"N": n, **{"n_" + h: s for h, s in layout.head_sizes(n).items()}}
        expected = {**OBS_KEYS, **ACTION_KEYS}
        expected.update({("next", *((k,) if isinstance(k, str) else k)): v for k, v in OBS_KEYS.items()})
        expected[("next", "reward")] = (torch.float32, (1,))
        assert set(td.keys(True, True)) == set(expected)
        for key, (dtype, tail) in expected.items():
            shape = (NUM_ENVS, t, *(dims[d] if isinstance(d, str) else d for d in tail))
            assert td[key].dtype == dtype, f"{key}: dtype {td[key].dtype}, expected {dtype}"
            assert td[key].shape == shape, f"{key}: shape {tuple(td[key].shape)}, expected {shape}"
        reset_td = env.reset()
        assert set(reset_td.keys(True, True)) == set(OBS_KEYS)

    @pytest.mark.parametrize("which", ["random", "heuristic"])
    def test_rollout_shape_and_every_action_legal(self, which, random_rollout, heuristic_rollout):
        env, td = random_rollout if which == "random" else heuristic_rollout
        assert td.batch_size == (NUM_ENVS, env.config.max_epochs)
        assert_actions_legal(td, all_heads=which == "random")
        assert not td["next", "info", "invalid_action"].any()
        # epochs advance by one per step
        t = torch.arange(env.config.max_epochs, dtype=torch.float32) / env.config.max_epochs
        torch.testing.assert_close(td["observation", "base"][..., 0], t.expand(NUM_ENVS, -1))
        t_next = (t + 1 / env.config.max_epochs).expand(NUM_ENVS, -1)
        torch.testing.assert_close(td["next", "observation", "base"][..., 0], t_next)

    @pytest.mark.parametrize("which", ["random", "heuristic"])
    def test_mask_invariants_on_every_step(self, which, random_rollout, heuristic_rollout):
        env, td = random_rollout if which == "random" else heuristic_rollout
        assert_mask_invariants(td, env.config)
        assert_mask_invariants(td["next"], env.config)

    @pytest.mark.parametrize("which", ["random", "heuristic"])
    def test_features_finite_bounded_and_disabled_zero(self, which, random_rollout, heuristic_rollout):
        env, td = random_rollout if which == "random" else heuristic_rollout
        assert_features_valid(td, env.config, env.rows, env.cols)
        assert_features_valid(td["next"], env.config, env.rows, env.cols)
        mask = td["observation", "slot_mask"]
        assert (mask == mask[:, :1]).all(), "slot_mask changed within an episode"

    def test_heuristic_uses_the_slots(self, heuristic_rollout):
        env, td = heuristic_rollout
        last = td["next"][:, -1]
        assert (last["info", "fossilized"] > 0).any(), "the heuristic fossilized nothing"
        if env.config.scaffolding:
            assert (td["next", "observation", "slots"][..., 22:26] != 0).any(), "scaffolding features never set"

    def test_oracle_actions_legal(self, env_factory):
        env = env_factory(NUM_ENVS, 0)
        td = env.rollout(env.config.max_epochs, OraclePolicy(env), break_when_any_done=False)
        assert_actions_legal(td, all_heads=False)
        assert_mask_invariants(td["next"], env.config)

    def test_last_step_terminated_and_score_only_at_the_end(self, heuristic_rollout):
        env, td = heuristic_rollout
        nxt = td["next"]
        term, trunc, done = nxt["terminated"].squeeze(-1), nxt["truncated"].squeeze(-1), nxt["done"].squeeze(-1)
        assert term[:, -1].all() and not term[:, :-1].any()
        assert not trunc.any()
        assert torch.equal(done, term)
        assert not td["done"].any() and not td["terminated"].any()
        score = nxt["info", "score"]
        assert (score[:, :-1] == 0).all()
        assert (score[:, -1] != 0).any(), "the heuristic's final score should not be exactly 0"
        reward = nxt["reward"].squeeze(-1)
        if env.config.reward == "sparse":
            assert (reward[:, :-1] == 0).all()
            assert torch.equal(reward[:, -1], score[:, -1])
        else:
            assert (reward[:, :-1] != 0).any()

    def test_same_seed_and_actions_are_bit_identical(self, env_factory, play_episode):
        env_a = env_factory(4, 123)
        td_a = env_a.rollout(env_a.config.max_epochs, RandomPolicy(env_a, seed=7), break_when_any_done=False)
        actions = td_a["action"]
        env_b = env_factory(4, 123)
        step = {"t": 0}

        def replay(td: TensorDictBase) -> TensorDictBase:
            td.set("action", actions[:, step["t"]].clone())
            step["t"] += 1
            return td

        td_b = env_b.rollout(env_b.config.max_epochs, replay, break_when_any_done=False)
        _assert_tds_identical(td_a, td_b)
        # and the same through the hand-stepped path, down to the hidden state
        step["t"] = 0
        recs = play_episode(env_factory(4, 123), replay)
        for t, rec in enumerate(recs):
            _assert_tds_identical(rec["next"], td_a["next"][:, t])

    def test_set_seed_reproduces_a_fresh_env(self, env_factory):
        env = env_factory(4, 1)
        t = env.config.max_epochs
        env.rollout(t, break_when_any_done=False)
        env.set_seed(5)
        td_again = env.rollout(t, break_when_any_done=False)
        td_fresh = env_factory(4, 5).rollout(t, break_when_any_done=False)
        _assert_tds_identical(td_again, td_fresh)

    def test_different_seeds_differ(self, env_factory):
        t = 5
        td0 = env_factory(4, 0).rollout(t, break_when_any_done=False)
        td1 = env_factory(4, 1).rollout(t, break_when_any_done=False)
        assert not torch.equal(td0["observation", "base"], td1["observation", "base"])
        assert not torch.equal(td0["next", "info", "val_acc"], td1["next", "info", "val_acc"])

    def test_reset_of_some_envs_only(self, env_factory, state_snapshot):
        e, k = 6, 4
        env = env_factory(e, 3)
        max_t = env.config.max_epochs
        td = env.reset()
        for _ in range(k):
            td = step_mdp(env.step(env.rand_action(td)))
        mask = torch.tensor([True, False, True, False, False, True])
        before, obs_before = state_snapshot(env.state), td.clone()

        # the brief's form: a bare "_reset" tensordict
        out = env.reset(TensorDict({"_reset": mask[:, None]}, batch_size=[e]))
        after = state_snapshot(env.state)
        for name, value in after.items():
            assert torch.equal(value[~mask], before[name][~mask]), f"state {name} of a non-reset env changed"
        assert (env.state.epoch[mask] == 0).all() and (env.state.stage[mask] == Stage.DORMANT).all()
        assert (env.state.alpha[mask] == 0).all() and (env.state.contribution[mask] == 0).all()
        assert (out["observation", "base"][mask, 0] == 0).all() and (out["observation", "base"][mask, 1] == 1).all()
        slots = out["observation", "slots"][mask]
        assert (slots[..., 1] == out["observation", "slot_mask"][mask].float()).all(), "reset slots not DORMANT"
        assert not out["done"].any()

        # the collector's form: the current tensordict plus "_reset" -> non-reset envs keep theirs
        env2 = env_factory(e, 3)
        td2 = env2.reset()
        for _ in range(k):
            td2 = step_mdp(env2.step(env2.rand_action(td2)))
        td2.set("_reset", mask[:, None])
        out2 = env2.reset(td2)
        for key in obs_before.keys(True, True):
            if key[0] in ("observation", "action_mask"):
                assert torch.equal(out2[key][~mask], obs_before[key][~mask]), f"{key} of a non-reset env changed"
        # continuing: non-reset envs finish k epochs earlier, are auto-reset, the others run on
        roll = env2.rollout(max_t, auto_reset=False, tensordict=out2, break_when_any_done=False)
        term = roll["next", "terminated"].squeeze(-1)
        first_end = torch.where(mask, max_t - 1, max_t - k - 1)
        assert torch.equal(term.float().argmax(-1), first_end)
        assert (term.sum(-1) == 1).all()
        epoch = roll["observation", "base"][..., 0] * max_t
        j = max_t - k  # first step after the non-reset envs' episode ended
        torch.testing.assert_close(epoch[~mask, j], torch.zeros((~mask).sum().item()))
        torch.testing.assert_close(epoch[mask, j], torch.full((mask.sum().item(),), float(j)))


# ---------------------------------------------------------------------------------- the configs


class TestSeedLifecycleEnvContract(EnvContractMixin):
    @pytest.fixture(scope="class", params=list(CASES), ids=list(CASES))
    def env_factory(self, request) -> Callable[[int, int], SeedLifecycleEnv]:
        rows, cols, overrides = CASES[request.param]

        def make(num_envs: int, seed: int) -> SeedLifecycleEnv:
            return SeedLifecycleEnv(num_envs, rows, cols, config=LifecycleConfig(**overrides), seed=seed)

        return make


# ---------------------------------------------------------------------------------- config-specific


def test_enabled_slots_count_is_uniform_and_the_subset_random():
    e, lo, hi = 500, 2, 6
    env = SeedLifecycleEnv(e, 2, 5, config=LifecycleConfig(enabled_slots=(lo, hi)), seed=0)
    mask = env.reset()["observation", "slot_mask"]
    counts = torch.bincount(mask.sum(-1), minlength=11)
    assert counts[:lo].sum() == 0 and counts[hi + 1:].sum() == 0
    assert (counts[lo:hi + 1] > 0.6 * e / (hi - lo + 1)).all(), f"counts {counts.tolist()} not uniform on {lo}..{hi}"
    per_slot = mask.float().mean(0)  # every slot is enabled in some episodes, none always
    assert ((per_slot > 0.2) & (per_slot < 0.6)).all(), per_slot
    again = env.reset()["observation", "slot_mask"]  # a new episode draws a new subset
    assert (again != mask).any(-1).float().mean() > 0.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    for overrides in ({}, {"auto_advance": True, "enabled_slots": (3, 20), "max_seeds": 4}):
        env = SeedLifecycleEnv(64, 4, 5, config=LifecycleConfig(**overrides), device="cuda", seed=0)
        check_env_specs(env)
        for policy in (None, HeuristicPolicy(env), OraclePolicy(env)):
            td = env.rollout(env.config.max_epochs, policy, break_when_any_done=False)
            assert all(v.device.type == "cuda" for v in td.values(True, True))
            td = td.cpu()
            assert_actions_legal(td, all_heads=policy is None)
            assert_mask_invariants(td["next"], env.config)
            assert_features_valid(td["next"], env.config, env.rows, env.cols)
            assert td["next", "terminated"][:, -1].all()
