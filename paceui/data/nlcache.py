"""Packed neighbour lists of a whole dataset (lengths in Å), with an on-disk cache.

All structures are stored in one set of flat arrays: atoms of structure ``s`` are global
atoms ``atom_offsets[s]:atom_offsets[s+1]``; the neighbours of global atom ``a`` are pairs
``nbr_offsets[a]:nbr_offsets[a+1]`` with neighbour ``nbr_j`` (a GLOBAL atom index) and vector
``vec = r_j + shift - r_i``.  The cache file (one ``.npz``) is keyed by a SHA-256 of positions,
numbers, cell and pbc of every structure, the cutoff and the element list.
"""

from __future__ import annotations

import hashlib
import io
import logging
import mmap
import os
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.lib import format as npformat

from paceui._atomic import atomic_write_bytes
from paceui.ace.neighbors import neighbor_lists

if TYPE_CHECKING:
    import ase

__all__ = ["PackedNeighbors", "build_packed_neighbors", "concatenate_packs", "dataset_hash", "default_cache_dir"]

log = logging.getLogger(__name__)

_FORMAT = "paceui-packed-neighbors-v1"
_FIELDS = ("atom_offsets", "species", "nbr_offsets", "nbr_j", "vec")


@dataclass(frozen=True, eq=False)
class PackedNeighbors:
    """Neighbour lists of ``n_structures`` structures in global CSR form (see module doc).

    The arrays are read-only (shared with the cache file when loaded from it).
    """

    n_structures: int
    atom_offsets: np.ndarray  # int64[S+1]
    species: np.ndarray  # int64[N] index into ``elements``
    nbr_offsets: np.ndarray  # int64[N+1]
    nbr_j: np.ndarray  # int64[M] global neighbour atom index
    vec: np.ndarray  # float64[M, 3] (Å)
    cutoff: float  # Å
    elements: tuple[str, ...]

    @property
    def n_atoms(self) -> int:
        """Total number of atoms."""
        return int(self.atom_offsets[-1])

    @property
    def n_pairs(self) -> int:
        """Total number of (directed) pairs."""
        return int(self.nbr_j.shape[0])

    def structure_slice(self, s: int) -> slice:
        """Global atom range of structure ``s``."""
        return slice(int(self.atom_offsets[s]), int(self.atom_offsets[s + 1]))

    def pair_slice(self, s: int) -> slice:
        """Global pair range of structure ``s``."""
        a = self.structure_slice(s)
        return slice(int(self.nbr_offsets[a.start]), int(self.nbr_offsets[a.stop]))

    def structure(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Local (offsets[n+1], j[m], vec[m,3], species[n]) of structure ``s`` (indices from 0)."""
        a, p = self.structure_slice(s), self.pair_slice(s)
        return (self.nbr_offsets[a.start:a.stop + 1] - p.start, self.nbr_j[p] - a.start,
                self.vec[p], self.species[a])

    def select(self, structures: Sequence[int] | np.ndarray) -> "PackedNeighbors":
        """A new pack with only the given structures (positions), in the given order."""
        sel = np.asarray(structures, dtype=np.int64).reshape(-1)
        nat = np.diff(self.atom_offsets)[sel]
        a_off = np.zeros(sel.size + 1, dtype=np.int64)
        np.cumsum(nat, out=a_off[1:])
        old_atoms = (np.repeat(self.atom_offsets[sel] - a_off[:-1], nat)
                     + np.arange(a_off[-1], dtype=np.int64))
        npairs = np.diff(self.nbr_offsets)[old_atoms]
        n_off = np.zeros(old_atoms.size + 1, dtype=np.int64)
        np.cumsum(npairs, out=n_off[1:])
        old_pairs = (np.repeat(self.nbr_offsets[old_atoms] - n_off[:-1], npairs)
                     + np.arange(n_off[-1], dtype=np.int64))
        delta = np.repeat(a_off[:-1] - self.atom_offsets[sel], nat)  # new - old per atom
        pair_delta = np.repeat(delta, npairs)
        return _frozen_pack(a_off, self.species[old_atoms], n_off, self.nbr_j[old_pairs] + pair_delta,
                            self.vec[old_pairs], self.cutoff, self.elements)

    def to_npz_bytes(self, key: str = "") -> bytes:
        """Uncompressed ``.npz`` content (so it can be read back with one copy)."""
        buf = io.BytesIO()
        np.savez(buf, **{f: getattr(self, f) for f in _FIELDS},
                 meta=np.array([_FORMAT, repr(float(self.cutoff)), " ".join(self.elements), key]))
        return buf.getvalue()

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str], use_mmap: bool = True) -> tuple["PackedNeighbors", str]:
        """Read a pack written by :meth:`to_npz_bytes`; returns it and its stored key.

        With ``use_mmap`` the arrays are read-only views of the (page-cached) file: no copy.
        """
        arrs = _read_npz(Path(path), use_mmap and os.name == "posix")
        if "meta" not in arrs or any(f not in arrs for f in _FIELDS):
            raise ValueError(f"{path}: not a {_FORMAT} file")
        meta = [str(x) for x in arrs["meta"]]
        if meta[0] != _FORMAT:
            raise ValueError(f"{path}: not a {_FORMAT} file")
        elements = tuple(meta[2].split()) if meta[2] else ()
        pack = cls(int(arrs["atom_offsets"].shape[0] - 1), atom_offsets=arrs["atom_offsets"],
                   species=arrs["species"], nbr_offsets=arrs["nbr_offsets"], nbr_j=arrs["nbr_j"],
                   vec=arrs["vec"], cutoff=float(meta[1]), elements=elements)
        return pack, meta[3]


def _frozen_pack(atom_offsets: np.ndarray, species: np.ndarray, nbr_offsets: np.ndarray, nbr_j: np.ndarray,
                 vec: np.ndarray, cutoff: float, elements: tuple[str, ...]) -> PackedNeighbors:
    """A pack of freshly built arrays, marked read-only (cached ones are read-only maps anyway)."""
    for a in (atom_offsets, species, nbr_offsets, nbr_j, vec):
        a.setflags(write=False)
    return PackedNeighbors(int(atom_offsets.shape[0] - 1), atom_offsets, species, nbr_offsets, nbr_j, vec,
                           float(cutoff), elements)


def _read_npz(path: Path, use_mmap: bool = False) -> dict[str, np.ndarray]:
    """Read an uncompressed npz: memory-mapped, or one ``readinto`` per array (np.load copies in chunks)."""
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh, zipfile.ZipFile(fh) as zf:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if use_mmap else None
        for info in zf.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if info.compress_type != zipfile.ZIP_STORED:
                with zf.open(info) as member:
                    out[name] = npformat.read_array(member, allow_pickle=False)
                continue
            fh.seek(info.header_offset)
            head = fh.read(30)
            nlen, elen = struct.unpack("<HH", head[26:30])
            fh.seek(info.header_offset + 30 + nlen + elen)
            version = npformat.read_magic(fh)
            reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
            header: tuple[tuple[int, ...], bool, np.dtype[Any]] = reader(fh)
            shape, fortran, dtype = header
            if dtype.hasobject:
                raise ValueError(f"{path}: object arrays are not allowed in a neighbour cache")
            count = int(np.prod(shape, dtype=np.int64))
            order: Literal["C", "F"] = "F" if fortran else "C"
            if mapped is not None:
                if fh.tell() + count * dtype.itemsize > len(mapped):
                    raise ValueError(f"{path}: truncated array {name}")
                arr = np.frombuffer(mapped, dtype=dtype, count=count, offset=fh.tell()).reshape(shape, order=order)
            else:
                arr = np.empty(shape, dtype=dtype, order=order)
                if arr.nbytes:
                    view = memoryview(arr.reshape(-1, order="A")).cast("B")  # type: ignore[arg-type]
                    if fh.readinto(view) != arr.nbytes:
                        raise ValueError(f"{path}: truncated array {name}")
            out[name] = arr
    return out


def default_cache_dir() -> Path:
    """``$PACEUI_CACHE_DIR/neighbors``, else ``$XDG_CACHE_HOME/paceui/neighbors`` (~/.cache)."""
    root = os.environ.get("PACEUI_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "neighbors"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "paceui" / "neighbors"


def dataset_hash(atoms_list: Sequence["ase.Atoms"], cutoff: float, elements: Sequence[str]) -> str:
    """SHA-256 hex digest of everything the neighbour lists depend on."""
    h = hashlib.sha256()
    h.update(f"{_FORMAT}|{float(cutoff)!r}|{','.join(elements)}|{len(atoms_list)}".encode())
    for at in atoms_list:
        h.update(struct.pack("<q", len(at)))
        h.update(np.ascontiguousarray(at.numbers, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(at.positions, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(at.cell.array, dtype=np.float64).tobytes())
        h.update(np.asarray(at.pbc, dtype=np.bool_).tobytes())
    return h.hexdigest()


def _progress(enabled: bool) -> Any:
    """A rich progress bar (or a no-op stand-in)."""
    if not enabled:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("neighbour lists"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("structures"), TimeElapsedColumn(), transient=True)


def _chunks(sizes: np.ndarray, target_atoms: int) -> list[range]:
    """Consecutive structure ranges of about ``target_atoms`` atoms each."""
    out, start, acc = [], 0, 0
    for s, n in enumerate(sizes):
        acc += int(n)
        if acc >= target_atoms:
            out.append(range(start, s + 1))
            start, acc = s + 1, 0
    if start < len(sizes):
        out.append(range(start, len(sizes)))
    return out


def _species(atoms_list: Sequence["ase.Atoms"], elements: Sequence[str]) -> np.ndarray:
    from ase.data import chemical_symbols

    lut = np.full(len(chemical_symbols), -1, dtype=np.int64)
    for k, el in enumerate(elements):
        if el not in chemical_symbols:
            raise ValueError(f"unknown element symbol {el!r} in the element list")
        lut[chemical_symbols.index(el)] = k
    numbers = np.concatenate([np.asarray(a.numbers, dtype=np.int64) for a in atoms_list]) \
        if atoms_list else np.zeros(0, dtype=np.int64)
    sp = lut[numbers]
    if (sp < 0).any():
        a = int(np.flatnonzero(sp < 0)[0])
        sizes = np.cumsum([len(x) for x in atoms_list])
        s = int(np.searchsorted(sizes, a, side="right"))
        raise ValueError(f"structure {s} contains element {chemical_symbols[numbers[a]]}, "
                         f"not in the element list {list(elements)}")
    return sp


def _build(atoms_list: Sequence["ase.Atoms"], cutoff: float, elements: tuple[str, ...],
           progress: bool, num_threads: int | None) -> PackedNeighbors:
    sizes = np.array([len(a) for a in atoms_list], dtype=np.int64)
    a_off = np.zeros(len(atoms_list) + 1, dtype=np.int64)
    np.cumsum(sizes, out=a_off[1:])
    species = _species(atoms_list, elements)
    lists: list[Any] = []
    bar = _progress(progress)
    chunks = _chunks(sizes, max(4096, int(sizes.sum()) // 20))
    if bar is not None:
        bar.start()
        task = bar.add_task("nl", total=len(atoms_list))
    try:
        for rng in chunks:
            lists.extend(neighbor_lists([atoms_list[s] for s in rng], cutoff, num_threads=num_threads))
            if bar is not None:
                bar.update(task, advance=len(rng))
    finally:
        if bar is not None:
            bar.stop()
    n_off = np.zeros(a_off[-1] + 1, dtype=np.int64)
    pair_counts = np.array([len(nl) for nl in lists], dtype=np.int64)
    m = int(pair_counts.sum())
    nbr_j = np.empty(m, dtype=np.int64)
    vec = np.empty((m, 3), dtype=np.float64)
    p = 0
    for s, nl in enumerate(lists):
        k = len(nl)
        n_off[a_off[s] + 1:a_off[s + 1] + 1] = nl.offsets[1:] + p
        np.add(nl.j, a_off[s], out=nbr_j[p:p + k])
        vec[p:p + k] = nl.vec
        p += k
    return _frozen_pack(a_off, species, n_off, nbr_j, vec, cutoff, elements)


def build_packed_neighbors(atoms_list: Sequence["ase.Atoms"], cutoff: float, elements: Sequence[str], *,
                           cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
                           progress: bool = True, num_threads: int | None = None) -> PackedNeighbors:
    """Neighbour lists (cutoff in Å) of every structure, packed; loaded from / saved to the cache.

    ``elements`` is sorted; ``species`` indexes into it.  The structures are read, never changed.
    """
    cutoff = float(cutoff)
    if not (np.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff must be a positive number (Å), got {cutoff}")
    els = tuple(sorted(set(elements)))
    if not use_cache:
        return _build(atoms_list, cutoff, els, progress, num_threads)
    key = dataset_hash(atoms_list, cutoff, els)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"nl-{key[:40]}.npz"
    if path.exists():
        try:
            pack, stored = PackedNeighbors.from_npz(path)
            if stored == key and pack.n_structures == len(atoms_list):
                log.info("neighbour lists loaded from cache %s", path)
                return pack
            log.warning("neighbour cache %s does not match the data; rebuilding", path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            log.warning("neighbour cache %s unreadable (%s); rebuilding", path, exc)
    pack = _build(atoms_list, cutoff, els, progress, num_threads)
    try:
        atomic_write_bytes(path, pack.to_npz_bytes(key))
    except OSError as exc:  # a read-only cache must not stop the fit
        log.warning("could not write neighbour cache %s: %s", path, exc)
    return pack


def concatenate_packs(packs: Sequence[PackedNeighbors]) -> PackedNeighbors:
    """One pack holding the structures of ``packs`` in order (same cutoff and elements required)."""
    if not packs:
        raise ValueError("concatenate_packs: no packs given")
    first = packs[0]
    for p in packs[1:]:
        if p.cutoff != first.cutoff or p.elements != first.elements:
            raise ValueError(f"cannot join neighbour lists of cutoff {p.cutoff} Å / elements {p.elements} to "
                             f"cutoff {first.cutoff} Å / elements {first.elements}")
    atom_base = np.cumsum([0] + [p.n_atoms for p in packs[:-1]]).astype(np.int64)
    pair_base = np.cumsum([0] + [p.n_pairs for p in packs[:-1]]).astype(np.int64)
    a_off = np.concatenate([[0]] + [p.atom_offsets[1:] + b for p, b in zip(packs, atom_base)]).astype(np.int64)
    n_off = np.concatenate([[0]] + [p.nbr_offsets[1:] + b for p, b in zip(packs, pair_base)]).astype(np.int64)
    return _frozen_pack(a_off, np.concatenate([p.species for p in packs]).astype(np.int64), n_off,
                        np.concatenate([p.nbr_j + b for p, b in zip(packs, atom_base)]).astype(np.int64),
                        np.concatenate([p.vec for p in packs]).astype(np.float64).reshape(-1, 3),
                        first.cutoff, first.elements)
