"""Writing a file so that nobody ever sees it half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def replace_file(path: str, data: bytes | Callable[[str], None]) -> None:
    """Write `data` (bytes, or a function that writes a given path) next to `path`, then
    rename it into place; on any failure the old file stays and no temporary is left."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes):
                f.write(data)
        if not isinstance(data, bytes):
            data(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
