"""The parallel explorer: one exploration's interleavings spread over worker processes.

The tree of feasible interleavings is cut into subtrees by prefix. A worker walks the
subtree it is given on its own stage and database and hands back, as prefixes of their
own, the choices it meets near the root (above `SPLIT_DEPTH`); any idle worker takes
them. Every interleaving comes back with its key (the session index of each step), and
the keys sort into the order one process walks the tree, so an exploration comes out
identical to a single process's: same interleavings, same order, same replay lines.

Workers are fresh interpreters (``python -m lab.parallel``), not forks (a fork copies
connections and threads mid-flight) nor multiprocessing's spawn (which runs the caller's
script again in each). They talk over two pipes each. A worker opens one database per
backend the first time it needs it and drops it when it ends: when its pipe closes (the
pool is done, or its parent died) or on Ctrl-C.
"""

from __future__ import annotations

import heapq
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from .errors import LabError, UsageError
from .explorer import Exploration, Job, Key, Stages, walk

SPLIT_DEPTH = 4  # choices this near the root become tasks of their own
AHEAD = 2  # tasks queued per worker, so that none waits for the next one
STAGES_KEPT = 3  # a worker keeps the stages of its last few explorations
JOIN_S = 30.0  # how long a worker may take to drop its databases on the way out
SMALL = 300  # orderings in all: fewer are played faster by one process than by starting more


def workers(asked: int | None, orderings: int | None) -> int:
    """How many processes: as asked, else one per core (1 for a small search)."""
    if asked is not None:
        if asked < 1:
            raise UsageError(f"--workers must be 1 or more, not {asked}")
        return asked
    if orderings is not None and orderings < SMALL:
        return 1
    return os.cpu_count() or 1


class WorkerError(LabError):
    """A worker process failed; the message names the exploration and what went wrong."""


@dataclass
class _Pending:
    """One exploration in flight: its interleavings in arrival order, with their keys."""

    job: Job
    found: Exploration
    keys: list[Key] = field(default_factory=list)
    open_tasks: int = 1
    started: float = 0.0


class Pool:
    """``with Pool(2) as pool: for found in pool.explore(jobs): ...``"""

    def __init__(self, workers: int):
        if workers < 1:
            raise UsageError(f"--workers must be 1 or more, not {workers}")
        self.size = workers
        self._workers: list[_Worker] = []
        self._numbered = 0  # jobs numbered across calls: a worker keys its stages by number

    def __enter__(self) -> Pool:
        try:
            for k in range(self.size):
                self._workers.append(_Worker(k + 1))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Done: each worker finishes its task and goes. On an error or Ctrl-C, at once: a
        worker ends its run on SIGTERM as on Ctrl-C, and drops its database."""
        for w in self._workers:
            w.stop()
            if exc and exc[0] is not None:
                w.proc.terminate()
        deadline = time.monotonic() + JOIN_S
        for w in self._workers:
            w.join(max(0.1, deadline - time.monotonic()))

    def explore(self, jobs: Sequence[Job],
                progress: Callable[[str], Callable[[Exploration], None] | None] | None = None,
                ) -> Iterator[Exploration]:
        """Each job's exploration, in the order given, each as one process would find it."""
        pending = [_Pending(job, job.exploration()) for job in jobs]
        base, self._numbered = self._numbered, self._numbered + len(jobs)
        tasks: list[tuple[int, Key, list[str]]] = [(n, (), []) for n in range(len(jobs))]
        heapq.heapify(tasks)  # the earliest exploration first, then depth-first order
        bars: dict[int, Callable[[Exploration], None] | None] = {}
        next_out = 0
        while next_out < len(pending):
            while tasks and (idle := min(self._workers, key=lambda w: w.tasks)).tasks < AHEAD:
                n, _key, prefix = heapq.heappop(tasks)
                if not pending[n].started:
                    pending[n].started = time.monotonic()
                    bars[n] = progress(pending[n].job.label) if progress else None
                idle.send((base + n, pending[n].job, prefix))
            worker, (kind, n, *data) = self._receive()
            n -= base
            p = pending[n]
            if kind == "found":
                key, interleaving, backend = data
                p.keys.append(key)
                p.found.backend = backend
                p.found.interleavings.append(interleaving)  # (in arrival order until done)
                p.found.seconds = time.monotonic() - p.started
                if bars.get(n) is not None:
                    bars[n](p.found)
            elif kind == "split":
                key, prefix = data
                heapq.heappush(tasks, (n, key, prefix))
                p.open_tasks += 1
            elif kind == "done":
                worker.tasks -= 1
                p.open_tasks -= 1
            else:
                raise WorkerError(f"explorer worker failed on {p.job.label}: {data[0]}")
            while next_out < len(pending) and pending[next_out].open_tasks == 0:
                yield self._finish(pending[next_out], bars.get(next_out))
                next_out += 1

    def _receive(self) -> tuple[_Worker, tuple]:
        """The next message from any worker; a worker gone silent for good is an error."""
        by_conn = {w.inbox: w for w in self._workers}
        for conn in wait(list(by_conn)):
            worker = by_conn[conn]
            try:
                return worker, conn.recv()
            except (EOFError, OSError):
                raise WorkerError(f"explorer worker {worker.number} ended unexpectedly"
                                  f" (exit code {worker.proc.poll()})") from None
        raise AssertionError("wait() returned no connection")  # (only without a timeout)

    @staticmethod
    def _finish(p: _Pending, bar) -> Exploration:
        found = p.found
        found.interleavings = [i for _key, i in sorted(zip(p.keys, found.interleavings),
                                                       key=lambda ki: ki[0])]
        found.seconds = time.monotonic() - p.started
        if bar is not None and hasattr(bar, "done"):
            bar.done()
        return found


class _Worker:
    """One worker process and its two pipes; `tasks`: how many it has not finished."""

    def __init__(self, number: int):
        self.number, self.tasks = number, 0
        task_r, task_w = os.pipe()
        found_r, found_w = os.pipe()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lab.parallel", str(task_r), str(found_w)],
                pass_fds=(task_r, found_w), env=env, stdin=subprocess.DEVNULL)
        finally:
            os.close(task_r)
            os.close(found_w)
        self.outbox = Connection(task_w, readable=False)
        self.inbox = Connection(found_r, writable=False)

    def send(self, task: tuple) -> None:
        self.outbox.send(task)
        self.tasks += 1

    def stop(self) -> None:
        """Close its task pipe: it finishes its task, drops its databases and exits."""
        self.outbox.close()

    def join(self, seconds: float) -> None:
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:  # (it drops its databases on SIGTERM too)
            self.proc.terminate()
            try:
                self.proc.wait(JOIN_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.inbox.close()


def _serve(tasks: Connection, found: Connection) -> None:
    """A worker: walk the subtrees it is given until its task pipe closes."""
    from .db import close_all, open_run_database
    from .interrupts import Interrupts

    databases: dict = {}  # per target, opened and snapshotted the first time it is needed
    stages: dict[int, Stages] = {}  # per exploration, the last few
    try:
        with Interrupts():
            try:
                while (task := _next(tasks)) is not None:
                    n, job, prefix = task
                    try:
                        if job.target not in databases:
                            databases[job.target] = db = open_run_database(job.target)
                            db.snapshot()
                        if n not in stages:
                            stages[n] = Stages(job, job.find(), databases[job.target])
                            while len(stages) > STAGES_KEPT:
                                stages.pop(next(iter(stages))).close()
                        _walk(n, stages[n], prefix, found)
                    except Exception as exc:  # reported to the parent, which stops the pool
                        found.send(("error", n, f"{type(exc).__name__}: {exc}"))
                        return
            except KeyboardInterrupt:  # the databases first: DROP ... WITH (FORCE) ends a
                close_all()  # statement still running, which a stage would wait for
                raise
            finally:
                for here in stages.values():
                    here.close()
                for db in databases.values():
                    if not db.closed:
                        db.close()
    except KeyboardInterrupt:
        pass
    finally:
        close_all()


def _next(tasks: Connection):
    try:
        return tasks.recv()
    except (EOFError, OSError):  # the pool is done with us, or our parent is gone
        return None


def _walk(n: int, here: Stages, prefix: list[str], out: Connection) -> None:
    def split(key: Key, pre: list[str]) -> None:
        out.send(("split", n, key, pre))

    for key, found in walk(here.job, here.scenario, here, prefix=prefix,
                           split_above=SPLIT_DEPTH, on_split=split):
        out.send(("found", n, key, found, here.backend))
    out.send(("done", n))


if __name__ == "__main__":  # a worker: python -m lab.parallel TASK_FD FOUND_FD
    _serve(Connection(int(sys.argv[1]), writable=False),
           Connection(int(sys.argv[2]), readable=False))
