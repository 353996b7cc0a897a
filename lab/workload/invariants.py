"""What every workload must leave true: invariants 1-7 of the scheduling domain.

The final state is read with plain SQL on both backends; `verdict` names every broken
invariant (an anomaly), or says they all hold.
"""

from __future__ import annotations

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from ..models import Assignment
from ..runner import RunResult, Verdict, judged
from ..seed import CLINIC, FACULTY, RESIDENTS, SEED_TIME, START, block_id
from ..services import coverage
from .ops import BOOKED_BLOCK, SWAPPED

MONDAY_AM = block_id(0, "AM")  # the swapped shift's block


def setup(s: Session) -> None:
    """The journal, and the second Monday's clinic: Drs Baker and Chen supervise Resident
    Two (PGY-2), one of its two places taken."""
    s.execute(text("CREATE TABLE IF NOT EXISTS workload_journal (op VARCHAR(8) PRIMARY KEY,"
                   " assignment_id INTEGER, request_id INTEGER,"
                   " generations_running INTEGER NOT NULL)"))
    s.execute(text("DELETE FROM workload_journal"))
    s.execute(insert(Assignment), [
        dict(block_id=BOOKED_BLOCK, person_id=person, rotation_template_id=CLINIC, role=role,
             notes="", source="manual", updated_at=SEED_TIME)
        for person, role in ((FACULTY[1], "supervising"), (FACULTY[2], "supervising"),
                             (RESIDENTS[1], "primary"))])


FINAL = {
    "double bookings": """SELECT person_id, block_id FROM assignment
                          GROUP BY person_id, block_id HAVING COUNT(*) > 1""",
    "booked block": f"""SELECT COUNT(*) FILTER (WHERE p.kind = 'faculty') AS faculty,
                        COUNT(*) FILTER (WHERE p.pgy_level = 1) AS pgy1,
                        COUNT(*) FILTER (WHERE p.pgy_level > 1) AS senior
                        FROM assignment a JOIN person p ON p.id = a.person_id
                        WHERE a.block_id = {BOOKED_BLOCK}""",
    "over capacity": """SELECT a.block_id, t.name, COUNT(*) AS residents FROM assignment a
                        JOIN person p ON p.id = a.person_id
                        JOIN rotation_template t ON t.id = a.rotation_template_id
                        WHERE p.kind = 'resident' GROUP BY a.block_id, t.id, t.name,
                        t.max_residents HAVING COUNT(*) > t.max_residents""",
    "on call": f"""SELECT COUNT(*) AS faculty FROM call_assignment
                   WHERE date = '{START}' AND call_type = 'overnight'""",
    "swaps": """SELECT id, source_assignment_id, source_faculty_id, target_faculty_id, status
                FROM swap_request ORDER BY id""",
    "swapped block": f"SELECT id, person_id FROM assignment WHERE block_id = {MONDAY_AM}",
    "generations": """SELECT t.id, t.status, (SELECT COUNT(*) FROM assignment a
                      WHERE a.task_id = t.id) AS rows FROM task t
                      WHERE t.kind = 'generate' ORDER BY t.id""",
    "journal": """SELECT op, assignment_id, request_id, generations_running
                  FROM workload_journal ORDER BY op""",
    "notes": "SELECT id, notes FROM assignment WHERE id IN (1, 2) ORDER BY id",
}


def broken(tables: dict) -> list[str]:
    """Each invariant that does not hold, in words."""
    found = []
    for row in tables["double bookings"]:  # 1
        found.append(f"person #{row['person_id']} booked twice in block #{row['block_id']}")
    block = tables["booked block"][0]  # 2
    need = coverage.required_supervisors(block["pgy1"], block["senior"])
    if block["faculty"] < need:
        found.append(f"block #{BOOKED_BLOCK}: {block['faculty']} supervisors, {need} needed")
    for row in tables["over capacity"]:  # 3
        found.append(f"{row['name']} holds {row['residents']} residents"
                     f" in block #{row['block_id']}")
    if tables["on call"][0]["faculty"] < 1:  # 4
        found.append(f"nobody on call on {START}")
    found += _swaps(tables)  # 5 and 6
    for row in tables["generations"]:
        if row["status"] in ("failed", "cancelled") and row["rows"]:
            found.append(f"generation #{row['id']} ended {row['status']} but left"
                         f" {row['rows']} rows")
    notes = {r["id"]: r["notes"] for r in tables["notes"]}  # 7
    for row in tables["journal"]:
        edited = row["assignment_id"]
        if edited is not None and f"+{row['op']}" not in notes[edited]:
            found.append(f"lost update: {row['op']}'s committed edit is gone from"
                         f" assignment #{edited} ({notes[edited]!r})")
    return found


def _swaps(tables: dict) -> list[str]:
    """Invariant 5: the swaps executed on the shift chain from its first owner to its
    owner now, each moving it away from whoever held it then (never twice from one
    owner); and one executed while a generation ran is not undone by that generation."""
    found = []
    swaps = tables["swaps"]
    executed = [(r["source_faculty_id"], r["target_faculty_id"]) for r in swaps
                if r["status"] == "executed" and r["source_faculty_id"] != r["target_faculty_id"]]
    owner = next(r["person_id"] for r in tables["swapped block"] if r["id"] == SWAPPED)
    if not _chain(FACULTY[0], owner, executed):
        found.append(f"assignment #{SWAPPED} moved by swaps that do not chain from"
                     f" person #{FACULTY[0]} to person #{owner}: "
                     + ", ".join(f"#{a} -> #{b}" for a, b in executed)
                     + " (a swap moved it away from someone who no longer held it)")
    for r in swaps:
        if r["status"] not in ("approved", "executed", "rejected"):
            found.append(f"swap #{r['id']} is {r['status']}")
    requests = {r["id"]: r for r in swaps}
    completed = any(r["status"] == "completed" for r in tables["generations"])
    now = {r["person_id"] for r in tables["swapped block"]}
    targets = {b for _, b in executed}
    for j in tables["journal"]:
        swap = requests.get(j["request_id"])
        if (swap and swap["status"] == "executed" and j["generations_running"] and completed
                and swap["source_faculty_id"] in now - targets):
            found.append(f"swap #{swap['id']} executed during a generation, which then booked"
                         f" person #{swap['source_faculty_id']} back on the shift")
    return found


def _chain(start: int, end: int, moves: list[tuple[int, int]]) -> bool:
    """Can the moves be ordered as one path from `start` to `end`? (a few moves: search)"""
    if not moves:
        return start == end
    return any(_chain(b, end, moves[:i] + moves[i + 1:])
               for i, (a, b) in enumerate(moves) if a == start)


def verdict(result: RunResult) -> Verdict:
    problems = broken(result.tables)
    return judged(result, "; ".join(problems), "invariants 1-7 hold")


