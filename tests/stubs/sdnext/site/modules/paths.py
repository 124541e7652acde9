"""Stand-in for SD.Next's modules/paths.py (models_path: --models-dir or <data-dir>/models)."""

import os

models_path = os.path.join(os.getcwd(), "models")
extensions_dir = os.path.join(os.getcwd(), "extensions")
extensions_builtin_dir = "extensions-builtin"
script_path = os.getcwd()
