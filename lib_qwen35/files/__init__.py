"""Reading and writing files: safetensors checkpoints, safe I/O, the bundled tokenizers, WebUI paths."""
