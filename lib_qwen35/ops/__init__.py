"""Kernels, each beside its reference: the CPU FP8 linear, FP8 decode and GEMM, the gated delta rule, and the GPU
fast path (FP8 tensor-core matmul, CUDA graphs). They import nothing of ours but errors."""
