"""SD.Next's version, as its own `installer.version` dict records it (read, never computed: no git call).

`installer.get_version()` fills it at start-up from git ('updated' date, 'commit', 'branch'); a copy
without git (an archive) keeps "unknown" everywhere.
"""

from __future__ import annotations

from .. import a1111

UNKNOWN = "unknown"


def version() -> str:
    """"2026-07-23 058a7f0, branch master", or "version unknown"."""
    installer = a1111.optional("installer")
    info = getattr(installer, "version", None)
    info = info if isinstance(info, dict) else {}

    def known(value) -> bool:
        return value not in (None, "", UNKNOWN)

    commit = info.get("commit") if known(info.get("commit")) else getattr(installer, "git_commit", None)
    text = " ".join(str(value) for value in (info.get("updated"), commit) if known(value))
    if known(info.get("branch")):
        return ", ".join(part for part in (text, f"branch {info['branch']}") if part)
    return text or "version unknown"
