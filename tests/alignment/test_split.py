"""The held-out split: deterministic, and independent of the prompts' order."""



from lib_qwen35.alignment.corpus import generate_corpus
from lib_qwen35.alignment.split import heldout_mask


def test_heldout_split_deterministic_and_order_free():
    prompts = generate_corpus(500)
    m = heldout_mask(prompts)
    assert int(m.sum()) == 50
    rev = heldout_mask(prompts[::-1])
    assert {p.text for p, h in zip(prompts, m) if h} == {p.text for p, h in zip(prompts[::-1], rev) if h}
