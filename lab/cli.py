"""``python -m lab``: list scenarios, run one and print its trace, manage the server.

Bad input never shows a traceback: one line on stderr and exit code 2. Ctrl-C and SIGTERM
close what is open and say what was dropped (`interrupts`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import LabError, UsageError
from .interrupts import Interrupts, quiet_stdout

LIMIT_HELP = ("play at most N runs (the first ones); without it, more than 10,000 are"
              " refused before the first")
WORKERS_HELP = ("processes to spread the interleavings over; the output is the same with"
                " any number (default: one per CPU core, or 1 for a search of a few hundred"
                " orderings, where starting them costs more than it saves)")
SUPERUSER_HELP = ("spec files: run the SQL as the server's superuser, not as the run's own"
                  " role. Such SQL can run any program as the server's OS user: only for"
                  " spec files you trust like a shell script")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every bad input
        raise UsageError(f"{self.prog}: {message} (see --help)")


def parser() -> argparse.ArgumentParser:
    """The whole command line; the docs' CLI reference is generated from it."""
    return _parser()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m lab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="the scenarios, one line each")
    run = sub.add_parser("run", help="play a scenario or a spec file; print trace and verdict")
    run.add_argument("scenario", help="a scenario name (python -m lab list) or FILE.spec")
    run.add_argument("--case", help="one case of the scenario (default: all)")
    run.add_argument("--db", help="'sqlite', 'sqlite-wal', 'embedded' (default) or a "
                     "postgresql:// URL; default from $LAB_DATABASE_URL")
    run.add_argument("--isolation", help="read committed | repeatable read | serializable"
                     " (default: each case's own)")
    run.add_argument("--permutation", help="step names in the order to play them")
    run.add_argument("--plot", metavar="OUT.png|DIR", help="also draw the timeline to this"
                     " file, or one file per permutation into this folder")
    run.add_argument("--trace", action="store_true",
                     help="spec files: the lab's trace instead of isolationtester's output")
    run.add_argument("--serial-check", action="store_true",
                     help="spec files: after each permutation, say whether it equals some"
                          " serial order of its committed transactions (Python runs always do)")
    run.add_argument("--wall-clock", action="store_true", help="plot milliseconds, not steps")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds any one wait may last (default 5)")
    run.add_argument("--limit", type=int, default=None, metavar="N", help=LIMIT_HELP)
    run.add_argument("--superuser", action="store_true", help=SUPERUSER_HELP)
    explore = sub.add_parser("explore", help="play every feasible interleaving; count what"
                             " breaks under each isolation level and backend")
    explore.add_argument("scenario", help="a scenario name or FILE.spec")
    explore.add_argument("--case", help="one case of the scenario (default: all)")
    explore.add_argument("--isolation", default=None,
                         help="'all', or levels separated by commas (default: each case's own)")
    explore.add_argument("--db", default=None, help="backends separated by commas:"
                         " postgresql (= embedded), sqlite, sqlite-wal, a postgresql:// URL")
    explore.add_argument("--timeout", type=float, default=None,
                         help="seconds any one wait may last (default 5)")
    explore.add_argument("--limit", type=int, default=None, metavar="N", help=LIMIT_HELP)
    explore.add_argument("--superuser", action="store_true", help=SUPERUSER_HELP)
    explore.add_argument("--workers", type=int, default=None, metavar="N", help=WORKERS_HELP)
    matrix = sub.add_parser("matrix", help="explore the whole catalog: the anomaly matrix"
                            " (markdown + heatmap PNG)")
    matrix.add_argument("--db", default="postgresql,sqlite",
                        help="backends separated by commas (default: postgresql,sqlite)")
    matrix.add_argument("--out", default="build/matrix", metavar="DIR",
                        help="where anomaly-matrix.md/.png go (default: build/matrix)")
    matrix.add_argument("--workers", type=int, default=None, metavar="N", help=WORKERS_HELP)
    check = sub.add_parser("check", help="an exercise: play your fix against every feasible"
                           " interleaving, under each level, on each backend")
    check.add_argument("exercise", help="the exercise's scenario name, e.g. on-call-write-skew")
    check.add_argument("function", metavar="FILE.py:FUNCTION",
                       help="your function, saved in a file; 'solution' for the reference one")
    check.add_argument("--isolation", default=None,
                       help="levels separated by commas (default: all three)")
    check.add_argument("--db", default="postgresql,sqlite",
                       help="backends separated by commas (default: postgresql,sqlite)")
    check.add_argument("--permutation", help="play this one order and print its trace"
                       " (with one --isolation and one --db: a replay line)")
    server = sub.add_parser("server", help="the embedded PostgreSQL")
    server.add_argument("action", choices=("start", "status", "stop"))
    sub.add_parser("jupyter", help="open JupyterLab on the notebooks, server ready;"
                   " other options go to JupyterLab")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signals = Interrupts()
    with signals:
        try:
            return _dispatch(argv)
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print(signals.report(), file=sys.stderr)
            return signals.exit_code
        except BrokenPipeError:  # `python -m lab list | head -1`: the reader has had enough
            signals.clean_up()
            quiet_stdout()
            return 141


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "jupyter":
        args.args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command != "list":  # the lab's folder and settings, before any output
        from .db import embedded

        embedded.home()
        embedded.idle_seconds()
    return {"list": _list, "run": _run, "explore": _explore, "matrix": _matrix,
            "check": _check, "server": _server, "jupyter": _jupyter}[args.command](args)


def _list(_args: argparse.Namespace) -> int:
    from .scenarios import SCENARIOS

    width = max(len(n) for n in SCENARIOS)
    for s in SCENARIOS.values():
        print(f"{s.name:<{width}}  [{s.frame}]  {s.summary}")
        for v in s.variants:
            print(f"{'':<{width}}    case {v.name}: {v.summary}")
    specs = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.spec"))
    if specs:
        print("\nspec files (python -m lab run specs/NAME.spec):",
              " ".join(p.name for p in specs))
    return 0


def _timeout(args: argparse.Namespace) -> float:
    from .runner import DEFAULT_TIMEOUT_S

    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {args.timeout}")
    return args.timeout or DEFAULT_TIMEOUT_S


def _scenario(args: argparse.Namespace):
    from .scenarios import find
    from .spec import as_superuser

    scenario = find(args.scenario)
    return as_superuser(scenario) if args.superuser else scenario


def _run(args: argparse.Namespace) -> int:
    from .bounds import check
    from .db import resolve
    from .runner import Run
    from .runner.scenario import normalize_isolation

    scenario = _scenario(args)
    target = resolve(args.db)
    isolation = normalize_isolation(args.isolation) if args.isolation else None
    timeout = _timeout(args)
    _check_plot(args.plot)
    variants = [scenario.variant(args.case)] if args.case else list(scenario.variants)
    if args.permutation is not None:
        for v in variants:
            v.entries(args.permutation, free_order=scenario.driver.free_order)
    from .spec.driver import SpecDriver

    if isinstance(scenario.driver, SpecDriver):
        return _run_spec(args, scenario, target, isolation or "read committed", timeout)
    runs = [(variant, level) for variant in variants
            for level in ([isolation] if isolation else variant.isolations)]
    results = []
    for variant, level in runs[:check(len(runs), scenario.name, "runs", args.limit)]:
        run = Run(scenario, variant.name, isolation=level, db=target, timeout=timeout)
        result = run.play(args.permutation)
        if results:
            print()
        print(result.text(), end="", flush=True)
        results.append(result)
    _plot(args, results)
    return 0


def _run_spec(args, scenario, target, isolation: str, timeout: float) -> int:
    """isolationtester's output (or, with --trace, the lab's trace) as each run ends."""
    from .bounds import check
    from .spec import output, planned, run_spec

    check(*planned(scenario, args.permutation), args.limit)  # before the header
    print(output.header(len(scenario.variants[0].sessions)), end="", flush=True)

    def show(result) -> None:
        text = "\n" + result.text() if args.trace else output.permutation_output(result)
        print(text, end="", flush=True)
        if not args.trace:  # as isolationtester reports them: on stderr, and it goes on
            for name, error in result.teardown_failed:
                print(f"teardown of session {name} failed: {error.message}", file=sys.stderr)

    results = run_spec(scenario, db=target, isolation=isolation, timeout=timeout,
                       permutation=args.permutation, serial_check=args.serial_check,
                       limit=args.limit, on_result=show)
    _plot(args, results)
    return 0


def _check_plot(plot: str | None) -> None:
    if plot is None:
        return
    folder = plot if not plot.lower().endswith(".png") else os.path.dirname(os.path.abspath(plot))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {plot}: "
                         + ("no such folder" if folder == plot else "its folder does not exist")
                         + " (--plot takes OUT.png or an existing folder)")


def _plot(args: argparse.Namespace, results: list) -> None:
    """One PNG for all results, or one per result into a folder; never half-written."""
    if not args.plot or not results:
        return
    from . import plot
    from .files import replace_file

    if args.plot.lower().endswith(".png"):
        jobs = [(args.plot, results)]
    else:
        stem = results[0].scenario
        jobs = [(os.path.join(args.plot, f"{stem}-{k:03d}.png"), [r])
                for k, r in enumerate(results, 1)]
    for path, group in jobs:
        try:
            replace_file(path, lambda tmp, g=group: plot.save(g, tmp, wall_clock=args.wall_clock))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    where = args.plot if len(jobs) == 1 else f"{args.plot} ({len(jobs)} files)"
    print(f"\ntimeline written to {where}")


def _explore(args: argparse.Namespace) -> int:
    from .bounds import check, orderings
    from .explorer import ProgressBar, explorations, summary, targets
    from .parallel import workers
    from .runner import ISOLATION_LEVELS
    from .runner.scenario import normalize_isolation

    scenario = _scenario(args)
    chosen = targets(args.db or os.environ.get("LAB_DATABASE_URL") or "embedded")
    if args.isolation and args.isolation.strip().lower() == "all":
        levels = list(ISOLATION_LEVELS)
    else:
        levels = [normalize_isolation(x) for x in args.isolation.split(",")] \
            if args.isolation else None
    timeout = _timeout(args)
    variants = [scenario.variant(args.case)] if args.case else list(scenario.variants)
    for v in variants:  # every case before the first run, not after minutes of work
        check(orderings([len(s) for s in v.sessions.values()]), f"{scenario.name} / {v.name}",
              "orderings", args.limit)
    found: dict[str, list] = {v.name: [] for v in variants}
    started = time.monotonic()
    size = sum(orderings([len(s) for s in v.sessions.values()]) for v in variants) \
        * len(levels or ISOLATION_LEVELS) * len(chosen)
    for e in explorations([(scenario, v.name) for v in variants], chosen, levels,
                          timeout=timeout, limit=args.limit, progress=ProgressBar,
                          workers=workers(args.workers, size)):
        found[e.case].append(e)
    print("\n".join(summary(f) for f in found.values()), end="", flush=True)
    runs = sum(len(e.interleavings) for f in found.values() for e in f)
    seconds = time.monotonic() - started
    print(f"({runs} interleavings played in {seconds:.1f} s, {runs / seconds:.0f}/s)",
          file=sys.stderr)
    return 0


def _matrix(args: argparse.Namespace) -> int:
    from . import matrix
    from .explorer import ProgressBar, targets
    from .parallel import workers

    chosen = targets(args.db)
    out = os.path.abspath(args.out)
    try:  # before minutes of work, not after
        os.makedirs(out, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UsageError(f"cannot write into {args.out}: {exc.strerror}") from None
    result = matrix.build(chosen, progress=ProgressBar, workers=workers(args.workers, None))
    print(result.markdown(), end="")
    written = matrix.write(result, out)
    print(f"\nwritten: {', '.join(written)}")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Exit 0 when the fix holds everywhere (or the one replayed run finished), else 1."""
    from . import exercises
    from .runner import ISOLATION_LEVELS
    from .runner.scenario import normalize_isolation

    fn = _load_function(args.exercise, args.function)
    levels = [normalize_isolation(x) for x in args.isolation.split(",")] \
        if args.isolation else list(ISOLATION_LEVELS)
    if args.permutation is not None:
        if len(levels) != 1 or "," in args.db:
            raise UsageError("--permutation replays one run: give one --isolation and one --db")
        print(exercises.replay(args.exercise, fn, isolation=levels[0], db=args.db,
                               permutation=args.permutation).text(), end="")
        return 0
    report = exercises.check(args.exercise, fn, db=args.db, levels=levels)
    print(repr(report))
    return 0 if report.passed else 1


def _load_function(exercise: str, where: str):
    """FILE.py:FUNCTION, or 'solution' (the reference in lab.exercises.solutions)."""
    import importlib.util

    from .exercises import checker, solutions

    name = checker.fix_of(exercise)[1].function
    if where == "solution":
        return getattr(solutions, name)
    path, _, function = where.rpartition(":")
    if not path or not function:
        raise UsageError(f"expected FILE.py:FUNCTION (say mine.py:{name}), not {where!r}")
    if not os.path.isfile(path):
        raise UsageError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location("lab_exercise_attempt", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the learner's file: say what broke, in one line
        raise UsageError(f"{path} did not load: {type(exc).__name__}: {exc}") from None
    if not callable(getattr(module, function, None)):
        raise UsageError(f"{path} defines no function {function!r}")
    return getattr(module, function)


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
