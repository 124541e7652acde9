"""The encoders: Qwen3.5-4B and the stock Qwen3-0.6B, their layers, the output stage, the caches."""
