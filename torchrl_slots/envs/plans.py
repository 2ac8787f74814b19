"""Fixed germinate-everywhere plans: the upper reference where no oracle exists.

:class:`HostTrainingEnv` has no hidden world to read, so it has no oracle. Its normalisation uses
instead the best of a small grid of fixed plans (:data:`PLAN_GRID`), each "germinate blueprint b
with style s in every free slot (depth order) while an episode has room, advance as soon as the
gates allow with target 1.0, fossilize at once": ``normalized = (score - random) / (best plan -
random)``, all on the same episode seeds. A plan reads only the action masks and the epoch, so it
runs on any lifecycle env.
"""

from __future__ import annotations

import torch
from tensordict import TensorDictBase

from torchrl_slots import layout
from torchrl_slots.envs.reference import MIN_EPOCHS_TO_FOSSILIZE, _ActionWriter, _compose, _first, _legal_slots
from torchrl_slots.layout import Op, Style

#: The plan grid: (blueprint name, style); small on purpose (each plan costs a batch of episodes).
PLAN_GRID: tuple[tuple[str, Style], ...] = (
    ("lora", Style.LINEAR_ADD),
    ("conv_light", Style.LINEAR_ADD),
    ("bottleneck", Style.LINEAR_ADD),
    ("mlp", Style.LINEAR_ADD),
    ("mlp", Style.GATED_GATE),
    ("gated_mlp", Style.LINEAR_ADD),
    ("attention", Style.LINEAR_ADD),
    ("transformer_block", Style.LINEAR_ADD),
)


class PlanPolicy(_ActionWriter):
    """One fixed plan (module docstring). ``PlanPolicy(env, "mlp", Style.LINEAR_ADD)``.

    Examples:
        >>> from torchrl_slots.envs import SeedLifecycleEnv
        >>> env = SeedLifecycleEnv(4, 1, 3, seed=0)
        >>> td = env.rollout(25, PlanPolicy(env, "mlp"), break_when_any_done=False)
        >>> int(td["next", "info", "fossilized"][:, -1].min())  # every slot ends fossilized
        3
    """

    in_keys = [("action_mask", h) for h in layout.HEADS] + [("observation", "base")]

    def __init__(self, env, blueprint: str, style: Style = Style.LINEAR_ADD) -> None:
        super().__init__()
        names = [b.name for b in layout.BLUEPRINTS]
        if blueprint not in names[1:]:
            raise ValueError(f"blueprint must be one of {names[1:]}, got {blueprint!r}")
        self.blueprint, self.style = names.index(blueprint), int(style)
        self.max_epochs = env.config.max_epochs
        rows, cols = layout.grid_ids(env.rows, env.cols)
        self.register_buffer("depth_key", cols * env.rows + rows, persistent=False)

    def act(self, td: TensorDictBase) -> dict[str, torch.Tensor]:
        m = td["action_mask"]
        left = (td["observation", "base"][:, 1] * self.max_epochs).round()  # epochs left
        key = self.depth_key.to(left.device).expand(left.shape[0], -1)
        foss = _legal_slots(m, Op.FOSSILIZE)
        adv = _legal_slots(m, Op.ADVANCE)
        germ = _legal_slots(m, Op.GERMINATE) & (left >= MIN_EPOCHS_TO_FOSSILIZE)[:, None]
        full = torch.full_like(left, len(layout.ALPHA_TARGETS) - 1, dtype=torch.long)
        heads = {"blueprint": torch.full_like(full, self.blueprint), "style": torch.full_like(full, self.style),
                 "alpha_target": full}
        return _compose(td, [
            (foss.any(-1), Op.FOSSILIZE, _first(foss, key), {}),
            (adv.any(-1), Op.ADVANCE, _first(adv, key), {}),
            (germ.any(-1), Op.GERMINATE, _first(germ, key), heads),
        ])
