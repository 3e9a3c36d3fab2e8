"""NME, normalisers, FR, exact AUC, breakdowns and the accumulator, on hand-worked arrays; plot smoke tests."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from wingface.evaluation.metrics import (
    DEFAULT_NORMALISERS,
    NMEAccumulator,
    auc,
    breakdown,
    ced_curve,
    failure_rate,
    group_nme,
    nme,
    normaliser,
    point_errors,
    summarise,
)
from wingface.schemes import SCHEMES, get_scheme

# Two faces x three points. Face 0 errors (5, 0, 1) -> mean 2; face 1 errors (10, 0, 2) -> mean 4.
TARGET = np.array([[[0, 0], [4, 0], [0, 3]], [[0, 0], [10, 0], [0, 10]]], dtype=float)
PRED = TARGET + np.array([[[3, 4], [0, 0], [0, 1]], [[6, 8], [0, 0], [0, 2]]], dtype=float)


def test_point_errors_by_hand():
    np.testing.assert_allclose(point_errors(PRED, TARGET), [[5, 0, 1], [10, 0, 2]])


def test_normaliser_kinds_by_hand():
    np.testing.assert_allclose(normaliser(TARGET, None, ([0], [1])), [4, 10])
    np.testing.assert_allclose(normaliser(TARGET, None, (0, 2)), [3, 10])
    np.testing.assert_allclose(normaliser(TARGET, None, ([1, 2], [0])), [2.5, math.sqrt(50)])
    np.testing.assert_allclose(normaliser(TARGET, None, "box"), [math.sqrt(12), 10])
    np.testing.assert_allclose(normaliser(TARGET, None, "box_diagonal"), [5, math.sqrt(200)])
    boxes = np.array([[0, 0, 8, 2], [5, 5, 14, 9]])
    np.testing.assert_allclose(normaliser(TARGET, None, "box", boxes), [4, 6])


def _face68() -> np.ndarray:
    """A 300-W shape with outer corners 40 px apart and eye centres 36 px apart."""
    t = np.zeros((1, 68, 2))
    t[0, 36:42] = (12.4, 20)
    t[0, 36] = (10, 20)  # right eye mean x = (10 + 5 * 12.4) / 6 = 12
    t[0, 42:48] = (47.6, 20)
    t[0, 45] = (50, 20)  # left eye mean x = (50 + 5 * 47.6) / 6 = 48
    return t


def test_scheme_normalisers_300w():
    scheme = get_scheme("300w-68")
    np.testing.assert_allclose(normaliser(_face68(), scheme, "inter_ocular"), [40])
    np.testing.assert_allclose(normaliser(_face68(), scheme, "inter_pupil"), [36])


def test_normaliser_errors():
    with pytest.raises(ValueError, match="did you mean 'inter_ocular'"):
        normaliser(TARGET, None, "inter_occular")
    with pytest.raises(ValueError, match="scheme"):
        normaliser(TARGET, None, "inter_ocular")
    with pytest.raises(ValueError, match="68 points"):
        normaliser(TARGET, get_scheme("300w-68"), "inter_pupil")
    with pytest.raises(ValueError, match="point 5"):
        normaliser(TARGET, None, ([0], [5]))
    with pytest.raises(ValueError, match="two"):
        normaliser(TARGET, None, ([0], [1], [2]))
    with pytest.raises(ValueError, match="boxes"):
        normaliser(TARGET, None, "box", np.zeros((3, 4)))


def test_default_normalisers_follow_the_papers():
    assert DEFAULT_NORMALISERS["300w-68"] == ("inter_ocular", "inter_pupil")
    assert DEFAULT_NORMALISERS["wflw-98"] == ("inter_ocular",)
    assert DEFAULT_NORMALISERS["aflw-19"] == ("box",)
    assert SCHEMES["cofw-29"].inter_ocular == ((8,), (9,))
    assert set(DEFAULT_NORMALISERS) == set(SCHEMES)


def test_nme_by_hand_and_with_masks():
    np.testing.assert_allclose(nme(PRED, TARGET, [4, 10]), [0.5, 0.4])
    visible = np.array([[False, True, True], [True, True, True]])
    np.testing.assert_allclose(nme(PRED, TARGET, [4, 10], visible), [0.125, 0.4])
    target = TARGET.copy()
    target[1, 0] = np.nan  # an unannotated point is not counted
    np.testing.assert_allclose(nme(PRED, target, [4, 10]), [0.5, 0.1])


def test_group_nme_by_hand_and_with_masks():
    groups = {"a": (0,), "bc": (1, 2)}
    # Per-point errors / norm: face 0 (1.25, 0, 0.25), face 1 (1.0, 0, 0.2).
    assert group_nme(PRED, TARGET, [4, 10], groups) == pytest.approx({"a": 112.5, "bc": 11.25})
    visible = np.array([[False, True, True], [True, True, True]])
    assert group_nme(PRED, TARGET, [4, 10], groups, visible)["a"] == pytest.approx(100.0)  # face 1 only
    hidden = np.array([[False, True, True], [False, True, True]])
    assert set(group_nme(PRED, TARGET, [4, 10], groups, hidden)) == {"bc"}  # no counted point: left out


def test_nme_rejects_bad_normalisers_and_empty_faces():
    with pytest.raises(ValueError, match=r"face\(s\) \[1\]"):
        nme(PRED, TARGET, [4, 0])
    with pytest.raises(ValueError, match="no visible"):
        nme(PRED, TARGET, [4, 10], np.array([[True] * 3, [False] * 3]))
    with pytest.raises(ValueError, match="norm"):
        nme(PRED, TARGET, [4, 10, 1])
    with pytest.raises(ValueError, match="visible"):
        nme(PRED, TARGET, [4, 10], np.ones((3, 2), bool))


def test_nan_prediction_is_a_failure():
    pred = PRED.copy()
    pred[0, 1] = np.nan
    errors = nme(pred, TARGET, [4, 10])
    assert np.isnan(errors[0])
    assert failure_rate(errors, 0.5) == 0.5
    assert auc(errors, 1.0) == pytest.approx((0 + 0.6) / 2)


def test_failure_rate_edges():
    errors = [0.05, 0.1, 0.15, 0.0]
    assert failure_rate(errors, 0.1) == 0.25  # exactly at the threshold is not a failure
    assert failure_rate(errors, 0.2) == 0.0
    assert failure_rate(errors, 0.01) == 0.75
    assert failure_rate([np.inf], 0.1) == 1.0
    with pytest.raises(ValueError, match="no faces"):
        failure_rate([], 0.1)
    with pytest.raises(ValueError, match="threshold"):
        failure_rate(errors, 0.0)


def test_auc_by_hand():
    assert auc([0.0, 0.05, 0.2], 0.1) == pytest.approx(0.5)
    assert auc([0.0, 0.0], 0.1) == 1.0
    assert auc([0.1, 0.3], 0.1) == 0.0
    assert auc([0.02], 0.08) == pytest.approx(0.75)


def test_auc_is_exact_against_fine_integration():
    errors = np.random.default_rng(0).gamma(3.0, 0.02, size=257)
    errors[:5] = [0.0, 0.1, 0.1, 0.0999999, 0.25]  # ties and points at the limit
    n = 2_000_000
    x = (np.arange(n) + 0.5) * (0.1 / n)  # midpoint rule on the step CED
    ced = np.searchsorted(np.sort(errors), x, side="right") / errors.size
    assert auc(errors, 0.1) == pytest.approx(ced.mean(), abs=1e-6)


def test_ced_curve():
    x, y = ced_curve([0.0, 0.05, 0.2, 0.05], 0.1, num=11)
    np.testing.assert_allclose(x, np.linspace(0, 0.1, 11))
    assert y[0] == 0.25 and y[5] == 0.75 and y[-1] == 0.75
    assert np.all(np.diff(y) >= 0)


def test_summarise_keys_and_units():
    s = summarise([0.02, 0.04, 0.09, 0.12])
    assert s["n"] == 4
    assert s["nme"] == pytest.approx(6.75)
    assert s["fr@8"] == pytest.approx(50.0) and s["fr@10"] == pytest.approx(25.0)
    assert s["auc@10"] == pytest.approx((0.8 + 0.6 + 0.1 + 0) / 4)
    assert s["auc@8"] == pytest.approx((0.75 + 0.5) / 4)


def test_breakdown_accepts_label_lists_and_masks():
    errors = np.array([0.02, 0.04, 0.09, 0.12])
    per_face = [["pose", "blur"], "common", ["blur"], []]
    masks = {"pose": [1, 0, 0, 0], "blur": [1, 0, 1, 0], "common": [0, 1, 0, 0], "empty": [0, 0, 0, 0]}
    by_lists = breakdown(errors, per_face)
    by_masks = breakdown(errors, masks)
    assert list(by_lists) == ["pose", "blur", "common"]
    assert by_masks == by_lists  # labels with no face are left out
    assert by_lists["blur"]["nme"] == pytest.approx(5.5)
    assert by_lists["blur"]["fr@8"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="one entry per face"):
        breakdown(errors, per_face[:3])
    with pytest.raises(ValueError, match="pose"):
        breakdown(errors, {"pose": [1, 0]})


def test_accumulator_matches_pure_functions_over_batches():
    scheme = get_scheme("300w-68")
    rng = np.random.default_rng(3)
    target = _face68() + rng.normal(0, 30, size=(6, 68, 2))
    pred = target + rng.normal(0, 2, size=target.shape)
    subsets = ["common"] * 4 + ["challenging"] * 2
    acc = NMEAccumulator(scheme)
    acc.update(pred[:4], target[:4], labels=subsets[:4])
    acc.update(pred[4:], target[4:], labels={"challenging": [True, True]})
    result = acc.compute()
    assert set(result) == {"inter_ocular", "inter_pupil"}
    for kind in result:
        expected = nme(pred, target, normaliser(target, scheme, kind))
        np.testing.assert_allclose(acc.errors()[kind], expected)
        assert result[kind]["summary"] == summarise(expected)
        assert result[kind]["breakdown"] == breakdown(expected, subsets)


def test_accumulator_kinds_tensors_and_reset():
    torch = pytest.importorskip("torch")
    acc = NMEAccumulator(get_scheme("aflw-19"))
    assert list(acc.kinds) == ["box"]
    acc = NMEAccumulator(get_scheme("cofw-29"), kinds=["box_diagonal", ([0], [1])])
    assert list(acc.kinds) == ["box_diagonal", "points_0_1"]
    target = torch.rand(2, 29, 2) * 100
    visible = torch.ones(2, 29, dtype=torch.bool)
    acc.update(target + 1, target, visible=visible, boxes=torch.tensor([[0, 0, 90, 90]] * 2))
    result = acc.compute()
    assert result["points_0_1"]["summary"]["n"] == 2 and result["box_diagonal"]["breakdown"] == {}
    acc.reset()
    with pytest.raises(ValueError, match="no faces"):
        acc.compute()
    with pytest.raises(ValueError, match="did you mean"):
        NMEAccumulator(get_scheme("wflw-98"), kinds=["inter_ocluar"])


# --- plots and the `plot` verb (smoke tests: the files are real PNGs) ---

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_losses_and_ced(tmp_path):
    from wingface.evaluation.plots import plot_ced, plot_losses

    out = plot_losses(tmp_path / "losses.png", max_error=12.0)
    assert out.read_bytes()[:8] == PNG_MAGIC
    rng = np.random.default_rng(0)
    ced = plot_ced({"a": rng.gamma(4, 0.01, 50), "b": rng.gamma(4, 0.015, 50)}, tmp_path / "ced.png")
    assert ced.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ced.png", "losses.png"]  # no temporaries left
    with pytest.raises(ValueError, match="max_error"):
        plot_losses(tmp_path / "x.png", max_error=0)


def test_plot_training_curves_from_rows_and_csv(tmp_path):
    from wingface.evaluation.plots import plot_training_curves

    rows = [{"epoch": e, "train_loss": 10 / e, "val_nme": "" if e % 2 else 8 / e, "lr": 1e-3 / e} for e in range(1, 9)]
    assert plot_training_curves(rows, tmp_path / "rows.png").read_bytes()[:8] == PNG_MAGIC
    log = tmp_path / "log.csv"
    with log.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert plot_training_curves(log, tmp_path / "csv.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="val_nme"):
        plot_training_curves([{"epoch": 1, "train_loss": 1}], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="row 1"):
        plot_training_curves([{"epoch": 1, "train_loss": "x", "val_nme": ""}], tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        plot_training_curves(tmp_path / "missing.csv", tmp_path / "bad.png")


def test_plot_cli(tmp_path, capsys):
    from wingface.cli.main import main

    for name, scale in (("a", 3.0), ("b", 5.0)):
        faces = [{"nme_inter_ocular": float(v)} for v in np.linspace(0.5, 2 * scale, 20)]
        (tmp_path / f"{name}.json").write_text(json.dumps({"label": f"model {name}", "per_face": faces}))
    files = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert main(["plot", "ced", *files, "--out", str(tmp_path / "ced.png")]) == 0
    assert main(["plot", "losses", "--out", str(tmp_path / "l.png"), "--max-error", "5"]) == 0
    assert (tmp_path / "ced.png").is_file() and (tmp_path / "l.png").is_file()
    (tmp_path / "bad.json").write_text(json.dumps({"per_face": [{"nme_inter_pupil": 1.0}]}))
    assert main(["plot", "ced", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.png")]) == 2
    assert "nme_inter_ocular" in capsys.readouterr().err
