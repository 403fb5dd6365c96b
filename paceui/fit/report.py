"""Report figures after a fit, named like pacemaker's ``report/`` folder.

Inputs are arrays: energies per atom (eV/atom), forces ``[N, 3]`` (eV/Å), optional ``nn_min``
per structure (Å). Plots show errors in meV/atom and meV/Å. Matplotlib is imported lazily and
used through ``Figure`` objects (Agg canvas, no pyplot state), so this works from worker threads.
Every file is rendered to a temporary file in the target folder and moved into place with
``os.replace``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from paceui._atomic import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_SCATTER_POINTS = 100_000
"""Scatter plots show at most this many (randomly chosen, seed 0) points; statistics use all."""


def _figure(nrows: int, ncols: int, size: tuple[float, float]) -> tuple["Figure", np.ndarray]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.reshape(-1)


def save_figure(fig: "Figure", path: Path, image_format: str) -> Path:
    """Render ``fig`` to ``path`` atomically (:func:`paceui._atomic.atomic_write_bytes`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format=image_format, dpi=120)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _stats_text(err: np.ndarray, unit: str) -> str:
    err = err[np.isfinite(err)]
    if err.size == 0:
        return "no data"
    rmse = float(np.sqrt(np.mean(err * err)))
    mae = float(np.mean(np.abs(err)))
    return f"RMSE = {rmse:.2f} {unit}\nMAE = {mae:.2f} {unit}\nN = {err.size}"


def _annotate(ax: "Axes", text: str) -> None:
    ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", ha="left", fontsize=9,
            bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"})


def _subsample(n: int) -> np.ndarray:
    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))


def _scatter(ax: "Axes", x: np.ndarray, y: np.ndarray, **kw: Any) -> None:
    idx = _subsample(x.shape[0])
    ax.scatter(x[idx], y[idx], s=kw.pop("s", 6), alpha=kw.pop("alpha", 0.5), rasterized=True, **kw)


def _parity(ax: "Axes", ref: np.ndarray, pred: np.ndarray, label: str, unit: str,
            err_unit: str, scale: float) -> None:
    _scatter(ax, ref, pred)
    finite = np.concatenate([ref[np.isfinite(ref)], pred[np.isfinite(pred)]])
    if finite.size:
        lo, hi = float(finite.min()), float(finite.max())
        pad = 0.05 * (hi - lo) if hi > lo else 0.5
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"reference {label} ({unit})")
    ax.set_ylabel(f"predicted {label} ({unit})")
    _annotate(ax, _stats_text((pred - ref) * scale, err_unit))
    ax.grid(alpha=0.3)


def _error_dist(fig_axes: np.ndarray, x: np.ndarray, err: np.ndarray, xlabel: str,
                err_label: str, unit: str) -> None:
    ax, hx = fig_axes
    _scatter(ax, x, err)
    ax.axhline(0.0, color="k", lw=1, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{err_label} ({unit})")
    ax.set_title(f"{err_label} vs {xlabel.split(' (')[0]}")
    ax.grid(alpha=0.3)
    _annotate(ax, _stats_text(err, unit))
    finite = err[np.isfinite(err)]
    hx.hist(finite, bins=min(100, max(10, int(np.sqrt(max(finite.size, 1))))), color="C1")
    hx.set_xlabel(f"{err_label} ({unit})")
    hx.set_ylabel("count")
    hx.set_title(f"Distribution of {err_label}")
    hx.set_yscale("log")
    hx.grid(alpha=0.3)


def _arrays(data: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {k: np.asarray(data[k], dtype=np.float64).reshape(-1)
           for k in ("e_ref_per_atom", "e_pred_per_atom")}
    if out["e_ref_per_atom"].shape != out["e_pred_per_atom"].shape:
        raise ValueError("e_ref_per_atom and e_pred_per_atom differ in length")
    out["f_ref"] = np.asarray(data["f_ref"], dtype=np.float64).reshape(-1, 3)
    out["f_pred"] = np.asarray(data["f_pred"], dtype=np.float64).reshape(-1, 3)
    if out["f_ref"].shape != out["f_pred"].shape:
        raise ValueError("f_ref and f_pred differ in shape")
    if data.get("nn_min") is not None:
        out["nn_min"] = np.asarray(data["nn_min"], dtype=np.float64).reshape(-1)
        if out["nn_min"].shape != out["e_ref_per_atom"].shape:
            raise ValueError("nn_min needs one value per structure")
    return out


def _dataset_figures(out_dir: Path, prefix: str, label: str, data: Mapping[str, Any],
                     image_format: str) -> list[Path]:
    d = _arrays(data)
    e_ref, e_pred, f_ref, f_pred = d["e_ref_per_atom"], d["e_pred_per_atom"], d["f_ref"], d["f_pred"]
    de = (e_pred - e_ref) * 1e3
    paths: list[Path] = []

    def emit(fig: "Figure", name: str, title: str) -> None:
        fig.suptitle(f"{label}: {title}")
        paths.append(save_figure(fig, out_dir / f"{prefix}{name}.{image_format}", image_format))

    fig, ax = _figure(1, 2, (11, 5))
    _parity(ax[0], e_ref, e_pred, "energy", "eV/atom", "meV/atom", 1e3)
    ax[0].set_title("Energy per atom")
    _parity(ax[1], f_ref.reshape(-1), f_pred.reshape(-1), "force component", "eV/Å", "meV/Å", 1e3)
    ax[1].set_title("Force components")
    emit(fig, "EF-pairplots", "parity plots")

    fig, ax = _figure(1, 2, (11, 4.5))
    _error_dist(ax, e_ref, de, "reference energy (eV/atom)", "ΔE", "meV/atom")
    emit(fig, "E-dE-dist", "energy error vs energy")

    fig, ax = _figure(1, 2, (11, 4.5))
    _error_dist(ax, f_ref.reshape(-1), (f_pred - f_ref).reshape(-1) * 1e3,
                "reference force component F_i (eV/Å)", "ΔF_i", "meV/Å")
    emit(fig, "Fi-dFi-dist", "force component error vs force component")

    fig, ax = _figure(1, 2, (11, 4.5))
    _error_dist(ax, np.linalg.norm(f_ref, axis=1), np.linalg.norm(f_pred - f_ref, axis=1) * 1e3,
                "reference |F| (eV/Å)", "|ΔF|", "meV/Å")
    emit(fig, "F-dF-dist", "force error norm vs force norm")

    if "nn_min" in d:
        fig, ax = _figure(1, 2, (11, 4.5))
        _error_dist(ax, d["nn_min"], de, "min. nearest-neighbour distance (Å)", "ΔE", "meV/atom")
        emit(fig, "E-dE-nn", "energy error vs nearest-neighbour distance")
    if data.get("s_ref") is not None and len(data["s_ref"]):
        gpa = 160.21766208
        s_ref = np.asarray(data["s_ref"], float).reshape(-1, 6) * gpa
        s_pred = np.asarray(data["s_pred"], float).reshape(-1, 6) * gpa
        fig, ax = _figure(1, 2, (11, 5))
        _parity(ax[0], s_ref[:, :3].ravel(), s_pred[:, :3].ravel(), "σ_aa", "GPa", "GPa", 1.0)
        ax[0].set_title("Stress, normal components")
        _parity(ax[1], s_ref[:, 3:].ravel(), s_pred[:, 3:].ravel(), "σ_ab", "GPa", "GPa", 1.0)
        ax[1].set_title("Stress, shear components")
        emit(fig, "S-pairplots", "stress parity plots")
    return paths


_CURVES = (("loss", "Loss", "loss", 1.0),
           ("rmse_epa", "RMSE energy", "meV/atom", 1e3),
           ("rmse_f_comp", "RMSE force components", "meV/Å", 1e3))


def _x_values(history: "pd.DataFrame") -> tuple[np.ndarray, str]:
    for col in ("iteration", "iter_num"):
        if col in history.columns:
            return history[col].to_numpy(dtype=np.float64), "iteration"
    return np.arange(len(history), dtype=np.float64), "record"


def learning_curves(out_path: str | os.PathLike[str], history: "pd.DataFrame",
                    image_format: str = "png") -> Path:
    """Loss, RMSE energy (meV/atom) and RMSE force components (meV/Å) vs iteration, log scale.

    Uses columns ``loss``, ``rmse_epa``, ``rmse_f_comp`` with optional ``low_`` and ``test_``
    prefixed variants (NaN rows skipped); x is ``iteration`` / ``iter_num`` or the row number.
    """
    x, xlabel = _x_values(history)
    fig, axes = _figure(1, 3, (15, 4.5))
    for ax, (col, title, unit, scale) in zip(axes, _CURVES):
        for prefix, style in (("", "-"), ("test_", "--")):
            for sub, alpha in (("", 1.0), ("low_", 0.6)):
                name = f"{prefix}{sub}{col}"
                if name not in history.columns:
                    continue
                y = history[name].to_numpy(dtype=np.float64) * scale
                ok = np.isfinite(y) & (y > 0)
                if ok.any():
                    ax.plot(x[ok], y[ok], style, alpha=alpha, label=name,
                            marker="o" if ok.sum() < 30 else None, ms=3)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(title if unit == "loss" else f"{title} ({unit})")
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Learning curves")
    return save_figure(fig, Path(out_path), image_format)


def ef_distributions(out_path: str | os.PathLike[str], e_per_atom: np.ndarray,
                     f_norms: np.ndarray, image_format: str = "png") -> Path:
    """Histograms of energy per atom (eV/atom) and force norms |F| (eV/Å), like
    ``train_ef-distributions.png``."""
    e = np.asarray(e_per_atom, dtype=np.float64).reshape(-1)
    f = np.asarray(f_norms, dtype=np.float64).reshape(-1)
    fig, ax = _figure(1, 2, (11, 4.5))
    for a, vals, xlabel, title in ((ax[0], e, "energy (eV/atom)", "Energy per atom"),
                                   (ax[1], f, "|F| (eV/Å)", "Force norm")):
        vals = vals[np.isfinite(vals)]
        a.hist(vals, bins=min(100, max(10, int(np.sqrt(max(vals.size, 1))))), color="C0")
        a.set_yscale("log")
        a.set_xlabel(xlabel)
        a.set_ylabel("count")
        a.set_title(f"{title} (N = {vals.size})")
        a.grid(alpha=0.3)
    fig.suptitle("Energy and force distributions")
    return save_figure(fig, Path(out_path), image_format)


def write_report(out_dir: str | os.PathLike[str], train: Mapping[str, Any],
                 test: Mapping[str, Any] | None = None, history: "pd.DataFrame | None" = None,
                 image_format: str = "png") -> list[Path]:
    """Write the report figures into ``out_dir`` (the ``report/`` folder itself); returns the paths.

    train / test: dicts with ``e_ref_per_atom``, ``e_pred_per_atom`` (eV/atom), ``f_ref``,
    ``f_pred`` (``[N, 3]``, eV/Å), optional ``nn_min`` (Å, per structure → ``E-dE-nn``) and optional
    ``s_ref``/``s_pred`` (``[S, 6]`` Voigt stresses in eV/Å³ of the structures with one → ``S-pairplots``).
    Files: ``{train_,test_}{EF-pairplots,E-dE-dist,Fi-dFi-dist,F-dF-dist,E-dE-nn,S-pairplots}`` and
    ``learning_curves`` (if ``history`` has rows).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = _dataset_figures(out, "train_", "Train", train, image_format)
    if test is not None:
        paths += _dataset_figures(out, "test_", "Test", test, image_format)
    if history is not None and len(history) > 0:
        paths.append(learning_curves(out / f"learning_curves.{image_format}", history, image_format))
    return paths
