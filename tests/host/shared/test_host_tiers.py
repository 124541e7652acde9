"""The host layer's three tiers, as lib_qwen35/host/__init__.py lists them, held against the code: every module
is listed, and each imports (at the top or inside a function) only its own tier and the tiers listed above it.
So the WebUI packages never import `selection` or a module that asks it, and nothing circles back."""

import ast
from pathlib import Path

from repo import ROOT

import lib_qwen35.host

HOST = ROOT / "lib_qwen35" / "host"


def listed_tiers() -> list[set[str]]:
    """The module names under each of the docstring's tier headings (lines indented by two spaces)."""
    tiers: list[set[str]] = []
    for line in lib_qwen35.host.__doc__.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            tiers.append(set())
        elif line.startswith("    ") and tiers and line.split():
            tiers[-1].add(line.split()[0].rstrip("/"))
    return tiers


def top_name(path: Path) -> str:
    """lib_qwen35/host/forge_neo/engines/base.py -> forge_neo; lib_qwen35/host/placement.py -> placement."""
    return path.relative_to(HOST).with_suffix("").parts[0]


def imported_host_modules(path: Path) -> set[str]:
    """The host modules (their top names) `path` imports, relative or absolute, anywhere in the file."""
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            source = base + (node.module.split(".") if node.module else [])
            names = [source + [a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        found |= {parts[2] for parts in names if parts[:2] == ["lib_qwen35", "host"] and len(parts) > 2}
    return found & {top_name(p) for p in HOST.rglob("*.py")}   # not TITLE, LOG_PREFIX, ...


def test_every_host_module_is_listed_in_one_tier():
    tiers = listed_tiers()
    assert len(tiers) == 3, tiers
    modules = {top_name(p) for p in HOST.rglob("*.py") if p.name != "__init__.py" or p.parent != HOST}
    listed = set().union(*tiers)
    assert modules == listed, f"not listed: {sorted(modules - listed)}; listed but absent: {sorted(listed - modules)}"
    assert sum(len(t) for t in tiers) == len(listed), "a module is listed in two tiers"


def test_imports_go_up_the_tiers_only():
    tiers = listed_tiers()
    tier_of = {name: i for i, tier in enumerate(tiers) for name in tier}
    wrong = []
    for path in sorted(HOST.rglob("*.py")):
        if path == HOST / "__init__.py":
            continue   # the package's public face: TITLE from messages
        me = top_name(path)
        for other in sorted(imported_host_modules(path) - {me}):
            if tier_of[other] > tier_of[me]:
                wrong.append(f"{path.relative_to(ROOT)} (tier {tier_of[me] + 1}) imports {other} (tier {tier_of[other] + 1})")
    assert wrong == []


def test_the_webui_packages_do_not_import_each_other():
    packages = {name for name in listed_tiers()[1] if (HOST / name).is_dir()}
    assert packages == {"forge_neo", "sdnext"}
    for package in packages:
        for path in (HOST / package).rglob("*.py"):
            assert not imported_host_modules(path) & (packages - {package}), path
