"""How ``policy_v1_{arch}.pt`` and ``policy_v1_outputs.pt`` were made (kept for the record).

Run once, before SlotPolicy's state_dict had one key per tensor: those files hold the old layout,
in which every tensor also appears under the TensorDict wrappers' names (``actor.module.0...``,
``trunk.module.0...``, ``value_network...``). Rerunning it now writes files in the current layout,
so do not rerun it to refresh them; ``tests/test_policy_old_format.py`` checks that they still load.

    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/data/make_policy_v1_files.py
"""

from pathlib import Path

import torch
from tensordict.nn import InteractionType, set_interaction_type
from torchrl.envs import Compose, TransformedEnv

from torchrl_slots.envs import SeedLifecycleEnv
from torchrl_slots.policy import PolicyConfig, create_policy

TINY = PolicyConfig(embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, feature_dim=16, lstm_hidden=16,
                    key_dim=8, op_embed_dim=8, max_rows=2, max_cols=5)
HERE = Path(__file__).parent


def main() -> None:
    torch.set_num_threads(1)
    outputs = {}
    for arch in ("transformer", "lstm"):
        torch.manual_seed(0)
        base = SeedLifecycleEnv(2, 1, 3, seed=0)
        policy = create_policy(arch, base, TINY)
        env = TransformedEnv(base, Compose(*policy.transforms()))
        with torch.no_grad():
            steps = env.rollout(5, policy.actor, break_when_any_done=False)
        inputs = steps.select("observation", "action_mask", "is_init", "recurrent_state_h", "recurrent_state_c")
        with torch.no_grad(), set_interaction_type(InteractionType.DETERMINISTIC):
            acted = policy.actor(inputs.clone())
            value = policy.value_network(inputs.clone())["state_value"]
        policy.save(HERE / f"policy_v1_{arch}.pt")
        outputs[arch] = {
            "inputs": inputs.to_dict(),
            "params": acted["params"].to_dict(),
            "action": acted["action"].to_dict(),
            "state_value": value,
            "state_dict_keys": list(policy.state_dict().keys()),
        }
    torch.save(outputs, HERE / "policy_v1_outputs.pt")


if __name__ == "__main__":
    main()
