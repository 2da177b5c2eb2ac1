"""px.Hypervisor over pxsched.h: VMs with quotas and shares, futures,
threads, stats, migration."""
import concurrent.futures as cf
import threading

import numpy as np
import pytest

import px
from conftest import SAXPY

rng = np.random.default_rng(5)


def data(m, k, n):
    return (rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32))


def test_three_vms_50_30_20_train_model(train_model):
    with px.Hypervisor(memory="8G") as hv:
        vms = [hv.add_vm(i + 1, memory="1G", share=s, name="vm%d" % (i + 1)) for i, s in enumerate((50, 30, 20))]
        own = [data(48, 24 + 8 * i, 16) for i in range(3)]
        futs = [vm.submit(train_model, weights=w, inputs=x) for vm, (w, x) in zip(vms, own)]
        assert all(isinstance(f, cf.Future) for f in futs)
        for f, (w, x) in zip(futs, own):
            np.testing.assert_allclose(f.result(timeout=120)["outputs"], w @ x, rtol=1e-5, atol=1e-5)
        st = hv.stats()
        assert [v["id"] for v in st["vms"]] == [1, 2, 3]
        assert [v["share"] for v in st["vms"]] == [50, 30, 20]
        assert all(v["launches_done"] == 1 and v["gpu_ns"] > 0 for v in st["vms"])
        assert st["devices"][0]["memory_bytes"] == 8 << 30
        assert vms[1].stats()["mem_quota_bytes"] == 1 << 30 and vms[1].stats()["name"] == "vm2"
        assert hv.vm(2) is vms[1] and len(hv.vms) == 3


def test_profiles_and_share_limit():
    with px.Hypervisor(memory="8G") as hv:
        a = hv.add_vm(1, profile="Q2")
        st = a.stats()
        assert (st["profile"], st["mem_quota_bytes"], st["share"]) == ("Q2", 2 << 30, 20)
        hv.add_vm(2, profile="Q4", share=70)  # the explicit share overrides the profile's
        with pytest.raises(px.QuotaError) as e:
            hv.add_vm(3, memory="1G", share=20)  # 20 + 70 + 20 > 100
        assert e.value.result == "PX_ERR_QUOTA"
        with pytest.raises(px.QuotaError):
            hv.add_vm(4, memory="9G", share=1)  # more than the device hands out
        with pytest.raises(px.Error) as e:
            hv.add_vm(5, profile="Q3")
        assert "Q3" in e.value.message
        assert [v["id"] for v in hv.stats()["vms"]] == [1, 2]


def test_quota_refusal_names_the_vm_and_spares_others(saxpy):
    with px.Hypervisor(memory="1G") as hv:
        small = hv.add_vm(7, memory="64K", share=10)
        big = hv.add_vm(8, memory="64M", share=10)
        x = np.ones(1 << 14, np.float32)  # 64 KiB: x alone fills the quota, y does not fit
        with pytest.raises(px.QuotaError) as e:
            small.run(saxpy, a=1.0, x=x, y=x)
        assert "VM 7" in e.value.message and e.value.code == 17
        assert small.stats()["mem_used_bytes"] == 0  # nothing left behind
        np.testing.assert_array_equal(big.run(saxpy, a=1.0, x=x, y=x)["y"], x + x)
        # a quota change live: now it fits
        small.set(memory="1M")
        np.testing.assert_array_equal(small.run(saxpy, a=3.0, x=x, y=x)["y"], 4 * x)


def test_threads_submitting_at_once(train_model):
    with px.Hypervisor(memory="8G") as hv:
        vms = [hv.add_vm(i + 1, memory="512M", share=s) for i, s in enumerate((50, 30, 20))]
        errors, checked = [], []

        def worker(vm, seed):
            r = np.random.default_rng(seed)
            for _ in range(4):
                w = r.standard_normal((16, 8), dtype=np.float32)
                x = r.standard_normal((8, 12), dtype=np.float32)
                try:
                    got = (vm.run if seed % 2 else lambda *a, **k: vm.submit(*a, **k).result())(
                        train_model, weights=w, inputs=x)["outputs"]
                    np.testing.assert_allclose(got, w @ x, rtol=1e-5, atol=1e-5)
                    checked.append(1)
                except Exception as e:  # reported below, with the thread's error
                    errors.append(e)

        ts = [threading.Thread(target=worker, args=(vms[i % 3], i)) for i in range(9)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert len(checked) == 36
        assert sum(v["launches_done"] for v in hv.stats()["vms"]) == 36


def test_source_text_and_kernel_choice():
    two = SAXPY + SAXPY.replace("saxpy", "twice").replace("a * x + y", "2.0 * a * x + y")
    x = np.arange(6, dtype=np.float32)
    with px.Hypervisor(memory="1G") as hv:
        vm = hv.add_vm(1, memory="64M", share=50)
        assert vm.run(two, kernel="twice", a=1.0, x=x, y=x)["y"].tolist() == (3 * x).tolist()
        assert vm.run(px.compile(two), kernel="saxpy", a=1.0, x=x, y=x)["y"].tolist() == (2 * x).tolist()
        with pytest.raises(px.CompileError) as e:
            vm.run("GPU_KERNEL k\nGPU_THREAD_CODE:\n    PARALLEL_COPY -> b\nGPU_END\n", file="vmbad.px")
        assert str(e.value).startswith("vmbad.px:3:")
        with pytest.raises(TypeError):
            vm.run(two, kernel="twice", a=1.0, x=x, y=x, nope=1)
        with pytest.raises(px.Error):
            vm.run(two, a=1.0, x=x, y=x)  # two kernels: choose one


def test_devices_belong_to_the_hypervisor_until_it_closes(saxpy):
    d = px.Device("cpu")
    hv = px.Hypervisor([d], memory="1G")
    with pytest.raises(RuntimeError, match="Hypervisor"):
        saxpy(a=1.0, x=np.ones(2, np.float32), y=np.ones(2, np.float32), device=d)
    hv.add_vm(1, memory="1M", share=10)
    hv.close()
    with pytest.raises(RuntimeError, match="closed"):
        hv.stats()
    out = saxpy(a=1.0, x=np.ones(2, np.float32), y=np.ones(2, np.float32), device=d)
    np.testing.assert_array_equal(out["y"], [2, 2])
    d.close()


def test_close_cancels_or_finishes_every_future(train_model):
    w, x = data(64, 64, 64)
    hv = px.Hypervisor(memory="1G")
    vm = hv.add_vm(1, memory="256M", share=50)
    futs = [vm.submit(train_model, weights=w, inputs=x) for _ in range(20)]
    hv.close()
    done = cancelled = 0
    for f in futs:  # every launch got exactly one answer
        try:
            np.testing.assert_allclose(f.result(timeout=60)["outputs"], w @ x, rtol=1e-4, atol=1e-4)
            done += 1
        except px.Error as e:
            assert e.result == "PX_ERR_CANCELLED", e
            cancelled += 1
    assert done + cancelled == 20


def test_migrate_keeps_results_identical(train_model):
    w, x = data(40, 30, 20)
    with px.Hypervisor(["vulkan", "vulkan"], memory="1G") as hv:  # lavapipe opened twice
        vm = hv.add_vm(1, memory="64M", share=50, device=0)
        before = vm.run(train_model, weights=w, inputs=x)["outputs"]
        queued = [vm.submit(train_model, weights=w, inputs=x) for _ in range(3)]
        st = hv.migrate(vm, 1)
        assert st["total_ns"] >= st["downtime_ns"] >= 0
        assert vm.stats()["device"] == 1
        for f in queued:
            np.testing.assert_array_equal(f.result(timeout=60)["outputs"], before)
        np.testing.assert_array_equal(vm.run(train_model, weights=w, inputs=x)["outputs"], before)
        np.testing.assert_allclose(before, w @ x, rtol=1e-5, atol=1e-5)


def test_dropping_frees_everything(saxpy):
    import gc
    d = px.Device("cpu")
    hv = px.Hypervisor([d], memory="1G")
    vm = hv.add_vm(1, memory="1M", share=10)
    x = np.ones(8, np.float32)
    np.testing.assert_array_equal(vm.run(saxpy, a=1.0, x=x, y=x)["y"], 2 * x)
    fin = hv._finalizer
    del hv, vm
    gc.collect()
    assert not fin.alive  # px_sched_destroy ran: the device is the caller's again
    np.testing.assert_array_equal(saxpy(a=1.0, x=x, y=x, device=d)["y"], 2 * x)
    d.close()
