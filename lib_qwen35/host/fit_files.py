"""Where an alignment fit started in the tab writes, and how its files reach the pickers.

    output:  models/qwen35/<name>/rotation_<name>.safetensors, calibration_<name>.safetensors and the report;
             the pickers search models/qwen35/ and list files by base name, so the names are unique per fit
    cache:   models/qwen35_fit_cache/<name>/, outside the pickers' folders (its chunk files would otherwise be
             offered as weights)

Before the fit: the folders can be written, and no file it will write is the weights file or a file this tool
did not write. After it: `run_fit`'s fixed file names are renamed to the per-fit ones (checked again: the fit
took a while).
"""

from __future__ import annotations

import os

from lib_qwen35.alignment.report import report_markdown
from lib_qwen35.alignment.run import check_request
from lib_qwen35.errors import Qwen35Error
from lib_qwen35.files.checkpoint import written_by_us
from lib_qwen35.files.safe_io import check_output, check_writable_folder

from . import file_locator, messages, selection

FIT_CACHE_FOLDER = "qwen35_fit_cache"   # models/qwen35_fit_cache/<name>/


def folders(name: str) -> tuple[str, str]:
    """(output folder, embedding-cache folder) of the fit called `name`."""
    return (os.path.join(file_locator.dedicated_dir(), name),
            os.path.join(selection.current().models_path(), FIT_CACHE_FOLDER, name))


def output_names(name: str) -> tuple[str, str]:
    """Picker names of a fit's two files: unique per fit, because the pickers list files by base name."""
    return f"rotation_{name}.safetensors", f"calibration_{name}.safetensors"


def check_writable(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        check_writable_folder(folder, "fit's files")
    except (OSError, Qwen35Error) as error:
        raise messages.fit_tab_error(
            f"cannot write to the output folder {folder}: {getattr(error, 'strerror', None) or error}. Fix: "
            f"check the folder's permissions and free disk space, or choose another output name.") from error


def check_outputs(out_dir: str, name: str, weights_path: str, batch_size: int, limit) -> None:
    """Before the fit: every file it will write may be written (none is the weights file, none is a file
    this tool did not write), and its numbers are valid."""
    try:
        check_request(out_dir, batch_size=batch_size, limit=limit, inputs=[("4B weights file", weights_path)])
        for file_name in output_names(name):
            check_output(os.path.join(out_dir, file_name), "alignment file", ours=written_by_us,
                         inputs=[("4B weights file", weights_path)])
    except Qwen35Error as error:
        raise messages.fit_tab_error(f"{error} (output name {name!r}; choosing another name also fixes it)") from error


def publish(result, name: str) -> tuple[str, str]:
    """Rename run_fit's fixed file names to the per-fit names the pickers can tell apart (checked again:
    the fit took a while)."""
    names = output_names(name)
    for source, file_name in zip((result.rotation_path, result.calibration_path), names):
        target = check_output(os.path.join(result.out_dir, file_name), "alignment file", ours=written_by_us)
        os.replace(source, target)
    return names


def report(result, names, cache_dir) -> str:
    """The tab's report: the fit's own, then where its files and its cache are and how long it took."""
    meta = result.report.get("meta", {})
    speed = meta.get("encodings_per_second")
    lines = [report_markdown(result.report), "",
             (f"Files in `{result.out_dir}`: `{names[0]}` (hash `{meta.get('alignment_hash')}`), `{names[1]}` (hash "
              f"`{meta.get('calibration_hash')}`), `{os.path.basename(result.report_md)}`, "
              f"`{os.path.basename(result.report_json)}`. Share the two files with the report."),
             (f"Embedding time {meta.get('embed_seconds')} s "
              f"({meta.get('encodings_computed')} prompt encodings computed"
              + (f", {speed}/s" if speed else "") + f", {meta.get('encodings_from_cache')} from the cache)."),
             f"The embedding cache `{cache_dir}` lets a later run resume or refit; delete it when you are done."]
    return "\n".join(lines)
