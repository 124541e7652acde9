"""The library's architecture, held by tests: imports go one way, and the library never imports the WebUI.

Layers, bottom to top (a module may import its own layer and the ones its rule names, never one above):

    errors       the exception vocabulary every layer raises; imports nothing of ours
    ops/         kernels with their references (CPU and GPU)
    files/       checkpoint reading, safe I/O, the bundled tokenizers, WebUI paths
    model/       the encoders and their parts                     -> ops, files
    synthetic/   synthetic checkpoints in the real layouts         -> model, files
    alignment/   corpus, split, chunk cache, Procrustes, report    -> model, files
    cli/         the command line's commands                      -> alignment, synthetic, model, ops, files
    __main__     dispatches the command lines                      -> cli
    host/        the WebUIs (may import everything above)          -> everything

Every import counts, including those inside functions: a circle closed by a late import is still a circle.
The graph is read from the source with `ast`, so nothing is imported to check it.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from repo import ROOT

PACKAGE = "lib_qwen35"
ALLOWED = {   # layer -> the other layers it may import
    "errors": set(),
    "ops": {"errors"},
    "files": {"errors"},
    "model": {"errors", "ops", "files"},
    "synthetic": {"errors", "model", "files"},
    "alignment": {"errors", "model", "files"},
    "cli": {"errors", "alignment", "synthetic", "model", "ops", "files"},
    "__main__": {"errors", "cli"},
    "host": {"errors", "ops", "files", "model", "synthetic", "alignment", "cli"},
    PACKAGE: set(),   # lib_qwen35/__init__.py: the public names, imported lazily by name (importlib), not by import
}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def import_graph(root: Path) -> dict[str, dict[str, int]]:
    """{module: {imported module of ours: line}} for every module under root/lib_qwen35, every import statement
    (module level or inside a function). `from X import name` counts as an import of X.name when that is a module."""
    files = sorted((root / PACKAGE).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    graph = {}
    for f in files:
        me = module_name(f, root)
        package = me if f.name == "__init__.py" else me.rpartition(".")[0]
        edges = {}
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), str(f))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    while target not in modules and "." in target:   # lib_qwen35.model.encoder.Encoder -> the module
                        target = target.rpartition(".")[0]
                    if target != me:
                        edges.setdefault(target, node.lineno)
        graph[me] = edges
    return graph


def layer_violations(graph) -> list[str]:
    out = []
    for module, edges in sorted(graph.items()):
        mine = layer_of(module)
        for target, line in sorted(edges.items()):
            theirs = layer_of(target)
            if theirs != mine and theirs not in ALLOWED[mine]:
                out.append(f"{module} (line {line}) imports {target}: {mine} may import only "
                           f"{', '.join(sorted(ALLOWED[mine])) or 'nothing of ours'}")
    return out


def import_circles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_every_import_goes_down_the_layers():
    assert layer_violations(import_graph(ROOT)) == []


def test_no_import_circles_not_even_inside_functions():
    assert import_circles(import_graph(ROOT)) == []


def test_every_module_has_a_layer():
    assert {layer_of(m) for m in import_graph(ROOT)} <= set(ALLOWED)


def _planted(tmp_path, relative: str, line: str) -> Path:
    """A copy of the library with `line` appended inside a function of `relative` (an import a reviewer might
    miss)."""
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / PACKAGE, copy / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / PACKAGE / relative
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _planted():\n    {line}\n", encoding="utf-8")
    return copy


def test_a_planted_back_import_is_caught(tmp_path):
    tree = _planted(tmp_path, "ops/cpu_gemm.py", "from ..host import status  # noqa")
    found = sorted(set(layer_violations(import_graph(tree))) - set(layer_violations(import_graph(ROOT))))
    assert len(found) == 1 and found[0].startswith("lib_qwen35.ops.cpu_gemm (line") and \
        "imports lib_qwen35.host.status: ops may import only errors" in found[0], found


def test_a_planted_circle_is_caught(tmp_path):
    tree = _planted(tmp_path, "model/config.py", "from . import encoder  # noqa")
    circles = import_circles(import_graph(tree))
    assert any({"lib_qwen35.model.config", "lib_qwen35.model.encoder"} <= set(c) for c in circles), circles


MODULES = ["lib_qwen35", "lib_qwen35.__main__", "lib_qwen35.model.encoder", "lib_qwen35.alignment.run",
           "lib_qwen35.model.qwen3", "lib_qwen35.alignment.corpus", "lib_qwen35.ops.cuda_graphs",
           "lib_qwen35.ops.fp8_matmul", "lib_qwen35.host.controller", "lib_qwen35.host.fit_tab",
           "lib_qwen35.host.xyz_axes", "lib_qwen35.host.infotext", "lib_qwen35.host.selection",
           "lib_qwen35.host.forge_neo.webui", "lib_qwen35.host.sdnext.webui", "lib_qwen35.host.gradio_parts",
           "lib_qwen35.host.unknown"]


def test_library_imports_no_webui_and_no_transformers():
    """The library never imports the WebUI (gradio, Forge's `modules`) or transformers (a test-time reference
    only): Forge Neo pins a transformers without Qwen3.5, and the library must run outside the WebUI."""
    code = ("import importlib, sys\n"
            f"for m in {MODULES!r}: importlib.import_module(m)\n"
            "from lib_qwen35.host import selection; selection.current()\n"   # detection imports nothing of a WebUI either
            "print(sorted(m for m in ('gradio', 'modules', 'transformers', 'launch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"   # (an unrecognised WebUI is reported on the lines before)

