"""Which alignment or calibration file a pasted infotext means: by its name, checked by its content hash; else the
file with that hash under any name. The result's note is what the accordion's status says while the picker holds
the pasted value (and, for anything but a plain match, a console line: the Forge API's `infotext` has no status).

    outcome    the picker gets                      why
    match      the named file (or its NAME [HASH])   a file of that name holds the image's contents
    unchecked  the name                             an infotext of an earlier version: no hash to check
    by_hash    the file with the image's contents   the name is missing here or holds other contents
    differs    the name                             no file has the image's contents: the image will differ
    missing    the name                             neither the name nor the contents are here: the generation stops
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading

from . import file_locator, messages

HASH_RE = re.compile(r"^[0-9a-f]{10}$")


def normalise_hash(value) -> str | None:
    """The infotext's hash as 10 lower-case hex digits. SD.Next's parser turns digit-only values into numbers
    (its modules/infotext.py): 123456789 -> "0123456789". Anything that is not a hash -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value:010d}" if 0 <= value < 10 ** 10 else None
    if isinstance(value, float):   # "1e5"-like digits never reach here as floats: their text has no '.'
        return None
    text = str(value).strip().lower()
    return text if HASH_RE.match(text) else None


@dataclasses.dataclass(frozen=True)
class PastedFile:
    kind: str                 # "alignment" | "calibration"
    name: str | None          # what the infotext names
    wanted: str | None        # its content hash (None: an infotext of an earlier version)
    value: str | None         # what the picker gets: a picker name ("NAME" or "NAME [HASH]"), or `name`
    outcome: str              # match | unchecked | by_hash | differs | missing
    here: str | None = None   # the content hash of the same-named file here (by_hash / differs)


def resolve(kind: str, name: str | None, wanted: str | None, candidates=None, hash_of=None) -> PastedFile:
    """candidates: the picker's files (file_locator.FoundFile; a same-named copy as "NAME [HASH]"); hash_of(path):
    its content hash. Both default to the files the WebUI offers now; the real-host tests pass their own."""
    if candidates is None:
        candidates, hash_of = file_locator.output_stage_candidates(kind, _extra_dirs())
    base = os.path.basename(name) if name else None
    same = [f for f in candidates if base and os.path.basename(f.path) == base]
    if wanted is None:
        return PastedFile(kind, name, None, same[0].name if same else name, "unchecked" if same else "missing")
    for found in same:
        if hash_of(found.path) == wanted:
            return PastedFile(kind, name, wanted, found.name, "match")
    here = hash_of(same[0].path) if same else None
    for found in candidates:       # in picker order: the first file with the image's contents
        if hash_of(found.path) == wanted:
            return PastedFile(kind, name, wanted, found.name, "by_hash", here)
    return PastedFile(kind, name, wanted, name, "differs" if same else "missing", here)


def _extra_dirs():
    from . import ext_settings

    return ext_settings.read().search_dirs


# ---- the notes the status shows after a paste ---------------------------------------------------------------

_lock = threading.Lock()
_notes: dict[str, tuple[str | None, str]] = {}   # kind -> (picker value, note); one process, as status.py's state


def record(result: PastedFile) -> None:
    """Remember what to say while the picker holds `result.value` (replacing this kind's previous note)."""
    note = messages.paste_note(result)
    with _lock:
        if note:
            _notes[result.kind] = (result.value, note)
        else:
            _notes.pop(result.kind, None)
    if result.outcome in ("by_hash", "differs", "missing"):
        messages.console(note)


def forget(kind: str) -> None:
    """A paste whose infotext has this stage off: no note."""
    with _lock:
        _notes.pop(kind, None)


def notes_for(values: dict) -> list[str]:
    """The notes whose pasted value the pickers still hold ({kind: picker value, or None when the stage is off})."""
    with _lock:
        return [note for kind, (value, note) in _notes.items()
                if values.get(kind) is not None and values[kind] == value]


def reset() -> None:
    with _lock:
        _notes.clear()
