"""Command line: ``paceui info``, ``paceui yaml2yace``, ``paceui eval``, ``paceui fit``, ``paceui demo``, and
the terminal UI: ``paceui`` (demo session), ``paceui SESSION_DIR``, ``paceui new input.yaml [-o DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from paceui.errors import PaceuiError

ERRORS = (PaceuiError, OSError, ValueError, KeyError)
"""What a command may raise for a user's mistake or a failing resource: printed as one line, exit status 1
(status 2: the command line itself is wrong). ValueError and KeyError stand for third-party parsers' errors."""


def _one_line(exc: BaseException) -> str:
    """The error's message on one line (a multi-line message from a library is joined with " | "); an
    OSError without a message of paceui's names its file and its reason."""
    if isinstance(exc, OSError) and exc.strerror:
        f = f"{exc.filename}: " if exc.filename else ""
        return f"{f}{exc.strerror}" + ("" if isinstance(exc, FileNotFoundError) else f" ({type(exc).__name__})")
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    text = " | ".join(line.strip() for line in (str(exc) or type(exc).__name__).splitlines() if line.strip())
    return text if len(text) <= 800 else text[:800] + " ..."


def _info_dict(path: str) -> dict[str, Any]:
    from paceui.ace.evaluator import load_any
    from paceui.ace.potential import ACEPotential

    pot = load_any(path)
    if isinstance(pot, ACEPotential):
        counts = pot.counts()
        emb = pot.embeddings()
        bonds = pot.bonds()
        embeddings = {el: {"ndensity": e.ndensity, "npoti": e.npoti, "fs_parameters": e.fs_parameters,
                           "rho_core_cut": e.rho_core_cut, "drho_core_cut": e.drho_core_cut}
                      for el, e in emb.items()}
        bond_rows = {f"{a}-{b}": bd for (a, b), bd in sorted(bonds.items())}
        fmt, elements = "B-basis yaml", pot.elements
    else:
        elements = pot.elements
        per: dict[str, dict[int, int]] = {el: {} for el in elements}
        for mu, fs in pot.functions.items():
            for f in fs:
                per[elements[mu]][f.rank] = per[elements[mu]].get(f.rank, 0) + 1
        counts = {"elements": elements, "functions": sum(sum(d.values()) for d in per.values()),
                  "functions_per_element": {e: sum(d.values()) for e, d in per.items()},
                  "functions_per_element_rank": {e: dict(sorted(d.items())) for e, d in per.items()},
                  "cutoff": pot.cutoff}
        embeddings = {elements[mu]: {"ndensity": e.ndensity, "npoti": e.npoti, "fs_parameters": e.fs_parameters,
                                     "rho_core_cut": e.rho_core_cut, "drho_core_cut": e.drho_core_cut}
                      for mu, e in sorted(pot.embeddings.items())}
        bond_rows = {f"{elements[a]}-{elements[b]}": bd for (a, b), bd in sorted(pot.bonds.items())}
        fmt = "C-tilde yace"
    bonds_out = {k: {"radbase": b.radbase, "radparameters": b.radparameters, "nradmax": b.nradmax, "lmax": b.lmax,
                     "nradbase": b.nradbase, "rcut": b.rcut, "dcut": b.dcut, "r_in": b.r_in, "delta_in": b.delta_in,
                     "inner_cutoff_type": b.inner_cutoff_type, "core_repulsion": b.core_repulsion}
                 for k, b in bond_rows.items()}
    return {"file": str(path), "format": fmt, "elements": elements, "embeddings": embeddings, "bonds": bonds_out,
            **{k: v for k, v in counts.items() if k != "elements"}}


def cmd_info(args: argparse.Namespace) -> int:
    infos = [_info_dict(p) for p in args.potential]
    if args.json:
        print(json.dumps(infos[0] if len(infos) == 1 else infos, indent=1, default=str))
        return 0
    con = Console()
    for info in infos:
        con.print(f"[bold]{info['file']}[/] ({info['format']}): elements {', '.join(info['elements'])}, "
                  f"{info['functions']} functions, cutoff {info['cutoff']:g} Å")
        t = Table("element", "ρ", "embedding", "FS parameters", "functions", "per rank", title="Embeddings")
        for el, e in info["embeddings"].items():
            per = info["functions_per_element_rank"].get(el, {})
            t.add_row(el, str(e["ndensity"]), e["npoti"].replace("FinnisSinclair", "FS"),
                      " ".join(f"{x:g}" for x in e["fs_parameters"]),
                      str(info["functions_per_element"].get(el, 0)),
                      " ".join(f"r{k}:{v}" for k, v in per.items()))
        con.print(t)
        t = Table("bond", "radial basis", "n/l/k", "rcut Å", "inner cutoff", "core rep.", title="Bonds")
        for k, b in info["bonds"].items():
            lam = ",".join(f"{x:g}" for x in b["radparameters"])
            inner = b["inner_cutoff_type"] + (f" {b['r_in']:g}±{b['delta_in']:g}" if b["r_in"] or b["delta_in"] else "")
            t.add_row(k, f"{b['radbase']}({lam})", f"{b['nradmax']}/{b['lmax']}/{b['nradbase']}", f"{b['rcut']:g}",
                      inner, ",".join(f"{x:g}" for x in b["core_repulsion"]))
        con.print(t)
    return 0


def cmd_yaml2yace(args: argparse.Namespace) -> int:
    from paceui.ace.yace import save_yace
    from paceui.ace.yaml_io import load_potential

    if args.output and len(args.potential) > 1:
        print("paceui yaml2yace: -o/--output needs exactly one input file", file=sys.stderr)
        return 2
    from paceui._atomic import check_writable
    from paceui.fit.runner import yace_name

    outs = [args.output or str(yace_name(p)) for p in args.potential]
    for o in outs:
        check_writable(o, "-o/--output")
    for p, out in zip(args.potential, outs):
        save_yace(load_potential(p), out)
        print(f"{p} -> {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from paceui.ace.evaluator import ACEModel

    model = ACEModel(args.potential, spline=not args.analytic)
    frames = read_structures(args.structure, args.index)
    out = []
    for k, at in enumerate(frames):
        try:
            r = model.evaluate(at)
        except ValueError as exc:
            raise ValueError(f"{args.structure}: frame {k}: {exc}") from None
        out.append({"index": k, "natoms": len(at), "energy": r.energy, "energy_per_atom": r.energy / len(at),
                    "max_force": float(np.abs(r.forces).max()) if len(at) else 0.0,
                    "forces": r.forces.tolist(), "stress": None if r.stress is None else r.stress.tolist()})
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0]))
        return 0
    t = Table("#", "atoms", "energy eV", "eV/atom", "max |F| eV/Å", title=f"{args.potential} on {args.structure}")
    for o in out:
        t.add_row(str(o["index"]), str(o["natoms"]), f"{o['energy']:.6f}", f"{o['energy_per_atom']:.6f}",
                  f"{o['max_force']:.4f}")
    Console().print(t)
    return 0


def read_structures(path: str, index: str = ":") -> list[Any]:
    """The frames of an ASE-readable file; a missing, empty, truncated or garbage file is a ValueError
    (or OSError) naming the file."""
    import ase.io

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "No such file or directory", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a structure file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: the file is empty (no structures)")
    try:
        frames = ase.io.read(p, index=index)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # ASE's readers raise anything on a truncated or foreign file
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise ValueError(f"{p}: not a readable structure file ({type(exc).__name__}{': ' + msg if msg else ''}); "
                         "give an ASE-readable file (extxyz, POSCAR, cif, ...)") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise ValueError(f"{p}: no structures selected (index {index!r})")
    return frames


def cmd_fit(args: argparse.Namespace) -> int:
    from paceui.fit.runner import clean_outputs, run_fit

    if args.clean:
        gone = clean_outputs(".")
        print(f"removed {len(gone)} generated file(s)" + (": " + ", ".join(p.name for p in gone) if gone else ""))
        return 0
    run_fit(args.input, output=args.output, potential=args.potential, initial_potential=args.initial_potential,
            data=args.data, dry_run=args.dry_run, no_fit=args.no_fit, no_predict=args.no_predict, log=args.log)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from paceui.demo import run_demo

    return run_demo(quick=args.quick)


def cmd_new(args: argparse.Namespace) -> int:
    from paceui.tui.launch import main_new

    return main_new(args.input, args.output)


def build_parser() -> argparse.ArgumentParser:
    from paceui import __version__

    p = argparse.ArgumentParser(prog="paceui", description="Fit and use Atomic Cluster Expansion potentials. "
                                "'paceui' alone opens the terminal UI on the demo session, 'paceui SESSION_DIR' "
                                "on a saved session.")
    p.add_argument("-V", "--version", action="version", version=f"paceui {__version__}")
    sub = p.add_subparsers(dest="command")
    version = f"paceui {__version__}"
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        sp = _add(name, **kw)
        sp.add_argument("-v", "--version", action="version", version=version)
        return sp

    sub.add_parser = add_parser  # type: ignore[method-assign]
    s = sub.add_parser("info", help="summarise a .yaml/.yace potential")
    s.add_argument("potential", nargs="+")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_info)
    s = sub.add_parser("yaml2yace", help="convert B-basis .yaml to C-tilde .yace (LAMMPS pair_style pace)")
    s.add_argument("potential", nargs="+")
    s.add_argument("-o", "--output", help="output file (default: input with .yace suffix)")
    s.set_defaults(func=cmd_yaml2yace)
    s = sub.add_parser("eval", help="energy, forces and stress of structures (any ASE-readable file)")
    s.add_argument("potential")
    s.add_argument("structure")
    s.add_argument("--index", default=":", help="ASE index of frames to evaluate (default all)")
    s.add_argument("--analytic", action="store_true", help="analytic radial functions instead of splines")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("fit", help="fit a potential from a pacemaker input.yaml (pacemaker's flags)")
    s.add_argument("input", nargs="?", default="input.yaml")
    s.add_argument("-o", "--output", default="output_potential.yaml")
    s.add_argument("-p", "--potential", help="potential YAML replacing the whole potential: section")
    s.add_argument("-ip", "--initial-potential", dest="initial_potential", help="sets potential.initial_potential")
    s.add_argument("-d", "--data", help="data file replacing the whole data: section")
    s.add_argument("-l", "--log", default="log.txt")
    s.add_argument("-dr", "--dry-run", dest="dry_run", action="store_true",
                   help="build basis, data and neighbour lists, write target_potential.yaml, then exit")
    s.add_argument("--no-fit", dest="no_fit", action="store_true", help="skip fitting (predict with the target)")
    s.add_argument("--no-predict", dest="no_predict", action="store_true", help="skip predictions and report")
    s.add_argument("-c", "--clean", action="store_true",
                   help="remove the files a fit generated here (pacemaker's list, report/, interim potentials), "
                   "then exit")
    s.set_defaults(func=cmd_fit)
    s = sub.add_parser("demo", help="fit the bundled demo (Cu, Zuo et al. data) in ./paceui-demo",
                       description="Fit an ACE potential for Cu on the bundled Zuo et al. (2020) DFT data, the way "
                       "'paceui fit' does: copies assets/demo/input.yaml to ./paceui-demo, writes "
                       "output_potential.yaml (+ .yace), metrics and report/ there, and prints the train/test "
                       "errors. Takes a few minutes; --quick runs 10 iterations.")
    s.add_argument("--quick", action="store_true", help="10 iterations instead of 60")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("new", help="terminal UI on a new session from a pacemaker input.yaml")
    s.add_argument("input")
    s.add_argument("-o", "--output", help="session folder (default: sessions/<folder of the input>)")
    s.set_defaults(func=cmd_new)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    if not argv or (len(argv) == 1 and not argv[0].startswith("-") and argv[0] not in commands):
        return _tui(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    _exit_on_sigterm()
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every warning, once per command (deduplicated below)
        warnings.showwarning = _warning_line(args.command)  # type: ignore[assignment]
        try:
            return int(args.func(args) or 0)
        except (*ERRORS, RuntimeError) as exc:
            print(f"paceui {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"paceui {args.command}: interrupted", file=sys.stderr)
            return 130


def _exit_on_sigterm() -> None:
    """SIGTERM raises SystemExit, so a write in progress removes its temporary file (see paceui._atomic)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _warning_line(command: str) -> Any:
    """A ``warnings.showwarning`` that prints paceui's warnings as one line on stderr."""
    seen: set[str] = set()

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = " ".join(str(message).split())
        if text not in seen:
            seen.add(text)
            print(f"paceui {command}: warning: {text}", file=sys.stderr)
    return show


def _tui(argv: list[str]) -> int:
    """``paceui`` (demo session) or ``paceui SESSION_DIR``: the terminal UI, imported only here."""
    try:
        from paceui.tui.launch import main_demo, main_open

        return main_demo() if not argv else main_open(argv[0])
    except (*ERRORS, RuntimeError) as exc:
        print(f"paceui: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
