"""Shared fixtures. tests/python.sh runs these with PYTHONPATH=python and
PX_LIBRARY=build/libpx.so.0 (PX_TEST_BUILD: the build directory, for
pxhvd and the C compiler check)."""
import os
import signal
import subprocess
import time

import pytest

import px

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(os.environ.get("PX_TEST_BUILD", os.path.join(ROOT, "build")))

# The `train_model` kernel of px-language.md section 1, exactly as written.
TRAIN_MODEL = """GPU_KERNEL train_model
GPU_PARAM weights float[]
GPU_THREAD_CODE:
    PARALLEL_MATMUL weights inputs → outputs
GPU_END
"""

SAXPY = """GPU_KERNEL saxpy
GPU_PARAM a float
GPU_PARAM x float[N]
GPU_PARAM y float[N]
GPU_THREAD_CODE:
    PARALLEL_MAP x y → y : a * x + y
GPU_END
"""


@pytest.fixture(scope="session")
def train_model():
    return px.compile(TRAIN_MODEL, "train.px")["train_model"]


@pytest.fixture(scope="session")
def saxpy():
    return px.compile(SAXPY, "saxpy.px")["saxpy"]


@pytest.fixture(scope="session", params=["vulkan", "cpu"])
def device(request):
    """Each local test runs on lavapipe and on the CPU backend."""
    d = px.Device(request.param)
    yield d
    d.close()


class Hvd:
    """A pxhvd this test started, in a private directory; stopped (SIGINT,
    then SIGKILL) whatever the test did."""

    def __init__(self, tmp, *vm_specs, extra=()):
        self.dir = os.path.join(str(tmp), "hvd")
        args = [os.path.join(BUILD, "pxhvd"), "--listen", self.dir, "--device-memory", "4G"]
        for s in vm_specs:
            args += ["--vm", s]
        self.log = open(os.path.join(str(tmp), "pxhvd.log"), "w+")
        self.proc = subprocess.Popen(list(args) + list(extra), stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 30
        want = [os.path.join(self.dir, "vm%s.sock" % s.split(":")[0]) for s in vm_specs]
        while not all(os.path.exists(w) for w in want):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                self.log.seek(0)
                raise RuntimeError("pxhvd did not start: " + self.log.read())
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def hvd(tmp_path):
    h = Hvd(tmp_path, "1:Q1", "2:mem=64M,share=30", "3:Q1")
    try:
        yield h
    finally:
        h.stop()
