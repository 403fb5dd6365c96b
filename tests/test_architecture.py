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


def _attributes_of(tree: ast.AST, owner: str) -> set[str]:
    """Attributes read from ``owner`` (a local name) or ``self.<owner>`` in ``tree``."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            v = node.value
            if (isinstance(v, ast.Name) and v.id == owner) or (
                    isinstance(v, ast.Attribute) and v.attr == owner and isinstance(v.value, ast.Name)
                    and v.value.id == "self"):
                out.add(node.attr)
    return out


def test_engine_sees_the_session_only_through_its_host_interface():
    """The engine touches no private of the session and nothing beyond EngineHost (paceui/session/host.py)."""
    from paceui.session.host import EngineHost

    src = (PKG / "session" / "engine.py").read_text()
    assert "session._" not in src and "self.s._" not in src and "s._" not in src.replace("self._", "")
    used = _attributes_of(ast.parse(src), "s")
    allowed = {n for n in dir(EngineHost) if not n.startswith("_")}
    assert used and used <= allowed, f"the engine uses {sorted(used - allowed)} beyond EngineHost"
    assert "paceui.session.session" not in src  # not even for types: the host is the interface


def test_front_ends_do_not_dispatch_on_action_names():
    """No if/elif over action names in the TUI's and the notebook's dispatch: the action table is data."""
    from paceui.session.actions import ACTIONS

    names = {a.name for a in ACTIONS}
    offenders = []
    for rel in ("tui/app.py", "tui/commands.py", "notebook/controls.py", "notebook/dashboard.py"):
        for node in ast.walk(ast.parse((PKG / rel).read_text())):
            if isinstance(node, (ast.If, ast.IfExp)) and isinstance(node.test, ast.Compare):
                consts = [c.value for c in [node.test.left, *node.test.comparators] if isinstance(c, ast.Constant)]
                offenders += [f"{rel}:{node.lineno} compares with {c!r}" for c in consts if c in names]
    assert not offenders, offenders
