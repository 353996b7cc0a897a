"""``python -m lab``: list scenarios, run one and print its trace, manage the server.

Bad input never shows a traceback: one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from .errors import LabError, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="the scenarios, one line each")
    run = sub.add_parser("run", help="play a scenario and print its trace and verdict")
    run.add_argument("scenario")
    run.add_argument("--case", help="one case of the scenario (default: all)")
    run.add_argument("--db", help="'sqlite', 'sqlite-wal', 'embedded' (default) or a "
                     "postgresql:// URL; default from $LAB_DATABASE_URL")
    run.add_argument("--isolation", help="read committed | repeatable read | serializable"
                     " (default: each case's own)")
    run.add_argument("--permutation", help="step names in the order to play them")
    run.add_argument("--plot", metavar="OUT.png", help="also draw the timeline to this file")
    run.add_argument("--wall-clock", action="store_true", help="plot milliseconds, not steps")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds any one wait may last (default 5)")
    server = sub.add_parser("server", help="the embedded PostgreSQL")
    server.add_argument("action", choices=("start", "status", "stop"))
    sub.add_parser("jupyter", help="open JupyterLab on the notebooks, server ready;"
                   " other options go to JupyterLab")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = _parser()
        args, extra = parser.parse_known_args(argv)
        if args.command == "jupyter":
            args.args = extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return {"list": _list, "run": _run, "server": _server, "jupyter": _jupyter}[
            args.command](args)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: connections closed, run database dropped", file=sys.stderr)
        return 130


def _list(_args: argparse.Namespace) -> int:
    from .scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    for s in SCENARIOS.values():
        print(f"{s.name:<{width}}  [{s.frame}]  {s.summary}")
        for v in s.variants:
            print(f"{'':<{width}}    case {v.name}: {v.summary}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from .db import resolve
    from .runner import DEFAULT_TIMEOUT_S, Run
    from .runner.scenario import normalize_isolation
    from .scenarios import get

    scenario = get(args.scenario)
    target = resolve(args.db)
    isolation = normalize_isolation(args.isolation) if args.isolation else None
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot writes a PNG file; give a name ending in .png, not {args.plot!r}")
    if args.plot and not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
        raise UsageError(f"cannot write {args.plot}: its folder does not exist")
    variants = [scenario.variant(args.case)] if args.case else list(scenario.variants)
    if args.permutation is not None:
        for v in variants:
            v.parse_permutation(args.permutation)
    results = []
    for variant in variants:
        for level in [isolation] if isolation else list(variant.isolations):
            run = Run(scenario, variant.name, isolation=level, db=target,
                      timeout=args.timeout or DEFAULT_TIMEOUT_S)
            result = run.play(args.permutation)
            if results:
                print()
            print(result.text(), end="", flush=True)
            results.append(result)
    if args.plot:
        from . import plot

        tmp = f"{args.plot}.tmp.png"
        try:
            plot.save(results, tmp, wall_clock=args.wall_clock)
            os.replace(tmp, args.plot)  # never leave a half-written picture behind
        except OSError as exc:
            raise UsageError(f"cannot write {args.plot}: {exc.strerror}") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        print(f"\ntimeline written to {args.plot}")
    return 0


def _server(args: argparse.Namespace) -> int:
    from .db import embedded

    if args.action == "start":
        url = embedded.acquire()
        embedded.release()  # the reaper stops it after LAB_PG_IDLE_SECONDS without users
        print(f"embedded PostgreSQL running at {url} (data in {embedded.pgdata()})")
    elif args.action == "status":
        pid = embedded.postmaster_pid()
        print(f"running (pid {pid}); data in {embedded.pgdata()}; lab processes using it: "
              f"{embedded.live_leases() or 'none'}" if pid else "not running")
    else:
        embedded.stop()
        print("stopped")
    return 0


def _jupyter(args: argparse.Namespace) -> int:
    """Hold a lease on the embedded server for as long as JupyterLab runs."""
    from .db import embedded

    embedded.acquire()
    print(f"embedded PostgreSQL ready (data in {embedded.pgdata()})", flush=True)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--notebook-dir", "notebooks"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    try:
        return subprocess.call(cmd + list(args.args))
    except KeyboardInterrupt:
        return 0
    finally:
        embedded.release()
