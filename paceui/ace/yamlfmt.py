"""Low-level YAML helpers shared by the ``.yaml`` and ``.yace`` readers and writers.

Reading uses libyaml when available, keeps timestamps as strings (pacemaker metadata values are
strings) and accepts flow sequences as mapping keys (``.yace`` bonds are keyed by ``[i, j]``).
Writing is a small emitter with exact key order and shortest round-trip floats (``repr``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

_Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Base):  # type: ignore[misc, valid-type]
    """Safe loader: no timestamps, list keys become tuples."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:  # noqa: D102
        if not isinstance(node, yaml.MappingNode):
            return super().construct_mapping(node, deep=deep)
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list):
                key = tuple(key)
            out[key] = self.construct_object(value_node, deep=deep)
        return out


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in res if tag != "tag:yaml.org,2002:timestamp"]
    for ch, res in _Base.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def load_yaml_file(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"file not found: {p}") from None
    except IsADirectoryError:
        raise ValueError(f"{p}: is a folder, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{p}: not a text (YAML) file: byte {exc.start} is not UTF-8 (a binary file?)") from None
    if "\0" in text:
        raise ValueError(f"{p}: not a text (YAML) file: it contains NUL bytes (a binary file?)")
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        why = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"{p}: not valid YAML{at}: {why}") from None


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .:/+\-]*$")


def fmt_scalar(v: Any) -> str:
    """One scalar in YAML flow syntax that reloads to the identical Python value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np_int_types())) and not isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float) or type(v).__name__.startswith("float"):
        f = float(v)
        if math.isnan(f):
            return ".nan"
        if math.isinf(f):
            return ".inf" if f > 0 else "-.inf"
        s = repr(f)
        if "e" in s and "." not in s.split("e")[0]:  # 1e-05 is a string in YAML 1.1: make it 1.0e-05
            mant, exp = s.split("e")
            s = f"{mant}.0e{exp}"
        return s
    s = str(v)
    if _PLAIN.match(s) and not s.endswith(":") and ": " not in s and yaml.load(s, Loader=_Loader) == s:
        return s
    return json.dumps(s, ensure_ascii=False)


def np_int_types() -> tuple[type, ...]:
    import numpy as np

    return (np.integer,)


def fmt_flow(v: Any) -> str:
    """Flow-style YAML for nested lists / dicts of scalars."""
    if isinstance(v, dict):
        return "{" + ", ".join(f"{fmt_scalar(k)}: {fmt_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)) or type(v).__name__ == "ndarray":
        return "[" + ", ".join(fmt_flow(x) for x in v) + "]"
    return fmt_scalar(v)
