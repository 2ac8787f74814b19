"""Cost of one entity actor + critic PPO update: one encoder shared by actor and critic vs two.

One update = ``ClipPPOLoss`` forward (actor and critic) + backward of the summed loss + an Adam
step, on ``--rows`` states of ``--entities`` entities from ``ItemsEnv`` (all valid), with the
encoder of ``SlotTransformerEncoder.for_entities(7)`` (generic sizes: D=64, 4 heads, 2 layers, FFN
128). Three set-ups:

* ``two encoders``: actor and critic each have their own encoder (the usual PPO choice).
* ``shared``: one ``EntityEncoderModule`` passed to both; the encoder learns from the policy and
  the value loss. It still runs twice per forward (once for the actor, once for the critic).
* ``shared, separate_losses``: the same with ``ClipPPOLoss(separate_losses=True)``, which
  detaches the critic's copies of shared parameters: the encoder learns from the policy loss only.

``torch.set_num_threads(1)``; the median (and min, max) of ``--iters`` timed updates after two
warm-up updates. Prints a table and writes JSON (default ``benchmarks/results/bench_entity.json``)
with the CPU model, torch version and date.

    python benchmarks/bench_entity.py [--rows 1024] [--entities 20] [--iters 7] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.objectives import ClipPPOLoss

from torchrl_slots.envs.items import FEATURES, FEATURES_KEY, MASK_KEY, ItemsEnv
from torchrl_slots.modules import EntityEncoderModule, SlotTransformerEncoder, make_entity_actor, make_entity_critic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arch_report import cpu_model  # noqa: E402  (a sibling script of this folder)

SETUPS = ("two encoders", "shared", "shared, separate_losses")
KEYS = {"entity_key": FEATURES_KEY, "mask_key": MASK_KEY}


def build(setup: str) -> tuple[ClipPPOLoss, torch.optim.Optimizer, int]:
    torch.manual_seed(0)
    enc = EntityEncoderModule(SlotTransformerEncoder.for_entities(FEATURES), **KEYS)
    actor = make_entity_actor(enc)
    if setup == "two encoders":
        critic = make_entity_critic(SlotTransformerEncoder.for_entities(FEATURES), **KEYS)
    else:
        critic = make_entity_critic(enc)
    loss = ClipPPOLoss(actor, critic, entropy_coeff=0.01, separate_losses=setup == "shared, separate_losses")
    params = list(loss.parameters())
    return loss, torch.optim.Adam(params, lr=1e-4), sum(p.numel() for p in params)


def batch(rows: int, entities: int, loss: ClipPPOLoss) -> TensorDict:
    env = ItemsEnv(rows, entities, min_items=entities, seed=0)
    with torch.no_grad(), set_interaction_type(InteractionType.RANDOM):
        data = loss.actor_network(env.reset())
    g = torch.Generator().manual_seed(1)
    data["advantage"], data["value_target"] = torch.randn(rows, 1, generator=g), torch.randn(rows, 1, generator=g)
    return data


def time_updates(setup: str, rows: int, entities: int, iters: int) -> dict:
    loss, optim, n_params = build(setup)
    data = batch(rows, entities, loss)
    times = []
    for i in range(iters + 2):
        t0 = time.perf_counter()
        out = loss(data)
        total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
        optim.zero_grad(set_to_none=True)
        total.backward()
        optim.step()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    return {
        "setup": setup, "trained_parameters": n_params, "update_ms_median": 1e3 * statistics.median(times),
        "update_ms_min": 1e3 * min(times), "update_ms_max": 1e3 * max(times), "iters": iters,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1024, help="states per update")
    p.add_argument("--entities", type=int, default=20, help="entities per state")
    p.add_argument("--iters", type=int, default=7, help="timed updates per set-up")
    p.add_argument("--json", default="benchmarks/results/bench_entity.json", help="output JSON path ('' = none)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = [time_updates(s, args.rows, args.entities, args.iters) for s in SETUPS]
    report = {
        "machine": {"cpu": cpu_model(), "platform": platform.platform(), "torch": torch.__version__, "threads": 1},
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": args.rows, "entities": args.entities, "encoder": "SlotTransformerEncoder.for_entities(7)",
        "results": results,
    }
    base = results[0]["update_ms_median"]
    print(f"{'setup':<26} {'params':>8} {'median ms':>10} {'min':>8} {'max':>8} {'vs two':>7}")
    for r in results:
        print(f"{r['setup']:<26} {r['trained_parameters']:>8} {r['update_ms_median']:>10.1f} "
              f"{r['update_ms_min']:>8.1f} {r['update_ms_max']:>8.1f} {r['update_ms_median'] / base:>7.2f}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
