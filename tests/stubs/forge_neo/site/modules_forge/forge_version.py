"""Stand-in for modules_forge/forge_version.py."""

version = "neo"
release = "2.26"
