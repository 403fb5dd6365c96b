"""paceui.fit.metrics and paceui.fit.logfmt: formulas against explicit loops, exact log text, tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paceui.fit.logfmt import extended_block, iteration_line, stop_reason_line
from paceui.fit.metrics import (
    METRICS_COLUMNS,
    FitMetrics,
    MetricsFileWriter,
    compute_metrics,
    metrics_columns,
    metrics_file_name,
    per_structure_errors,
    read_metrics_file,
)


def _data(seed: int = 1, nstruct: int = 7):
    rng = np.random.default_rng(seed)
    nat = rng.integers(1, 6, nstruct)
    n = int(nat.sum())
    e_ref_pa = rng.uniform(-4.0, -1.0, nstruct)
    e_ref_pa[0] = -5.0  # lowest; structures above -4.0 eV/atom are outside the low window
    e_ref = e_ref_pa * nat
    e_pred = e_ref + rng.normal(0, 0.05, nstruct) * nat
    f_ref = rng.normal(0, 1, (n, 3))
    f_pred = f_ref + rng.normal(0, 0.1, (n, 3))
    w_e = rng.uniform(0.5, 2, nstruct)
    w_e /= w_e.sum()
    w_f = rng.uniform(0.5, 2, n)
    w_f /= w_f.sum()
    return e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f


def _loop_reference(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, kappa, low):
    """Metrics by explicit Python loops (independent of the vectorised code)."""
    de, e_loss, f_loss = [], 0.0, 0.0
    dfs, low_de, low_dfs = [], [], []
    a = 0
    for s in range(len(nat)):
        d = (e_pred[s] - e_ref[s]) / nat[s]
        de.append(d)
        e_loss += w_e[s] * d * d
        for i in range(a, a + nat[s]):
            v = f_pred[i] - f_ref[i]
            f_loss += w_f[i] * float(v @ v)
            dfs.append(v)
            if low[s]:
                low_dfs.append(v)
        if low[s]:
            low_de.append(d)
        a += nat[s]

    def fstats(vs):
        comps = [abs(c) for v in vs for c in v]
        norms = [math.sqrt(sum(c * c for c in v)) for v in vs]
        return dict(rmse_f=math.sqrt(sum(x * x for x in norms) / len(norms)),
                    rmse_f_comp=math.sqrt(sum(c * c for c in comps) / len(comps)),
                    mae_f=sum(norms) / len(norms), mae_f_comp=sum(comps) / len(comps),
                    max_abs_f=max(norms), max_abs_f_comp=max(comps))

    def estats(ds):
        return (math.sqrt(sum(d * d for d in ds) / len(ds)), sum(abs(d) for d in ds) / len(ds),
                max(abs(d) for d in ds))

    out = dict(e_loss=e_loss, f_loss=f_loss, e_loss_contrib=(1 - kappa) * e_loss,
               f_loss_contrib=kappa * f_loss)
    out.update(zip(("rmse_epa", "mae_epa", "max_abs_epa"), estats(de)))
    out.update(zip(("low_rmse_epa", "low_mae_epa", "low_max_abs_epa"), estats(low_de)))
    out.update(fstats(dfs))
    out.update({"low_" + k: v for k, v in fstats(low_dfs).items()})
    return out


@pytest.mark.parametrize("kappa", [0.0, 0.3, 1.0])
def test_metrics_match_loops_with_weights_kappa_and_default_low(kappa):
    e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f = _data()
    m = compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, kappa, nfuncs=11, ncoefs=42)
    low = (e_ref / nat) <= (e_ref / nat).min() + 1.0
    assert 0 < low.sum() < len(nat)  # the default low subset is a real subset here
    ref = _loop_reference(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, kappa, low)
    for key, val in ref.items():
        assert getattr(m, key) == pytest.approx(val, rel=1e-12, abs=1e-15), key
    assert m.loss == pytest.approx(ref["e_loss_contrib"] + ref["f_loss_contrib"], rel=1e-12)
    assert m.reg_loss == 0.0
    assert (m.nfuncs, m.ncoefs, m.n_structures, m.n_atoms) == (11, 42, len(nat), int(nat.sum()))
    assert m.n_low_structures == int(low.sum())
    assert m.n_low_atoms == int(nat[low].sum())
    assert m.kappa == kappa


def test_explicit_low_mask_and_reg_terms():
    e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f = _data(seed=5, nstruct=9)
    low = np.zeros(len(nat), dtype=bool)
    low[[1, 4, 8]] = True
    reg = {"l1": 1e-4, "l2": 2e-5, "orth": 3e-6, "w0": 4e-7, "w1": 5e-8, "w2": 6e-9}
    m = compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 0.4, low_mask=low, reg=reg)
    ref = _loop_reference(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 0.4, low)
    for key, val in ref.items():
        assert getattr(m, key) == pytest.approx(val, rel=1e-12), key
    assert (m.l1_reg_contrib, m.l2_reg_contrib, m.smooth_orth) == (1e-4, 2e-5, 3e-6)
    assert (m.smooth_w1, m.smooth_w2, m.smooth_w3) == (4e-7, 5e-8, 6e-9)
    assert m.reg_loss == pytest.approx(sum(reg.values()), rel=1e-14)
    assert m.loss == pytest.approx(0.6 * ref["e_loss"] + 0.4 * ref["f_loss"] + sum(reg.values()),
                                   rel=1e-12)
    by_field = {"l1_reg_contrib": 1e-4, "l2_reg_contrib": 2e-5, "smooth_orth": 3e-6,
                "smooth_w1": 4e-7, "smooth_w2": 5e-8, "smooth_w3": 6e-9}
    m2 = compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 0.4, low_mask=low, reg=by_field)
    assert m2 == m


def test_uniform_default_weights_and_empty_low_subset():
    e_pred, e_ref, nat, f_pred, f_ref, *_ = _data(seed=3)
    m = compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, None, None, 0.5,
                        low_mask=np.zeros(len(nat), bool))
    de = (e_pred - e_ref) / nat
    assert m.e_loss == pytest.approx(np.mean(de ** 2), rel=1e-12)
    assert m.f_loss == pytest.approx(np.mean(np.sum((f_pred - f_ref) ** 2, axis=1)), rel=1e-12)
    assert math.isnan(m.low_rmse_epa) and math.isnan(m.low_max_abs_f_comp)
    assert m.n_low_structures == 0


def test_input_validation():
    e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f = _data()
    with pytest.raises(ValueError, match="forces"):
        compute_metrics(e_pred, e_ref, nat, f_pred[:-1], f_ref[:-1], w_e, w_f[:-1], 0.3)
    with pytest.raises(ValueError, match="kappa"):
        compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 1.5)
    with pytest.raises(ValueError, match="regulariser"):
        compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 0.3, reg={"l3": 1.0})
    with pytest.raises(ValueError, match="w_e"):
        compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e[:-1], w_f, 0.3)


def test_as_dict_and_frozen():
    m = FitMetrics(loss=1.0, nfuncs=3)
    d = m.as_dict()
    assert d["loss"] == 1.0 and d["nfuncs"] == 3
    assert set(METRICS_COLUMNS) - {"ladder_step", "cycle_step", "iter_num"} <= set(d)
    with pytest.raises(AttributeError):
        m.loss = 2.0  # type: ignore[misc]


def test_per_structure_errors():
    e_pred, e_ref, nat, f_pred, f_ref, w_e, _ = _data(seed=2, nstruct=5)
    names = [f"s{i}" for i in range(5)]
    df = per_structure_errors(e_pred, e_ref, nat, f_pred, f_ref, w_e=w_e, names=names)
    assert list(df["name"]) == names and len(df) == 5
    a = 0
    for s in range(5):
        d = f_pred[a:a + nat[s]] - f_ref[a:a + nat[s]]
        a += nat[s]
        row = df.iloc[s]
        assert row["n_atoms"] == nat[s]
        assert row["de_per_atom_mev"] == pytest.approx((e_pred[s] - e_ref[s]) / nat[s] * 1e3)
        assert row["e_pred_per_atom"] == pytest.approx(e_pred[s] / nat[s])
        assert row["f_rmse_mev"] == pytest.approx(np.sqrt(np.mean(d ** 2)) * 1e3)
        assert row["df_max_mev"] == pytest.approx(np.linalg.norm(d, axis=1).max() * 1e3)
        assert row["w_energy"] == pytest.approx(w_e[s])
    assert "name" not in per_structure_errors(e_pred, e_ref, nat, f_pred, f_ref).columns


# ------------------------------------------------------------------------------ log text

def test_iteration_line_exact_text():
    m = FitMetrics(loss=1.92e-4, rmse_epa=0.01795, low_rmse_epa=0.01679,
                   rmse_f_comp=0.00789, low_rmse_f_comp=0.00704)
    # '{:<12}' title + '#{:<5}' iteration + '{:<14}' '(N evals):' + '{:>10}' 'Loss: ' + '{: >1.4e}'
    expected = ("Iteration   " + "#999  " + "(1052 evals): " + "    Loss: " + "1.9200e-04"
                + " | RMSE Energy(low): 17.95 (16.79) meV/at | Forces(low): 7.89 (7.04) meV/A"
                + " | Time/eval: 517.83 mcs/at")
    assert expected == ("Iteration   #999  (1052 evals):     Loss: 1.9200e-04 | RMSE Energy(low): "
                        "17.95 (16.79) meV/at | Forces(low): 7.89 (7.04) meV/A | Time/eval: "
                        "517.83 mcs/at")
    assert iteration_line("Iteration", 999, 1052, m, 517.83) == expected
    line0 = iteration_line("Initial state:", 0, 1, m, 12.3456)
    assert line0.startswith("Initial state:#0    (1 evals):        Loss: 1.9200e-04 | ")
    assert line0.endswith("| Time/eval: 12.35 mcs/at")


def test_extended_block_layout():
    m = FitMetrics(loss=2.0, e_loss_contrib=1.5, f_loss_contrib=0.4, l1_reg_contrib=0.06,
                   l2_reg_contrib=0.04, smooth_w2=0.0, rmse_epa=0.01795, low_rmse_epa=0.01679,
                   mae_epa=0.012, low_mae_epa=0.011, max_abs_epa=0.1, low_max_abs_epa=0.09,
                   rmse_f_comp=0.00789, low_rmse_f_comp=0.00704, mae_f_comp=0.005,
                   low_mae_f_comp=0.004, max_abs_f_comp=0.05, low_max_abs_f_comp=0.04,
                   nfuncs=12, ncoefs=345)
    lines = extended_block("FIT STATS", 20, m, 517.83).split("\n")
    assert lines[0] == "-" * 44 + "FIT STATS" + "-" * 44
    assert lines[1].startswith("Iteration:  #20") and lines[1].endswith("Total:  2.0000e+00 (100%)")
    labels = [ln.split(":")[0].strip() for ln in lines[2:6]]
    assert labels == ["Energy", "Force", "L1", "L2"]
    assert lines[2].endswith("1.5000e+00 ( 75.0%)") and lines[3].endswith("( 20.0%)")
    assert not any("Smooth" in ln for ln in lines)  # zero smoothness terms are left out
    colon = {ln.rindex(":  ") for ln in lines[1:6]}
    assert len(colon) == 1  # right-aligned labels
    assert "Number of params./funcs:" in lines[6] and "345/12" in lines[6]
    assert lines[6].endswith("517.83 mcs/at")
    assert lines[7] == "-" * 97
    assert [c.strip() for c in lines[8].split("|")[1:]] == [
        "Energy/at, meV/at", "Energy_low/at, meV/at", "Force, meV/A", "Force_low, meV/A"]
    table = {ln.split("|")[0].strip(): [float(c) for c in ln.split("|")[1:]] for ln in lines[9:12]}
    assert table == {"RMSE:": [17.95, 16.79, 7.89, 7.04], "MAE:": [12.0, 11.0, 5.0, 4.0],
                     "MAX_AE:": [100.0, 90.0, 50.0, 40.0]}
    assert len(lines) == 12


def test_stop_reason_line():
    import enum

    class StopReason(enum.Enum):
        PATIENCE = "patience"

    assert stop_reason_line("max_iter") == "Fit stopped: maximum number of iterations reached [MAX_ITER]"
    assert stop_reason_line(StopReason.PATIENCE).endswith("[PATIENCE]")
    assert stop_reason_line("something odd", "at it 5") == "Fit stopped: something odd (at it 5)"


# ------------------------------------------------------------------------------ metrics files

def _some_metrics(seed: int) -> FitMetrics:
    e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f = _data(seed=seed)
    return compute_metrics(e_pred, e_ref, nat, f_pred, f_ref, w_e, w_f, 0.3,
                           reg={"l1": 1e-8 * seed, "l2": 2e-8, "w1": 3e-9}, nfuncs=10 + seed,
                           ncoefs=100 + seed)


def test_metrics_file_roundtrip(tmp_path: Path):
    path = tmp_path / metrics_file_name("iteration")
    rows = [_some_metrics(s) for s in range(1, 4)]
    with MetricsFileWriter(path, "iteration") as w:
        for it, m in enumerate(rows):
            w.append(m, ladder_step=0, cycle_step=1, iter_num=it)
    text = path.read_text().splitlines()
    assert text[0].split() == list(METRICS_COLUMNS)
    assert text[0].startswith("ladder_step cycle_step iter_num loss" + " " * 19 + "e_loss_contrib")
    df = read_metrics_file(path)
    assert list(df.columns) == list(METRICS_COLUMNS) and len(df) == 3
    assert list(df["iter_num"]) == [0, 1, 2] and set(df["cycle_step"]) == {1}
    for (_, row), m in zip(df.iterrows(), rows):
        for col in METRICS_COLUMNS[3:]:
            assert row[col] == getattr(m, col), col  # repr round-trips floats exactly
    assert pd.api.types.is_integer_dtype(df["nfuncs"])


def test_cycle_and_ladder_columns(tmp_path: Path):
    assert metrics_columns("cycle") == tuple(c for c in METRICS_COLUMNS if c != "iter_num")
    assert metrics_columns("ladder")[:2] == ("ladder_step", "loss")
    assert [metrics_file_name(lv, t) for lv in ("iteration", "cycle", "ladder") for t in (False, True)] == [
        "metrics.txt", "test_metrics.txt", "cycle_metrics.txt", "test_cycle_metrics.txt",
        "ladder_metrics.txt", "test_ladder_metrics.txt"]
    w = MetricsFileWriter.for_run(tmp_path, "ladder", test=True)
    w.append(_some_metrics(1), ladder_step=4, cycle_step=9, iter_num=99)
    w.close()
    df = pd.read_csv(tmp_path / "test_ladder_metrics.txt", sep=r"\s+")
    assert list(df.columns) == list(metrics_columns("ladder"))
    assert df["ladder_step"].tolist() == [4]
    with pytest.raises(ValueError):
        metrics_columns("epoch")  # type: ignore[arg-type]


def test_reopen_appends_without_second_header(tmp_path: Path):
    path = tmp_path / "cycle_metrics.txt"
    for cycle in range(3):
        with MetricsFileWriter(path, "cycle") as w:
            w.append(_some_metrics(cycle + 1), cycle_step=cycle)
    lines = path.read_text().splitlines()
    assert sum(ln.startswith("ladder_step") for ln in lines) == 1
    assert read_metrics_file(path)["cycle_step"].tolist() == [0, 1, 2]
    # a writer closed and used again re-opens without a header too
    w = MetricsFileWriter(path, "cycle")
    w.append(_some_metrics(4), cycle_step=3)
    w.close()
    w.append(_some_metrics(5), cycle_step=4)
    w.close()
    assert read_metrics_file(path)["cycle_step"].tolist() == [0, 1, 2, 3, 4]


def test_torn_last_line_is_dropped_and_header_checked(tmp_path: Path):
    path = tmp_path / "metrics.txt"
    with MetricsFileWriter(path) as w:
        w.append(_some_metrics(1), iter_num=0)
    with open(path, "a") as fh:
        fh.write("0 1 1 0.123")  # interrupted write: no newline
    with MetricsFileWriter(path) as w:
        w.append(_some_metrics(2), iter_num=1)
    df = read_metrics_file(path)
    assert df["iter_num"].tolist() == [0, 1] and not df.isna().any().any()
    with pytest.raises(ValueError, match="header"):
        MetricsFileWriter(path, "ladder").append(_some_metrics(1))
