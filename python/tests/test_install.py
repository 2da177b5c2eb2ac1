"""`pip install ./python` for real, offline, into a fresh virtual
environment, and the package imported and run from there (the bundled
libpx and LLVM plugin, no PYTHONPATH, no PX_LIBRARY)."""
import os
import subprocess
import sys
import textwrap

from conftest import BUILD, ROOT

CHECK = textwrap.dedent("""
    import os, sys, numpy as np, px
    venv = sys.argv[1]
    assert px.__file__.startswith(venv), px.__file__
    assert px.library_path().startswith(venv), px.library_path()
    assert os.path.exists(os.path.join(os.path.dirname(px.library_path()), "libpx-llvm.so.0"))
    src = open(sys.argv[2]).read()
    x = np.arange(1000, dtype=np.float32)
    for dev in (None, "cpu"):       # the CPU backend loads the bundled plugin
        k = px.compile(src, device=dev)["saxpy"]
        out = k(a=2.0, x=x, y=np.ones(1000, np.float32), device=dev)["y"]
        np.testing.assert_array_equal(out, 2 * x + 1)
    print("installed px", px.version(), "ok")
""")


def test_pip_install_offline_into_a_venv(tmp_path):
    venv = str(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PX_LIBRARY")}
    env["PX_BUILD_DIR"] = BUILD
    env["PIP_NO_INDEX"] = "1"  # offline: nothing may come from an index
    r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index",
                        os.path.join(ROOT, "python")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / "check.py").write_text(CHECK)
    (tmp_path / "saxpy.px").write_text(open(os.path.join(ROOT, "python", "tests", "conftest.py")).read()
                                       .split('SAXPY = """')[1].split('"""')[0])
    r = subprocess.run([os.path.join(venv, "bin", "python"), str(tmp_path / "check.py"), venv,
                        str(tmp_path / "saxpy.px")], env=env, cwd=str(tmp_path), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed px 0.2.0 ok" in r.stdout
