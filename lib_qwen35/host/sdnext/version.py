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

    parts = [str(info[key]) for key in ("updated", "commit") if known(info.get(key))]
    commit = getattr(installer, "git_commit", None)
    if not known(info.get("commit")) and known(commit):
        parts.append(str(commit))
    if known(info.get("branch")):
        parts = [" ".join(parts)] if parts else []
        parts.append(f"branch {info['branch']}")
        return ", ".join(parts)
    return " ".join(parts) or "version unknown"
