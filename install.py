"""Run by Forge at start-up (not with --skip-install): install only what the WebUI lacks.

The extension needs torch (Forge's own; never installed here), safetensors, tokenizers and numpy, which
Forge Neo normally ships already. Nothing is downloaded at run time.
"""

import launch

# import name -> pip requirement
REQUIREMENTS = {
    "safetensors": "safetensors>=0.4",
    "tokenizers": "tokenizers>=0.15",
    "numpy": "numpy",
}

missing = [requirement for name, requirement in REQUIREMENTS.items() if not launch.is_installed(name)]
for requirement in missing:
    launch.run_pip(f'install "{requirement}"', f"{requirement} for the Qwen3.5-4B text encoder (Anima)")
if not missing:
    print("[Qwen3.5 TE] install.py: requirements present")
