"""px.connect: the same run/submit as a Hypervisor's VM, as a client of a
pxhvd this test starts (conftest.Hvd; stopped on every path)."""
import threading

import numpy as np
import pytest

import px
from conftest import SAXPY

rng = np.random.default_rng(9)


def test_run_against_numpy(hvd, train_model, saxpy):
    with px.connect(vm=1, hvd=hvd.dir) as c:
        assert c.vm == 1 and c.device
        w = rng.standard_normal((33, 17), dtype=np.float32)
        x = rng.standard_normal((17, 9), dtype=np.float32)
        np.testing.assert_allclose(c.run(train_model, weights=w, inputs=x)["outputs"], w @ x, rtol=1e-5, atol=1e-5)
        # 8 MiB each way: the shared-memory path of the protocol
        big = rng.standard_normal(1 << 21, dtype=np.float32)
        out = c.run(SAXPY, a=0.5, x=big, y=np.ones_like(big))["y"]
        np.testing.assert_array_equal(out, np.float32(0.5) * big + 1)
        st = c.stats()
        assert (st["id"], st["profile"], st["launches_done"]) == (1, "Q1", 2)


def test_submit_and_threads(hvd, saxpy):
    with px.connect(vm=1, hvd=hvd.dir) as c1, px.connect(vm=3, hvd=hvd.dir) as c3:
        x = np.arange(100, dtype=np.float32)
        futs = [c1.submit(saxpy, a=float(i), x=x, y=x) for i in range(6)]
        for i, f in enumerate(futs):
            np.testing.assert_array_equal(f.result(timeout=60)["y"], np.float32(i) * x + x)
        errors = []

        def worker(c, seed):
            r = np.random.default_rng(seed)
            for _ in range(5):
                a = r.standard_normal(257, dtype=np.float32)
                try:
                    np.testing.assert_array_equal(c.run(saxpy, a=2.0, x=a, y=a)["y"], np.float32(2) * a + a)
                except Exception as e:
                    errors.append(e)

        ts = [threading.Thread(target=worker, args=((c1, c3)[i % 2], i)) for i in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert c1.stats()["launches_done"] + c3.stats()["launches_done"] == 6 + 30


def test_errors(hvd, saxpy, tmp_path):
    with px.connect(vm=2, hvd=hvd.dir) as c:
        with pytest.raises(px.CompileError) as e:
            c.run("GPU_KERNEL k\nGPU_THREAD_CODE:\n    PARALLEL_COPY -> b\nGPU_END\n", file="remote.px")
        assert str(e.value).startswith("remote.px:3:") and "^" in e.value.diagnostics
        x = np.zeros(10 << 20, np.float32)  # 40 MiB twice: VM 2's quota is 64M
        with pytest.raises(px.QuotaError) as e:
            c.run(saxpy, a=1.0, x=x, y=x)
        assert "VM 2" in e.value.message and e.value.code == 17
        assert c.stats()["mem_used_bytes"] == 0
        with pytest.raises(TypeError):
            c.run(saxpy, a=1.0, x=x[:4], y=x[:4], nope=3)
    with pytest.raises(px.NotFoundError) as e:
        px.connect(vm=9, hvd=hvd.dir)
    assert "no VM 9" in e.value.message
    with pytest.raises(px.NotFoundError):
        px.connect(vm=1, hvd=str(tmp_path / "nowhere"))


def test_session_is_freed_and_daemon_loss_is_an_error(hvd, saxpy):
    c = px.connect(vm=3, hvd=hvd.dir)
    x = np.ones(1000, np.float32)
    c.run(saxpy, a=1.0, x=x, y=x)
    with px.connect(vm=3, hvd=hvd.dir) as other:
        # the run's buffers went with it; only modules remain of the session
        assert other.stats()["mem_used_bytes"] == 0
    c.close()
    with pytest.raises(RuntimeError, match="closed"):
        c.run(saxpy, a=1.0, x=x, y=x)
    c = px.connect(vm=1, hvd=hvd.dir)
    hvd.stop()
    with pytest.raises(px.Error) as e:
        c.run(saxpy, a=1.0, x=x, y=x)
    assert e.value.result in ("PX_ERR_IO", "PX_ERR_CANCELLED")
    c.close()
