"""SD.Next's real Anima pipeline code with our seam patch (run with SD.Next's venv python; prints one JSON line).

    python real_pipeline.py SDNEXT_DIR MODEL_DIR REPO_ROOT

Loads pipelines/anima/pipeline.py and modeling_llm_adapter.py from SDNEXT_DIR by path (no SD.Next start-up),
builds AnimaTextToImagePipeline from MODEL_DIR's text_encoder / tokenizer / t5_tokenizer / llm_adapter (the
harness's tiny Anima: real classes, real tokenizers, random weights) and checks, with assert:
- locate() says "anima"; off, with our patch installed, encode_prompt is bit-identical to the unpatched one;
- armed, the LLM adapter receives our states (in the text encoder's dtype), the text encoder ran on one token
  per prompt, the result is [B, 512, 1024]; all-empty prompts stay zeros and never reach our encoder;
- the stand-in's _encode_prompt / encode_prompt (tests/stubs/sdnext) give the real ones' results bit for bit;
- the alignment tab's stock encoder equals the text encoder called alone, per prompt.
"""

import importlib.util
import json
import os
import sys

import torch


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(sdnext_dir, model_dir, repo_root):
    import transformers

    sys.path.insert(0, repo_root)
    real = load(os.path.join(sdnext_dir, "pipelines", "anima", "pipeline.py"), "sdnext_anima_pipeline")
    adapter_mod = load(os.path.join(sdnext_dir, "pipelines", "anima", "modeling_llm_adapter.py"), "modeling_llm_adapter")
    stand_in = load(os.path.join(repo_root, "tests", "stubs", "sdnext", "site", "pipelines", "anima", "pipeline.py"), "stand_in_anima_pipeline")

    te = transformers.Qwen3Model.from_pretrained(os.path.join(model_dir, "text_encoder"), torch_dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(os.path.join(model_dir, "tokenizer"))
    t5 = transformers.AutoTokenizer.from_pretrained(os.path.join(model_dir, "t5_tokenizer"))
    adapter = adapter_mod.AnimaLLMAdapter.from_pretrained(os.path.join(model_dir, "llm_adapter"), torch_dtype=torch.float32)
    pipe = real.AnimaTextToImagePipeline(text_encoder=te, tokenizer=tokenizer, t5_tokenizer=t5, llm_adapter=adapter,
                                         transformer=None, vae=None, scheduler=None)
    cpu, f32 = torch.device("cpu"), torch.float32
    prompts = ["1girl, solo, cat ears, looking at viewer, masterpiece", "worst quality"]
    negatives = ["lowres", ""]

    from lib_qwen35.host import active_state
    from lib_qwen35.host.sdnext import detection, seam, stop
    from lib_qwen35.host.sdnext.stock_encoder import SDNextStockEncoder

    results = {}
    with torch.no_grad():
        stock = pipe.encode_prompt(prompts, negatives, do_classifier_free_guidance=True, device=cpu)
        for name in ("_encode_prompt", "encode_prompt"):   # the stand-in's methods on the real pipeline object
            want = getattr(real.AnimaTextToImagePipeline, name)
            got = getattr(stand_in.AnimaTextToImagePipeline, name)
            args = (pipe, prompts, cpu, f32) if name == "_encode_prompt" else (pipe, prompts, negatives)
            a, b = want(*args), got(*args)
            a, b = (a if isinstance(a, tuple) else (a,)), (b if isinstance(b, tuple) else (b,))
            assert all(torch.equal(x, y) for x, y in zip(a, b)), f"the stand-in's {name} differs from SD.Next's"
        results["stand_in_matches"] = True

        located = detection.locate(pipe)
        assert located.kind == "anima" and located.owner is real.AnimaTextToImagePipeline, located
        seam.install(located)
        off = pipe.encode_prompt(prompts, negatives, do_classifier_free_guidance=True, device=cpu)
        assert all(torch.equal(x, y) for x, y in zip(stock, off)), "off is not stock bit for bit"
        results["off_bit_identical"] = True

        seen, sources = [], []

        def encode(texts, pad_to_longest=False, max_tokens=None):
            seen.append(list(texts))
            length = max(3 + len(t) % 5 for t in texts)
            return [torch.full((length, 1024), float(i + 1) / 8) for i, _ in enumerate(texts)]

        handle = pipe.llm_adapter.register_forward_pre_hook(lambda m, a, k: sources.append(k["source_hidden_states"].clone()), with_kwargs=True)
        te_inputs = []
        te_handle = te.embed_tokens.register_forward_pre_hook(lambda m, a: te_inputs.append(tuple(a[0].shape)))   # what Qwen3 computed on
        active_state.arm(encode)
        try:
            on = pipe.encode_prompt(prompts, negatives, do_classifier_free_guidance=True, device=cpu)
            empty = pipe._encode_prompt(["", " "], cpu, f32)
        finally:
            active_state.disarm()
            handle.remove()
            te_handle.remove()
        assert seen == [prompts, negatives], seen   # the negatives' "" rides along in a batch with a non-empty one
        assert len(sources) == 2 and sources[0].dtype == te.dtype and torch.equal(sources[0][1], torch.full_like(sources[0][1], 0.25))
        assert te_inputs == [(2, 1), (2, 1)], te_inputs   # the stock Qwen3 ran on one token per prompt
        assert on[0].shape == (2, 512, 1024) and not torch.equal(on[0], stock[0]) and not torch.equal(on[1], stock[1])
        assert torch.equal(empty, torch.zeros(2, 512, 1024)) and len(seen) == 2
        results["armed_reaches_adapter"] = True
        results["empty_prompts_stay_zeros"] = True
        assert stop.seam_runs() >= 3

        wrapper = SDNextStockEncoder(pipe, identity="contract")
        ids = [wrapper.tokenize(p) for p in prompts + [""]]
        assert ids[0] == tokenizer(prompts[0])["input_ids"] and ids[2] == [151643], ids
        rows = wrapper.encode_batch(ids)
        for row, out in zip(ids, rows):
            alone = te(input_ids=torch.tensor([row]), attention_mask=torch.ones(1, len(row), dtype=torch.long)).last_hidden_state[0]
            assert torch.allclose(out, alone.float(), atol=1e-5), "the stock encoder's batch differs from each prompt alone"
        results["stock_encoder_matches"] = True
        results["restored"] = seam.restore_all() + stop.restore_all()
    print(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:4])
