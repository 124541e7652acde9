"""The alignment prompt corpus: a deterministic generator, and readers for users' own prompt files.

Seven categories (the product card's): spatial (viewpoints/framing), pose, composition, character,
environment, meta (quality/rating/date tags), multi (complex prompts mixing the others). Every prompt is
written either in Danbooru-tag style ("1girl, from above, ...") or as a natural-language sentence, and
carries its category and style. Generation uses only `random.Random(str seed)` with `randrange`, which is
stable across Python 3.10-3.13; alignment_data/corpus_manifest.json pins the SHA-256 of the output, so a
drift is caught by tests/alignment/test_corpus.py. Changing any word list means bumping CORPUS_VERSION.

Order: round-robin over the categories, so any prefix (`--limit N`) is balanced.

About 400 lines, most of them the generator's word lists: they stay with it, since any change to them changes
the pinned hash.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import random
from dataclasses import dataclass

from ..errors import InvalidArgumentError, PromptError
from ..files import safe_io

CORPUS_VERSION = "anima-align-corpus-v1"
DEFAULT_SIZE = 41277            # the product card's prompt count
MAX_SIZE = 1_000_000            # generating more would take minutes and hold hundreds of MB
MAX_PROMPT_FILE_BYTES = 64 << 20   # the whole built-in corpus as JSON lines is ~6 MB
MAX_PROMPT_CHARS = 100_000         # ~25,000 tokens: far longer than any prompt, short enough to encode
CATEGORIES = ("spatial", "pose", "composition", "character", "environment", "meta", "multi")
STYLES = ("tags", "natural")


@dataclass(frozen=True)
class Prompt:
    text: str
    category: str
    style: str   # "tags" | "natural" | "user"


# ---------------------------------------------------------------------------------------------------------
# Vocabulary: (danbooru tag, natural-language phrase) pairs per category
# ---------------------------------------------------------------------------------------------------------
SUBJECTS = [  # (tag head, natural subject)
    ("1girl, solo", "a girl"), ("1boy, solo", "a boy"), ("2girls", "two girls"), ("2boys", "two boys"),
    ("1girl, 1boy", "a girl and a boy"), ("multiple girls", "a group of girls"), ("1girl, solo, mature female",
    "a grown woman"), ("1boy, solo, old man", "an old man"), ("1girl, solo, elf", "an elf girl"),
    ("1girl, solo, cat girl", "a cat girl"), ("1boy, solo, knight", "a young knight"), ("1girl, solo, witch",
    "a witch"), ("1girl, solo, maid", "a maid"), ("1girl, solo, idol", "an idol singer"), ("1boy, solo, samurai",
    "a samurai"), ("1girl, solo, android", "an android girl"), ("1girl, solo, fox girl", "a fox girl"),
    ("1boy, solo, student", "a schoolboy"), ("1girl, solo, student", "a schoolgirl"), ("no humans, cat",
    "a cat"), ("no humans, dragon", "a dragon"), ("1girl, solo, vampire", "a vampire girl"),
    ("1girl, solo, nun", "a nun"), ("1boy, solo, pilot", "a pilot"), ("1girl, solo, angel", "an angel"),
    ("1girl, solo, demon girl", "a demon girl"), ("1boy, solo, prince", "a prince"), ("1girl, solo, princess",
    "a princess"), ("1girl, solo, adventurer", "a young adventurer"), ("1boy, solo, detective", "a detective"),
]

SPATIAL = [
    ("from above", "seen from above"), ("from below", "seen from below"), ("from side", "seen from the side"),
    ("from behind", "seen from behind"), ("from front", "seen from the front"),
    ("dutch angle", "with a tilted dutch angle"),
    ("pov", "from a first-person point of view"), ("close-up", "in a close-up"), ("wide shot", "in a wide shot"),
    ("full body", "shown full body"), ("upper body", "framed from the waist up"),
    ("cowboy shot", "framed from the thighs up"),
    ("portrait", "as a portrait"), ("profile", "in profile"), ("three-quarter view", "in a three-quarter view"),
    ("looking at viewer", "looking at the viewer"), ("looking back", "looking back over the shoulder"),
    ("looking away", "looking away"), ("looking up", "looking up"), ("looking down", "looking down"),
    ("looking to the side", "looking to the side"), ("fisheye", "through a fisheye lens"),
    ("aerial view", "from an aerial view"), ("low angle", "from a low angle"), ("high angle", "from a high angle"),
    ("bird's-eye view", "from a bird's-eye view"), ("worm's-eye view", "from a worm's-eye view"),
    ("over-the-shoulder shot", "in an over-the-shoulder shot"), ("straight-on", "shot straight on"),
    ("foreshortening", "with strong foreshortening"), ("extreme close-up", "in an extreme close-up"),
    ("head out of frame", "with the head out of frame"), ("feet out of frame", "with the feet out of frame"),
    ("facing viewer", "facing the viewer"), ("facing away", "facing away from the viewer"),
    ("from outside", "seen from outside through a window"), ("reflection", "seen in a reflection"),
    ("panorama", "in a sweeping panorama"), ("very wide shot", "in a very wide shot"),
    ("medium shot", "in a medium shot"),
]

POSE = [
    ("standing", "standing"), ("sitting", "sitting"), ("kneeling", "kneeling"), ("lying", "lying down"),
    ("on back", "lying on the back"), ("on stomach", "lying on the stomach"), ("running", "running"),
    ("jumping", "jumping"), ("walking", "walking"), ("squatting", "squatting"), ("crouching", "crouching"),
    ("leaning forward", "leaning forward"), ("leaning back", "leaning back"), ("arms up", "with both arms raised"),
    ("hands on hips", "with hands on the hips"), ("crossed arms", "with arms crossed"),
    ("peace sign", "making a peace sign"), ("waving", "waving"), ("arm behind head", "with an arm behind the head"),
    ("hand on own chest", "with a hand on the chest"), ("head tilt", "tilting the head"), ("stretching", "stretching"),
    ("dancing", "dancing"), ("fighting stance", "in a fighting stance"), ("holding sword", "holding a sword"),
    ("holding umbrella", "holding an umbrella"), ("reading book", "reading a book"),
    ("sitting on chair", "sitting on a chair"),
    ("on one knee", "down on one knee"), ("outstretched arms", "with outstretched arms"),
    ("reaching out", "reaching out"),
    ("hugging own legs", "hugging the knees"), ("looking over shoulder", "looking over the shoulder"),
    ("hand on own cheek", "resting the cheek on a hand"), ("finger to mouth", "with a finger to the lips"),
    ("salute", "saluting"), ("clenched hands", "with clenched fists"), ("v arms", "with arms in a v"),
    ("sitting on ground", "sitting on the ground"), ("indian style", "sitting cross-legged"),
    ("floating", "floating in the air"),
    ("flying kick", "doing a flying kick"), ("holding cup", "holding a cup"), ("holding phone", "holding a phone"),
    ("carrying bag", "carrying a bag"), ("leaning on wall", "leaning against a wall"), ("sleeping", "sleeping"),
    ("spinning", "spinning around"), ("bowing", "bowing"), ("pointing at viewer", "pointing at the viewer"),
]

COMPOSITION = [
    ("simple background", "on a simple background"), ("white background", "on a white background"),
    ("black background", "on a black background"), ("gradient background", "on a gradient background"),
    ("centered", "centered in the frame"), ("symmetry", "in a symmetrical composition"),
    ("rule of thirds", "following the rule of thirds"), ("negative space", "with lots of negative space"),
    ("cropped", "tightly cropped"), ("split screen", "as a split screen"),
    ("multiple views", "shown from multiple views"),
    ("border", "with a border around the image"), ("letterboxed", "letterboxed"),
    ("frame", "inside a decorative frame"),
    ("vignette", "with a dark vignette"), ("bokeh", "with soft bokeh"),
    ("depth of field", "with a shallow depth of field"),
    ("silhouette", "as a silhouette"), ("backlighting", "backlit"), ("rim lighting", "with rim lighting"),
    ("dramatic lighting", "with dramatic lighting"), ("soft lighting", "in soft light"), ("chromatic aberration",
    "with chromatic aberration"), ("minimalism", "in a minimalist composition"), ("diagonal composition",
    "with a diagonal composition"), ("leading lines", "with leading lines"),
    ("foreground focus", "with the focus on the foreground"),
    ("blurry background", "against a blurry background"), ("motion blur", "with motion blur"),
    ("lens flare", "with lens flare"),
    ("light rays", "with rays of light"), ("high contrast", "in high contrast"),
    ("limited palette", "with a limited palette"),
    ("monochrome", "in monochrome"), ("greyscale", "in greyscale"), ("sepia", "in sepia tones"),
    ("pastel colors", "in pastel colors"),
    ("vibrant colors", "in vibrant colors"), ("comic", "as a comic panel"), ("4koma", "as a four-panel comic"),
    ("character sheet", "as a character sheet"), ("wallpaper", "as a wallpaper"), ("cover page", "as a cover page"),
    ("dynamic composition", "with a dynamic composition"), ("close framing", "with close framing"),
]

CHARACTER = [
    ("long hair", "long hair"), ("short hair", "short hair"), ("medium hair", "shoulder-length hair"),
    ("very long hair", "very long hair"), ("twintails", "twin tails"), ("ponytail", "a ponytail"), ("braid", "a braid"),
    ("bob cut", "a bob cut"), ("blonde hair", "blonde hair"), ("black hair", "black hair"),
    ("brown hair", "brown hair"),
    ("silver hair", "silver hair"), ("red hair", "red hair"), ("blue hair", "blue hair"), ("pink hair", "pink hair"),
    ("green hair", "green hair"), ("white hair", "white hair"), ("purple hair", "purple hair"),
    ("blue eyes", "blue eyes"),
    ("red eyes", "red eyes"), ("green eyes", "green eyes"), ("golden eyes", "golden eyes"),
    ("purple eyes", "purple eyes"),
    ("heterochromia", "eyes of two different colors"), ("smile", "a smile"), ("open mouth", "an open mouth"),
    ("closed eyes", "closed eyes"), ("blush", "a blush"), ("serious", "a serious expression"), ("crying", "tears"),
    ("glasses", "glasses"), ("hat", "a hat"), ("witch hat", "a witch hat"), ("beret", "a beret"),
    ("school uniform", "a school uniform"), ("serafuku", "a sailor uniform"), ("armor", "armor"), ("dress", "a dress"),
    ("hoodie", "a hoodie"), ("jacket", "a jacket"), ("skirt", "a skirt"), ("kimono", "a kimono"), ("suit", "a suit"),
    ("cape", "a cape"), ("animal ears", "animal ears"), ("cat ears", "cat ears"), ("fox tail", "a fox tail"),
    ("pointy ears", "pointy ears"), ("horns", "horns"), ("wings", "wings"), ("halo", "a halo"),
    ("freckles", "freckles"),
    ("scar", "a scar"), ("ahoge", "a single strand of hair sticking up"), ("bangs", "bangs"),
    ("hair ornament", "a hair ornament"),
    ("hair ribbon", "a ribbon in the hair"), ("earrings", "earrings"), ("gloves", "gloves"), ("boots", "boots"),
    ("scarf", "a scarf"), ("necktie", "a necktie"), ("headphones", "headphones"), ("eyepatch", "an eyepatch"),
    ("mask", "a mask"), ("tattoo", "a tattoo"), ("muscular", "a muscular build"), ("tall", "a tall figure"),
    ("dark skin", "dark skin"), ("pale skin", "pale skin"), ("fang", "a small fang"),
    ("heart-shaped pupils", "heart-shaped pupils"),
]

ENVIRONMENT = [
    ("outdoors", "outdoors"), ("indoors", "indoors"), ("forest", "in a forest"), ("city", "in a city"),
    ("street", "on a street"), ("night", "at night"), ("sky", "under a wide sky"), ("cloudy sky", "under a cloudy sky"),
    ("sunset", "at sunset"), ("sunrise", "at sunrise"), ("beach", "on a beach"), ("ocean", "by the ocean"),
    ("mountain", "in the mountains"), ("snow", "in the snow"), ("rain", "in the rain"),
    ("cherry blossoms", "under cherry blossoms"),
    ("autumn leaves", "among autumn leaves"), ("classroom", "in a classroom"), ("bedroom", "in a bedroom"),
    ("cafe", "in a cafe"),
    ("library", "in a library"), ("ruins", "among ruins"), ("castle", "in a castle"), ("desert", "in a desert"),
    ("field", "in a field"), ("flower field", "in a flower field"), ("river", "by a river"), ("lake", "by a lake"),
    ("space", "in outer space"), ("starry sky", "under a starry sky"), ("neon lights", "under neon lights"),
    ("cyberpunk", "in a cyberpunk city"), ("shrine", "at a shrine"), ("train station", "at a train station"),
    ("rooftop", "on a rooftop"), ("underwater", "underwater"), ("cave", "in a cave"), ("garden", "in a garden"),
    ("kitchen", "in a kitchen"), ("bathroom", "in a bathroom"), ("office", "in an office"), ("church", "in a church"),
    ("bridge", "on a bridge"), ("alley", "in a narrow alley"), ("market", "at a market"),
    ("festival", "at a summer festival"),
    ("fireworks", "under fireworks"), ("moon", "under the moon"), ("fog", "in thick fog"),
    ("thunderstorm", "in a thunderstorm"),
    ("waterfall", "by a waterfall"), ("bamboo forest", "in a bamboo forest"), ("grass", "on the grass"),
    ("window", "by a window"),
    ("stage", "on a stage"), ("battlefield", "on a battlefield"), ("spaceship interior", "inside a spaceship"),
    ("train interior", "inside a train"), ("hot spring", "at a hot spring"), ("winter", "in winter"),
    ("summer", "in summer"),
]

META = [
    ("masterpiece", "a masterpiece"), ("best quality", "of the best quality"), ("high quality", "of high quality"),
    ("amazing quality", "of amazing quality"), ("very aesthetic", "very aesthetic"), ("aesthetic", "aesthetic"),
    ("absurdres", "at absurd resolution"), ("highres", "in high resolution"), ("newest", "in the newest style"),
    ("recent", "in a recent style"), ("mid", "in a mid-era style"), ("early", "in an early style"),
    ("old", "in an old style"),
    ("normal quality", "of normal quality"), ("low quality", "of low quality"),
    ("worst quality", "of the worst quality"),
    ("lowres", "in low resolution"), ("jpeg artifacts", "with jpeg artifacts"), ("blurry", "blurry"),
    ("bad anatomy", "with bad anatomy"), ("sketch", "as a sketch"), ("lineart", "as line art"),
    ("watercolor (medium)", "painted in watercolor"), ("oil painting (medium)", "as an oil painting"),
    ("official art", "as official art"), ("traditional media", "in traditional media"), ("pixel art", "as pixel art"),
    ("anime coloring", "with anime coloring"), ("flat color", "in flat colors"), ("cel shading", "with cel shading"),
    ("realistic", "realistic"), ("3d", "rendered in 3d"), ("chibi", "in chibi style"), ("safe", "safe for work"),
    ("general", "for a general audience"), ("score_9", "scored nine"), ("score_8", "scored eight"),
    ("score_7", "scored seven"),
    ("score_6", "scored six"), ("score_5", "scored five"), ("score_4", "scored four"),
    ("highly detailed", "highly detailed"),
    ("detailed background", "with a detailed background"), ("anime screenshot", "as an anime screenshot"),
    ("retro artstyle", "in a retro art style"), ("1990s (style)", "in a 1990s style"),
    ("2000s (style)", "in a 2000s style"),
]
YEARS = [str(y) for y in range(2005, 2026)]

NATURAL_OPENERS = [
    "", "An illustration of ", "A picture of ", "A drawing of ", "An anime image of ", "Artwork showing ",
]


def _pick(rng: random.Random, seq):
    return seq[rng.randrange(len(seq))]


def _sample(rng: random.Random, seq, k: int):
    """k distinct items, order of drawing (randrange only: stable across Python versions)."""
    pool = list(seq)
    return [pool.pop(rng.randrange(len(pool))) for _ in range(min(k, len(pool)))]


def _join_natural(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _sentence(rng, subject: str, clauses: list[str]) -> str:
    opener = _pick(rng, NATURAL_OPENERS)
    s = (opener + subject) if opener else subject[0].upper() + subject[1:]
    return (s + (", " if clauses else "") + ", ".join(clauses) + ".").replace(" ,", ",")


def _meta_tags(rng, k):
    tags = [t for t, _ in _sample(rng, META, k)]
    if rng.randrange(3) == 0:
        tags.append("year " + _pick(rng, YEARS))
    return tags


def _gen_one(rng: random.Random, category: str, style: str) -> str:
    subj_tag, subj_nat = _pick(rng, SUBJECTS)
    if category == "multi":
        groups = [SPATIAL, POSE, COMPOSITION, CHARACTER, ENVIRONMENT]
        chosen = [(g, rng.randrange(1, 3)) for g in _sample(rng, groups, rng.randrange(3, 6))]
        if style == "tags":
            tags = _meta_tags(rng, rng.randrange(1, 4)) + [subj_tag]
            for g, k in chosen:
                tags += [t for t, _ in _sample(rng, g, k)]
            return ", ".join(tags)
        clauses = []
        for g, k in chosen:
            items = [n for _, n in _sample(rng, g, k)]
            clauses.append(("with " + _join_natural(items)) if g is CHARACTER else _join_natural(items))
        meta = _join_natural([n for _, n in _sample(rng, META, rng.randrange(1, 3))])
        return _sentence(rng, subj_nat, clauses) + f" The image is {meta}."
    if category == "meta":
        if style == "tags":
            return ", ".join(_meta_tags(rng, rng.randrange(2, 6)) + [subj_tag])
        meta = _join_natural([n for _, n in _sample(rng, META, rng.randrange(2, 5))])
        return _sentence(rng, subj_nat, []).rstrip(".") + f", {meta}."
    vocab = {"spatial": SPATIAL, "pose": POSE, "composition": COMPOSITION, "character": CHARACTER,
             "environment": ENVIRONMENT}[category]
    items = _sample(rng, vocab, rng.randrange(1, 5))
    if style == "tags":
        return ", ".join([subj_tag] + [t for t, _ in items])
    phrases = [n for _, n in items]
    if category == "character":
        return _sentence(rng, subj_nat, ["with " + _join_natural(phrases)])
    return _sentence(rng, subj_nat, [_join_natural(phrases)])


def check_count(value, name: str = "limit", maximum: int | None = None) -> int:
    """A prompt count: an integer >= 1 (0 is not "all": leave the argument out for that)."""
    try:
        n = operator.index(value)
    except TypeError:
        n = None
    if n is None or isinstance(value, bool) or n < 1 or (maximum is not None and n > maximum):
        upper = f" and at most {maximum:,}" if maximum is not None else ""
        raise InvalidArgumentError(f"{name} must be a whole number >= 1{upper} (leave it out to use all "
                                   f"prompts), got {value!r}")
    return n


def generate_corpus(n: int = DEFAULT_SIZE, version: str = CORPUS_VERSION) -> list[Prompt]:
    """`n` distinct prompts, round-robin over CATEGORIES, half tags / half natural language (per category,
    alternating). Deterministic for a given (n, version); a prefix of a longer corpus equals a shorter one."""
    n = check_count(n, "corpus size", MAX_SIZE)
    if version != CORPUS_VERSION:
        raise PromptError(f"unknown corpus version {version!r}; this library generates {CORPUS_VERSION!r}.")
    rngs = {c: random.Random(f"{version}:{c}") for c in CATEGORIES}
    seen: set[str] = set()
    counts = {c: 0 for c in CATEGORIES}
    out: list[Prompt] = []
    while len(out) < n:
        cat = CATEGORIES[len(out) % len(CATEGORIES)]
        style = STYLES[counts[cat] % 2]
        for _ in range(1000):
            text = _gen_one(rngs[cat], cat, style)
            if text not in seen:
                break
        else:  # pragma: no cover - vocabulary exhausted
            raise PromptError(f"corpus generator ran out of distinct {cat}/{style} prompts at {len(out)}")
        seen.add(text)
        counts[cat] += 1
        out.append(Prompt(text, cat, style))
    return out


def corpus_sha256(prompts: list[Prompt]) -> str:
    """Hash of (category, style, text) of every prompt, in order."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(f"{p.category}\t{p.style}\t{p.text}\n".encode("utf-8"))
    return h.hexdigest()


PROMPT_FILE_RULES = """\
A prompt file is UTF-8 text (a byte-order mark is allowed), at most 64 MiB, no line longer than 100,000
characters. Blank lines and lines whose first non-blank character is # are skipped, in both formats.
  .jsonl  one JSON object per line: {"prompt": "...", "category": "..."}; "text" is read if there is no
          "prompt"; "category" is optional; other fields are ignored.
  other   (.txt, ...) one prompt per line, surrounding spaces removed."""


def read_prompt_lines(path) -> list[str]:
    """The lines of a prompt file: a regular UTF-8 file of at most MAX_PROMPT_FILE_BYTES, no line longer
    than MAX_PROMPT_CHARS (a FIFO, /dev/zero or a binary file is refused before it is read)."""
    path = os.fspath(path)
    text = safe_io.read_text(path, "prompt file", MAX_PROMPT_FILE_BYTES, PromptError,
                             size_fix="Split it into smaller files (one prompt per line).")
    lines = text.removeprefix("\ufeff").splitlines()     # Windows editors may start UTF-8 with a BOM
    for no, line in enumerate(lines, 1):
        if len(line) > MAX_PROMPT_CHARS:
            raise PromptError(f"{path}:{no}: this line is {len(line):,} characters long; a prompt is at most "
                              f"{MAX_PROMPT_CHARS:,}. Is this a prompt file (one prompt per line)? Shorten or "
                              f"remove the line.")
    return lines


def is_jsonl(path) -> bool:
    return os.fspath(path).lower().endswith(".jsonl")


def _skipped(line: str) -> bool:
    """Blank lines and # comments, in every prompt file."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _json_prompt(line: str):
    """The record of a JSON-lines line, or None when the line is not a JSON object."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def read_prompt_file(path: str, default_category: str = "user") -> list[Prompt]:
    """A user's prompts, read by the rules of PROMPT_FILE_RULES (the same for every command)."""
    path = os.fspath(path)
    out: list[Prompt] = []
    for no, line in enumerate(read_prompt_lines(path), 1):
        if _skipped(line):
            continue
        record = _json_prompt(line) if line.lstrip().startswith("{") else None
        if is_jsonl(path):
            text = record.get("prompt", record.get("text")) if record is not None else None
            if record is None or ("prompt" not in record and "text" not in record):
                raise PromptError(f"{path}:{no}: expected a JSON object with a \"prompt\" field (and optional "
                                  f"\"category\"), got {line[:80]!r}. Fix the line, or make it a comment with #.")
            if not isinstance(text, str) or not text.strip():
                raise PromptError(f"{path}:{no}: the prompt is empty or not a string. Fix or remove the line.")
            out.append(Prompt(text.strip(), str(record.get("category") or default_category), "user"))
        elif record is not None and ("prompt" in record or "text" in record):
            raise PromptError(f"{path}:{no}: this line is a JSON object with a \"prompt\" field, but the file is "
                              f"read as plain text (one prompt per line) because its name does not end in "
                              f".jsonl. Rename it to .jsonl.")
        else:
            out.append(Prompt(line.strip(), default_category, "user"))
    if not out:
        raise PromptError(f"{path}: the prompt file holds no prompts (blank lines and lines starting with # "
                          f"are skipped). Add one prompt per line.")
    return out


def load_prompts(prompt_file: str | None = None, limit: int | None = None) -> tuple[list[Prompt], str]:
    """(prompts, corpus id). The built-in corpus unless `prompt_file` is given; `limit` keeps the first N
    (the built-in corpus is round-robin, so its prefixes stay balanced across categories)."""
    limit = None if limit is None else check_count(limit)
    if prompt_file:
        prompts = read_prompt_file(prompt_file)
        if limit:
            prompts = prompts[:limit]
        corpus_id = f"file:{os.path.basename(prompt_file)}:{corpus_sha256(prompts)[:12]}"
    else:
        prompts = generate_corpus(limit or DEFAULT_SIZE)
        corpus_id = f"{CORPUS_VERSION}:{len(prompts)}"
    return prompts, corpus_id


EXPORT_FIELDS = ("prompt", "category", "style")


def _is_export(path) -> bool:
    """A file `write_jsonl` wrote (perhaps edited since): its first record has exactly our fields."""
    first = next((line for line in read_prompt_lines(path) if line.strip()), "")
    record = json.loads(first) if first else None
    return isinstance(record, dict) and set(record) == set(EXPORT_FIELDS)


def check_jsonl_output(path) -> str:
    return safe_io.check_output(path, "prompt file (JSON lines)", ours=_is_export, error=PromptError)


def write_jsonl(prompts: list[Prompt], path: str) -> None:
    """The corpus as a prompt file users can edit and pass back with --prompts (never over a file that is
    not such an export; written atomically)."""
    path = check_jsonl_output(path)
    safe_io.write_text_atomic(path, "".join(json.dumps({"prompt": p.text, "category": p.category, "style": p.style},
                                                       ensure_ascii=False) + "\n" for p in prompts))


def manifest(prompts: list[Prompt]) -> dict:
    """Version, size, hash and per-category/style counts (alignment_data/corpus_manifest.json)."""
    counts: dict = {}
    for p in prompts:
        counts.setdefault(p.category, {}).setdefault(p.style, 0)
        counts[p.category][p.style] += 1
    return {"version": CORPUS_VERSION, "size": len(prompts), "sha256": corpus_sha256(prompts), "counts": counts}
