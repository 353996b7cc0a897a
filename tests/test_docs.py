"""The docs site builds with --strict and publishes every notebook with its plots, the
reference pages generated from the code, a sitemap, and alt text on every image."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict_publishes_notebooks_with_plots(built_site, anomaly_matrix):
    built, _folder = anomaly_matrix
    site = built_site.path
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for name in notebooks:
        page = (site / "notebooks" / name / "index.html").read_text()
        assert "data:image/png;base64" in page, f"{name}: no plot on its page"
        assert "Traceback" not in page, f"{name}: its page shows a traceback"
    page = (site / "concepts" / "anomaly-matrix" / "index.html").read_text()
    assert "<!-- anomaly-matrix -->" not in page
    said = ([f"{built.runs} interleavings played"] if built.played == built.runs else
            [f"{built.runs} feasible interleavings on", f"{built.played} of them played"])
    assert all(s in page for s in said), "the page is not this run's matrix"
    assert page.count("data:image/png;base64") == 1, "the heatmap is missing"
    home = (site / "index.html").read_text()
    assert "Two users edit the same assignment" in home
    assert "Lock the row before editing it" in home


def test_every_image_has_a_description(built_site):
    pages = list(built_site.path.rglob("*.html"))
    assert len(pages) > 30
    images = 0
    for page in pages:
        for tag in re.findall(r"<img\b[^>]*>", page.read_text()):
            images += 1
            alt = re.search(r'\salt="([^"]*)"', tag)
            assert alt and alt.group(1).strip(), f"{page}: an image without alt text"
            assert "No description has been provided" not in alt.group(1), f"{page}: {tag[:80]}"
    assert images > 50
    timelines = (built_site.path / "notebooks" / "10-on-call-write-skew" / "index.html").read_text()
    assert 'alt="Timeline of on-call-write-skew / check-then-act / READ COMMITTED' in timelines


def test_reference_pages_are_generated_from_the_code(built_site):
    site = built_site.path
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for command in ("list", "run", "explore", "matrix", "check", "server", "jupyter"):
        assert f'id="{command}"' in cli, f"the CLI reference misses {command}"
    assert "--permutation" in cli and "<!-- cli-reference -->" not in cli
    api = (site / "reference" / "api" / "index.html").read_text()
    for name in ("lab.Run", "lab.explore", "lab.timeline", "lab.exercises.check"):
        assert name in api, f"the API reference misses {name}"
    svg = (site / "reference" / "domain-model.svg").read_text()
    for table in ("assignment", "block", "rotation_template", "call_night", "swap_request",
                  "task", "person"):
        assert f">{table}</text>" in svg, f"the ER diagram misses {table}"
    assert re.search(r"person_id integer -&gt; person +FK/UQ<", svg)  # assignment's
    assert re.search(r"source_faculty_id integer -&gt; person +FK<", svg)  # swap_request's


def test_the_sitemap_lists_every_page_under_the_site_url(built_site):
    sitemap = (built_site.path / "sitemap.xml").read_text()
    urls = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    pages = list(built_site.path.rglob("index.html"))
    assert len(urls) == len(pages) > 30
    assert all(u.startswith("https://") for u in urls)
    not_found = (built_site.path / "404.html").read_text()
    assert 'href="/' in not_found  # absolute under the site's path: the browser test serves it

