"""Stand-in for SD.Next's modules/scripts.py: compatibility with extensions that import scripts directly."""

from modules import scripts_manager  # noqa: F401
from modules.scripts_manager import *  # noqa: F401,F403
