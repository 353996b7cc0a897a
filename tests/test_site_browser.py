"""The built site, read in a real browser: Playwright driving the system Chromium.

The site is served on 127.0.0.1 the way GitHub Pages serves it: under the path of its
`site_url`, with 404.html for a missing page. Without a browser the test skips on a
developer's machine and fails in CI (CI=true), so CI can never pass without one.
Screenshots of three pages go to build/screenshots/ for people to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(why: str):
    if os.environ.get("CI"):
        pytest.fail(f"the browser test cannot run in CI: {why}")
    pytest.skip(why)


class _PagesHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site under `prefix`, and 404.html with status 404, as GitHub Pages does."""

    prefix = "/"

    def translate_path(self, path: str) -> str:
        local = urlparse(path).path
        if not local.startswith(self.prefix):
            return ""
        return super().translate_path("/" + local[len(self.prefix):])

    def send_error(self, code, message=None, explain=None):
        page = Path(self.directory) / "404.html"
        if code != 404 or not page.exists():
            return super().send_error(code, message, explain)
        body = page.read_bytes()
        self.send_response(404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def served(built_site) -> Iterator[str]:
    """The site's base URL on 127.0.0.1 (its sitemap names the path)."""
    sitemap = (built_site.path / "sitemap.xml").read_text()
    prefix = urlparse(re.search(r"<loc>([^<]+)</loc>", sitemap).group(1)).path
    handler = type("Handler", (_PagesHandler,), {"prefix": prefix})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(built_site.path)))
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{prefix}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []  # console errors, page errors, failed requests
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: page.problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
            and page.problems.append(f"HTTP {r.status}: {r.url}"))
    yield page
    context.close()


def _pages(built_site, served: str) -> list[str]:
    sitemap = (built_site.path / "sitemap.xml").read_text()
    urls = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    base = re.search(r"<loc>([^<]+)</loc>", sitemap).group(1)
    return [served + u[len(base):] for u in urls]


BROKEN_IMAGES = """imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0)
                       .map(i => i.getAttribute('src').slice(0, 60))"""


def test_every_page_loads_without_console_errors_broken_images_or_broken_links(
        page, built_site, served):
    pages = _pages(built_site, served)
    assert len(pages) > 30
    links: set[str] = set()
    for url in pages:
        response = page.goto(url, wait_until="load")
        assert response.status == 200, url
        page.wait_for_load_state("networkidle")
        assert page.eval_on_selector_all("img", BROKEN_IMAGES) == [], url
        alts = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.alt)")
        assert all(a.strip() and "No description" not in a for a in alts), url
        for href in page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"):
            if href.startswith(served):
                links.add(href.split("#")[0])
    assert page.problems == []
    broken = []
    for link in sorted(links):
        try:
            urllib.request.urlopen(link, timeout=10).close()
        except urllib.error.HTTPError as exc:
            broken.append(f"{exc.code} {link}")
    assert broken == []


def test_search_finds_skip_locked(page, served):
    page.goto(served, wait_until="networkidle")
    page.click(".md-search__input")
    page.keyboard.type("SKIP LOCKED")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    text = page.inner_text(".md-search-result")
    assert "SKIP LOCKED" in text.upper()
    assert "queue" in text.lower()
    assert page.problems == []


def test_a_notebook_page_displays_its_timeline_and_traces_do_not_wrap_mid_word(page, served):
    page.goto(urljoin(served, "notebooks/10-on-call-write-skew/"), wait_until="load")
    image = page.locator(".jp-RenderedImage img").first
    image.scroll_into_view_if_needed()
    assert image.evaluate("i => i.complete && i.naturalWidth") > 0
    assert image.bounding_box()["width"] > 300
    assert image.get_attribute("alt").startswith("Timeline of on-call-write-skew")
    styles = page.eval_on_selector_all(
        ".jp-OutputArea-output pre", "ps => ps.map(p => getComputedStyle(p).whiteSpace)")
    assert styles and set(styles) == {"pre"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.screenshot(path=str(SHOTS / "notebook-10-timeline.png"))
    page.screenshot(path=str(SHOTS / "notebook-10.png"))
    assert page.problems == []


def test_the_first_call_to_action_on_the_home_page_leads_to_start_here(page, served):
    page.goto(served, wait_until="load")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "home.png"))
    first = page.locator("article a.md-button").first
    assert "Start here" in first.inner_text()
    first.click()
    page.wait_for_url(re.compile(r"/notebooks/00-start-here/$"))
    assert page.locator("article h1").first.inner_text().startswith("Start here")
    page.screenshot(path=str(SHOTS / "start-here.png"), full_page=False)
    assert page.problems == []


def test_the_404_page_works_from_any_depth(page, served):
    response = page.goto(urljoin(served, "notebooks/no-such-page/deeper/"), wait_until="load")
    assert response.status == 404
    page.wait_for_load_state("networkidle")
    assert "404" in page.inner_text("article")
    assert page.evaluate("() => document.styleSheets.length") > 0
    header = page.evaluate("() => getComputedStyle(document.querySelector('.md-header'))"
                           ".backgroundColor")
    assert header not in ("", "rgba(0, 0, 0, 0)"), "the 404 page's stylesheet did not load"
    home = page.locator(".md-header__button.md-logo").first.get_attribute("href")
    assert urllib.request.urlopen(urljoin(page.url, home), timeout=10).status == 200
    # the one expected problem: the missing page itself
    assert page.problems == ["console: Failed to load resource: the server responded with a"
                             " status of 404 (Not Found)"]
