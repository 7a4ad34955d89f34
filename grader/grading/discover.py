"""Find one submission per student: ``DIR/<student>.ipynb`` or ``DIR/<student>/*.ipynb``.

A student folder with several notebooks (for a quiz: answers files, ``.toml``, ``.json`` or ``.ipynb``) is
graded by this rule, first match wins:

1. files that declare another assignment are set aside (they belong to that one): a notebook by its metadata, an
   answers file by its ``quiz`` field, read by the quiz's own reader (``read_answers``, with its size limits);
2. the one file named after the assignment (``tiny-model.ipynb``, ``convergence.toml``, in any subfolder);
3. else the one file that declares the assignment (for a quiz, the newest of those that declare it: the answers
   template carries the ``quiz`` line, so a draft kept beside the answers declares it too);
4. else the newest (modification time) of the files that declare nothing and can be read; an empty or unreadable
   file (not JSON, no answers, not UTF-8) declares nothing and is taken only when no other can be read.

The rule cannot decide, and the student's outcome is ``invalid`` ("ambiguous"), when two or more
files are named after the assignment, when two or more notebooks declare it (and none is named after it),
when the two newest undeclared ones of rule 4 have the same modification time, or when every file declares
another assignment. The choice and the files left out are the result's note (page, CSV, summary).

Files of one student side by side in the class folder (``jan.toml`` and ``jan.json``) are chosen between by the
same rule, but for its rule 2 (every one is named after the student): so an empty ``jan.toml`` never displaces a
readable ``jan.json``, whichever is newer, and between two readable ones the newer is graded, as in a folder.

What is a student, and under which name (no entry of the class folder is dropped without a word):

- tools' entries are no student's and are skipped: ``TOOL_ENTRIES`` (``.ipynb_checkpoints``, ``.git``, ...),
  macOS's ``._*`` files, and any other hidden entry (a leading ``.``) that holds no notebook. Inside a
  student's folder, hidden files and folders and symbolic links are never read: when no other notebook is
  there, the note lists them;
- a hidden entry that does hold a notebook is graded, under its name without the leading dots;
- suffixes are matched whatever their case (``ada.IPYNB`` is ada's notebook);
- an archive (``ARCHIVE_SUFFIXES``: ``cara.zip``) is never opened: it is reported as its student's entry
  (``invalid``, saying to unpack it), and in a student's folder that holds no notebook the note names it;
- a file whose submission suffix is followed by another (``zed.ipynb.txt``, a browser's download) is its student's
  entry (``invalid``, saying to rename it);
- any other file of the class folder (a roster, a README) is taken for the instructor's, not a student, and is
  skipped; a batch names those files once (``left_aside``);
- a symbolic link, or a FIFO, device or socket named like a notebook, is reported (``invalid``, with why),
  never followed or opened; so is a folder the grader cannot read;
- a name is made safe for files and tables by ``student_name`` (letters of any script kept); when two entries
  still come out alike, each whose name had to change gets ``-`` and six hex digits of a hash of its own name,
  the same in every run. An altered odd name (hidden, control characters, cut short) and a suffix are
  said in the note; the gradebook keeps each result's original path.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from grader.kernel.notebook import (
    METADATA_KEY,
    NOTEBOOK_SUFFIXES,
    InvalidNotebook,
    parse_notebook_json,
    read_notebook_bytes,
)
from grader.kernel.untrusted import JsonLimitError
from grader.specs.paths import MAX_NAME, student_name

# Made by tools, never a student's: skipped wherever they are.
TOOL_ENTRIES = frozenset({".ipynb_checkpoints", ".git", ".hg", ".svn", ".DS_Store", ".Trashes", ".Spotlight-V100",
                          ".virtual_documents", "__MACOSX", "__pycache__"})
# What a student may hand in instead of unpacking it: never opened (a zip bomb, links, paths out of the folder).
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z", ".rar", ".gz")
MAX_WALK = 50_000  # entries looked at in one student's folder
MAX_DEPTH = 32


@dataclass(frozen=True)
class Found:
    student: str
    path: pathlib.Path | None  # None when the student's folder holds no notebook, or the rule cannot decide
    note: str = ""  # which notebook was graded and why, or why none was: shown to the instructor and student
    origin: pathlib.Path | None = None  # the student's entry in the class folder: what the name leads back to


@dataclass(frozen=True)
class Declared:
    """What a handed-in file says of itself, read without running any of it."""

    assignment: str | None  # the exercise or quiz it names; None where it names none
    readable: bool = True  # False: empty or unreadable, so it loses to a file that can be read (rule 4)
    answered: bool = True  # False: an answers file with no answer filled in (the template as given)


def declared_exercise(path: pathlib.Path) -> str | None:
    """The exercise a notebook's metadata names, if it is readable and names one."""
    return _notebook_declares(path).assignment


def _notebook_declares(path: pathlib.Path) -> Declared:
    try:
        data = parse_notebook_json(read_notebook_bytes(path))
    except (InvalidNotebook, JsonLimitError):
        return Declared(None, readable=False)
    meta = data.get("metadata", {}) if isinstance(data, dict) else {}
    grader = meta.get(METADATA_KEY) if isinstance(meta, dict) else None
    value = grader.get("exercise") if isinstance(grader, dict) else None
    return Declared(value if isinstance(value, str) else None)


def _answers_declare(path: pathlib.Path, quiz_id: str) -> Declared:
    """The quiz an answers file's ``quiz`` field names, as the batch scores it: ``quiz_id`` where it names that quiz
    in any spelling the scorer takes (case, dashes, its title)."""
    from grader.quizzes.answers import is_blank, read_answers
    from grader.quizzes.scoring import names_quiz

    answers = read_answers(path)  # never raises, never runs code; refuses what is over its size limit
    named = answers.quiz
    answered = any(not is_blank(value) and value not in ([], {}) for value in answers.answers.values())
    return Declared(quiz_id if named is not None and names_quiz(quiz_id, named) else named, answers.error is None,
                    answered)


@dataclass(frozen=True)
class _Files:
    """What a student's files are, for the rule and its notes: an exercise's notebooks, or a quiz's answers files."""

    assignment: str
    answers: bool  # a quiz's answers files, whose `quiz` field declares what they are for

    @property
    def noun(self) -> str:
        return "answers file" if self.answers else "notebook"

    @property
    def kind(self) -> str:
        return "quiz" if self.answers else "exercise"

    def declares(self, path: pathlib.Path) -> Declared:
        return _answers_declare(path, self.assignment) if self.answers else _notebook_declares(path)


def _answers_files(suffixes: tuple[str, ...]) -> bool:
    """Whether students hand in answers files: suffixes beyond a notebook's (a quiz's .toml and .json)."""
    return any(s.casefold() not in NOTEBOOK_SUFFIXES for s in suffixes)


def _names(paths: list[pathlib.Path], folder: pathlib.Path) -> str:
    return ", ".join(p.relative_to(folder).as_posix() for p in paths)


def _newest(paths: list[pathlib.Path]) -> list[pathlib.Path]:
    return sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True)


def pick(files: list[pathlib.Path], exercise_id: str, folder: pathlib.Path,
         suffixes: tuple[str, ...] = NOTEBOOK_SUFFIXES, by_name: bool = True) -> tuple[pathlib.Path | None, str]:
    """(the file to grade, the note saying why); (None, why not) when the rule cannot decide.

    ``by_name=False`` leaves out rule 2, for files that all bear the student's name rather than the assignment's.
    """
    if len(files) == 1:
        return files[0], ""
    kind = _Files(exercise_id, _answers_files(suffixes))
    noun, what = kind.noun, kind.kind
    declared = {p: kind.declares(p) for p in files}
    candidates = [p for p in files if declared[p].assignment in (None, exercise_id)]
    if not candidates:
        listed = ", ".join(f"{p.relative_to(folder).as_posix()} is for {declared[p].assignment!r}" for p in files)
        return None, f"ambiguous: none of the {len(files)} {noun}s is for {exercise_id!r} ({listed})"
    # An empty or unreadable file, or the answers template left blank, never displaces one that holds the work: the
    # rules below choose among the others where there are any.
    blank = [p for p in candidates if not (declared[p].readable and declared[p].answered)]
    if blank and len(blank) < len(candidates):
        candidates = [p for p in candidates if p not in blank]
    named = [p for p in candidates if by_name and p.stem.casefold() == exercise_id.casefold()]
    declaring = [p for p in candidates if declared[p].assignment == exercise_id]
    undeclared = [p for p in candidates if declared[p].assignment is None]
    readable = _newest([p for p in undeclared if declared[p].readable])
    newest = readable or _newest(undeclared)
    if len(named) > 1:
        return None, f"ambiguous: {len(named)} {noun}s are named after the {what} ({_names(named, folder)})"
    if named:
        chosen, rule = named[0], f"named after the {what}"
    elif len(declaring) > 1 and kind.answers:
        # The answers template carries the `quiz` line, so every copy a student keeps (a draft, a backup) declares it:
        # the newest is the one handed in, as among files that declare nothing.
        latest = _newest(declaring)
        if latest[0].stat().st_mtime == latest[1].stat().st_mtime:
            return None, (f"ambiguous: {len(declaring)} answers files declare the quiz {exercise_id!r} and the newest "
                          f"have the same modification time ({_names(latest[:2], folder)})")
        chosen, rule = latest[0], f"newest of the {len(declaring)} whose `quiz` field declares the quiz"
    elif len(declaring) > 1:
        where = "`quiz` field" if kind.answers else "metadata"
        return None, (f"ambiguous: {len(declaring)} {noun}s declare the {what} {exercise_id!r} in their {where} "
                      f"({_names(declaring, folder)}); keep one, or name it {exercise_id}{suffixes[0]}")
    elif declaring:
        chosen, rule = declaring[0], f"whose {'`quiz` field' if kind.answers else 'metadata'} declares the {what}"
    elif len(newest) > 1 and newest[0].stat().st_mtime == newest[1].stat().st_mtime:
        return None, (f"ambiguous: no {noun} is named after or declares {exercise_id!r}, and the newest ones "
                      f"have the same modification time ({_names(newest[:2], folder)})")
    else:
        chosen = newest[0]
        rule = (f"newest (none is named after or declares the {what}, and none can be read)" if not readable else
                f"newest that can be read (none is named after or declares the {what})"
                if len(readable) < len(undeclared) else f"newest (none is named after or declares the {what})")
    others = [p for p in files if p != chosen]
    aside = [p for p in blank if p in others and len(blank) < len(files)]
    empty = f" ({_names(aside, folder)}: empty, unreadable or with no answer filled in)" if aside else ""
    lead = "the" if rule.startswith("newest") else "the one"
    return chosen, (f"{len(files)} {noun}s: graded {chosen.relative_to(folder).as_posix()}, {lead} {rule}; "
                    f"not graded: {_names(others, folder)}{empty}")


def _escaped(c: str) -> str:
    if unicodedata.category(c)[0] != "C":
        return c
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def shown(name: str) -> str:
    """A file name as a note shows it: quoted, control characters and undecodable bytes escaped, cut short."""
    text = "".join(_escaped(c) for c in name)
    return f"'{text[:100]}…'" if len(text) > 100 else f"'{text}'"


def has_suffix(name: str, suffixes: tuple[str, ...]) -> bool:
    """Whether ``name``'s suffix is one of ``suffixes``, in any case: a file saved as ``ada.IPYNB`` is a notebook."""
    return pathlib.PurePath(name).suffix.casefold() in {s.casefold() for s in suffixes}


def _archive(name: str) -> str:
    """The archive suffix ``name`` ends with, as written ("" for none, or for a name that is only a suffix)."""
    folded = name.casefold()
    return next((name[-len(s):] for s in ARCHIVE_SUFFIXES if folded.endswith(s) and len(name) > len(s)), "")


def _unpack_hint(name: str) -> str:
    return (f"{shown(name)} is an archive, which the grader never opens: unpack it (its notebook as "
            "<student>.ipynb or <student>/*.ipynb in the class folder) and run again")


def _skipped(name: str) -> bool:
    return name in TOOL_ENTRIES or name.startswith("._")


def _walk(folder: pathlib.Path, suffixes: tuple[str, ...]
          ) -> tuple[list[pathlib.Path], list[pathlib.Path], list[pathlib.Path], bool]:
    """(notebooks, notebooks left out as hidden or links, archives, whether the walk stopped at a limit), breadth
    first, in name order, without following any link."""
    notebooks, left_out, archives, queue, seen, cut = [], [], [], [(folder, 0, False)], 0, False
    while queue:
        path, depth, hidden = queue.pop(0)
        for entry in sorted(os.scandir(path), key=lambda e: e.name):
            seen += 1
            if seen > MAX_WALK:
                return sorted(notebooks), sorted(left_out), sorted(archives), True
            if _skipped(entry.name):
                continue
            inside = hidden or entry.name.startswith(".")
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    queue.append((pathlib.Path(entry.path), depth + 1, inside))
                cut = cut or depth >= MAX_DEPTH
            elif has_suffix(entry.name, suffixes):
                kept = not inside and entry.is_file(follow_symlinks=False)
                (notebooks if kept else left_out).append(pathlib.Path(entry.path))
            elif not inside and _archive(entry.name):
                archives.append(pathlib.Path(entry.path))
    return sorted(notebooks), sorted(left_out), sorted(archives), cut


@dataclass(frozen=True)
class _Entry:
    """A student's entry in the class folder, before it is named."""

    raw: str  # the folder's name, or the file's without its suffix
    origin: pathlib.Path
    path: pathlib.Path | None
    note: str = ""
    is_dir: bool = False


def _folder_entry(entry: pathlib.Path, exercise_id: str, suffixes: tuple[str, ...]) -> _Entry | None:
    notebooks, left_out, archives, cut = _walk(entry, suffixes)
    hidden = entry.name.startswith(".")
    looked = f" (only the first {MAX_WALK:,} entries, {MAX_DEPTH} folders deep, were looked at)" if cut else ""
    if not notebooks:
        if hidden:
            return None  # a tool's hidden folder, not a student
        unread = (f"; not read: {_names(left_out, entry)} (hidden files and links are not read)" if left_out else "")
        packed = (f"; not opened: {_names(archives, entry)}, archive(s) the grader never opens: unpack the notebook "
                  "into the student's folder and run again" if archives else "")
        return _Entry(entry.name, entry, None, f"no {' or '.join(suffixes)} file in the student's folder{looked}"
                                               f"{unread}{packed}", True)
    path, note = pick(notebooks, exercise_id, entry, suffixes)
    return _Entry(entry.name, entry, path, note + looked, True)


def _entry(entry: pathlib.Path, exercise_id: str, suffixes: tuple[str, ...]) -> _Entry | None:
    """What one entry of the class folder is: a student's folder or notebook, a reported oddity, or None."""
    mode = entry.lstat().st_mode
    notebook_like = has_suffix(entry.name, suffixes)
    archive = _archive(entry.name) if not notebook_like else ""
    raw = (entry.stem if notebook_like else entry.name[:-len(archive)] if archive else entry.name
           ) if not stat.S_ISDIR(mode) else entry.name
    if stat.S_ISLNK(mode):
        if notebook_like or entry.is_dir():
            return _Entry(raw, entry, None, f"{shown(entry.name)} is a symbolic link: the grader does not follow "
                                            "links in a class folder; copy the work itself there")
        return None
    if stat.S_ISDIR(mode):
        return _folder_entry(entry, exercise_id, suffixes)
    if archive:
        return _Entry(raw, entry, None, _unpack_hint(entry.name))
    renamed = _suffix_inside(entry.name, suffixes)
    if renamed and stat.S_ISREG(mode):
        stem, suffix = renamed
        return _Entry(stem, entry, None, f"{shown(entry.name)} does not end in {suffix}, so it is not read (a "
                                         f"download saved with another ending, say): rename it {stem}{suffix} and "
                                         "run again")
    if not notebook_like:
        return None
    if not stat.S_ISREG(mode):
        return _Entry(raw, entry, None, f"{shown(entry.name)} is a pipe, device or socket, not a notebook file")
    return _Entry(raw, entry, entry)


def _one_entry(items: list[_Entry], exercise_id: str, suffixes: tuple[str, ...], folder: pathlib.Path) -> _Entry:
    """The entry graded among a student's entries of one name: the folder, else the folder rule's pick among the
    files (``jan.toml`` beside ``jan.json``), else the one that can be graded; the others are named in its note."""
    files = [i for i in items if i.path is not None and not i.is_dir]
    chosen, weighed = next((i for i in items if i.is_dir), None), []
    if chosen is None and len(files) > 1:
        try:
            path, note = pick([i.path for i in files], exercise_id, folder, suffixes, by_name=False)
        except OSError as e:  # a file gone or locked away between the listing and the rule's look at it
            path, note = None, f"{shown(files[0].origin.name)} could not be read ({e.strerror or type(e).__name__})"
        chosen = replace(next((i for i in files if i.path == path), files[0]), path=path, note=note)
        weighed = files  # the rule's note names them
    chosen = chosen or next(iter(files), items[0])
    left = [i for i in items if i.origin != chosen.origin and i not in weighed]
    if not left:
        return chosen
    where = "the folder" if chosen.is_dir else shown(chosen.origin.name)
    beside = f"not graded: {', '.join(shown(i.origin.name) for i in left)}, beside {where}"
    return replace(chosen, note="; ".join(n for n in (chosen.note, beside) if n))


def _suffix_inside(name: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    """(the name before it, the suffix) where a submission's suffix is followed by another (``zed.ipynb.txt``)."""
    folded = name.casefold()
    for suffix in suffixes:
        at = folded.find(suffix.casefold() + ".")
        if at > 0:
            return name[:at], suffix
    return None


def left_aside(folder: str | pathlib.Path, suffixes: tuple[str, ...] = NOTEBOOK_SUFFIXES) -> list[str]:
    """The names of the class folder's files that are no student's entry (a roster, a README, an answers file in
    another format): said once by a batch, so that nothing a student handed in goes unseen."""
    names = []
    for child in sorted(pathlib.Path(folder).iterdir()):
        if _skipped(child.name) or child.name.startswith("."):
            continue
        try:
            if stat.S_ISREG(child.lstat().st_mode) and _entry(child, "", suffixes) is None:
                names.append(child.name)
        except (OSError, ValueError):
            continue
    return names


def _digest(raw: str, digits: int) -> str:
    return hashlib.sha256(os.fsencode(raw)).hexdigest()[:digits]


def student_names(raws: Iterable[str]) -> dict[str, str]:
    """Each raw name's student name: ``student_name``, made unique (the rule is in the module docstring)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for raw in raws:
        groups[student_name(raw)].append(raw)
    names = {}
    for safe, members in groups.items():
        for raw in members:
            names[raw] = safe if len(members) == 1 or raw == safe else f"{safe}-{_digest(raw, 6)}"
    for digits in (12, 64):  # a suffixed name may meet another entry's own name: lengthen its hash
        counts = defaultdict(int)
        for name in names.values():
            counts[name] += 1
        for raw, name in names.items():
            if counts[name] > 1 and raw != name and name != student_name(raw):
                names[raw] = f"{student_name(raw)}-{_digest(raw, digits)}"
    return names


def _naming_note(item: _Entry, name: str, clashes: list[str]) -> str:
    """Why a student is graded under a name other than their entry's, when that is not plain (spaces aside)."""
    what = "folder" if item.is_dir else "file"
    if clashes and name != item.raw:
        others = ", ".join(shown(c) for c in clashes[:5])
        return (f"graded as {name}: the {what} {shown(item.origin.name)} and {others} have the same name once "
                "made safe for file names")
    odd = (item.raw.startswith(".") or len(item.raw) > MAX_NAME or "\\" in item.raw
           or any(unicodedata.category(c)[0] == "C" for c in item.raw))
    return f"graded as {name}, from the {what} {shown(item.origin.name)}" if odd else ""


def discover(folder: str | pathlib.Path, exercise_id: str, suffixes: tuple[str, ...] = NOTEBOOK_SUFFIXES) -> list[Found]:
    """Every student in ``folder``, in name order; a folder takes precedence over same-named files, and between
    same-named files (``jan.toml``, ``jan.json``) the folder rule chooses (module docstring).

    Never raises for what a student's entry holds: an entry that cannot be read is that student's ``Found``
    with no path and the reason as its note.
    """
    folder = pathlib.Path(folder)
    alike: dict[str, list[_Entry]] = {}  # a student's entries of one name: a folder, files with other suffixes
    for child in sorted(folder.iterdir()):
        if _skipped(child.name):
            continue
        try:
            item = _entry(child, exercise_id, suffixes)
        except (OSError, ValueError, RecursionError) as e:
            item = _Entry(child.name, child, None, f"{shown(child.name)} could not be read "
                                                   f"({getattr(e, 'strerror', None) or type(e).__name__})")
        if item is not None:
            alike.setdefault(item.raw, []).append(item)
    entries = {raw: _one_entry(items, exercise_id, suffixes, folder) for raw, items in alike.items()}
    names = student_names(entries)
    found = []
    for raw, item in entries.items():
        clashes = [other.origin.name for r, other in entries.items() if r != raw and student_name(r) == student_name(raw)]
        extra = _naming_note(item, names[raw], clashes)
        note = "; ".join(n for n in (extra, item.note) if n)
        found.append(Found(names[raw], item.path, note, item.origin))
    return sorted(found, key=lambda f: f.student)
