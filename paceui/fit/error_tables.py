"""Error tables of a set: one row per structure, one row per group of structures (energy, force and stress
errors for the log, the report and the session), and the errors of the structures with reference stresses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from paceui.fit.metrics import NAN, _resolve_low, _validate, _weights

EV_A3_TO_GPA = 160.21766208
"""1 eV/Å³ in GPa."""


def per_structure_errors(e_pred: np.ndarray, e_ref: np.ndarray, n_atoms: np.ndarray,
                         f_pred: np.ndarray, f_ref: np.ndarray,
                         w_e: np.ndarray | None = None, names: Sequence[str] | None = None,
                         low_mask: np.ndarray | None = None) -> pd.DataFrame:
    """One row per structure (index = structure position) for analysis tables.

    Columns: ``name`` (if given), ``n_atoms``, ``e_ref_per_atom`` / ``e_pred_per_atom`` (eV/atom),
    ``de_per_atom_mev`` (signed, meV/atom), ``f_rmse_mev`` (component RMSE, meV/Å),
    ``df_max_mev`` (max |ΔF_i| vector norm, meV/Å), ``w_energy``, ``low`` (bool).
    """
    ep, er, nat, fp, fr = _validate(e_pred, e_ref, n_atoms, f_pred, f_ref)
    ns = ep.shape[0]
    e_ref_pa, e_pred_pa = er / nat, ep / nat
    df = fp - fr
    if ns:
        starts = np.concatenate(([0], np.cumsum(nat)[:-1]))
        sq = np.sum(df * df, axis=1)
        f_rmse = np.sqrt(np.add.reduceat(sq, starts) / (3.0 * nat))
        df_max = np.sqrt(np.maximum.reduceat(sq, starts))
    else:
        f_rmse = df_max = np.zeros(0)
    cols: dict[str, object] = {}
    if names is not None:
        if len(names) != ns:
            raise ValueError(f"names: expected {ns} values, got {len(names)}")
        cols["name"] = list(names)
    cols.update(
        n_atoms=nat, e_ref_per_atom=e_ref_pa, e_pred_per_atom=e_pred_pa,
        de_per_atom_mev=(e_pred_pa - e_ref_pa) * 1e3, f_rmse_mev=f_rmse * 1e3,
        df_max_mev=df_max * 1e3, w_energy=_weights("w_e", w_e, ns),
        low=_resolve_low(low_mask, e_ref_pa),
    )
    return pd.DataFrame(cols)


def stress_stats(w_pred: np.ndarray, s_ref: np.ndarray, n_atoms: np.ndarray, vol: np.ndarray
                 ) -> dict[str, float | int]:
    """Stress errors over the structures with a reference (finite ``s_ref`` rows): W = Ω·σ [S, 6] (eV) in,
    ``rmse/mae/max_abs_stress`` (eV/Å³), ``rmse/mae_virial_pa`` (eV/atom) and ``n_stress`` out."""
    has = np.all(np.isfinite(s_ref), axis=1) & (np.asarray(vol) > 0)
    if not has.any():
        return {"n_stress": 0}
    dw = np.asarray(w_pred)[has] - s_ref[has]
    ds = dw / np.asarray(vol, float)[has, None]
    dv = dw / np.asarray(n_atoms, float)[has, None]
    return {"rmse_stress": float(np.sqrt(np.mean(ds * ds))), "mae_stress": float(np.mean(np.abs(ds))),
            "max_abs_stress": float(np.max(np.abs(ds))), "rmse_virial_pa": float(np.sqrt(np.mean(dv * dv))),
            "mae_virial_pa": float(np.mean(np.abs(dv))), "n_stress": int(has.sum())}


GROUP_COLUMNS: tuple[str, ...] = ("group", "n_structures", "n_atoms", "rmse_epa_mev", "mae_epa_mev",
                                  "rmse_f_comp_mev", "mae_f_comp_mev", "n_stress", "rmse_stress_gpa",
                                  "mae_stress_gpa")
"""Columns of :func:`group_errors` (meV/atom, meV/Å, GPa)."""


def group_errors(groups: Sequence[str], e_pred: np.ndarray, e_ref: np.ndarray, n_atoms: np.ndarray,
                 f_pred: np.ndarray, f_ref: np.ndarray, w_pred: np.ndarray | None = None,
                 s_ref: np.ndarray | None = None, vol: np.ndarray | None = None) -> pd.DataFrame:
    """Errors per group (one row each, sorted by name, and ``ALL``): energy per atom (meV/atom), force
    components (meV/Å) and, where reference stresses exist (``s_ref`` W = Ω·σ [S, 6] eV, NaN rows where
    none; ``w_pred`` likewise; ``vol`` Å³), stress components (GPa)."""
    ep, er, nat, fp, fr = _validate(e_pred, e_ref, n_atoms, f_pred, f_ref)
    g = np.asarray([str(x) for x in groups], dtype=object)
    if len(g) != len(ep):
        raise ValueError(f"groups: expected {len(ep)} values, got {len(g)}")
    de = (ep - er) / nat
    atom_group = np.repeat(g, nat)
    df = fp - fr
    rows = []
    for name in sorted(set(g)) + ["ALL"]:
        sel = np.ones(len(g), bool) if name == "ALL" else g == name
        asel = np.ones(len(atom_group), bool) if name == "ALL" else atom_group == name
        d, f = de[sel], df[asel]
        row = {"group": name, "n_structures": int(sel.sum()), "n_atoms": int(nat[sel].sum()),
               "rmse_epa_mev": float(np.sqrt(np.mean(d * d)) * 1e3) if d.size else NAN,
               "mae_epa_mev": float(np.mean(np.abs(d)) * 1e3) if d.size else NAN,
               "rmse_f_comp_mev": float(np.sqrt(np.mean(f * f)) * 1e3) if f.size else NAN,
               "mae_f_comp_mev": float(np.mean(np.abs(f)) * 1e3) if f.size else NAN,
               "n_stress": 0, "rmse_stress_gpa": NAN, "mae_stress_gpa": NAN}
        if w_pred is not None and s_ref is not None and vol is not None:
            st = stress_stats(np.asarray(w_pred)[sel], np.asarray(s_ref)[sel], nat[sel], np.asarray(vol)[sel])
            if st["n_stress"]:
                row.update(n_stress=int(st["n_stress"]), rmse_stress_gpa=float(st["rmse_stress"]) * EV_A3_TO_GPA,
                           mae_stress_gpa=float(st["mae_stress"]) * EV_A3_TO_GPA)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))


def group_table_text(table: pd.DataFrame, title: str) -> str:
    """The per-group error table as log lines (meV/atom, meV/Å, GPa)."""
    head = f"{'group':<24} {'n_str':>6}" + "".join(f" {h:>9}" for h in ("E RMSE", "E MAE", "F RMSE", "F MAE", "S RMSE",
                                                                       "S MAE"))
    lines = [f"{title} errors per group (E meV/atom, F meV/Å, S GPa):", head]
    for r in table.itertuples(index=False):
        lines.append(f"{str(r.group)[:24]:<24} {r.n_structures:>6d} {r.rmse_epa_mev:>9.2f} {r.mae_epa_mev:>9.2f} "
                     f"{r.rmse_f_comp_mev:>9.2f} {r.mae_f_comp_mev:>9.2f} {r.rmse_stress_gpa:>9.4f} "
                     f"{r.mae_stress_gpa:>9.4f}")
    return "\n".join(lines)
