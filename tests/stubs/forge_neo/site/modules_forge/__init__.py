"""Stand-in for modules_forge/ (Forge's version file)."""
