"""The transformers reference model built from our canonical weights (test-time only)."""

import inspect

import torch

# transformers' own torch code for these, which it swaps at import for another package's kernel when that package
# imports (fla for the delta rule, causal_conv1d for the conv), behind a functools.wraps wrapper.
_SWAPPABLE = ("torch_chunk_gated_delta_rule", "torch_recurrent_gated_delta_rule", "causal_conv1d_fn",
              "causal_conv1d_update")


def torch_reference_module():
    """transformers' Qwen3.5 modelling module, running its torch code whatever is installed.

    Where `fla` imports (a GPU machine; fla-core + triton anywhere), transformers routes the delta rule to fla's
    Triton kernels, which fail on CPU tensors and are not the reference anyway. The wrappers keep the torch function
    as `__wrapped__`; the module's names are rebound to it for the rest of the test process (its layers call them
    as module globals)."""
    from transformers.models.qwen3_5 import modeling_qwen3_5 as mod

    for name in _SWAPPABLE:
        fn = getattr(mod, name, None)
        if fn is None:
            continue
        torch_fn = inspect.unwrap(fn)
        if torch_fn.__module__ != mod.__name__ or torch_fn.__name__ != name:
            raise RuntimeError(f"transformers' {name} unwraps to {torch_fn.__module__}.{torch_fn.__name__}, not its "
                               f"torch code; tests/reference.py needs updating for transformers "
                               f"{__import__('transformers').__version__}")
        setattr(mod, name, torch_fn)
    return mod


def transformers_config(cfg, attn_implementation: str = "eager"):
    """A `Qwen3_5TextConfig` with our config's sizes (set by hand: its defaults are not the 4B's)."""
    from transformers import Qwen3_5TextConfig

    tcfg = Qwen3_5TextConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim,
        linear_num_key_heads=cfg.linear_num_key_heads, linear_num_value_heads=cfg.linear_num_value_heads,
        linear_key_head_dim=cfg.linear_key_head_dim, linear_value_head_dim=cfg.linear_value_head_dim,
        linear_conv_kernel_dim=cfg.linear_conv_kernel, rms_norm_eps=cfg.rms_norm_eps, tie_word_embeddings=False,
        layer_types=list(cfg.layer_types),
        rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta,
                         "partial_rotary_factor": cfg.partial_rotary_factor, "mrope_section": [11, 11, 10],
                         "mrope_interleaved": True})
    tcfg._attn_implementation = attn_implementation
    return tcfg


def transformers_model(cfg, weights):
    """A `Qwen3_5TextModel` in fp32 holding `weights` (canonical names, float32).
    For the Anima layout (last layer without MLP, no final norm) the missing MLP is zeroed and the
    final norm replaced by identity, so its last_hidden_state is our pre-head hidden state."""
    Qwen3_5TextModel = torch_reference_module().Qwen3_5TextModel

    tcfg = transformers_config(cfg)
    model = Qwen3_5TextModel(tcfg).float().eval()
    state = {k: v for k, v in weights.items() if not k.startswith("head.")}
    for i in range(cfg.num_layers):
        if i not in cfg.layers_with_mlp:
            state[f"layers.{i}.post_attention_layernorm.weight"] = torch.zeros(cfg.hidden_size)
            for n in ("gate_proj", "up_proj"):
                state[f"layers.{i}.mlp.{n}.weight"] = torch.zeros(cfg.intermediate_size, cfg.hidden_size)
            state[f"layers.{i}.mlp.down_proj.weight"] = torch.zeros(cfg.hidden_size, cfg.intermediate_size)
    if not cfg.has_final_norm:
        model.norm = torch.nn.Identity()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    assert not [m for m in missing if "rotary" not in m], missing
    return model


def reference_head(weights, x, parameterisation="exp"):
    """The projection head written out in float64 from its definition."""
    x = x.double()
    h = x @ weights["head.norm.0.weight"].double().T + weights["head.norm.0.bias"].double()
    w = weights["head.norm.1.weight"].double()
    scale = {"exp": torch.exp(w), "one_plus": 1 + w, "plain": w}[parameterisation]
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6) * scale
    h = torch.nn.functional.silu(h)
    return h @ weights["head.norm.3.weight"].double().T + weights["head.norm.3.bias"].double()
