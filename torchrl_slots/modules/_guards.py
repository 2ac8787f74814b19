"""When host-side checks can run: not while ``torch.compile`` traces, not inside ``torch.vmap``."""

from __future__ import annotations

import torch


def under_functorch(tensor: torch.Tensor) -> bool:
    """True inside ``torch.vmap`` (or another functorch transform) for ``tensor``: host reads such
    as ``.tolist()``, ``.item()`` or ``bool()`` are impossible there ("Cannot access data pointer
    of Tensor that doesn't have storage"). TorchRL's ``GAE`` runs the value network under vmap
    unless ``deactivate_vmap=True``.

    Examples:
        >>> x = torch.ones(3, 2)
        >>> under_functorch(x), bool(torch.vmap(lambda t: torch.tensor(under_functorch(t)))(x).all())
        (False, True)
    """
    return torch._C._functorch.maybe_get_level(tensor) != -1


def host_checks_possible(*tensors: torch.Tensor) -> bool:
    """False while ``torch.compile`` traces or when any tensor is under a functorch transform."""
    return not torch.compiler.is_compiling() and not any(under_functorch(t) for t in tensors)
