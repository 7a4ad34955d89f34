"""Starting dask clusters from grader.toml: Slurm jobs against a fake sbatch, Kubernetes specs, local, TLS.

The Slurm recipe runs for real, as dask-jobqueue's own tests do it: a fake ``sbatch`` runs each job
script in the background, in a session of its own, and prints its process id as the job id; ``scancel``
kills that process group. So the job script dask-jobqueue writes from our settings starts real workers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import dask
import pytest
from distributed import Client

from grader.errors import UserError
from grader.grading.cluster_start import ClusterUnavailable, kubernetes_spec, security, slurm_cluster, start_cluster
from grader.specs.config import ClusterSettings, KubernetesSettings, SlurmSettings, load_config

SBATCH = r'''#!/bin/bash
# A fake sbatch: runs the job script (its file argument, else stdin) in a session of its own, in the background.
set -e
script=$(mktemp "{jobs}/job-XXXXXX")
if [ $# -gt 0 ] && [ -f "${{@: -1}}" ]; then cp "${{@: -1}}" "$script"; else cat > "$script"; fi
# Slurm hands the job the submitter's environment; this one leaves OMP_NUM_THREADS out: the script must set it.
setsid bash -c 'echo $$ > "$0.pid"; exec env -u OMP_NUM_THREADS bash "$0"' "$script" > "$script.log" 2>&1 < /dev/null &
for _ in $(seq 200); do [ -s "$script.pid" ] && break; sleep 0.05; done
echo "Submitted batch job $(cat "$script.pid")"
'''
SCANCEL = '''#!/bin/bash
for job in "$@"; do kill -TERM -- "-$job" 2>/dev/null || true; done
'''
SQUEUE = '''#!/bin/bash
echo "JOBID STATE"
for f in {jobs}/*.pid; do [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && echo "$(cat "$f") RUNNING"; done; true
'''


def _alive(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run (zombies left out: this machine's pid 1 may never reap them)."""
    alive = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, scancel and squeue first on the PATH; yields the folder of the jobs' scripts, pids and logs."""
    bin_, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_.mkdir()
    jobs.mkdir()
    for name, text in {"sbatch": SBATCH, "scancel": SCANCEL, "squeue": SQUEUE}.items():
        (bin_ / name).write_text(text.format(jobs=jobs))
        (bin_ / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.chdir(tmp_path)
    yield jobs
    for pid_file in jobs.glob("*.pid"):  # whatever a failing test left behind
        for pid in _alive(int(pid_file.read_text())):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True, scope="module")
def _functions_travel_by_value():
    """The functions these tests run on workers travel with their code: a Slurm job cannot import this module."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _job_groups(jobs: pathlib.Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(jobs.glob("*.pid"))]


def _worker_facts(dask_worker) -> dict:
    """What a worker says about itself: the recipe's environment, threads, lifetime and resources."""
    return {"omp": os.environ.get("OMP_NUM_THREADS"), "mnist": os.environ.get("MNIST_ROOT"),
            "threads": dask_worker.state.nthreads, "lifetime": dask_worker.lifetime,
            "resources": dict(dask_worker.state.total_resources), "python": sys.executable}


def test_the_slurm_recipe_starts_configured_workers_and_leaves_no_process(fake_slurm, tmp_path):
    slurm = SlurmSettings(queue="cpu", account="cs101", walltime="02:00:00", memory="2GB", cores=2, jobs=2,
                          lifetime_margin="10m", python=sys.executable, prologue=("export GRADER_PROLOGUE=ran",),
                          log_directory=tmp_path / "slurm-logs", interface="lo")
    settings = ClusterSettings(dashboard="", mnist_root=pathlib.Path("/shared/mnist"), slurm=slurm)
    # A lost job's worker is given up after 1 s instead of 15, so that the replacement below comes fast.
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1s"}):
        with start_cluster("slurm", settings, 5) as cluster:
            script = cluster.job_script()
            for line in ("#SBATCH -A cs101", "#SBATCH -p cpu", "#SBATCH -t 02:00:00", "#SBATCH --mem=2G",
                         "#SBATCH --cpus-per-task=2", f"#SBATCH -o {tmp_path}/slurm-logs/grader-%J.out",
                         "export OMP_NUM_THREADS=1", "export MNIST_ROOT=/shared/mnist"):
                assert line in script.splitlines()
            assert f"{sys.executable} -m distributed.cli.dask_worker tcp://127.0.0.1:" in script
            assert "--nthreads 1 --memory-limit 1.86GiB --nanny" in script
            assert "--lifetime 6600s --lifetime-stagger 300s --interface lo" in script and "GPU" not in script
            assert script.index("GRADER_PROLOGUE") < script.index("OMP_NUM_THREADS")  # the grader's word is last

            with Client(cluster, set_as_default=False) as client:
                client.wait_for_workers(2, timeout=60)  # settings.slurm.jobs, not the 5 workers asked for
                facts = list(client.run(_worker_facts).values())
                assert len(facts) == 2 and len(_job_groups(fake_slurm)) == 2
                for fact in facts:
                    assert fact["omp"] == "1" and fact["mnist"] == "/shared/mnist" and fact["threads"] == 1
                    assert 6600 - 300 <= fact["lifetime"] <= 6600 + 300 and fact["resources"] == {}
                    assert fact["python"] == sys.executable

                # A job that ends (walltime, preemption) is replaced: the cluster keeps its size.
                os.killpg(_job_groups(fake_slurm)[0], signal.SIGKILL)
                deadline = time.monotonic() + 30
                while len(_job_groups(fake_slurm)) < 3 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert len(_job_groups(fake_slurm)) == 3
                client.wait_for_workers(2, timeout=60)

    # Closing cancelled every job: no worker, nanny or job shell is left.
    deadline = time.monotonic() + 20
    while any(_alive(g) for g in _job_groups(fake_slurm)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {g: _alive(g) for g in _job_groups(fake_slurm) if _alive(g)} == {}


def test_grader_grade_on_slurm_grades_a_class_through_the_recipe(fake_slurm, tmp_path, capsys):
    """The instructor's command, as the README gives it, against the fake sbatch: jobs start, grade, are cancelled."""
    import nbformat
    from grading_support import one_value_spec

    from grader.cli import main

    (tmp_path / "exercises" / "probe").mkdir(parents=True)
    (tmp_path / "exercises" / "probe" / "spec.toml").write_text(one_value_spec("probe"))
    os.environ["GRADER_EXERCISES"] = str(tmp_path / "exercises")  # the client's course only: jobs carry the spec
    try:
        for student in ("ada", "bob"):
            (tmp_path / "class").mkdir(exist_ok=True)
            cells = [nbformat.v4.new_code_cell(f"probe = {{'who': '{student}'}}")]
            nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "class" / f"{student}.ipynb")
        (tmp_path / "grader.toml").write_text(
            '[grading]\ncluster = "slurm"\n\n[cluster]\ndashboard = ""\nworker_timeout = 120\n\n'
            '[cluster.slurm]\nwalltime = "00:30:00"\nmemory = "2GB"\njobs = 2\nlifetime_margin = "5m"\n')
        code = main(["--config", str(tmp_path / "grader.toml"), "grade", str(tmp_path / "class"), "--exercise",
                     "probe", "--gradebook", str(tmp_path / "gb.sqlite"), "--json"])
    finally:
        del os.environ["GRADER_EXERCISES"]
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and sorted((r["student"], r["status"], r["score"]) for r in results) == [
        ("ada", "ok", 1.0), ("bob", "ok", 1.0)], "\n".join(f"{r['student']}: {r['status']}: {r['error']}"
                                                      for r in results)
    assert len(_job_groups(fake_slurm)) == 2
    deadline = time.monotonic() + 20
    while any(_alive(g) for g in _job_groups(fake_slurm)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert {g: _alive(g) for g in _job_groups(fake_slurm) if _alive(g)} == {}


def test_a_gpu_job_books_the_gpu_and_advertises_it(fake_slurm):
    with slurm_cluster(SlurmSettings(gpus=1, job_extra=("--exclusive",)), dashboard="") as cluster:
        script = cluster.job_script()
    assert "#SBATCH --exclusive\n#SBATCH --gres=gpu:1" in script and "--resources GPU=1" in script
    with slurm_cluster(SlurmSettings(job_extra=("--gres=gpu:a100:1",)), dashboard="") as cluster:
        script = cluster.job_script()
    assert "--gres=gpu:a100:1" in script and "--gres=gpu:1" not in script and "--resources GPU=1" in script
    assert _job_groups(fake_slurm) == []  # building a recipe submits nothing


def test_slurm_needs_sbatch_and_the_extra(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterUnavailable, match="needs its sbatch command, which is not on the PATH"):
        slurm_cluster(SlurmSettings())
    (tmp_path / "sbatch").write_text("#!/bin/sh\n")
    (tmp_path / "sbatch").chmod(0o755)
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if the extra were not installed
    with pytest.raises(ClusterUnavailable, match=r"pip install 'training-dynamics-grader\[slurm\]'"):
        slurm_cluster(SlurmSettings())


def test_the_kubernetes_spec_books_each_worker_pod():
    settings = KubernetesSettings(image="ghcr.io/course/grader:2026", namespace="grading", workers=4, cpu="2",
                                  memory="8Gi", gpu=1)
    spec = kubernetes_spec(settings, workers=9, mnist_root=pathlib.Path("/shared/mnist"), name="grader-test")
    assert (spec["kind"], spec["metadata"]["name"], spec["spec"]["worker"]["replicas"]) == ("DaskCluster",
                                                                                           "grader-test", 4)
    worker = spec["spec"]["worker"]["spec"]["containers"][0]
    assert worker["image"] == "ghcr.io/course/grader:2026"
    assert worker["args"][:5] == ["dask-worker", "--nthreads", "1", "--resources", "GPU=1"]
    assert {e["name"]: e["value"] for e in worker["env"]} == {"OMP_NUM_THREADS": "1", "MNIST_ROOT": "/shared/mnist"}
    assert worker["resources"] == {"requests": {"cpu": "2", "memory": "8Gi"},
                                   "limits": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"}}
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["image"] == "ghcr.io/course/grader:2026" and "nvidia.com/gpu" not in str(scheduler)

    cpu_only = kubernetes_spec(KubernetesSettings(image="img:1"), workers=3)
    worker = cpu_only["spec"]["worker"]["spec"]["containers"][0]
    assert cpu_only["spec"]["worker"]["replicas"] == 3 and "--resources" not in worker["args"]
    assert {e["name"] for e in worker["env"]} == {"OMP_NUM_THREADS"}
    assert worker["resources"]["limits"] == {"cpu": "1", "memory": "4Gi"}


def test_kubernetes_needs_its_table_and_no_tls(tmp_path):
    with pytest.raises(ClusterUnavailable, match=r"needs a \[cluster.kubernetes\] table"):
        with start_cluster("kubernetes", ClusterSettings(), 1):
            pass
    config = load_config(_tls_course(tmp_path, _make_certificates(tmp_path / "tls"),
                                     '\n[cluster.kubernetes]\nimage = "img:1"\n'))
    with pytest.raises(ClusterUnavailable, match=r"\[cluster.tls\] is not supported with kubernetes"):
        with start_cluster("kubernetes", config.cluster, 1):
            pass


def _one_plus_one() -> int:
    return 1 + 1


def test_a_local_cluster_an_address_and_an_unknown_kind():
    with start_cluster("local", ClusterSettings(dashboard=""), 1) as cluster:
        with Client(cluster, set_as_default=False) as client:
            assert client.submit(_one_plus_one).result(timeout=30) == 2
            assert list(client.run(_worker_facts).values())[0]["threads"] == 1
    assert cluster.status.name == "closed"
    with start_cluster("tcp://head.example:8786", ClusterSettings(), 4) as target:
        assert target == "tcp://head.example:8786"
    with pytest.raises(UserError, match=r"unknown cluster 'slurmm': expected one of local, slurm, kubernetes, or a "
                                        r"dask scheduler's address such as tcp://head:8786"):
        with start_cluster("slurmm", ClusterSettings(), 1):
            pass


# --- TLS ----------------------------------------------------------------------------------------------------------


def _make_certificates(folder: pathlib.Path, name: str = "course") -> dict[str, pathlib.Path]:
    """A CA, and a certificate it signs for the grader, scheduler and workers (server and client use), as PEM."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def certificate(subject: str, key, issuer: str, signer, ca: bool):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                                    ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                       .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(
                           ipaddress.ip_address("127.0.0.1"))]), critical=False))
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate(f"{name} CA", ca_key, f"{name} CA", ca_key, ca=True)
    leaf = certificate(f"{name} grader", key, f"{name} CA", ca_key, ca=False)
    paths = {"ca_file": folder / "ca.pem", "cert": folder / "grader.pem", "key": folder / "grader-key.pem"}
    paths["ca_file"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


def _tls_course(root: pathlib.Path, files: dict[str, pathlib.Path], extra: str = "") -> pathlib.Path:
    """A grader.toml whose [cluster.tls] names ``files`` relative to it, as an instructor writes them."""
    lines = "\n".join(f'{key} = "{path.relative_to(root)}"' for key, path in files.items())
    path = root / "grader.toml"
    path.write_text(f'[grading]\ncluster = "local"\n\n[cluster]\ndashboard = ""\n\n[cluster.tls]\n{lines}\n{extra}')
    return path


# Each attempt in a fresh process and event loop: a failed Client leaves its loop and coroutines behind.
KNOCK = """
import asyncio, json, sys
from distributed import Client, Security

def one_plus_one():
    return 1 + 1

async def knock(address, files):
    security = Security(require_encryption=True, **files) if files else None
    try:
        async with Client(address, security=security, timeout="3s", asynchronous=True) as client:
            return str(await client.submit(one_plus_one, pure=False))
    except Exception as e:
        return f"{type(e).__name__}: {e}"

print(json.dumps([asyncio.run(knock(address, files)) for address, files in json.loads(sys.argv[1])]))
"""


def _knock(attempts: list[tuple[str, dict | None]]) -> list[str]:
    """What a client outside this process gets from each (address, Security files) attempt: "2", or its error."""
    done = subprocess.run([sys.executable, "-c", KNOCK, json.dumps(attempts)], capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _files(tls) -> dict:
    files = {"tls_ca_file": str(tls.ca_file)}
    for role in ("client", "scheduler", "worker"):
        files |= {f"tls_{role}_cert": str(tls.cert), f"tls_{role}_key": str(tls.key)}
    return files


def test_a_tls_cluster_admits_only_clients_with_the_course_certificates(tmp_path):
    config = load_config(_tls_course(tmp_path, _make_certificates(tmp_path / "tls")), known=[])
    mine = security(config.cluster)
    assert mine.require_encryption and mine.tls_ca_file == str(tmp_path / "tls" / "ca.pem")
    assert mine.tls_worker_cert == mine.tls_scheduler_cert == str(tmp_path / "tls" / "grader.pem")
    impostor = load_config(_tls_course(tmp_path / "other", _make_certificates(
        tmp_path / "other" / "tls", name="impostor")), known=[]).cluster.tls
    with start_cluster(config.cluster_kind, config.cluster, 1) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with Client(address, security=mine, timeout="20s", set_as_default=False) as client:
            assert client.submit(_one_plus_one).result(timeout=30) == 2
        started = time.monotonic()
        course, none, other, plain = _knock([(address, _files(config.cluster.tls)), (address, None),
                                             (address, _files(impostor)), (address.replace("tls://", "tcp://"), None)])
        assert time.monotonic() - started < 30
    assert course == "2"  # the course's certificates, from another process
    assert none.startswith("TypeError: TLS expects a `ssl_context`")  # no certificates: TLS cannot even start
    assert "TLS certificate does not match" in other  # another CA's: the handshake fails
    assert plain.startswith(("OSError", "CommClosedError", "TimeoutError"))  # plain TCP to a TLS scheduler


def test_tls_files_must_exist_when_the_cluster_starts(tmp_path):
    files = _make_certificates(tmp_path / "tls")
    config = load_config(_tls_course(tmp_path, files), known=[])  # loading never needs them: other commands work
    files["key"].unlink()
    with pytest.raises(ClusterUnavailable, match=r"cluster.tls: .*grader-key.pem: no such file"):
        security(config.cluster)
