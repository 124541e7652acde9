"""The emphasis syntaxes the command line strips (lib_qwen35/cli/prompt_syntax.py) hand the encoder the same text
as Forge Neo's two generations of Anima's text engine: known answers from the real engines, and random
prompts against the stand-in parsers (tests/stubs/forge_neo, held against the real Forge files by
tests/live/test_forge_neo_contract.py)."""

import random
import time

import pytest

from stubs.forge_neo import installed

from lib_qwen35.cli.prompt_syntax import SYNTAXES, prompt_text
from lib_qwen35.errors import InvalidArgumentError, PromptError

# What the real engines hand our encoder (tests/live/test_forge_neo_contract.py's RECOVERED, Emphasis "Original").
KNOWN = [
    ("1girl, (masterpiece:1.2), [blurry], looking at viewer",
     "1girl, masterpiece, [blurry], looking at viewer", "1girl, masterpiece, blurry, looking at viewer"),
    ("", "", ""),
    ("a cat BREAK a dog, 日本語, ✨", "a cat BREAK a dog, 日本語, ✨", "a catBREAKa dog, 日本語, ✨"),
    ("((deep)) \\(literal\\) [a:b:0.5]", "deep (literal) [a:b:0.5]", "deep (literal) a:b:0.5"),
]


@pytest.mark.parametrize("prompt, comfy, a1111", KNOWN)
def test_known_answers_of_the_real_engines(prompt, comfy, a1111):
    assert prompt_text(prompt, "comfy") == comfy
    assert prompt_text(prompt, "a1111") == a1111
    assert prompt_text(prompt, "none") == prompt


def _stand_in_texts(prompts):
    """The text each stand-in engine generation recovers: the legacy parser's segments joined, and the
    rewritten engine's SDTokenizer run with a character-level tokenizer and decoded."""
    with installed():
        from backend.text_processing import _comfy, parsing

        def char_tokenizer(text):
            return {"input_ids": [ord(c) for c in text] + [0]}      # 0: the "end" id, stripped per segment

        tokenizer = _comfy.SDTokenizer(char_tokenizer, has_start_token=False, pad_to_max_length=False,
                                       max_length=_comfy.INF)
        out = []
        for prompt in prompts:
            try:
                legacy = "".join(text for text, _ in parsing.parse_prompt_attention(prompt, "Original"))
            except ValueError:          # "(a:1.2.3)": A1111's float() fails, in the WebUI too
                legacy = None
            ids = [t for t, _ in tokenizer.tokenize_with_weights(prompt)[0]][:-1]    # drop the end id
            out.append(("".join(chr(t) for t in ids), legacy))
        return out


def test_random_prompts_match_the_stand_in_engines():
    rng = random.Random(16)
    alphabet = ["a", "b", " ", ",", "(", ")", "[", "]", ":", "1.2", "0.5", "\\", "\\(", "\\)", "BREAK", " BREAK ",
                "x:y", ":-1", "日", "é", "(a:1.2)", "(b)", ":1.5)", "(x:y)", "(:1)", "(a: 0.8 )", "[c]", "((", "))"]
    prompts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 24))) for _ in range(3000)]
    expected = _stand_in_texts(prompts)
    for prompt, (comfy, legacy) in zip(prompts, expected):
        assert prompt_text(prompt, "comfy") == comfy, prompt
        assert legacy is None or prompt_text(prompt, "a1111") == legacy, prompt


def test_unknown_syntax_names_the_choices():
    with pytest.raises(InvalidArgumentError, match="comfy, a1111, none"):
        prompt_text("x", "forge")
    assert SYNTAXES == ("comfy", "a1111", "none")


def test_deep_nesting_is_refused_quickly_instead_of_stalling():
    start = time.perf_counter()
    with pytest.raises(PromptError, match="levels deep"):
        prompt_text("(" * 50_000 + "x" + ")" * 50_000, "comfy")
    assert prompt_text("(" * 100 + "x" + ")" * 100, "comfy") == "x"
    assert prompt_text("(" * 50_000 + "x" + ")" * 50_000, "a1111") == "x"      # linear: no limit needed
    assert time.perf_counter() - start < 5
