"""MkDocs hook: give every notebook image the alt text its notebook recorded.

nbconvert writes "No description has been provided for this image" on every plot. The
lab's figures (timelines, the heatmap) have a text form that describes them, and a
notebook stores it as the image output's text/plain; this hook puts it on the <img>.
An image without such a description fails the strict build.
"""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.alt_text")
IMG = re.compile(r'<img\b[^>]*src="data:image/png;base64,[^>]*>')
ALT = re.compile(r'\salt="[^"]*"')
NO_TEXT = re.compile(r"^<(Figure|matplotlib)\b")


def descriptions(notebook: Path) -> list[str | None]:
    """Each PNG output's text/plain, in page order (None where it is no description)."""
    found = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                text = "".join(data.get("text/plain", "")).strip()
                found.append(text if text and not NO_TEXT.match(text) else None)
    return found


def on_page_content(content: str, page, **_kwargs) -> str:
    if not page.file.src_uri.endswith(".ipynb"):
        return content
    alts = iter(descriptions(Path(page.file.abs_src_path)))

    def describe(match: re.Match) -> str:
        alt = next(alts, None)
        if alt is None:
            log.warning("%s: an image has no description (display a lab figure, or give"
                        " it a text form)", page.file.src_uri)
            return match.group(0)
        tag = ALT.sub("", match.group(0))
        return tag.replace("<img", f'<img alt="{html.escape(alt, quote=True)}"', 1)

    return IMG.sub(describe, content)
