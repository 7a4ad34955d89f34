"""The roster in the gradebook: imported whole from a roster file, matched against the names submissions carry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from grader.specs.roster import RosterEntry, RosterMatch, match_roster
from grader.store.gradebook import Gradebook

FIELDS = ("student_id", "name", "email", "login", "section", "canvas_id")


@dataclass(frozen=True)
class RosterChange:
    added: list[RosterEntry]
    removed: list[RosterEntry]
    changed: list[RosterEntry]  # same student id, another name, email, login, section or Canvas id
    total: int


def load_roster(gradebook: Gradebook) -> list[RosterEntry]:
    """The imported roster, by name; empty when none was imported."""
    rows = gradebook.conn.execute(f"SELECT {', '.join(FIELDS)} FROM roster ORDER BY name, student_id").fetchall()
    return [RosterEntry(*row) for row in rows]


def import_roster(gradebook: Gradebook, entries: list[RosterEntry]) -> RosterChange:
    """Replace the roster with ``entries`` in one transaction: the file is the class list as it is now."""
    before = {e.student_id: e for e in load_roster(gradebook)}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with gradebook.conn:
        gradebook.conn.execute("DELETE FROM roster")
        gradebook.conn.executemany(
            f"INSERT INTO roster({', '.join(FIELDS)}, imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [tuple(getattr(e, f) for f in FIELDS) + (now,) for e in entries])
    after = {e.student_id: e for e in entries}
    return RosterChange(added=[e for i, e in after.items() if i not in before],
                        removed=[e for i, e in before.items() if i not in after],
                        changed=[e for i, e in after.items() if i in before and before[i] != e], total=len(entries))


def roster_match(gradebook: Gradebook, exercise: str | None = None) -> RosterMatch | None:
    """The gradebook's students (those with a result for ``exercise``, if given) against its roster; None without one."""
    roster = load_roster(gradebook)
    if not roster:
        return None
    names = ([r.result.student for r in gradebook.current_runs(exercise)] if exercise else gradebook.students())
    return match_roster(roster, names)
