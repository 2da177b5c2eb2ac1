"""Every primitive of px-language.md section 3 run through px, against
NumPy, on lavapipe and on the CPU backend."""
import numpy as np
import pytest

import px

rng = np.random.default_rng(17)


def run(device, src, **args):
    return px.compile(src, "t.px", device=device)[src.split()[1]](device=device, **args)


def k1(name, params, body):
    ps = "".join("GPU_PARAM %s\n" % p for p in params)
    return "GPU_KERNEL %s\n%sGPU_THREAD_CODE:\n    %s\nGPU_END\n" % (name, ps, body)


def test_matmul_train_model(device, train_model):
    w = rng.standard_normal((37, 19), dtype=np.float32)
    x = rng.standard_normal((19, 23), dtype=np.float32)
    out = train_model(weights=w, inputs=x, device=device)
    assert set(out) == {"outputs"}
    assert out["outputs"].shape == (37, 23)
    np.testing.assert_allclose(out["outputs"], w @ x, rtol=1e-5, atol=1e-5)


def test_map_with_scalar(device):
    x = rng.standard_normal(1000, dtype=np.float32)
    y = rng.standard_normal(1000, dtype=np.float32)
    src = k1("f", ["a float", "x float[N]", "y float[N]", "z float[N]"], "PARALLEL_MAP x y -> z : a * x + max(y, 0.0)")
    out = run(device, src, a=1.5, x=x, y=y)
    np.testing.assert_allclose(out["z"], np.float32(1.5) * x + np.maximum(y, 0), rtol=1e-6)


@pytest.mark.parametrize("prim,op", [("ADD", np.add), ("SUB", np.subtract), ("MUL", np.multiply), ("DIV", np.divide)])
def test_elementwise(device, prim, op):
    a = rng.standard_normal((8, 9), dtype=np.float32)
    b = rng.standard_normal((8, 9), dtype=np.float32) + 3
    out = run(device, k1("e", ["a float[M][N]", "b float[M][N]", "c float[M][N]"], "PARALLEL_%s a b -> c" % prim), a=a, b=b)
    np.testing.assert_allclose(out["c"], op(a, b), rtol=1e-6)


def test_fill_copy_transpose(device):
    a = rng.standard_normal((5, 7), dtype=np.float32)
    src = k1("fct", ["a float[M][N]", "f float[M][N]", "c float[M][N]", "t float[N][M]"],
             "PARALLEL_FILL 2.5 -> f\n    PARALLEL_COPY a -> c\n    PARALLEL_TRANSPOSE a -> t")
    out = run(device, src, a=a)
    np.testing.assert_array_equal(out["f"], np.full((5, 7), 2.5, np.float32))
    np.testing.assert_array_equal(out["c"], a)
    np.testing.assert_array_equal(out["t"], a.T)


@pytest.mark.parametrize("op,ref", [("SUM", np.sum), ("MIN", np.min), ("MAX", np.max), ("PROD", np.prod)])
def test_reduce(device, op, ref):
    a1 = rng.uniform(0.5, 1.5, 777).astype(np.float32)
    a2 = rng.uniform(0.5, 1.5, (6, 50)).astype(np.float32)
    r1 = run(device, k1("r", ["a float[N]", "r float[1]"], "PARALLEL_REDUCE %s a -> r" % op), a=a1)["r"]
    r2 = run(device, k1("r", ["a float[M][N]", "r float[M]"], "PARALLEL_REDUCE %s a -> r" % op), a=a2)["r"]
    np.testing.assert_allclose(r1, [ref(a1.astype(np.float64))], rtol=1e-4)
    np.testing.assert_allclose(r2, ref(a2.astype(np.float64), axis=1), rtol=1e-4)


def test_scan_and_softmax(device):
    a = rng.standard_normal((4, 300), dtype=np.float32)
    out = run(device, k1("s", ["a float[M][N]", "c float[M][N]", "s float[M][N]"],
                         "PARALLEL_SCAN SUM a -> c\n    PARALLEL_SOFTMAX a -> s"), a=a)
    np.testing.assert_allclose(out["c"], np.cumsum(a.astype(np.float64), axis=1), rtol=1e-4, atol=1e-4)
    e = np.exp(a - a.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out["s"], e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_parallel_for_ints(device):
    a = rng.integers(-1000, 1000, (6, 11)).astype(np.int32)
    src = """GPU_KERNEL pf
GPU_PARAM a int[M][N]
GPU_PARAM k int
GPU_PARAM u uint[M][N]
GPU_PARAM r int[M][N]
GPU_THREAD_CODE:
    PARALLEL_FOR i IN 0..M, j IN 0..N {
        var acc = 0
        for t IN 0..k { acc += a[i][j] }
        r[i][j] = acc % 7
        u[i][j] = uint(a[i][j]) ^ i
    }
GPU_END
"""
    out = run(device, src, a=a, k=3)
    np.testing.assert_array_equal(out["r"], np.fmod(3 * a, 7).astype(np.int32))
    np.testing.assert_array_equal(out["u"], a.astype(np.uint32) ^ np.arange(6, dtype=np.uint32)[:, None])
    assert out["u"].dtype == np.uint32 and out["r"].dtype == np.int32


def test_sizes_bind_unbound_outputs(device):
    src = k1("iota", ["o float[N]"], "PARALLEL_FOR i IN 0..N { o[i] = float(i) * 0.5 }")
    out = run(device, src, sizes={"N": 10})
    np.testing.assert_array_equal(out["o"], np.arange(10, dtype=np.float32) * 0.5)
    out = run(device, src, N=4)  # a size symbol by keyword
    np.testing.assert_array_equal(out["o"], np.arange(4, dtype=np.float32) * 0.5)


def test_half(device):
    if device.backend == "vulkan" and not device.info["has_half"]:
        pytest.skip("this Vulkan device has no 16-bit floats")
    x = rng.standard_normal(64).astype(np.float16)
    out = run(device, k1("h", ["x half[N]", "y half[N]"], "PARALLEL_MAP x -> y : x * 2.0h"), x=x)
    assert out["y"].dtype == np.float16
    np.testing.assert_array_equal(out["y"], x * np.float16(2))


def test_float64_input_is_converted_and_caller_array_unchanged(device, saxpy):
    x = np.linspace(0, 1, 50)          # float64: same kind, becomes float32
    y = np.ones(50, np.float32)
    out = saxpy(a=3.0, x=x, y=y, device=device)
    np.testing.assert_allclose(out["y"], np.float32(3) * x.astype(np.float32) + 1, rtol=1e-6)
    np.testing.assert_array_equal(y, np.ones(50, np.float32))  # y is written on the device only


def test_results_are_zero_copy_views_that_outlive_the_call(device, saxpy):
    x = np.arange(8, dtype=np.float32)
    out = saxpy(a=2.0, x=x, y=np.zeros(8, np.float32), device=device)["y"]
    # lavapipe and the CPU backend map their buffers: the array does not
    # own its memory, and it stays valid after everything else is dropped
    assert not out.flags.owndata
    import gc
    gc.collect()
    np.testing.assert_array_equal(out, 2 * x)
    users = device._users
    del out
    gc.collect()
    assert device._users == users - 1  # the launch went with the last view


def test_threads_running_kernels_at_once(saxpy):
    """Threads on one shared device (serialised per context) and on a
    device each (in parallel), all checked against NumPy."""
    import threading
    shared = px.Device("vulkan")
    errors, done = [], []

    def worker(i):
        own = px.Device("cpu") if i % 2 else None
        r = np.random.default_rng(i)
        try:
            for _ in range(5):
                x = r.standard_normal(999, dtype=np.float32)
                y = r.standard_normal(999, dtype=np.float32)
                out = saxpy(a=float(i), x=x, y=y, device=own or shared)["y"]
                np.testing.assert_allclose(out, np.float32(i) * x + y, rtol=1e-6, atol=1e-6)
                done.append(1)
        except Exception as e:  # reported by the assertion below
            errors.append(e)
        finally:
            if own:
                own.close()

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert len(done) == 30
    shared.close()
