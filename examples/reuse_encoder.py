"""Reuse the Slot Transformer encoder and pointer head in another TorchRL env, trained with PPO.

The env (``torchrl_slots.envs.items.ItemsEnv``) is a one-step bandit over a variable set of
items: each has 7 features (x, y, quality, 4 distractors) and is worth its own quality plus the
qualities of the valid items within ``--radius``. No Esper action heads, no grid positions: an
encoder from ``SlotTransformerEncoder.for_entities`` (no positions) reads the items, a pointer on
its CLS picks one (``make_entity_actor``), a second encoder + MLP is the critic
(``make_entity_critic``), and TorchRL's ``Collector`` + ``GAE`` + ``ClipPPOLoss`` train them. The
pair is saved with ``save_entity_policy`` (config, weights, checksum) and loaded back with
``load_entity_policy``; the reloaded greedy policy is scored on fresh episodes against random
picks, the best one-item rule ("highest own quality") and the oracle, with ``--num-items`` and,
zero-shot, with ``--eval-items``.

    python examples/reuse_encoder.py                       # ~2 min on a busy 2-core CPU
    python examples/reuse_encoder.py --total-frames 20000  # a quick look
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass, field

import torch
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.collectors import Collector
from torchrl.modules import ProbabilisticActor
from torchrl.objectives import ClipPPOLoss
from torchrl.objectives.value import GAE

from torchrl_slots.envs.items import FEATURES, FEATURES_KEY, MASK_KEY, ItemsEnv
from torchrl_slots.modules import (
    SlotTransformerEncoder,
    load_entity_policy,
    make_entity_actor,
    make_entity_critic,
    save_entity_policy,
)


@dataclass
class Args:
    seed: int = field(default=0, metadata={"help": "seed of torch, the training env and the eval episodes"})
    total_frames: int = field(default=131_072, metadata={"help": "env steps (= episodes) to train on"})
    num_envs: int = field(default=256, metadata={"help": "parallel envs in the batched env"})
    frames_per_batch: int = field(default=2048, metadata={"help": "frames per collected batch"})
    num_items: int = field(default=12, metadata={"help": "item slots per training episode"})
    eval_items: int = field(default=32, metadata={"help": "item slots for the zero-shot evaluation"})
    radius: float = field(default=0.6, metadata={"help": "neighbourhood radius of an item's value"})
    embed_dim: int = field(default=32, metadata={"help": "encoder width D"})
    num_layers: int = field(default=2, metadata={"help": "transformer blocks per encoder"})
    lr: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    epochs: int = field(default=4, metadata={"help": "PPO epochs per batch"})
    minibatch_size: int = field(default=512, metadata={"help": "PPO minibatch size"})
    clip_epsilon: float = field(default=0.2, metadata={"help": "PPO clip range"})
    entropy_coeff: float = field(default=0.01, metadata={"help": "entropy bonus"})
    eval_episodes: int = field(default=4096, metadata={"help": "episodes per evaluation"})
    log_every: int = field(default=10, metadata={"help": "print every this many batches"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (0: torch's default)"})
    save_path: str = field(default="runs/reuse_encoder/entity_policy.pt",
                           metadata={"help": "where the trained actor and critic are saved"})


def parse_args(argv: list[str] | None) -> Args:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(Args):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                       help=f.metadata["help"])
    return Args(**vars(p.parse_args(argv)))


def make_encoder(args: Args) -> SlotTransformerEncoder:
    return SlotTransformerEncoder.for_entities(FEATURES, embed_dim=args.embed_dim, num_heads=2,
                                               num_layers=args.num_layers)


@torch.no_grad()
def evaluate(actor: ProbabilisticActor, num_items: int, args: Args) -> dict[str, float]:
    """Mean return of the greedy actor, random picks, the best one-item rule and the oracle."""
    env = ItemsEnv(args.eval_episodes, num_items, radius=args.radius, seed=args.seed + 10_000)
    td = env.reset()
    values, mask = env.values(), td[MASK_KEY]  # [E, N] each
    with set_interaction_type(InteractionType.DETERMINISTIC):
        picked = actor(td)["action"]  # [E]
    quality = td[FEATURES_KEY][..., 2].masked_fill(~mask, float("-inf"))  # [E, N]
    return {
        "learned": values.gather(-1, picked[:, None]).mean().item(),
        "random": (values.masked_fill(~mask, 0.0).sum(-1) / mask.sum(-1)).mean().item(),
        "best_rule": values.gather(-1, quality.argmax(-1, keepdim=True)).mean().item(),
        "oracle": values.max(-1).values.mean().item(),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    env = ItemsEnv(args.num_envs, args.num_items, radius=args.radius, seed=args.seed)

    keys = {"entity_key": FEATURES_KEY, "mask_key": MASK_KEY}
    actor = make_entity_actor(make_encoder(args), **keys, key_dim=args.embed_dim)
    critic = make_entity_critic(make_encoder(args), **keys, num_cells=(args.embed_dim,))
    # No recurrent state: opt out of the collector's InitTracker auto-registration (and its warning).
    collector = Collector(env, actor, frames_per_batch=args.frames_per_batch, total_frames=args.total_frames,
                          auto_register_policy_transforms=False)
    # deactivate_vmap: vmap has no batching rule for CPU flash attention (slow fallback, a warning).
    advantage = GAE(gamma=1.0, lmbda=1.0, value_network=critic, average_gae=True, deactivate_vmap=True)
    loss_fn = ClipPPOLoss(actor, critic, clip_epsilon=args.clip_epsilon, entropy_coeff=args.entropy_coeff)
    optim = torch.optim.Adam(loss_fn.parameters(), lr=args.lr)

    start, frames, train_return = time.perf_counter(), 0, float("nan")
    for i, data in enumerate(collector):
        frames += data.numel()
        train_return = data["next", "reward"].mean().item()
        with torch.no_grad():
            advantage(data)
        flat = data.reshape(-1)
        for _ in range(args.epochs):
            for idx in torch.randperm(flat.numel()).split(args.minibatch_size):
                out = loss_fn(flat[idx])
                loss = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                optim.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(loss_fn.parameters(), 1.0)
                optim.step()
        if i % args.log_every == 0:
            sps = frames / (time.perf_counter() - start)
            print(f"frames {frames:>7}  charts/episodic_return {train_return:6.3f}  "
                  f"losses/entropy {out['entropy'].mean().item():.3f}  SPS {sps:.0f}")
    collector.shutdown()
    seconds = time.perf_counter() - start

    save_entity_policy(args.save_path, actor, critic)
    loaded = load_entity_policy(args.save_path)
    probe = ItemsEnv(256, args.eval_items, radius=args.radius, seed=args.seed + 20_000).reset()
    logits = ("params", "entity", "logits")
    with torch.no_grad():
        diff = (loaded.actor.module[0](probe.clone())[logits] - actor.module[0](probe.clone())[logits]).abs().max()
    print(f"saved to {args.save_path}; reloaded logits differ by at most {diff.item():.2g}")

    results = {"frames": float(frames), "seconds": seconds, "final_train_return": train_return,
               "reload_max_abs_diff": diff.item()}
    for prefix, n in (("train", args.num_items), ("eval", args.eval_items)):
        scores = evaluate(loaded.actor, n, args)
        results.update({f"{prefix}_{k}": v for k, v in scores.items()})
        print(f"{n:>3} items ({prefix}): learned {scores['learned']:.3f}  random {scores['random']:.3f}  "
              f"best rule {scores['best_rule']:.3f}  oracle {scores['oracle']:.3f}")
    print(f"trained on {frames} frames in {seconds:.1f} s")
    return results


if __name__ == "__main__":
    main()
