"""The layering of CONTRIBUTING.md: the core never imports a UI library or a front end; one error tree.
(The size of a module is a guideline in CONTRIBUTING.md, not a test.)"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "paceui"
UI_LIBS = {"textual", "ipywidgets", "IPython"}
LAYERS = {"ace": 0, "data": 1, "fit": 2, "session": 3}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_core_never_imports_ui_libraries():
    offenders = []
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG)
        if rel.parts[0] in ("tui", "notebook"):
            continue
        for mod in _imports(f):
            if mod.split(".")[0] in UI_LIBS:
                offenders.append(f"{rel}: {mod}")
    assert not offenders, offenders


def test_dependencies_point_one_way():
    """ace <- data <- fit <- session: a lower layer never imports a higher one."""
    offenders = []
    for layer, rank in LAYERS.items():
        for f in (PKG / layer).rglob("*.py") if (PKG / layer).exists() else []:
            for mod in _imports(f):
                parts = mod.split(".")
                if parts[0] == "paceui" and len(parts) > 1 and parts[1] in LAYERS and LAYERS[parts[1]] > rank:
                    offenders.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not offenders, offenders


def test_core_never_imports_a_front_end():
    """The notebook and the TUI attach themselves to the core (paceui.session.front_ends); never the reverse."""
    offenders = []
    for f in PKG.rglob("*.py"):
        rel = f.relative_to(PKG)
        if rel.parts[0] in ("tui", "notebook") or rel.name == "cli.py":
            continue
        offenders += [f"{rel}: {mod}" for mod in _imports(f) if mod.startswith(("paceui.tui", "paceui.notebook"))]
    assert not offenders, offenders


def test_every_deliberate_error_is_a_paceui_error():
    """One error tree: each error class of the package derives from PaceuiError (paceui/errors.py)."""
    import paceui.errors as E

    names = [n for n in E.__all__ if n != "PaceuiError"]
    assert names and all(issubclass(getattr(E, n), E.PaceuiError) for n in names)
    defined = [f"{f.relative_to(PKG)}: {node.name}" for f in PKG.rglob("*.py") for node in ast.walk(ast.parse(f.read_text()))
               if isinstance(node, ast.ClassDef) and node.name.endswith("Error") and f.name != "errors.py"
               and not any(isinstance(b, ast.Name) and b.id.endswith("Error") and b.id != "ValueError"
                           and b.id != "RuntimeError" for b in node.bases)]
    assert not defined, defined
