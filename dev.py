#!/usr/bin/env python3
"""Race Lab's two set-up commands, for a machine that has only Python >= 3.11.

    python3 dev.py lab    install everything, start the embedded PostgreSQL, open JupyterLab
    python3 dev.py test   install everything, run the tests, the notebooks and the docs build

Everything is installed into ./.venv, and again only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Race Lab needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    if PYTHON.exists() and stamp.exists() and stamp.read_text() == want:
        return
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing Race Lab and its tools into .venv (about a minute) ...", flush=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[dev]"],
                   check=True)
    stamp.write_text(want)


def lab(args: list[str]) -> int:
    ensure_env()
    os.chdir(ROOT)
    return subprocess.call([str(PYTHON), "-m", "lab", "jupyter", *args])


def test(args: list[str]) -> int:
    ensure_env()
    os.chdir(ROOT)
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    code = subprocess.call([str(PYTHON), "-m", "pytest", *args], env=env)
    leftovers = subprocess.run(
        [str(PYTHON), "-c", "from lab.db.embedded import leftovers; print(*leftovers(), sep='\\n')"],
        capture_output=True, text=True, env=env)
    if leftovers.stdout.strip() or leftovers.returncode:
        print("left running after the tests:\n" + leftovers.stdout + leftovers.stderr)
        return code or 1
    return code


def main() -> int:
    commands = {"lab": lab, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__.strip())
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        print(f"error: {' '.join(map(str, exc.cmd))} failed with exit code {exc.returncode}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
