"""Property tests (hypothesis) of the seed lifecycle, read from the hidden ``env.state``.

A hypothesis-drawn config (grid, ``max_seeds``, ``auto_advance``, embargo/resetting lengths,
episode length) and seed; the env is driven by a per-env mixture of random legal actions and the
heuristic (so that seeds also reach HOLDING and FOSSILIZED). At every step:

* stages move only along docs/simulator.md's transitions, each forward move caused by the op that
  allows it (or by auto-advance), with its gate passed; PRUNED is transient (it becomes
  EMBARGOED within the same epoch), so a pruned seed is next seen EMBARGOED;
* alpha and progress stay in [0, 1]; slots without a seed have alpha 0 and no contribution;
* a fossilized seed never changes (alpha 1, progress, blueprint, gain, algorithm frozen);
* at most ``max_seeds`` live seeds; EMBARGOED lasts ``embargo_epochs``, RESETTING
  ``resetting_epochs``; disabled slots stay empty.
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensordict import TensorDictBase

from torchrl_slots.envs import HeuristicPolicy, LifecycleConfig, SeedLifecycleEnv, sample_legal
from torchrl_slots.layout import HEADS, Op, Stage

NUM_ENVS = 8
D, G, T, B, H, F, P, EM, R = (
    Stage.DORMANT, Stage.GERMINATED, Stage.TRAINING, Stage.BLENDING, Stage.HOLDING,
    Stage.FOSSILIZED, Stage.PRUNED, Stage.EMBARGOED, Stage.RESETTING,
)
#: (stage before, stage after) pairs the lifecycle permits between two observations (one epoch).
#: Staying put is always allowed. X -> EMBARGOED is X -> PRUNED -> EMBARGOED within one epoch.
TRANSITIONS = {
    (D, G), (G, T), (T, B), (B, H), (H, F), (H, B),
    (G, P), (T, P), (B, P), (H, P), (P, EM),
    (G, EM), (T, EM), (B, EM), (H, EM),
    (EM, R), (R, D),
}
#: with auto_advance, a seed germinated this epoch is advanced at the end of the same epoch
AUTO_TRANSITIONS = {(D, T)}


def _allowed_matrix(auto: bool) -> torch.Tensor:
    m = torch.eye(len(Stage), dtype=torch.bool)
    for a, b in TRANSITIONS | (AUTO_TRANSITIONS if auto else set()):
        m[a, b] = True
    return m


class MixedPolicy:
    """Per env and step: the heuristic's action with probability ``p``, else a random legal one."""

    def __init__(self, env: SeedLifecycleEnv, p: float, seed: int) -> None:
        self.heuristic, self.p = HeuristicPolicy(env), p
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, td: TensorDictBase) -> TensorDictBase:
        rand = sample_legal(td["action_mask"], self.gen)
        self.heuristic(td)
        use_h = torch.rand(td.batch_size[0], generator=self.gen) < self.p
        for h in HEADS:
            td.set(("action", h), torch.where(use_h, td["action", h], rand[h]))
        return td


def check_step(before: dict, after: dict, action: dict, cfg: LifecycleConfig, num_slots: int) -> None:
    prev, now = before["stage"], after["stage"]
    allowed = _allowed_matrix(cfg.auto_advance)
    bad = ~allowed[prev, now]
    if bad.any():
        e, n = bad.nonzero()[0].tolist()
        raise AssertionError(f"illegal transition {Stage(int(prev[e, n])).name} -> {Stage(int(now[e, n])).name} "
                             f"in env {e}, slot {n} (auto_advance={cfg.auto_advance})")
    sel = torch.nn.functional.one_hot(action["slot"], num_slots).bool()  # [E, N]

    def acted(o: Op) -> torch.Tensor:
        return sel & (action["op"] == o)[:, None]

    # germination: only by GERMINATE on that slot, with a real blueprint, and within max_seeds
    germ = (prev == D) & (now != D)
    assert acted(Op.GERMINATE)[germ].all(), "a slot germinated without GERMINATE"
    assert (after["blueprint"][germ] > 0).all()
    live_before = ((prev >= G) & (prev <= H)).sum(-1)
    if cfg.max_seeds is not None:
        assert (live_before[germ.any(-1)] < cfg.max_seeds).all(), "germinated at the live-seed limit"
    # forward moves: by ADVANCE on that slot (or by themselves with auto_advance), gates passed
    to_t, to_b, to_h = (prev == G) & (now == T), (prev == T) & (now == B), (prev == B) & (now == H)
    if not cfg.auto_advance:
        assert acted(Op.ADVANCE)[to_t | to_b | to_h].all(), "a seed advanced without ADVANCE"
        assert (before["trained"][to_b] >= 1).all(), "TRAINING -> BLENDING before 1 epoch trained"
    else:
        assert not acted(Op.ADVANCE).any(), "ADVANCE taken although auto_advance makes it illegal"
        assert (after["trained"][to_b] >= 1).all()
    assert (after["target"][to_h] >= 1.0).all() and (after["alpha"][to_h] >= 1.0 - 1e-6).all(), (
        "HOLDING reached without alpha at a target of 1.0")
    # FOSSILIZE only from HOLDING by the op; HOLDING -> BLENDING only by a target < 1
    fossilized_now = (prev == H) & (now == F)
    assert acted(Op.FOSSILIZE)[fossilized_now].all()
    back = (prev == H) & (now == B)
    assert acted(Op.SET_ALPHA_TARGET)[back].all() and (after["target"][back] < 1.0).all()
    # pruning: by PRUNE on that slot now, or a ramp-down started earlier; never before age 1
    pruned = ((prev >= G) & (prev <= H)) & ((now == P) | (now == EM))
    assert (acted(Op.PRUNE) | before["pruning"])[pruned].all(), "a seed was pruned without PRUNE"
    assert (before["age"][pruned] >= 1).all(), "pruned before age 1"
    # alpha / progress ranges; empty slots are empty
    for name in ("alpha", "progress"):
        v = after[name]
        assert ((v >= 0) & (v <= 1)).all(), f"{name} outside [0, 1]"
    empty = (now == D) | (now == EM) | (now == R) | (now == P)
    assert (after["alpha"][empty] == 0).all() and (after["contribution"][empty] == 0).all()
    assert (after["blueprint"][now == D] == 0).all()
    assert (now[~after["enabled"]] == D).all(), "a disabled slot holds a seed"
    # fossilized seeds are frozen; fossilizing sets alpha to 1 and freezes progress
    fz = prev == F
    for name in ("alpha", "progress", "blueprint", "gain", "algorithm"):
        assert torch.equal(after[name][fz], before[name][fz]), f"fossilized {name} changed"
    assert (after["alpha"][now == F] == 1.0).all()
    assert torch.equal(after["progress"][fossilized_now], before["progress"][fossilized_now])
    # live-seed limit
    if cfg.max_seeds is not None:
        assert (((now >= G) & (now <= H)).sum(-1) <= cfg.max_seeds).all()
    assert torch.equal(after["epoch"], before["epoch"] + 1)
    assert (after["rent_total"] >= before["rent_total"]).all()


@st.composite
def scenarios(draw):
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    n = rows * cols
    enabled = draw(st.none() | st.tuples(st.integers(1, n), st.integers(1, n)).map(lambda t: tuple(sorted(t))))
    cfg = LifecycleConfig(
        max_epochs=draw(st.integers(8, 30)),
        max_seeds=draw(st.none() | st.integers(1, 3)),
        auto_advance=draw(st.booleans()),
        enabled_slots=enabled,
        embargo_epochs=draw(st.integers(1, 6)),
        resetting_epochs=draw(st.integers(1, 2)),
        task_seed=draw(st.integers(0, 3)),
    )
    return rows, cols, cfg, draw(st.integers(0, 2**31 - 1)), draw(st.sampled_from([0.0, 0.5, 0.8]))


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_lifecycle_invariants_hold_on_every_step(scenario, play_episode):
    rows, cols, cfg, seed, p_heuristic = scenario
    env = SeedLifecycleEnv(NUM_ENVS, rows, cols, config=cfg, seed=seed)
    records = play_episode(env, MixedPolicy(env, p_heuristic, seed))
    n = rows * cols
    run = {EM: torch.zeros(NUM_ENVS, n, dtype=torch.long), R: torch.zeros(NUM_ENVS, n, dtype=torch.long)}
    length = {EM: cfg.embargo_epochs, R: cfg.resetting_epochs}
    for rec in records:
        action = {h: rec["td"]["action", h] for h in HEADS}
        check_step(rec["before"], rec["after"], action, cfg, n)
        prev, now = rec["before"]["stage"], rec["after"]["stage"]
        for stage, counter in run.items():
            left = (prev == stage) & (now != stage)
            assert (counter[left] == length[stage]).all(), (
                f"{stage.name} lasted {counter[left].tolist()} epochs, expected {length[stage]}")
            counter.copy_(torch.where(now == stage, counter + 1, 0))
            assert (counter <= length[stage]).all(), f"{stage.name} lasted longer than {length[stage]}"


def test_prune_with_speed_ramps_down_then_embargoes(play_episode):
    """PRUNE with alpha_speed > 0 keeps the stage while alpha ramps to 0, then EMBARGOED."""
    env = SeedLifecycleEnv(1, 1, 1, config=LifecycleConfig(max_epochs=30), seed=0)
    td = env.reset()

    def do(op: Op, **heads) -> None:
        nonlocal td
        for h in HEADS:
            td.set(("action", h), torch.tensor([heads.get(h, 0)]))
        td.set(("action", "op"), torch.tensor([int(op)]))
        td = env.step(td)["next"].clone()

    do(Op.GERMINATE, blueprint=5, alpha_target=2, tempo=0)  # tempo 3 epochs, target 1.0
    do(Op.ADVANCE)  # -> TRAINING
    do(Op.WAIT)
    do(Op.ADVANCE)  # -> BLENDING, alpha ramps over 3 epochs
    assert env.state.stage[0, 0] == Stage.BLENDING
    for _ in range(3):
        do(Op.WAIT)
    assert env.state.alpha[0, 0] == 1.0
    do(Op.PRUNE, alpha_speed=1)  # ramp down over 3 epochs, the PRUNE epoch included
    alphas, stages = [], []
    for _ in range(2):
        alphas.append(float(env.state.alpha[0, 0]))
        stages.append(Stage(int(env.state.stage[0, 0])))
        assert bool(env.state.pruning[0, 0]) and td["observation", "slots"][0, 0, 10] == 1.0
        do(Op.WAIT)
    assert stages == [Stage.BLENDING, Stage.BLENDING]
    torch.testing.assert_close(torch.tensor(alphas), torch.tensor([2 / 3, 1 / 3]))
    assert env.state.stage[0, 0] == Stage.EMBARGOED and env.state.alpha[0, 0] == 0.0
    assert not bool(env.state.pruning[0, 0])
