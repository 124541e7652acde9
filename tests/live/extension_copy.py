"""The extension as a user installs it, for the real-host tests: a git clone of this checkout (so it has an origin
remote, as installed from a URL) plus the working tree's uncommitted and untracked files."""

import os
import shutil
import subprocess

from repo import ROOT

REPO_ROOT = str(ROOT)


def installed_copy(dest) -> str:
    """A git clone of this checkout (so it has an origin remote, as installed from a URL) plus the
    working tree's uncommitted and untracked files."""
    subprocess.run(["git", "clone", "-q", REPO_ROOT, dest], check=True)
    files = subprocess.run(["git", "-C", REPO_ROOT, "ls-files", "-com", "--exclude-standard"], check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in sorted(set(files)):
        source = os.path.join(REPO_ROOT, name)
        if os.path.isfile(source):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(source, os.path.join(dest, name))
    return dest
