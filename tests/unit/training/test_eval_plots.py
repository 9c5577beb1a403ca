"""write_plots writes every evaluation PNG, deterministically, even for one-class data."""

from pathlib import Path

import numpy as np

from fraudops.training.plots import write_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.05
    scores = np.clip(rng.beta(1, 8, 500) + labels * 0.6, 0, 1)
    return labels, scores


def test_writes_each_plot_as_a_png(tmp_path: Path) -> None:
    """The five files exist, start with the PNG signature and hold a real image."""
    labels, scores = _data()
    importance = {f"feature_{i:02d}": float(i) for i in range(30)}

    written = write_plots(
        out_dir=tmp_path, labels=labels, scores=scores, threshold=0.5, feature_importance=importance
    )

    assert {
        "pr_curve": tmp_path / "pr_curve.png",
        "roc_curve": tmp_path / "roc_curve.png",
        "score_distribution": tmp_path / "score_distribution.png",
        "confusion_matrix": tmp_path / "confusion_matrix.png",
        "feature_importance": tmp_path / "feature_importance.png",
    } == written
    for path in written.values():
        content = path.read_bytes()
        assert PNG_SIGNATURE == content[:8]
        assert len(content) > 5_000


def test_plots_are_deterministic(tmp_path: Path) -> None:
    """The same inputs give byte-identical files."""
    labels, scores = _data()
    first = write_plots(out_dir=tmp_path / "a", labels=labels, scores=scores, threshold=0.5)
    second = write_plots(out_dir=tmp_path / "b", labels=labels, scores=scores, threshold=0.5)

    assert [p.read_bytes() for p in first.values()] == [p.read_bytes() for p in second.values()]


def test_no_importance_no_importance_plot(tmp_path: Path) -> None:
    """Without feature importances only the four evaluation plots are written."""
    labels, scores = _data()

    written = write_plots(out_dir=tmp_path, labels=labels, scores=scores, threshold=0.5)

    assert ["confusion_matrix.png", "pr_curve.png", "roc_curve.png", "score_distribution.png"] == (
        sorted(path.name for path in tmp_path.iterdir())
    )
    assert "feature_importance" not in written


def test_one_class_data_still_plots_without_warnings(tmp_path: Path) -> None:
    """All-legitimate constant scores write every file (curves say they are undefined)."""
    written = write_plots(out_dir=tmp_path, labels=[0] * 20, scores=[0.3] * 20, threshold=0.5)

    assert all(PNG_SIGNATURE == path.read_bytes()[:8] for path in written.values())
