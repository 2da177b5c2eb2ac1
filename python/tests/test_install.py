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


def test_system_libpx_when_nothing_is_bundled(tmp_path):
    """Installed from a tree with no built library, the package finds
    libpx.so.0 through the system loader (here LD_LIBRARY_PATH over a
    prefix laid out as make install lays it out)."""
    lib = tmp_path / "prefix" / "lib"
    lib.mkdir(parents=True)
    import glob
    import shutil
    so = sorted(glob.glob(os.path.join(BUILD, "libpx.so.*.*.*")))[-1]
    shutil.copy(so, lib / os.path.basename(so))
    os.symlink(os.path.basename(so), lib / "libpx.so.0")
    shutil.copy(os.path.join(BUILD, "libpx-llvm.so.0"), lib / "libpx-llvm.so.0")
    venv = str(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PX_LIBRARY")}
    env["PX_BUILD_DIR"] = str(tmp_path / "empty")  # nothing to bundle
    r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--no-build-isolation", "--no-index",
                        os.path.join(ROOT, "python")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import px, numpy as np; import os;"
            "assert not os.path.exists(os.path.join(os.path.dirname(px.__file__), '_lib'));"
            "k = px.compile(open('s.px').read())['saxpy'];"
            "x = np.arange(5, dtype=np.float32);"
            "np.testing.assert_array_equal(k(a=3.0, x=x, y=x)['y'], 4 * x); print(px.library_path())")
    (tmp_path / "s.px").write_text(open(os.path.join(ROOT, "python", "tests", "conftest.py")).read()
                                   .split('SAXPY = """')[1].split('"""')[0])
    r = subprocess.run([os.path.join(venv, "bin", "python"), "-c", code], cwd=str(tmp_path), capture_output=True,
                       text=True, env=dict(env, LD_LIBRARY_PATH=str(lib)))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "libpx.so.0"
