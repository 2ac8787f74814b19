"""Old against new host step in ONE process (2026-12-02): the same env state (a deep copy taken at
epochs 3, 12 and 22 of a 25-epoch episode), stepped with the old loss (``F.cross_entropy``) and
Adam (``sqrt`` of exact zeros) monkeypatched back, and with the new ones, interleaved 8 times each;
process CPU time per step. Output: ``ab_loss_adam.txt``. Run from the repo root:

    python benchmarks/results/host_speed/ab_loss_adam.py heuristic   # or random, wait
"""

import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import torchrl_slots.envs.host_net as hn
from torchrl_slots.envs import HeuristicPolicy, HostTrainingEnv, WaitPolicy

torch.set_num_threads(1)


def old_loss(logits, y):
    ce = F.cross_entropy(logits.flatten(0, -2), y.expand(logits.shape[:-1]).flatten(), reduction="none")
    return ce.view(logits.shape[:-1]).mean(-1)


def old_adam(p, g, m, v, t, lr, mask=None):
    b1, b2 = hn.ADAM_BETAS
    if mask is not None:
        g = g * mask
        t += mask.long()
    else:
        t += 1
    m.mul_(b1).add_(g, alpha=1 - b1)
    v.mul_(b2).addcmul_(g, g, value=1 - b2)
    tf = t.clamp_min(1).float()
    denom = (v / (1 - b2**tf)).sqrt_().add_(hn.ADAM_EPS)
    step = (m * (lr / (1 - b1**tf))).div_(denom)
    if mask is not None:
        step.mul_(mask)
    p.sub_(step)


NEW_LOSS, NEW_ADAM = hn.HostNets.loss, hn.adam


def use(old: bool) -> None:
    hn.HostNets.loss = staticmethod(old_loss if old else NEW_LOSS)
    hn.adam = old_adam if old else NEW_ADAM


def main(pol: str) -> None:
    res: dict[bool, list[float]] = {True: [], False: []}
    for phase in (3, 12, 22):  # early, mid, late in the 25-epoch episode
        env = HostTrainingEnv(16, 2, 5, seed=0)
        act = {"heuristic": HeuristicPolicy, "wait": WaitPolicy}.get(pol, lambda e: e.rand_action)(env)
        torch.manual_seed(0)
        td = env.reset()
        for _ in range(phase):
            td = env.step(act(td))["next"]
        td = act(td)
        snap = copy.deepcopy(env)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(8):
            for old in (True, False):
                use(old)
                e2 = copy.deepcopy(snap)
                t0 = time.process_time()
                e2.step(td.clone())
                times[old].append(time.process_time() - t0)
        use(False)
        for old in (True, False):
            res[old].extend(times[old])
        print(pol, "epoch", phase,
              "old min/median %.1f/%.1f ms" % (1e3 * min(times[True]), 1e3 * statistics.median(times[True])),
              "new %.1f/%.1f ms" % (1e3 * min(times[False]), 1e3 * statistics.median(times[False])))
    print(pol, "all phases: old median %.1f, new median %.1f ms, ratio %.2f" % (
        1e3 * statistics.median(res[True]), 1e3 * statistics.median(res[False]),
        statistics.median(res[True]) / statistics.median(res[False])))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "heuristic")
