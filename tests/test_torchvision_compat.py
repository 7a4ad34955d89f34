import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_datasets_transforms_and_models_import_after_the_workaround():
    proc = _run("""
        import reference.torchvision_compat
        from torchvision import datasets, models, transforms
        t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
        print(type(t).__name__, datasets.MNIST.__name__, models.resnet18.__name__)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["Compose", "MNIST", "resnet18"]


def test_compiled_ops_still_fail_with_torchvisions_own_message():
    proc = _run("""
        import reference.torchvision_compat, torch, torchvision
        try:
            torchvision.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)
        except RuntimeError as e:
            print("raised:", e)
    """)
    assert proc.returncode == 0, proc.stderr
    # Either the real op ran (a torchvision that loads) or torchvision's clear error, never a crash.
    assert "raised: Couldn't load custom C++ ops" in proc.stdout or proc.stdout == ""


def test_does_nothing_once_torchvision_is_imported_or_absent():
    proc = _run("""
        import sys
        from reference.torchvision_compat import ensure_torchvision_importable
        print(ensure_torchvision_importable())
        sys.modules["torchvision"] = object()
        import reference.torchvision_compat as c
        c._KEEPALIVE.clear()
        print(ensure_torchvision_importable())
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]  # the first call already ran at import
