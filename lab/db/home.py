"""The lab's own folder on this machine: the embedded server's data, SQLite run files.

Default ``<tmp>/race-lab-<uid>``, never a home directory, because as root the wheel that
ships PostgreSQL widens the permissions of every parent of its data directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def home() -> Path:
    base = os.environ.get("LAB_HOME") or Path(tempfile.gettempdir()) / f"race-lab-{os.getuid()}"
    return Path(base)
