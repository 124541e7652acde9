"""Stand-in for backend/args.py: the dynamic_args the Anima engine writes extra params into."""

import types

dynamic_args = types.SimpleNamespace(last_extra_generation_params={})
args = types.SimpleNamespace(cpu=False)
