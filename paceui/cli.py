"""Command line: ``paceui info``, ``paceui yaml2yace``, ``paceui eval``, ``paceui fit``, ``paceui demo``,
``paceui activeset``, ``paceui select``, ``paceui timing``, and
the terminal UI: ``paceui`` (demo session), ``paceui SESSION_DIR``, ``paceui new input.yaml|DATA [-o DIR]``."""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.table import Table

from paceui._atomic import atomic_write_text, check_writable
from paceui.cli_helpers import exit_on_sigterm as _exit_on_sigterm
from paceui.cli_helpers import one_line as _one_line
from paceui.cli_helpers import read_structures
from paceui.cli_helpers import warning_line as _warning_line
from paceui.errors import PaceuiError

ERRORS = (PaceuiError, OSError, ValueError, KeyError)
"""What a command may raise for a user's mistake or a failing resource: printed as one line, exit status 1
(status 2: the command line itself is wrong). ValueError and KeyError stand for third-party parsers' errors."""


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
    gammas = None
    if args.active_set:
        from paceui.ace.activeset import ActiveSet, structure_gamma

        gammas = structure_gamma(model, ActiveSet.load(args.active_set, potential=model), frames)
    out = []
    for k, at in enumerate(frames):
        try:
            r = model.evaluate(at)
        except ValueError as exc:
            raise ValueError(f"{args.structure}: frame {k}: {exc}") from None
        o = {"index": k, "natoms": len(at), "energy": r.energy, "energy_per_atom": r.energy / len(at),
             "max_force": float(np.abs(r.forces).max()) if len(at) else 0.0,
             "forces": r.forces.tolist(), "stress": None if r.stress is None else r.stress.tolist()}
        if gammas is not None:
            o["max_gamma"] = float(gammas[k].max()) if len(at) else 0.0
            o["gamma"] = gammas[k].tolist()
        out.append(o)
    if args.json:
        print(json.dumps(out if len(out) > 1 else out[0]))
        return 0
    cols = ["#", "atoms", "energy eV", "eV/atom", "max |F| eV/Å"] + (["max γ"] if gammas is not None else [])
    t = Table(*cols, title=f"{args.potential} on {args.structure}")
    for o in out:
        t.add_row(str(o["index"]), str(o["natoms"]), f"{o['energy']:.6f}", f"{o['energy_per_atom']:.6f}",
                  f"{o['max_force']:.4f}", *([f"{o['max_gamma']:.4g}"] if gammas is not None else []))
    Console().print(t)
    return 0


def _read_structures(paths: Sequence[str], fmt: str | None = None,
                     elements: Sequence[str] | None = None) -> tuple[list[Any], Any]:
    """Structures of pacemaker dataframes or any ASE-readable files (extxyz, traj, LAMMPS dumps).

    ``elements`` maps LAMMPS atom types 1, 2, ... (read by ASE as H, He, ...) to element symbols.
    Returns the ``ase.Atoms`` and the loaded frame (a DataFrame with an ``ase_atoms`` column).
    """
    import pandas as pd

    from paceui.data.io import frame_from_atoms, load_dataframe

    frames = []
    for p in paths:
        if fmt:
            import ase.io  # only here: ase.io pulls in scipy.integrate via ase.lattice (~0.5 s)

            try:
                images = ase.io.read(p, index=":", format=fmt)
            except Exception as exc:  # ase raises many kinds
                raise ValueError(f"{p}: ase.io.read(format={fmt!r}) could not read it: {exc}") from exc
            frames.append(frame_from_atoms(images if isinstance(images, list) else [images], p))
        else:
            frames.append(load_dataframe(p))
        frames[-1]["source_file"] = p
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    atoms = list(df["ase_atoms"])
    if elements:
        for a in atoms:
            z = a.get_atomic_numbers()
            if z.max() > len(elements):
                raise ValueError(f"atom type {z.max()} but only {len(elements)} --elements given")
            a.set_chemical_symbols([elements[t - 1] for t in z])
    return atoms, df


def cmd_activeset(args: argparse.Namespace) -> int:
    import time

    from paceui.ace.activeset import build_active_set

    base = str(Path(args.potential).with_suffix("")) if args.potential.endswith((".yaml", ".yml")) else args.potential
    out = args.output or (base + (".asi.nonlinear" if args.full else ".asi"))
    check_writable(out, "-o/--output")  # before any work
    t0 = time.perf_counter()
    atoms, _ = _read_structures(args.dataset)
    t1 = time.perf_counter()
    kind = "full" if args.full else "linear"
    aset, reports = build_active_set(args.potential, atoms, kind=kind, tol=args.tol, max_iters=args.max_iters,
                                     memory_limit_mb=args.memory_limit, refinement_steps=args.refinement)
    t2 = time.perf_counter()
    aset.save(out)
    t = Table("element", "active set", "atoms", "structures drawn from", "max γ (data)", "MaxVol swaps",
              title=f"{kind} active set of {args.potential} from {len(atoms)} structures")
    for r in reports:
        t.add_row(r.element, str(r.size), str(r.n_rows), str(r.n_structures), f"{r.max_gamma:.5f}", str(r.n_iters))
    Console().print(t)
    print(f"written {out}; time {t2 - t1:.2f} s (+ {t1 - t0:.2f} s reading data)")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    import numpy as np

    from paceui.ace.activeset import ActiveSet
    from paceui.ace.selection import select_d_optimal
    from paceui.data.io import save_dataframe

    out = check_writable(args.output, "-o/--output")  # before any work
    atoms, df = _read_structures(args.candidates, args.format, args.elements)
    aset = ActiveSet.load(args.active_set, potential=args.potential) if args.active_set else None
    sel = select_d_optimal(args.potential, atoms, active_set=aset, max_structures=args.max_structures,
                           kind="full" if args.full else "linear", memory_limit_mb=args.memory_limit,
                           tol=args.tol)
    chosen = df.iloc[sel.indices].copy().reset_index(drop=True)
    chosen["gamma"] = sel.gamma
    chosen["candidate_index"] = sel.indices
    images = []
    for a, g, k in zip(chosen["ase_atoms"], sel.gamma, sel.indices):
        a = a.copy()
        a.info["gamma"] = float(g)
        a.info["candidate_index"] = int(k)
        images.append(a)
    chosen["ase_atoms"] = images
    import ase.io

    text = io.StringIO()
    ase.io.write(text, images, format="extxyz")
    atomic_write_text(out, text.getvalue())
    name = out.name
    for suf in (".extxyz", ".xyz"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    pkl = save_dataframe(chosen.drop(columns=["source_file"], errors="ignore"), out.with_name(name + ".pckl.gzip"))
    t = Table("#", "candidate", "atoms", "max γ", title=f"{len(sel.indices)} of {len(atoms)} candidates selected")
    for r, (k, g) in enumerate(zip(sel.indices, sel.gamma)):
        t.add_row(str(r), str(k), str(len(atoms[k])), "n/a" if np.isnan(g) else f"{g:.4g}")
    Console().print(t)
    print(f"written {out} and {pkl}")
    return 0


def cmd_timing(args: argparse.Namespace) -> int:
    from paceui.ace.timing import time_potential

    model, cells, rows = time_potential(args.potential, args.nstructures, args.repeat, args.seed)
    natoms = sum(len(c.species) for c in cells)
    if args.json:
        print(json.dumps({"potential": args.potential, "elements": model.elements, "cutoff": model.cutoff,
                          "structures": len(cells), "atoms": natoms,
                          "timings": [{"threads": r.threads, "median_us_per_atom": r.median_us,
                                       "min_us_per_atom": r.min_us, "max_us_per_atom": r.max_us} for r in rows]}))
        return 0
    print(f"{args.potential}: {', '.join(model.elements)}, cutoff {model.cutoff:g} Å; {len(cells)} random fcc/bcc "
          f"2x2x2 cells ({natoms} atoms), energy+forces, best of {args.repeat} per cell")
    print(f"{'threads':>7s} {'µs/atom':>10s} {'fastest':>10s} {'slowest':>10s}   (median over cells)")
    for r in rows:
        print(f"{r.threads:7d} {r.median_us:10.2f} {r.min_us:10.2f} {r.max_us:10.2f}")
    return 0


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


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def cmd_recipe(args: argparse.Namespace) -> int:
    from paceui.fit.recipe import write_recipe

    print(write_recipe(args.data, args.output, minutes=args.minutes, test_size=args.test_size,
                       energy_key=args.energy_key, forces_key=args.forces_key))
    return 0


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
    s.add_argument("-a", "--active-set", dest="active_set", help="a .asi: adds the extrapolation grade γ")
    s.set_defaults(func=cmd_eval)
    s = sub.add_parser("activeset", help="active set (.asi) of a potential on its training data (MaxVol)")
    s.add_argument("potential", help="B-basis potential .yaml")
    s.add_argument("-d", "--dataset", action="append", required=True,
                   help="data file (pacemaker dataframe or ASE-readable); repeat for several")
    s.add_argument("-f", "--full", action="store_true", help="full (non-linear) projections: .asi.nonlinear")
    s.add_argument("-o", "--output", help="output file (default: POT.asi or POT.asi.nonlinear)")
    s.add_argument("-m", "--memory-limit", dest="memory_limit", type=float, default=1000.0,
                   help="memory for projections and MaxVol, MB (default 1000)")
    s.add_argument("-g", "--tol", type=float, default=1.01, help="MaxVol γ tolerance (default 1.01)")
    s.add_argument("-i", "--max-iters", dest="max_iters", type=int, default=300, help="MaxVol swaps (default 300)")
    s.add_argument("-r", "--refinement", type=int, default=2, help="refinement passes for batched data (default 2)")
    s.set_defaults(func=cmd_activeset)
    s = sub.add_parser("select", help="D-optimal selection of candidate structures to compute with DFT")
    s.add_argument("potential", help="B-basis potential .yaml")
    s.add_argument("candidates", nargs="+", help="extxyz/traj/LAMMPS dump files or pacemaker dataframes")
    s.add_argument("-a", "--active-set", dest="active_set", help="the potential's .asi (recommended)")
    s.add_argument("-m", "--max-structures", dest="max_structures", type=int, help="at most N structures")
    s.add_argument("-o", "--output", default="selected.extxyz",
                   help="extxyz of the selection (default selected.extxyz; a .pckl.gzip dataframe beside it)")
    s.add_argument("-f", "--full", action="store_true", help="full projections (without an active set)")
    s.add_argument("--format", help="ASE format of the candidate files (e.g. lammps-dump-text)")
    s.add_argument("-e", "--elements", nargs="+", help="element of LAMMPS atom types 1, 2, ...")
    s.add_argument("--memory-limit", dest="memory_limit", type=float, default=1000.0, help="MB (default 1000)")
    s.add_argument("-g", "--tol", type=float, default=1.01, help="MaxVol γ tolerance (default 1.01)")
    s.set_defaults(func=cmd_select)
    s = sub.add_parser("timing", help="µs/atom of energy+forces on random fcc/bcc cells, 1 and all threads "
                       "(pacemaker's pace_timing)")
    s.add_argument("potential", help="potential .yaml or .yace")
    s.add_argument("-n", "--nstructures", type=_positive_int, default=10, help="random cells (default 10)")
    s.add_argument("--repeat", type=_positive_int, default=3, help="timed calls per cell, best kept (default 3)")
    s.add_argument("--seed", type=int, default=0, help="seed of the random cells (default 0)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_timing)
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
    s = sub.add_parser("recipe", help="write input.yaml for a training set by paceui's rule (paceui.fit.recipe)")
    s.add_argument("data", help="training structures (any ASE-readable file; energy and forces)")
    s.add_argument("-o", "--output", default="input.yaml")
    s.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget the iterations are sized for")
    s.add_argument("--test-size", dest="test_size", type=float, default=0.1,
                   help="validation fraction of the training file that κ is chosen on (default 0.1)")
    s.add_argument("--energy-key", dest="energy_key", help="info key of the total energies (eV), e.g. dft_energy")
    s.add_argument("--forces-key", dest="forces_key", help="arrays key of the forces (eV/Å), e.g. dft_force")
    s.set_defaults(func=cmd_recipe)
    s = sub.add_parser("new", help="terminal UI on a new session from a pacemaker input.yaml, or from a training "
                       "set (DATA: the input.yaml that 'paceui recipe' proposes, written into the session folder)")
    s.add_argument("input", help="input.yaml, or a training-data file (extxyz, pckl.gzip, ...)")
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
