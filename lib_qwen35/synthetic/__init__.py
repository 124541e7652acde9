"""Synthetic checkpoints: scaled-down (or full-size) random weights in the real files' layouts."""
