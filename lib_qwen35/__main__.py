r"""Command line of the Qwen3.5-4B text encoder for Anima: encode, stats, inspect, fit, corpus (lib_qwen35/cli/).

Run it with the WebUI's Python (it has torch). From the WebUI folder:
    venv/bin/python extensions/sd-forge-qwen35-anima/lib_qwen35 inspect models/qwen35/qwen35_4b.safetensors
    .\venv\Scripts\python.exe extensions\sd-forge-qwen35-anima\lib_qwen35 inspect models\qwen35\qwen35_4b.safetensors
or from the extension folder, `python -m lib_qwen35 ...`. A path that starts with models/ means the WebUI's
models folder from both (files/webui_paths.py). Without --weights, encode and stats use a small synthetic
checkpoint (real layout, random weights) and every output says so.
"""

import os
import sys

if __name__ == "__main__" and not __package__:
    # `python path/to/lib_qwen35 ...` runs this file outside its package: put the folder above it first on
    # sys.path (instead of the package folder, whose module names would shadow others) and run it from there.
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from lib_qwen35.cli.main import main
else:
    from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
