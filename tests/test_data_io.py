"""Loading and saving datasets: legacy pickles, extxyz, ASE files, restricted unpickler."""

from __future__ import annotations

import gzip
import os
import pickle
import pickletools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paceui.data import UnsafePickleError, load_dataframe, load_files, save_dataframe
from paceui.data.io import frame_from_atoms, resolve_path
from paceui.data.pickles import ALLOWED_GLOBALS
from tests.test_data_common import DATASETS, DATASETS_XYZ, ZUO, atoms_equal, cu_frame, need

ROWS = {
    "exmpl_df_AlNi.pckl.gzip": 174, "Cu_df1_A1_A2_A3_EV_elast_phon.pckl.gzip": 105, "Cu_df2_1k.pkl.gzip": 1000,
    "ethanol.pckl.gzip": 1000, "HEA_randII_example.pckl.gzip": 20, "df_AlNi.pckl.gzip": 9,
    "df_AlNi_murn.pckl.gzip": 174, "df_weights.pckl.gzip": 6, "representative_df.pckl.gzip": 6,
    "df-FHI-aims_PBE_tight-Al-ref.pckl.gzip": 6,
}
ZUO_COUNTS = {"Cu": (262, 31), "Ni": (263, 31), "Li": (241, 29), "Si": (214, 25)}


@pytest.mark.parametrize("fname", sorted(ROWS))
def test_reference_pickles_load(fname: str) -> None:
    df = load_dataframe(need(DATASETS / fname))
    assert type(df) is pd.DataFrame
    assert len(df) == ROWS[fname]
    assert "atomic_env" not in df.columns and "tp_atoms" not in df.columns
    assert "metadata" not in df.__dict__
    for at, f in zip(df["ase_atoms"], df["forces"]):
        assert np.asarray(f).shape == (len(at), 3)
    assert "energy" in df.columns or "energy_corrected" in df.columns


def _pickle_globals(data: bytes) -> set[tuple[str, str]]:
    """(module, name) of every GLOBAL / STACK_GLOBAL, following memo gets for the strings."""
    out: set[tuple[str, str]] = set()
    memo: dict[int, object] = {}
    last: list[object] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
            last.append(arg)
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last[-1] if last else None
        elif op.name in ("BINGET", "LONG_BINGET", "GET"):
            last.append(memo.get(arg))
        elif op.name == "GLOBAL":
            out.add(tuple(arg.split(" ", 1)))  # type: ignore[arg-type]
        elif op.name == "STACK_GLOBAL":
            out.add((str(last[-2]), str(last[-1])))
            last.append(None)
        else:
            last.append(None)
    return out


def test_reference_pickle_globals_are_allow_listed() -> None:
    """Every global the shipped files reference (found with pickletools) is on the allow-list."""
    need(DATASETS)
    seen: set[tuple[str, str]] = set()
    for f in sorted(DATASETS.glob("*.*gzip")):
        seen |= _pickle_globals(gzip.decompress(f.read_bytes()))
    assert ("pyace.preparedata", "DataFrameWithMetadata") in seen
    assert ("pandas.core.indexes.numeric", "Int64Index") in seen
    assert seen <= ALLOWED_GLOBALS, sorted(seen - ALLOWED_GLOBALS)


@pytest.mark.parametrize("element", sorted(ZUO_COUNTS))
def test_zuo_files_load(element: str) -> None:
    for part, n in zip(("train", "test"), ZUO_COUNTS[element]):
        df = load_dataframe(need(ZUO / f"{element}_{part}.xyz.gz"))
        assert len(df) == n
        assert {"ase_atoms", "energy", "forces", "name"} <= set(df.columns)
        assert np.isfinite(df["energy"]).all()
        at = df["ase_atoms"].iloc[0]
        assert df["forces"].iloc[0].shape == (len(at), 3)
        assert at.calc is None and "force" not in at.arrays  # moved into columns
        assert df["name"].iloc[3].endswith(f"{element}_{part}.xyz.gz:3")
        assert all(a.pbc.all() for a in df["ase_atoms"])
    if element == "Cu":
        assert sum(len(a) for a in load_dataframe(ZUO / "Cu_train.xyz.gz")["ase_atoms"]) == 27416


def test_zuo_energy_and_force_values() -> None:
    """First Cu test frame: energy in the comment line, force in the per-atom 'force' column."""
    path = need(ZUO / "Cu_test.xyz.gz")
    with gzip.open(path, "rt") as fh:
        fh.readline()
        comment = fh.readline()
        first_atom = fh.readline().split()
    df = load_dataframe(path)
    e = float(comment.split("energy=")[1].split()[0])
    assert df["energy"].iloc[0] == pytest.approx(e, abs=0)
    assert np.allclose(df["forces"].iloc[0][0], [float(x) for x in first_atom[4:7]], atol=0)


@pytest.mark.parametrize("xyz", ["Cu_df1_A1_A2_A3_EV_elast_phon", "Cu_df2_1k", "HEA_randII_example", "df_AlNi",
                                 "df_weights", "ethanol", "exmpl_df_AlNi"])
def test_extxyz_conversions_match_pickles(xyz: str) -> None:
    pick = next(p for p in DATASETS.glob(f"{xyz}.*")) if DATASETS.exists() else None
    df_x = load_dataframe(need(DATASETS_XYZ / f"{xyz}.extxyz.gz"))
    df_p = load_dataframe(need(pick))  # type: ignore[arg-type]
    assert len(df_x) == len(df_p)
    for k, row in enumerate(df_x.itertuples()):
        assert row.ase_atoms.info.get("df_index", k) == k
        ref = df_p.iloc[k]
        assert atoms_equal(row.ase_atoms, ref["ase_atoms"])
        assert row.energy_corrected == pytest.approx(ref["energy_corrected"], rel=1e-12, abs=1e-9)
        if "energy" in df_p.columns:
            assert row.energy == pytest.approx(ref["energy"], rel=1e-12)
        assert np.allclose(row.forces, ref["forces"], rtol=0, atol=1e-7)
        if "w_energy" in df_p.columns:
            assert row.w_energy == pytest.approx(ref["w_energy"], rel=1e-12)
            assert np.allclose(row.w_forces, ref["w_forces"], rtol=1e-10)
        if "name" in df_p.columns:
            assert row.name == ref["name"]


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_malicious_pickle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for i, payload in enumerate([_Evil(), pd.DataFrame({"x": [_Evil()]})]):
        f = tmp_path / f"evil{i}.pckl.gzip"
        f.write_bytes(gzip.compress(pickle.dumps(payload, protocol=4)))
        with pytest.raises(UnsafePickleError, match=r"evil\d\.pckl\.gzip.*(posix|os|nt)\.system"):
            load_dataframe(f)
        assert isinstance(UnsafePickleError("x"), ValueError)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_pickle_tricks_are_refused(tmp_path: Path) -> None:
    """getattr on arbitrary objects and functools.partial of other callables are refused too."""
    import functools

    class GetattrTrick:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (getattr, (pd.DataFrame(), "to_csv"))

    class PartialTrick:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (functools.partial, (np.ndarray,))

    for k, obj in enumerate([GetattrTrick(), PartialTrick()]):
        f = tmp_path / f"t{k}.pkl"
        f.write_bytes(pickle.dumps(obj, protocol=4))
        with pytest.raises(UnsafePickleError, match=r"getattr|partial"):
            load_dataframe(f)


def test_non_frame_pickle_and_garbage(tmp_path: Path) -> None:
    f = tmp_path / "list.pkl"
    f.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not a pandas DataFrame"):
        load_dataframe(f)
    g = tmp_path / "junk.pckl.gzip"
    g.write_bytes(gzip.compress(b"not a pickle"))
    with pytest.raises(ValueError, match="junk.pckl.gzip"):
        load_dataframe(g)
    with pytest.raises(FileNotFoundError, match="nothere"):
        load_dataframe(tmp_path / "nothere.pckl.gzip")


def test_pickle_round_trip_is_plain_pandas(tmp_path: Path) -> None:
    df = load_files(need(DATASETS / "df_AlNi.pckl.gzip"))
    out = save_dataframe(df, tmp_path / "sub" / "x.pckl.gzip")
    assert out.exists() and not list(out.parent.glob(".*tmp"))
    data = gzip.decompress(out.read_bytes())
    assert data[:2] == b"\x80\x04"  # protocol 4
    assert b"paceui" not in data
    names = _pickle_globals(data)
    assert names <= ALLOWED_GLOBALS
    assert not any(m.startswith("numpy._core") for m, _ in names)  # numpy < 1.26 can read it
    assert not any("String" in n for _, n in names)  # no pandas-3 string arrays
    back = load_dataframe(out)
    assert list(back.columns) == list(df.columns)
    pd.testing.assert_frame_equal(back.drop(columns=["ase_atoms", "forces", "w_forces"]),
                                  df.drop(columns=["ase_atoms", "forces", "w_forces"]))
    for a, b in zip(back.itertuples(), df.itertuples()):
        assert atoms_equal(a.ase_atoms, b.ase_atoms)
        assert np.array_equal(a.forces, b.forces) and np.array_equal(a.w_forces, b.w_forces)
    # the unrestricted reader (what pacemaker does) reads it as a plain frame too
    assert type(pd.read_pickle(out, compression="gzip")) is pd.DataFrame


def test_extxyz_round_trip(tmp_path: Path) -> None:
    df = cu_frame(3)
    df["energy_corrected"] = df["energy"] + 10.0
    df["w_energy"] = [0.5, 0.25, 0.25]
    df["w_forces"] = [np.full(len(a), 0.1 * (k + 1)) for k, a in enumerate(df["ase_atoms"])]
    for suffix in ("x.extxyz", "x.xyz.gz"):
        path = save_dataframe(df, tmp_path / suffix)
        back = load_dataframe(path)
        assert list(back["name"]) == list(df["name"])
        np.testing.assert_allclose(back["energy"], df["energy"], rtol=1e-12)
        np.testing.assert_allclose(back["energy_corrected"], df["energy_corrected"], rtol=1e-12)
        np.testing.assert_allclose(back["w_energy"], df["w_energy"], rtol=1e-12)
        for a, b in zip(back.itertuples(), df.itertuples()):
            assert atoms_equal(a.ase_atoms, b.ase_atoms)
            np.testing.assert_allclose(a.forces, b.forces, atol=1e-8)
            np.testing.assert_allclose(a.w_forces, b.w_forces)
    with pytest.raises(ValueError, match="suffix"):
        save_dataframe(df, tmp_path / "x.csv")


def test_ase_info_keys_and_db(tmp_path: Path) -> None:
    """REF_* keys and plain info/arrays keys become columns; an ASE db file loads too."""
    import ase.db

    at = cu_frame(1)["ase_atoms"].iloc[0]
    a1 = at.copy()
    a1.info.update(REF_energy=-7.0, REF_energy_corrected=-1.0)
    a1.arrays["REF_forces"] = np.ones((len(a1), 3))
    a2 = at.copy()
    a2.arrays["forces"] = np.full((len(a2), 3), 2.0)
    a2.info["energy_corrected"] = -2.0
    df = frame_from_atoms([a1, a2], "mem")
    assert df["energy"].iloc[0] == -7.0 and np.isnan(df["energy"].iloc[1])
    assert list(df["energy_corrected"]) == [-1.0, -2.0]
    assert np.all(df["forces"].iloc[0] == 1.0) and np.all(df["forces"].iloc[1] == 2.0)
    assert list(df["name"]) == ["mem:0", "mem:1"]
    assert "REF_energy" not in df["ase_atoms"].iloc[0].info and a1.info["REF_energy"] == -7.0
    from ase.calculators.singlepoint import SinglePointCalculator

    b = at.copy()
    b.calc = SinglePointCalculator(b, energy=-3.25, forces=np.zeros((len(b), 3)))
    with ase.db.connect(tmp_path / "x.db") as db:
        db.write(b)
        db.write(b)
    d = load_dataframe(tmp_path / "x.db")
    assert len(d) == 2 and list(d["energy"]) == [-3.25, -3.25]


def test_file_lists_datapath_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = cu_frame(2), cu_frame(3, seed=1)
    a = a.drop(columns="name")
    save_dataframe(a, tmp_path / "a.pckl.gzip")
    save_dataframe(b, tmp_path / "b.extxyz")
    monkeypatch.delenv("PACEMAKERDATAPATH", raising=False)
    monkeypatch.chdir(tmp_path.parent)
    with pytest.raises(FileNotFoundError, match="a.pckl.gzip"):
        load_files("a.pckl.gzip")
    df = load_files(["a.pckl.gzip", "b.extxyz"], datapath=tmp_path)
    assert len(df) == 5 and list(df.index) == list(range(5))
    assert list(df["name"][:2]) == ["a.pckl.gzip:0", "a.pckl.gzip:1"]
    assert list(df["name"][2:]) == list(b["name"])
    monkeypatch.setenv("PACEMAKERDATAPATH", str(tmp_path))
    assert resolve_path("b.extxyz") == tmp_path / "b.extxyz"
    assert len(load_files("a.pckl.gzip")) == 2
    with pytest.raises(ValueError, match="no data file"):
        load_files([])


def test_build_on_a_class_is_refused(tmp_path: Path) -> None:
    """A hand-made pickle that would set an attribute on the DataFrame class itself."""
    raw = b"\x80\x04cpandas.core.frame\nDataFrame\n}X\x0b\x00\x00\x00paceui_evilK\x01sb."
    f = tmp_path / "cls.pkl"
    f.write_bytes(raw)
    with pytest.raises(UnsafePickleError, match="BUILD on class DataFrame"):
        load_dataframe(f)
    assert not hasattr(pd.DataFrame, "paceui_evil")


def test_named_energy_and_force_keys_are_the_only_labels_read(tmp_path: Path) -> None:
    """``data: energy_key / forces_key`` (extxyz files with labels under other names, ACEData's ``dft_energy``
    and ``dft_force`` beside ``gap_energy``): only the named keys are read, a structure without them has no
    label (it is dropped later, named), and a file without the usual keys says which keys it has."""
    import ase.io

    from paceui.data.prepare import DataConfig, load_joint
    from paceui.data.validate import DataValidationError

    at = cu_frame(1)["ase_atoms"].iloc[0]
    frames = []
    for k in range(3):
        a = at.copy()
        a.info.update(dft_energy=-3.0 - k, gap_energy=-9.0)
        a.arrays["dft_force"] = np.full((len(a), 3), 0.5 * k)
        a.arrays["gap_force"] = np.ones((len(a), 3))
        frames.append(a)
    del frames[2].info["dft_energy"]
    ase.io.write(tmp_path / "d.extxyz", frames)
    df = load_files(tmp_path / "d.extxyz", energy_key="dft_energy", forces_key="dft_force")
    assert list(df["energy"].iloc[:2]) == [-3.0, -4.0] and np.isnan(df["energy"].iloc[2])
    assert [float(f[0, 0]) for f in df["forces"]] == [0.0, 0.5, 1.0]
    assert "dft_energy" not in df["ase_atoms"].iloc[0].info and "gap_energy" in df["ase_atoms"].iloc[0].info
    with pytest.raises(DataValidationError, match=r"missing column\(s\): forces, energy or energy_corrected .*"
                       r"info keys dft_energy, gap_energy and arrays keys dft_force, gap_force: name the energy "
                       r"and force keys with data: energy_key / forces_key"):
        load_joint(DataConfig.from_dict({"filename": str(tmp_path / "d.extxyz")}))
    cfg = DataConfig.from_dict({"filename": str(tmp_path / "d.extxyz"), "energy_key": "dft_energy",
                                "forces_key": "dft_force"})
    assert len(load_joint(cfg)) == 3
    with pytest.raises(ValueError, match=r"data: energy_key must be a string .* got 3"):
        DataConfig.from_dict({"filename": "x.xyz", "energy_key": 3})
