"""The lab's own folder on this machine: the embedded server's data, SQLite run files.

Default ``<tmp>/race-lab-<uid>``, never a home directory. On a shared machine everyone can
create folders in ``/tmp``, so the folder is *private*: created with mode 0700 and refused,
in one line, when another user owns it or when group or others can write it (another user
could then swap the SQLite base, plant pid files or a server of their own). As root the
server runs as its own user, which must reach its data: the folder is then 0710, with the
group of that user.
"""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

from ..errors import UsageError

ENV_VAR = "LAB_HOME"
SERVER_USER = "pgserver"  # as root, the embedded PostgreSQL runs as this user (it refuses root)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_checked: dict[str, Path] = {}


def default_home() -> Path:
    return Path(tempfile.gettempdir()) / f"race-lab-{os.getuid()}"


def home() -> Path:
    """The lab's folder ($LAB_HOME or the default), created and checked once per process."""
    raw = os.environ.get(ENV_VAR) or str(default_home())
    if raw not in _checked:
        chosen = Path(raw).resolve() if os.environ.get(ENV_VAR) else Path(raw)  # (yours)
        path = private_dir(chosen, what=f"the lab's folder {raw} ({ENV_VAR})",
                           group=server_group())
        _probe(path, raw)
        _checked[raw] = path
    return _checked[raw]


def server_group() -> int | None:
    """As root: the group of the server's user, which may traverse (not list) the folder."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER).pw_gid
    except KeyError:
        return None  # not created yet: the first start creates it and shares the folder


def private_dir(path: Path, *, what: str, owner: int | None = None,
                group: int | None = None) -> Path:
    """`path` as a folder only `owner` (default: this user) can write: created 0700 (0710
    with `group`), else checked; a folder someone else could tamper with is refused."""
    owner = os.geteuid() if owner is None else owner
    _check_parents(path, what)
    try:
        os.makedirs(path.parent, exist_ok=True)
        os.mkdir(path, 0o700)
        if owner != os.geteuid() or group is not None:
            os.chown(path, owner, -1 if group is None else group)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UsageError(f"cannot create {what}: {exc.strerror}") from None
    try:
        st = os.lstat(path)  # a link planted in /tmp could point at any folder root owns
    except OSError as exc:
        raise UsageError(f"cannot use {what}: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{what} is not a folder" + (
            " but a symbolic link" if stat.S_ISLNK(st.st_mode) else ""))
    if st.st_uid != owner:
        raise UsageError(f"{what} belongs to {_user(st.st_uid)}, not {_user(owner)}: someone"
                         " else could change what the lab runs; remove it or choose another")
    if st.st_mode & _OTHERS_WRITE:
        raise UsageError(f"{what} can be written by group or others (mode"
                         f" {stat.S_IMODE(st.st_mode):o}); remove it or choose another")
    mode = 0o700 if group is None else 0o710
    if stat.S_IMODE(st.st_mode) != mode or (group is not None and st.st_gid != group):
        try:
            if group is not None:
                os.chown(path, -1, group)
            os.chmod(path, mode)
        except OSError as exc:
            raise UsageError(f"cannot make {what} private: {exc.strerror}") from None
    return path


def _check_parents(path: Path, what: str) -> None:
    """A folder inside one that others may write (without the sticky bit, as /tmp has)
    could be renamed away and replaced; refuse that too."""
    for parent in path.parents:
        try:
            st = os.stat(parent)
        except OSError:
            continue  # (created below, by us)
        if st.st_uid not in (0, os.geteuid()) or (
                st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX):
            raise UsageError(f"{what} is inside {parent}, which other users can change;"
                             " choose a folder elsewhere")


def _probe(path: Path, raw: str) -> None:
    """Folders that exist but refuse files (/proc, a read-only mount) fail here, once."""
    try:
        os.close(os.open(path / "lock", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    except OSError as exc:
        raise UsageError(f"cannot write into the lab's folder {raw} ({ENV_VAR}):"
                         f" {exc.strerror}") from None


def _user(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"
