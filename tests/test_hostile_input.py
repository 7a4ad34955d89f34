"""Hostile input never crashes, hangs or bloats the grader: crafted export folders and notebooks (issue 13, 5 and 7).

Every crafted export is loaded with a timeout guard (``load_within``): a FIFO opened for reading would block
forever, so a hang fails the test instead of stalling the suite.
"""

import json
import os
import pathlib
import signal
import stat
import subprocess
import sys

import pytest
import torch
from hostile_support import (
    MODEL,
    append_raw,
    chain_graph,
    deep_json,
    edit_json,
    genuine,
    load_within,
    save_tensors,
    unix_socket,
)

from grading_support import solution
from grader.cli import main
from grader.kernel.kernel_export import PROBE_TIMEOUT, export_values
from grader.kernel.notebook import InvalidNotebook, read_submission
from grader.loading.guard import LOAD_LIMITS
from grader.loading.values import ExportProblem
from grader.store.gradebook import Gradebook

HERE = pathlib.Path(__file__).parent


def _fifo(folder):
    (folder / MODEL / "graph.json").unlink()
    os.mkfifo(folder / MODEL / "graph.json")


def _symlink(folder):
    (folder / MODEL / "weights.pt").unlink()
    (folder / MODEL / "weights.pt").symlink_to("/etc/passwd")


def _device(folder):
    try:
        os.mknod(folder / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device file here ({e.strerror})")


def _socket(folder):
    unix_socket(folder / "s.sock").close()  # the socket file stays behind


def _sparse(folder):
    with open(folder / "padding.bin", "wb") as f:  # sparse: as large as it says, without using the disk
        f.truncate(LOAD_LIMITS.max_export_bytes + 1)


# (crafted change, words the refusal must contain): the whole folder is refused, the run is an error.
FOLDER_REFUSALS = {
    "fifo": (_fifo, "holds 'models/1/graph.json', which is a pipe (FIFO): the grader reads only regular files there"),
    "fifo-beside": (lambda f: os.mkfifo(f / "extra"), "holds 'extra', which is a pipe (FIFO)"),
    "symlink": (_symlink, "the export folder contains symbolic links, which the grader does not follow"),
    "device": (_device, "holds 'null', which is a device file"),
    "socket": (_socket, "holds 's.sock', which is a socket"),
    "too-large": (_sparse, "the exported files hold 256 MB together; the grader reads at most 256 MB"),
    "deep-manifest": (lambda f: append_raw(f / "manifest.json", "x", deep_json(100_000)),
                      "the file of exported values (manifest.json) is nested more than 100 levels deep"),
    "deep-manifest-900": (lambda f: append_raw(f / "manifest.json", "x", deep_json(900)),
                          "the file of exported values (manifest.json) is nested more than 100 levels deep"),
    "int-5000-digits": (lambda f: append_raw(f / "manifest.json", "x", "9" * 5000),
                        "(manifest.json) holds a number with more than 1000 digits"),
    "too-many-values": (lambda f: append_raw(f / "manifest.json", "x", "[" + ",".join(["0"] * 1_000_001) + "]"),
                        "(manifest.json) holds more than 1,000,000 values"),
    "not-utf8": (lambda f: (f / "manifest.json").write_bytes(b'{"format": \xff}'), "is not valid JSON (not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(FOLDER_REFUSALS))
def test_a_crafted_export_folder_is_refused_with_the_reason_never_a_crash_or_hang(tmp_path, case):
    change, words = FOLDER_REFUSALS[case]
    folder = genuine(tmp_path / "export")
    change(folder)
    exports, failure = load_within(folder)
    assert failure is None
    assert not exports.found and words in exports.refusal and exports.problems["*"] == exports.refusal


def _element_bomb(folder):
    weights = torch.load(folder / MODEL / "weights.pt")
    weights["padding"] = torch.zeros(LOAD_LIMITS.max_tensor_elements + 1, dtype=torch.uint8)
    save_tensors(folder / MODEL / "weights.pt", weights)


def _compressed(folder):
    save_tensors(folder / MODEL / "weights.pt", torch.load(folder / MODEL / "weights.pt"), compress=True)


def _strided(folder):
    weights = torch.load(folder / MODEL / "weights.pt")
    weights["layers.0.weight"] = torch.zeros(2, 4).t()  # a view: not contiguous
    torch.save(weights, folder / MODEL / "weights.pt")


def _too_many_models(folder):
    for i in range(2, LOAD_LIMITS.max_models + 3):
        (folder / "models" / str(i)).mkdir()
        for name in ("graph.json", "weights.pt"):
            os.link(folder / MODEL / name, folder / "models" / str(i) / name)
    edit_json(folder / "manifest.json",
              lambda m: m["values"].update(many=[{"$model": str(i)} for i in range(2, LOAD_LIMITS.max_models + 3)]))


NODES = LOAD_LIMITS.max_nodes
# (crafted change, words the model's problem must contain): the model is refused, the rest is still loaded.
MODEL_REFUSALS = {
    "nan-input-shape": (lambda f: edit_json(f / MODEL / "graph.json", lambda g: g.update(input_shape=[float("nan")])),
                        "the exported graph's input shape is not a list of a few positive whole numbers"),
    "nan-batch": (lambda f: edit_json(f / MODEL / "graph.json", lambda g: g.update(batch=float("nan"))),
                  "the exported graph's batch size must be a whole number from 1 to 4096"),
    "deep-graph": (lambda f: append_raw(f / MODEL / "graph.json", "x", deep_json(100_000)),
                   "the exported graph (graph.json) is nested more than 100 levels deep"),
    "int-5000-digits-graph": (lambda f: append_raw(f / MODEL / "graph.json", "x", "9" * 5000),
                              "the exported graph (graph.json) holds a number with more than 1000 digits"),
    "nodes-not-objects": (lambda f: edit_json(f / MODEL / "graph.json", lambda g: g.update(nodes=["x", 1])),
                          "the exported graph is malformed"),
    "over-node-limit": (lambda f: chain_graph(f, [("aten.relu.default", ["PREV"])] * NODES),
                        f"the model's graph has more than {NODES:,} operations"),
    "over-element-limit": (_element_bomb, "would take the export past 33,554,432 tensor elements in all"),
    "compressed-weights": (_compressed, "it is compressed, which torch.save never does"),
    "strided-weights": (_strided, "holds 'layers.0.weight', which is not a plain contiguous tensor"),
    # Graphs whose forward pass would take the grader's memory or time, caught on shapes alone before any runs.
    "factory-bomb": (lambda f: chain_graph(f, [("aten.relu.default", ["PREV"]),
                                               ("aten.zeros.default", [[100_000, 100_000]])]),
                     "the model's forward pass would hold 38,147 MB of tensors at once on a batch of 2 samples"),
    "flops-bomb": (lambda f: chain_graph(f, [("aten.ones.default", [[6000, 6000]]), ("aten.mm.default", ["PREV", "PREV"])]),
                   "floating-point operations for 4096 samples; the grader allows 274,877,906,944"),
    "elements-bomb": (lambda f: chain_graph(f, [("aten.unsqueeze.default", ["PREV", 2]),
                                                ("aten.expand.default", ["PREV", [-1, -1, 10**7]]),
                                                ("aten.sum.dim_IntList", ["PREV", [2]])]),
                      "numbers for 4096 samples; the grader allows 8,589,934,592"),
    "data-dependent-size": (lambda f: chain_graph(f, [("aten.sum.default", ["PREV"]),
                                                      ("aten._local_scalar_dense.default", ["PREV"])]),
                            "a forward pass whose tensor sizes depend on the data"),
}


@pytest.mark.parametrize("case", sorted(MODEL_REFUSALS))
def test_a_crafted_model_is_refused_with_the_reason_and_the_other_values_still_load(tmp_path, case):
    change, words = MODEL_REFUSALS[case]
    folder = genuine(tmp_path / "export")
    change(folder)
    exports, failure = load_within(folder)
    assert failure is None
    model = exports.values["model"]
    assert isinstance(model, ExportProblem) and words in model.message
    assert exports.values["lr"] == 0.1 and exports.refusal.startswith(model.message[:100])


def test_models_past_the_limit_on_models_are_refused_and_those_before_them_load(tmp_path):
    folder = genuine(tmp_path / "export")
    _too_many_models(folder)
    exports, failure = load_within(folder)
    assert failure is None
    many = exports.values["many"]
    assert [type(m).__name__ for m in many] == ["LoadedModel"] * 63 + ["ExportProblem"] * 2
    assert many[-1].message == "one more model would take the export past 64 models in all; the grader loads no more"


def test_a_giant_graph_within_the_limits_loads_and_runs(tmp_path):
    folder = genuine(tmp_path / "export")
    chain_graph(folder, [("aten.relu.default", ["PREV"])] * (NODES - 2))
    exports, failure = load_within(folder)
    assert failure is None and not exports.refusal
    assert torch.equal(exports.values["model"](torch.tensor([[-1.0, 2.0]])), torch.tensor([[0.0, 2.0]]))


PEAK_SCRIPT = """
import pathlib, resource, sys, torch
from grader.loading.exports import load_exports
warm, crafted = map(pathlib.Path, sys.argv[1:3])
load_exports(warm).values["model"].predict(torch.zeros(10, 2))  # what every submission needs, loaded once
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
exports = load_exports(crafted)
model = exports.values["model"]
if hasattr(model, "predict"):
    model.predict(torch.zeros(5000, 2))  # as the checks run it: in batches of 4096
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, type(model).__name__, getattr(model, "message", "") or exports.refusal)
"""


def _peak_mb(tmp_path, crafted: pathlib.Path) -> tuple[int, str, str]:
    """(MB the grader's peak grew by while loading ``crafted`` and running its model, what it loaded, why not)."""
    warm = genuine(tmp_path / "warm")
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(warm), str(crafted)], check=False, capture_output=True,
                         text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"}, cwd=HERE.parent)
    assert out.returncode == 0, out.stderr[-3000:]
    grown, kind, why = (out.stdout.strip().splitlines()[-1].split(" ", 2) + [""])[:3]
    return int(grown), kind, why


def _at_the_limits(folder):
    """Everything the limits allow at once: a manifest of 140,000 small dicts, 33.5 million weights, and a forward
    pass holding about 450 MB on a batch of 4096."""
    edit_json(folder / "manifest.json", lambda m: m["values"].update(big=[{"$dict": [["k", {}]]}] * 140_000))
    weights = torch.load(folder / MODEL / "weights.pt")
    weights["padding"] = torch.zeros(LOAD_LIMITS.max_tensor_elements - 100)
    save_tensors(folder / MODEL / "weights.pt", weights)
    chain_graph(folder, [("aten.mul.Tensor", ["PREV", 1.5]), ("aten.repeat.default", ["PREV", [1, 7000]]),
                         ("aten.relu.default", ["PREV"])])


def test_the_graders_peak_memory_stays_under_the_cap_at_the_limits(tmp_path):
    folder = genuine(tmp_path / "export")
    _at_the_limits(folder)
    grown, kind, why = _peak_mb(tmp_path, folder)
    assert kind == "LoadedModel" and not why
    assert grown < LOAD_LIMITS.memory_mb


def test_an_export_past_the_limits_is_refused_cheaply_and_says_why(tmp_path):
    folder = genuine(tmp_path / "export")
    chain_graph(folder, [("aten.mul.Tensor", ["PREV", 1.5]), ("aten.repeat.default", ["PREV", [1, 10**6]]),
                         ("aten.relu.default", ["PREV"])])  # 64 GB on a batch of 4096
    grown, kind, why = _peak_mb(tmp_path, folder)
    assert kind == "ExportProblem" and grown < 100
    assert why.startswith("the model's forward pass would hold 62,500 MB of tensors at once on a batch of 4096 "
                           "samples; the grader allows 512 MB")


# --- notebooks that fail to parse ------------------------------------------------------------------------------

SOLUTION = HERE.parent / "reference" / "notebooks" / "tiny-model.ipynb"


def _notebook_with(tmp_path, name: str, raw: str) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(SOLUTION.read_text().rstrip()[:-1] + f', "x": {raw}}}')
    return path


@pytest.mark.parametrize("raw, words", [
    (deep_json(100_000), "not a Jupyter notebook (the file is nested more than 100 levels deep)"),
    (deep_json(900), "not a Jupyter notebook (the file is nested more than 100 levels deep)"),
    ("9" * 5000, "not a Jupyter notebook (the file holds a number with more than 1000 digits)"),
])
def test_a_notebook_that_cannot_be_parsed_is_invalid_with_the_reason(tmp_path, raw, words):
    with pytest.raises(InvalidNotebook, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_submission(_notebook_with(tmp_path, "n.ipynb", raw))


def test_odd_notebook_structures_and_pipes_are_invalid_never_a_crash(tmp_path):
    good = json.loads(SOLUTION.read_text())
    odd = {"cell-is-a-number": lambda nb: nb["cells"].__setitem__(0, 5),
           "metadata-is-a-list": lambda nb: nb.__setitem__("metadata", [1]),
           "cells-is-a-string": lambda nb: nb.__setitem__("cells", "abc")}
    for name, change in odd.items():
        nb = json.loads(json.dumps(good))
        change(nb)
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb))
        with pytest.raises(InvalidNotebook, match="not a valid format-4 notebook"):
            read_submission(tmp_path / f"{name}.ipynb")
    os.mkfifo(tmp_path / "pipe.ipynb")
    with pytest.raises(InvalidNotebook, match="is not a regular file"):
        read_submission(tmp_path / "pipe.ipynb")


# --- a class folder of odd names and hostile notebooks ----------------------------------------------------------

FILES = HERE / "files"
NOT_A_NOTEBOOK = FILES / "not-a-notebook.ipynb"
NFD = "Zoe\u0308 Li"  # "Zoë Li" with the accent as a separate combining mark, as macOS writes file names
ODD = {"a\\b": "backslash", "bell\x07": "control character", "..dots": "leading dots", "L" * 150: "very long"}


def _digest(raw: str) -> str:
    import hashlib

    return hashlib.sha256(os.fsencode(raw)).hexdigest()[:6]


def _odd_class(folder: pathlib.Path) -> pathlib.Path:
    """Every kind of entry the naming rule meets; all notebooks are the unreadable fixture (no kernel runs)."""
    folder.mkdir()
    for name in ("Zoë Li", "Zoé Li", "a b", "a_b"):
        (folder / f"{name}.ipynb").write_bytes(NOT_A_NOTEBOOK.read_bytes())
    for name in [NFD, *ODD, ".hidden", os.fsdecode(b"bad\xff")]:
        (folder / name).mkdir()
        (folder / name / "work.ipynb").write_bytes(NOT_A_NOTEBOOK.read_bytes())
    for tool in (".ipynb_checkpoints", ".git", "__MACOSX"):
        (folder / tool).mkdir()
        (folder / tool / "ada-checkpoint.ipynb").write_bytes(NOT_A_NOTEBOOK.read_bytes())
    (folder / ".cache").mkdir()  # hidden and holding no notebook: a tool's, not a student
    (folder / "._Zoë Li.ipynb").write_bytes(b"\0\5\x16\7")  # macOS resource fork
    (folder / "only-hidden").mkdir()
    (folder / "only-hidden" / ".draft.ipynb").write_bytes(NOT_A_NOTEBOOK.read_bytes())
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "link.ipynb").symlink_to(NOT_A_NOTEBOOK)
    (folder / "linked-folder").symlink_to("/")
    return folder


def test_student_names_are_unique_stable_and_lead_back_to_their_entries(tmp_path):
    from grader.grading.discover import discover

    folder = _odd_class(tmp_path / "class")
    found = {f.student: f for f in discover(folder, "tiny-model")}
    nfc = "Zoë Li"
    assert set(found) == {
        "Zoé_Li", f"Zoë_Li-{_digest(nfc)}", f"Zoë_Li-{_digest(NFD)}",  # accents kept; alike once composed
        "a_b", f"a_b-{_digest('a b')}", f"a_b-{_digest('a' + chr(92) + 'b')}",  # the one already safe keeps its name
        "bell", "dots", "L" * 80, "hidden", "bad", "only-hidden", "pipe", "link", "linked-folder"}
    assert found == {f.student: f for f in discover(folder, "tiny-model")}  # the same in every run
    assert found["Zoé_Li"].path == folder / "Zoé Li.ipynb" and found["Zoé_Li"].note == ""
    assert found[f"Zoë_Li-{_digest(NFD)}"].path == folder / NFD / "work.ipynb"
    assert found[f"Zoë_Li-{_digest(nfc)}"].note == (f"graded as Zoë_Li-{_digest(nfc)}: the file 'Zoë Li.ipynb' and "
                                                    f"'{NFD}' have the same name once made safe for file names")
    assert found["a_b"].note == "" and found["a_b"].path == folder / "a_b.ipynb"
    assert found["bell"].note == "graded as bell, from the folder 'bell\\x07'"
    assert found["dots"].note == "graded as dots, from the folder '..dots'"
    assert found["hidden"].note == "graded as hidden, from the folder '.hidden'"
    assert found["bad"].note == "graded as bad, from the folder 'bad\\xff'"
    assert found["L" * 80].origin == folder / ("L" * 150)
    assert found["only-hidden"].path is None and found["only-hidden"].note == (
        "no .ipynb file in the student's folder; not read: .draft.ipynb (hidden files and links are not read)")
    assert found["pipe"].path is None and found["pipe"].note == "'pipe.ipynb' is a pipe, device or socket, not a notebook file"
    assert found["link"].note == ("'link.ipynb' is a symbolic link: the grader does not follow links in a class "
                                  "folder; copy the work itself there")
    assert found["linked-folder"].path is None and "is a symbolic link" in found["linked-folder"].note


@pytest.mark.usefixtures("shared_kernel_factory")
def test_names_that_only_normalise_alike_never_share_a_gradebook_row(tmp_path, monkeypatch, capsys):
    """The accent collision of issue 13: both students get a row, each leading back to their own file."""
    folder, book = _odd_class(tmp_path / "class"), tmp_path / "gradebook.sqlite"
    monkeypatch.setenv("GRADER_SECRET", "hostile-test-secret")
    grade = ["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(book), "--workers", "1", "--json"]
    assert main(grade) == 0
    summary = {r["student"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    with Gradebook.open(book, create=False) as gb:
        runs = {run.result.student: run for run in gb.current_runs()}
    assert set(runs) == set(summary) and len(runs) == 15 and all(r["status"] == "invalid" for r in summary.values())
    assert runs["Zoé_Li"].path == str(folder / "Zoé Li.ipynb")
    assert runs[f"Zoë_Li-{_digest('Zoë Li')}"].path == str(folder / "Zoë Li.ipynb")
    assert runs["pipe"].path == str(folder / "pipe.ipynb") and "pipe, device or socket" in runs["pipe"].result.error
    assert runs["bad"].path == str(folder) + "/bad\\xff/work.ipynb"  # the undecodable byte, escaped
    assert main(grade) == 0  # a second run finds the same names: the files are skipped, and no row is added
    again = {r["student"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert again == {"link", "linked-folder", "only-hidden", "pipe"}  # no file to recognise them by
    with Gradebook.open(book, create=False) as gb:
        assert sorted(gb.students()) == sorted(runs)


@pytest.mark.usefixtures("shared_kernel_factory")
def test_a_hostile_class_is_graded_whole(tmp_path, fast_exercises, monkeypatch, capsys):
    """Notebooks that break parsing, a pipe in the export folder, an eval-only memory bomb and odd entries
    beside a correct solution: every student has an outcome with a reason, and the rest are graded."""
    folder, book = tmp_path / "class", tmp_path / "gradebook.sqlite"
    folder.mkdir()
    (folder / "ada").mkdir()
    (folder / "ada" / "tiny-model.ipynb").write_bytes(solution("tiny-model").read_bytes())
    for name in ("deep-metadata", "huge-integer", "fifo-in-export", "eval-memory-bomb"):
        (folder / f"{name}.ipynb").write_bytes((FILES / "hostile" / f"{name}.ipynb").read_bytes())
    os.mkfifo(folder / "pipe.ipynb")
    monkeypatch.setenv("GRADER_EXERCISES", str(fast_exercises))
    monkeypatch.setenv("GRADER_SECRET", "hostile-test-secret")
    assert main(["grade", str(folder), "--exercise", "tiny-model", "--gradebook", str(book), "--workers", "2",
                 "--json"]) == 0
    results = {r["student"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {name: r["status"] for name, r in results.items()} == {
        "ada": "ok", "deep-metadata": "invalid", "huge-integer": "invalid", "fifo-in-export": "error",
        "eval-memory-bomb": "error", "pipe": "invalid"}
    assert results["ada"]["score"] == results["ada"]["max_score"] == 10
    assert "the file is nested more than 100 levels deep" in results["deep-metadata"]["error"]
    assert "the file holds a number with more than 1000 digits" in results["huge-integer"]["error"]
    assert results["fifo-in-export"]["error"] == (
        "the grader refused what the notebook exported: the export folder holds 'models/9/graph.json', which is a "
        "pipe (FIFO): the grader reads only regular files there")
    assert results["eval-memory-bomb"]["error"] == (
        "the grader refused what the notebook exported: the model's forward pass would hold 38,147 MB of tensors at "
        "once on a batch of 2 samples; the grader allows 512 MB")
    bomb = {c["id"]: c for c in results["eval-memory-bomb"]["checks"]}
    assert bomb["fits-training-data"]["message"].startswith("`model` could not be handed to the grader: the model's "
                                                            "forward pass would hold 38,147 MB")


def test_a_probe_that_never_returns_is_stopped_and_the_values_after_it_are_still_written(tmp_path):
    """The student's own ``except Exception`` does not catch the stop; the probe's time comes out of the cell's."""
    namespace = {"spin": lambda: None}
    requests = [{"name": "stuck", "code": "while True:\n    try:\n        sum(range(10_000))\n"
                                          "    except Exception:\n        pass"},
                {"name": "late", "code": "late = {'got': 1}", "kind": "dict"}]
    export_values(namespace, requests, str(tmp_path), None, (0.5, 60))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["errors"] == {"stuck": f"{PROBE_TIMEOUT}: still running after 0.5 s"}
    assert "late" in manifest["values"]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_probe_that_swallows_its_first_stop_is_stopped_by_the_next(tmp_path):
    """A bare except (or a __del__, whose exceptions Python only prints) swallowed the one stop, the call never
    returned, and the export cell's time-out cost every value: the stop now comes again every quarter second."""
    requests = [{"name": "stubborn", "code": "while True:\n    try:\n        while True:\n            pass\n"
                                             "    except BaseException:\n        break\nwhile True:\n    pass"},
                {"name": "late", "code": "late = {'got': 1}", "kind": "dict"}]
    export_values({}, requests, str(tmp_path), None, (0.5, 60))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["errors"] == {"stubborn": f"{PROBE_TIMEOUT}: still running after 0.5 s"}
    assert "late" in manifest["values"]
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
