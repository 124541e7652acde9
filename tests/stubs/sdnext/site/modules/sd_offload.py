"""Stand-in for SD.Next's modules/sd_offload.py: the balanced-offload hook instance (None until a model is
set up in "balanced" mode) and apply_balanced_offload_to_module(module, op, force), recorded here."""

offload_hook_instance = None
calls = []   # (module class name, op, force)


def apply_balanced_offload_to_module(module, op="apply", force: bool = False):
    calls.append((type(module).__name__, op, force))
    return module
