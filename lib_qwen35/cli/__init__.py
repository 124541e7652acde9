"""The command line's commands (python -m lib_qwen35 ...)."""
