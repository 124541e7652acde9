"""Stand-in for SD.Next's installer.py: the version dict its get_version() fills from git at start-up."""

version = {"app": "sd.next", "updated": "unknown", "commit": "unknown", "branch": "unknown", "url": "unknown", "kanvas": "unknown"}
git_commit = "unknown"
