"""Stand-in for modules/paths.py: the models root (tests point it at a temporary folder)."""

import os

models_path = os.environ.get("FORGE_STUB_MODELS", os.path.join(os.getcwd(), "models"))
script_path = os.path.dirname(os.path.abspath(__file__))
