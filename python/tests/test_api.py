"""Metadata, cost, errors and lifetimes of the local API."""
import gc
import re

import numpy as np
import pytest

import px
from conftest import SAXPY


def test_module_metadata(saxpy):
    m = saxpy.module
    assert m.kernels == ("saxpy",) and len(m) == 1 and list(m)[0] is saxpy
    assert [p.name for p in saxpy.params] == ["a", "x", "y"]
    a, x, y = saxpy.params
    assert (a.is_buffer, a.dtype, a.decl) == (False, np.dtype(np.float32), "float")
    assert (x.is_buffer, x.rank, x.dims, x.read, x.written) == (True, 1, ("N",), True, False)
    assert y.written and y.read and y.decl == "float[N]"
    assert saxpy.sizes == ("N",)
    assert saxpy.kernel_class == "THROUGHPUT"
    assert saxpy.formulas["flops"] == "2*N" and saxpy.formulas["bytes_written"] == "4*N"
    with pytest.raises(KeyError, match="no kernel named nope"):
        m["nope"]


def test_several_kernels_and_warnings(train_model):
    src = SAXPY + "\n" + SAXPY.replace("saxpy", "other")
    m = px.compile(src, "two.px")
    assert m.kernels == ("saxpy", "other")
    assert [k["name"] for k in m.cost["kernels"]] == ["saxpy", "other"]
    # the implicit declarations of section 1 are warnings, located
    w = train_model.module.warnings
    assert re.search(r"train\.px:4:\d+: warning: 'inputs' is not declared", w)
    assert train_model.kernel_class == "BATCH"


def test_cost_follows_the_formulas(saxpy):
    for n in (1000, 4096):
        c = saxpy.cost(N=n)
        assert c["flops"] == 2 * n and c["bytes_read"] == 8 * n and c["bytes_written"] == 4 * n
        assert c["predicted_ns"] > 0 and len(c["stages"]) >= 1
    assert saxpy.predict(N=1 << 20) > saxpy.predict(N=1 << 10) > 0


def test_compile_error_is_located():
    with pytest.raises(px.CompileError) as e:
        px.compile("GPU_KERNEL k\nGPU_PARAM x float[N]\nGPU_THREAD_CODE:\n    PARALLEL_MAP x -> x : x + nope\nGPU_END\n", "bad.px")
    assert e.value.code == 5 and e.value.result == "PX_ERR_COMPILE"
    assert re.match(r"bad\.px:4:\d+: error: ", str(e.value))
    assert "^" in e.value.diagnostics and "PARALLEL_MAP x -> x : x + nope" in e.value.diagnostics
    assert isinstance(e.value, px.Error)


def test_argument_errors(saxpy):
    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="no parameter or size symbol named z"):
        saxpy(a=1.0, x=x, y=x, z=x)
    with pytest.raises(TypeError, match="expected a number"):
        saxpy(a="2", x=x, y=x)
    with pytest.raises(TypeError, match="cannot become float32"):
        saxpy(a=1.0, x=np.array(["a", "b"]), y=x)
    with pytest.raises(px.Error) as e:  # N is 4 from x, 5 from y: the library names both
        saxpy(a=1.0, x=x, y=np.zeros(5, np.float32))
    assert e.value.result == "PX_ERR_SHAPE" and "x" in e.value.message and "y" in e.value.message
    # x left out is legal: made zero-filled in the shape N has from y
    np.testing.assert_array_equal(saxpy(a=1.0, y=np.ones(4, np.float32))["y"], np.ones(4, np.float32))
    src = "GPU_KERNEL k\nGPU_PARAM o float[N]\nGPU_THREAD_CODE:\n    PARALLEL_FILL 1.0 -> o\nGPU_END\n"
    with pytest.raises(px.Error) as e:
        px.compile(src)["k"]()
    assert e.value.result == "PX_ERR_UNBOUND" and "N" in e.value.message


def test_device_errors_and_lifetimes():
    with pytest.raises(px.DeviceError) as e:
        px.Device("no such device name")
    assert e.value.result == "PX_ERR_NO_DEVICE"
    with px.Device("cpu") as d:
        m = px.compile(SAXPY, device=d)
        out = m["saxpy"](a=1.0, x=np.ones(3, np.float32), y=np.ones(3, np.float32), device=d)
        assert d._users == 2  # the module and the result's launch
    # closed, but the result array still views live memory
    np.testing.assert_array_equal(out["y"], [2, 2, 2])
    with pytest.raises(RuntimeError, match="closed"):
        px.compile(SAXPY, device=d)
    del m, out
    gc.collect()
    assert d._users == 0 and not d._finalizer.alive  # the context is gone now


def test_errors_carry_code_and_message():
    e = px.QuotaError(17, "VM 3: memory quota exceeded")
    assert (e.code, e.result, e.message) == (17, "PX_ERR_QUOTA", "VM 3: memory quota exceeded")
    assert str(e) == "VM 3: memory quota exceeded (PX_ERR_QUOTA)"


def test_help_is_a_manual():
    import pydoc
    text = pydoc.render_doc(px, renderer=pydoc.plaintext)
    for word in ("Hypervisor", "connect", "CompileError", "zero-copy", "add_vm", "submit"):
        assert word in text
    assert "zero-copy" in px.Kernel.__doc__ and "Future" in px.VM.submit.__doc__
