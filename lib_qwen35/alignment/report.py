"""The alignment report: cosine columns per prompt, their summary per category and overall, and its Markdown."""

from __future__ import annotations

import json

import torch

from ..errors import Qwen35Error
from ..files import safe_io
from .procrustes import apply_alignment

REPORT_JSON = "alignment_report.json"
REPORT_MD = "alignment_report.md"
COLUMNS = (  # (key, heading) of the report's cosine columns
    ("before", "before alignment"),
    ("rotation", "rotation only (strength 0)"),
    ("strength_0.5", "strength 0.5"),
    ("strength_1.0", "strength 1.0"),
    ("calibrated", "strength 1.0 + calibration"),
)


def cosine_columns(x, y, rotation, mean_4b, mean_06b, scale, bias) -> dict[str, torch.Tensor]:
    """Cosine per prompt [N] for every report column (float64)."""
    x, y = x.double(), y.double()
    a = {s: apply_alignment(x, rotation, mean_4b, mean_06b, s) for s in (0.0, 0.5, 1.0)}
    cols = {"before": x, "rotation": a[0.0], "strength_0.5": a[0.5], "strength_1.0": a[1.0],
            "calibrated": a[1.0] * scale + bias}
    return {k: torch.nn.functional.cosine_similarity(v, y, dim=1) for k, v in cols.items()}


def summarise(cos: dict[str, torch.Tensor], categories: list[str]) -> dict:
    """{"overall": {col: {mean, min}, "n": N}, "categories": {cat: {...}}} over the given rows."""
    def block(idx):
        out = {"n": len(idx)}
        for k, _ in COLUMNS:
            v = cos[k][idx]
            out[k] = {"mean": round(v.mean().item(), 6), "min": round(v.min().item(), 6)}
        return out

    cats = sorted(set(categories), key=lambda c: (c not in _CAT_ORDER, _CAT_ORDER.get(c, 0), c))
    return {"overall": block(list(range(len(categories)))),
            "categories": {c: block([i for i, k in enumerate(categories) if k == c]) for c in cats}}


_CAT_ORDER = {c: i for i, c in enumerate(("spatial", "pose", "composition", "character", "environment", "meta",
                                          "multi"))}


def report_markdown(report: dict) -> str:
    meta = report.get("meta", {})
    heads = [h for _, h in COLUMNS]
    lines = []
    if meta.get("synthetic"):
        lines.append("**SYNTHETIC DEMO: random weights, not the real encoders. These numbers say nothing "
                     "about real alignment quality.**\n")
    lines.append(f"Alignment report: cosine between pooled 4B and pooled 0.6B embeddings on the held-out "
                 f"split ({report['counts']['heldout']} of {report['counts']['prompts']} prompts; "
                 f"fitted on {report['counts']['train']}). Each cell: mean / min.\n")
    if meta:
        lines.append(f"Corpus `{meta.get('corpus_id')}`, 4B `{meta.get('encoder_4b_file')}` "
                     f"({meta.get('encoder_4b_hash')}), 0.6B `{meta.get('encoder_06b_file')}` "
                     f"({meta.get('encoder_06b_hash')}), {meta.get('date')}.\n")
    if meta.get("alignment_hash"):
        lines.append(f"Content hashes: alignment `{meta['alignment_hash']}`, "
                     f"calibration `{meta.get('calibration_hash')}` "
                     f"(images made with the files record them; `inspect` prints them).\n")
    if report.get("underdetermined"):
        lines.append("Warning: fewer training prompts than dimensions; the rotation is underdetermined.\n")
    lines.append("| category | n | " + " | ".join(heads) + " |")
    lines.append("|---|---:|" + "---:|" * len(heads))
    rows = list(report["heldout"]["categories"].items()) + [("**overall**", report["heldout"]["overall"])]
    for name, b in rows:
        cells = [f"{b[k]['mean']:.4f} / {b[k]['min']:.4f}" for k, _ in COLUMNS]
        lines.append(f"| {name} | {b['n']} | " + " | ".join(cells) + " |")
    t = report["train"]
    lines.append("")
    lines.append("Training split, for contrast (mean / min): " + ", ".join(
        f"{h} {t[k]['mean']:.4f} / {t[k]['min']:.4f}" for k, h in COLUMNS) + ".")
    return "\n".join(lines) + "\n"


def is_our_report_json(path) -> bool:
    data = json.loads(safe_io.read_text(path, "report", 64 << 20, Qwen35Error))
    return (isinstance(data, dict) and isinstance(data.get("meta"), dict)
            and data["meta"].get("tool") == "lib_qwen35.fit")


def is_our_report_md(path) -> bool:
    first = safe_io.read_text(path, "report", 64 << 20, Qwen35Error).split("\n", 1)[0]
    return first.startswith(("Alignment report:", "**SYNTHETIC DEMO"))
