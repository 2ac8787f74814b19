"""Figures for runs: the learning curve and the encoder's CLS attention on the slot grid.

``matplotlib`` is an optional extra (``pip install 'torchrl_slots[plot]'``); it is imported on
first use, with the Agg backend, so nothing here needs a display.
"""

from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import torch
from tensordict import TensorDictBase

from torchrl_slots.layout import Op


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plots need the optional extra: pip install 'torchrl_slots[plot]'") from err
    return plt


def plot_learning_curve(history: Sequence[Mapping[str, float]], baselines: Mapping[str, Mapping[str, float]],
                        path: str | os.PathLike, *, title: str = "") -> None:
    """Evaluation score and shaped return of the policy over frames, with the reference policies'
    levels (same evaluation episodes) as horizontal lines, and the training episode return."""
    plt = _pyplot()
    evals = [r for r in history if "eval/score" in r]
    train_rows = [r for r in history if math.isfinite(r.get("train/episode_return", float("nan")))]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, base_key, label in ((axes[0], "eval/score", "score", "score (unshaped objective)"),
                                     (axes[1], "eval/return", "return", "shaped return")):
        ax.plot([r["frames"] for r in evals], [r[key] for r in evals], "o-", color="C0", label="policy (eval)")
        if key == "eval/return" and train_rows:
            ax.plot([r["frames"] for r in train_rows], [r["train/episode_return"] for r in train_rows],
                    color="C0", alpha=0.3, label="policy (training episodes)")
        for i, name in enumerate(("oracle", "heuristic", "random", "wait")):
            if name in baselines:
                ax.axhline(baselines[name][base_key], ls="--", color=f"C{i + 1}", label=name)
        ax.set_xlabel("frames")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cls_attention(encoder: torch.nn.Module, td: TensorDictBase) -> torch.Tensor:
    """Last layer's attention from the CLS token to each slot, averaged over heads: ``[*B, N]``.

    ``td`` holds the slot contract keys ``("observation", "slots" | "slot_mask" | "slot_row" |
    "slot_col")``; ``encoder`` is a :class:`~torchrl_slots.modules.SlotTransformerEncoder`.
    """
    obs = td["observation"]
    with torch.no_grad():
        _, _, attn = encoder(obs["slots"], obs["slot_mask"], obs["slot_row"], obs["slot_col"],
                             return_attention=True)  # [*B, L, nh, N+1, N+1]
    return attn[..., -1, :, 0, 1:].mean(-2)  # [*B, N]


def plot_attention(encoder: torch.nn.Module, episode: TensorDictBase, rows: int, cols: int,
                   path: str | os.PathLike, *, steps: Sequence[int] | None = None) -> None:
    """Draw :func:`cls_attention` on the ``rows x cols`` grid for a few steps of one episode
    (``episode`` is ``[T]``); disabled slots are blank, the chosen op/slot is in the title."""
    plt = _pyplot()
    t_len = episode.shape[0]
    steps = list(steps) if steps is not None else sorted({0, t_len // 4, t_len // 2, (3 * t_len) // 4})
    attn = cls_attention(encoder, episode[steps])  # [S, N]
    mask = episode["observation", "slot_mask"][steps]
    fig, axes = plt.subplots(1, len(steps), figsize=(3.2 * len(steps), 1.2 + 1.1 * rows), squeeze=False)
    for ax, a, m, t in zip(axes[0], attn, mask, steps):
        grid = a.masked_fill(~m, float("nan")).reshape(rows, cols).numpy()
        im = ax.imshow(grid, cmap="viridis", vmin=0.0, aspect="equal")
        op = Op(int(episode["action", "op"][t]))
        what = op.name if op == Op.WAIT else f"{op.name} slot {int(episode['action', 'slot'][t])}"
        ax.set_title(f"epoch {t}: {what}", fontsize=8)
        ax.set_xticks(range(cols))
        ax.set_yticks(range(rows))
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("CLS attention over the slot grid (last layer, mean over heads)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
