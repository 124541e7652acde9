"""The text a text encoder reads of a WebUI prompt: emphasis syntax removed, as the WebUI removes it.

A WebUI turns `(word:1.2)` into the text `word` plus a weight. In Anima the weight acts on the T5 side, so the
Qwen encoder reads the words only. Two emphasis syntaxes are in use, and a third choice keeps the text:

    comfy  ComfyUI's `token_weights` (Forge Neo after 2.26): `(x)` and `(x:1.2)` -> `x`; `\\(` `\\)` -> `(` `)`;
           `[x]` and BREAK are plain text.
    a1111  A1111's `parse_prompt_attention` (Forge Neo 2.26 and earlier): `(x)`, `(x:1.2)` and `[x]` -> `x`;
           `\\(` `\\)` `\\[` `\\]` `\\\\` -> the character; the spaces around BREAK are dropped.
    none   the text as written (a WebUI's Emphasis setting "None").

Both are ports of the WebUIs' parsers reduced to the text they hand on (the weights are dropped);
tests/cli/test_prompt_syntax.py holds them to the Forge Neo engines' recovered text. Prompt editing (`[a:b:0.5]`,
`[a|b]`) is a WebUI's scheduling step before this; here it is plain text.
"""

from __future__ import annotations

import re

from ..errors import InvalidArgumentError, PromptError

SYNTAXES = ("comfy", "a1111", "none")
DEFAULT_SYNTAX = "comfy"


def prompt_text(prompt: str, syntax: str = DEFAULT_SYNTAX) -> str:
    """`prompt` as the text encoder reads it under `syntax` (one of SYNTAXES)."""
    if syntax not in SYNTAXES:
        raise InvalidArgumentError(f"emphasis syntax must be one of {', '.join(SYNTAXES)}; got {syntax!r}")
    if syntax == "comfy":
        return _comfy_text(prompt)
    if syntax == "a1111":
        return _a1111_text(prompt)
    return prompt


# ---- comfy: ComfyUI sd1_clip's escape_important / token_weights / unescape_important ----------------------
_COMFY_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))


def _parse_parentheses(text: str) -> list[str]:
    """Top-level pieces: plain runs and balanced `(...)` groups (an unclosed group runs to the end)."""
    pieces, current, depth = [], "", 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    pieces.append(current)
                current = "("
            else:
                current += char
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(current + ")")
                current = ""
            else:
                current += char
        else:
            current += char
    if current:
        pieces.append(current)
    return pieces


def _comfy_text(prompt: str) -> str:
    text = prompt
    for plain, code in _COMFY_ESCAPES:
        text = text.replace(plain, code)
    _check_depth(text)
    out: list[str] = []
    stack = [iter(_parse_parentheses(text))]     # token_weights' recursion, as a stack of the open groups
    while stack:
        piece = next(stack[-1], None)
        if piece is None:
            stack.pop()
        elif len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
            inner = piece[1:-1]
            colon = inner.rfind(":")
            if colon > 0:
                try:
                    float(inner[colon + 1:])          # "(x:1.2)": the weight goes, with its colon
                    inner = inner[:colon]
                except ValueError:
                    pass
            stack.append(iter(_parse_parentheses(inner)))
        else:
            out.append(piece)
    text = "".join(out)
    for plain, code in _COMFY_ESCAPES:
        text = text.replace(code, plain[1])
    return text


MAX_NESTING = 100        # each level re-reads the group: bounded, so no prompt can stall the parse


def _check_depth(text: str) -> None:
    depth = deepest = 0
    for char in text:
        if char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
    if deepest > MAX_NESTING:
        raise PromptError(f"the prompt nests emphasis brackets {deepest} levels deep; at most {MAX_NESTING} "
                          f"are read. Remove some brackets, or write literal ones as \\( and \\).")


# ---- a1111: A1111's parse_prompt_attention, its text only ---------------------------------------------
_A1111_TOKENS = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)
_A1111_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def _a1111_text(prompt: str) -> str:
    parts: list[str] = []
    open_round = open_square = 0
    for match in _A1111_TOKENS.finditer(prompt):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            parts.append(token[1:])               # an escaped character (a lone backslash disappears)
        elif token == "(":
            open_round += 1
        elif token == "[":
            open_square += 1
        elif weight is not None and open_round:
            open_round -= 1                       # ":1.2)" closes a weighted group
        elif token == ")" and open_round:
            open_round -= 1
        elif token == "]" and open_square:
            open_square -= 1
        else:
            parts.append("BREAK".join(_A1111_BREAK.split(token)))
    return "".join(parts)
