"""docs/PYTHON.md's worked example, run as a user would run it: three VMs
at 50/30/20 submitting train_model on their own NumPy data."""
import os
import re
import subprocess
import sys

from conftest import BUILD, ROOT


def test_worked_example_runs(tmp_path):
    text = open(os.path.join(ROOT, "docs", "PYTHON.md"), encoding="utf-8").read()
    block = text.split("## The worked example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    code = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 20  # a dozen lines of Python around the kernel's text
    (tmp_path / "example.py").write_text(block)
    r = subprocess.run([sys.executable, "example.py"], cwd=str(tmp_path), capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"),
                                PX_LIBRARY=os.path.join(BUILD, "libpx.so.0")))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    for i in (1, 2, 3):
        assert "VM %d: outputs (256, 64), equal to NumPy's w @ x: True" % i in lines
    shares = [int(m.group(1)) for m in re.finditer(r"VM \d: share (\d+)%, quota 2048 MiB, launches 1,", r.stdout)]
    assert shares == [50, 30, 20]


def test_readme_example_runs(tmp_path):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    block = text.split("## Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "readme.py").write_text(block)
    r = subprocess.run([sys.executable, "readme.py"], cwd=str(tmp_path), capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"),
                                PX_LIBRARY=os.path.join(BUILD, "libpx.so.0")))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["VM 1 share 50.0 matches NumPy: True", "VM 2 share 30.0 matches NumPy: True",
                                     "VM 3 share 20.0 matches NumPy: True"]
