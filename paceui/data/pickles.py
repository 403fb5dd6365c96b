"""Restricted unpickler for pacemaker dataframes (``.pckl.gzip``, ``.pkl.gzip``, plain pickles).

Pickle files can run arbitrary code when loaded.  This unpickler resolves only an explicit
allow-list of globals (pandas frames, numpy arrays, ase Atoms and their single-point
calculators, a few builtins) and maps the legacy classes written by old pyace / pandas
(``DataFrameWithMetadata``, ``Int64Index`` ...) onto current pandas.  Any other global raises
:class:`UnsafePickleError` before anything is called.  The allow-list was built by listing
the globals of the reference datasets with ``pickletools``.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from pandas.compat.pickle_compat import Unpickler as _PandasUnpickler

from paceui.errors import UnsafePickleError

__all__ = ["ALLOWED_GLOBALS", "LEGACY_DROP_COLUMNS", "UnsafePickleError", "dumps_portable", "read_pickle_frame"]

#: neighbour-list columns written by pyace / tensorpotential; meaningless without them
LEGACY_DROP_COLUMNS: tuple[str, ...] = ("atomic_env", "tp_atoms")


class _LegacyStub:
    """Stand-in for pyace C++ objects (``ACEAtomicEnvironment``); its state is discarded."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _numpy_names(*names: str) -> set[tuple[str, str]]:
    """The same names under the numpy 1.x (``numpy.core``) and 2.x (``numpy._core``) paths."""
    out = set()
    for full in names:
        mod, name = full.rsplit(".", 1)
        out.add((f"numpy.core.{mod}", name))
        out.add((f"numpy._core.{mod}", name))
    return out


_DTYPE_CLASSES = {("numpy.dtypes", n) for n in dir(np.dtypes) if n.endswith("DType")}

#: every (module, name) a dataframe pickle may reference
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset({
    ("builtins", "slice"), ("builtins", "complex"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "bytearray"), ("builtins", "range"), ("builtins", "getattr"),
    ("functools", "partial"), ("collections", "OrderedDict"), ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy", "bool_"), ("numpy", "float64"),
    ("numpy", "int64"),
    *_numpy_names("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer"),
    *_DTYPE_CLASSES,
    ("pandas", "DataFrame"), ("pandas", "Series"), ("pandas", "Index"), ("pandas", "RangeIndex"),
    ("pandas.core.frame", "DataFrame"), ("pandas.core.series", "Series"),
    ("pandas.core.indexes.base", "Index"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.indexes.numeric", "Int64Index"), ("pandas.core.indexes.numeric", "Float64Index"),
    ("pandas.core.indexes.numeric", "UInt64Index"),
    ("pandas.core.internals.managers", "BlockManager"),
    ("pandas.core.internals.managers", "SingleBlockManager"),
    ("pandas.core.internals.blocks", "new_block"), ("pandas._libs.internals", "_unpickle_block"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"),
    ("pandas.arrays", "StringArray"), ("pandas.core.arrays.string_", "StringArray"),
    ("pandas.core.arrays.string_", "StringDtype"), ("pandas", "StringDtype"),
    ("ase.atoms", "Atoms"), ("ase.cell", "Cell"),
    ("ase.calculators.singlepoint", "SinglePointCalculator"),
    ("ase.calculators.singlepoint", "SinglePointDFTCalculator"),
    ("ase.calculators.singlepoint", "SinglePointKPoint"),
    ("ase.calculators.calculator", "Parameters"),
    ("ase.constraints", "FixAtoms"), ("ase.constraints", "FixCartesian"),
    ("ase.constraints", "FixedLine"), ("ase.constraints", "FixedPlane"),
    ("ase.constraints", "FixScaled"), ("ase.constraints", "FixCom"),
    ("ase.constraints", "FixBondLengths"), ("ase.constraints.fix_atoms", "FixAtoms"),
    ("pyace.preparedata", "DataFrameWithMetadata"),
    ("pyace.catomicenvironment", "ACEAtomicEnvironment"),
})

#: attribute names the pickles fetch with ``getattr`` (bound methods of ase calculators)
_GETATTR_NAMES = frozenset({"_deprecated_get_spin_polarized"})


def _refuse(source: str, what: str) -> UnsafePickleError:
    return UnsafePickleError(
        f"{source}: refused to unpickle global '{what}' (not on paceui's allow-list of pandas/numpy/"
        "ase classes); the file may be malicious or from an unsupported tool. Convert it to "
        "extxyz with a trusted tool, or load it yourself if you trust it.")


class _SafeUnpickler(_PandasUnpickler):
    """pandas' compat unpickler restricted to :data:`ALLOWED_GLOBALS`."""

    def __init__(self, fh: BinaryIO, source: str) -> None:
        super().__init__(fh)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        key = (module, name)
        if key not in ALLOWED_GLOBALS and not (module == "pyace.catomicenvironment"):
            raise _refuse(self._source, f"{module}.{name}")
        if module == "pyace.preparedata":
            return pd.DataFrame
        if module == "pyace.catomicenvironment":
            return _LegacyStub
        if key == ("builtins", "getattr"):
            return self._safe_getattr
        if key == ("functools", "partial"):
            return self._safe_partial()
        if module.startswith("numpy.core.") and int(np.__version__.split(".")[0]) >= 2:
            module = "numpy._core." + module[len("numpy.core."):]
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        raise _refuse(self._source, f"persistent id {pid!r}")

    def _safe_getattr(self, obj: Any, name: str) -> Any:
        from ase.calculators.calculator import BaseCalculator

        if name in _GETATTR_NAMES and isinstance(obj, BaseCalculator):
            return getattr(obj, name)
        raise _refuse(self._source, f"builtins.getattr({type(obj).__name__}, {name!r})")

    def _safe_partial(self) -> type:
        """A ``functools.partial`` subclass that accepts only pandas' block constructor."""
        ok = {self.find_class("pandas.core.internals.blocks", "new_block")}
        source = self._source

        def check(func: Any) -> None:
            if func not in ok:
                raise _refuse(source, f"functools.partial({getattr(func, '__name__', func)!r})")

        class SafePartial(functools.partial):  # type: ignore[type-arg]
            def __new__(cls, func: Any, *args: Any, **kwargs: Any) -> "SafePartial":
                check(func)
                return super().__new__(cls, func, *args, **kwargs)

            def __setstate__(self, state: Any) -> None:
                check(state[0])
                super().__setstate__(state)  # type: ignore[misc]

        return SafePartial

    def load_build(self) -> None:
        """BUILD only on instances: setting attributes on a class would patch it process-wide."""
        if isinstance(self.stack[-2], type):  # type: ignore[attr-defined]
            raise _refuse(self._source, f"BUILD on class {self.stack[-2].__name__}")  # type: ignore[attr-defined]
        super().load_build()  # type: ignore[misc]

    def load_ext(self) -> None:
        """copyreg extension codes are never used by pandas frames."""
        raise _refuse(self._source, "copyreg extension code")

    dispatch = _PandasUnpickler.dispatch.copy()
    dispatch[pickle.BUILD[0]] = load_build  # type: ignore[assignment]
    for _op in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = load_ext  # type: ignore[assignment]
    del _op


def _read_bytes(path: Path) -> bytes:
    """File content, gunzipped when it starts with the gzip magic."""
    raw = path.read_bytes()
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def read_pickle_frame(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Load a (gzip) pickled pacemaker DataFrame through the restricted unpickler.

    Legacy pyace subclasses become plain ``pandas.DataFrame``; the neighbour-list columns
    ``atomic_env``/``tp_atoms`` are dropped; string columns keep ``object`` dtype.
    """
    p = Path(path)
    try:
        obj = _SafeUnpickler(io.BytesIO(_read_bytes(p)), str(p)).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # corrupt data raises anything from KeyError to struct.error
        raise ValueError(f"{p}: not a readable pandas pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, pd.DataFrame):
        raise ValueError(f"{p}: the pickle holds a {type(obj).__name__}, not a pandas DataFrame")
    df = pd.DataFrame(obj)  # a plain frame, also for pyace's DataFrameWithMetadata
    obj.__dict__.pop("metadata", None)
    df.__dict__.pop("metadata", None)
    df = df.drop(columns=[c for c in LEGACY_DROP_COLUMNS if c in df.columns])
    return df


#: module renames applied when writing, so that numpy 1.x / older ase can read the file too
_PORTABLE_MODULES: tuple[tuple[str, str], ...] = (("numpy._core", "numpy.core"),
                                                  ("ase.constraints.", "ase.constraints"))


def _portable_module(module: str) -> str:
    for new_prefix, old in _PORTABLE_MODULES:
        if module == new_prefix.rstrip(".") and not new_prefix.endswith("."):
            return old
        if module.startswith(new_prefix if new_prefix.endswith(".") else new_prefix + "."):
            return old if new_prefix.endswith(".") else old + module[len(new_prefix):]
    return module


class _PortablePickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Protocol-4 pickler writing numpy-1 compatible module paths (``numpy.core`` not ``numpy._core``)."""

    def save_global(self, obj: Any, name: str | None = None) -> None:
        module = getattr(obj, "__module__", None) or ""
        new = _portable_module(module)
        qual = name if name is not None else getattr(obj, "__qualname__", "")
        if self.proto >= 4 and new != module and qual and "." not in qual:  # type: ignore[attr-defined]
            self.save(new)  # type: ignore[attr-defined]
            self.save(qual)  # type: ignore[attr-defined]
            self.write(pickle.STACK_GLOBAL)  # type: ignore[attr-defined]
            self.memoize(obj)  # type: ignore[attr-defined]
            return
        super().save_global(obj, name)  # type: ignore[misc]


def dumps_portable(obj: Any) -> bytes:
    """Pickle (protocol 4) readable by old pandas/numpy stacks such as pacemaker's."""
    buf = io.BytesIO()
    _PortablePickler(buf, protocol=4).dump(obj)
    return buf.getvalue()
