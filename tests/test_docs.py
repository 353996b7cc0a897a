"""The docs site builds with --strict and publishes every notebook with its plots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict_publishes_notebooks_with_plots(tmp_path: Path, anomaly_matrix):
    built, folder = anomaly_matrix
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "LAB_MATRIX_DIR": str(folder)},
    )
    assert out.returncode == 0, out.stderr
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for name in notebooks:
        page = (tmp_path / "site" / "notebooks" / name / "index.html").read_text()
        assert "data:image/png;base64" in page, f"{name}: no plot on its page"
        assert "Traceback" not in page, f"{name}: its page shows a traceback"
    page = (tmp_path / "site" / "concepts" / "anomaly-matrix" / "index.html").read_text()
    assert "<!-- anomaly-matrix -->" not in page
    assert f"{built.runs} interleavings played" in page, "the page is not this run's matrix"
    assert page.count("data:image/png;base64") == 1, "the heatmap is missing"
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Two users edit the same assignment" in home
    assert "Lock the row before editing it" in home
