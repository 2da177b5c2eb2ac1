"""px — PX from Python: compile and run PX kernels on NumPy arrays, share
devices between VMs with quotas and compute shares, or run as a VM of a
running pxhvd. A binding of libpx (include/px.h, pxsched.h, pxclient.h)
through cffi; nothing to compile at install time.

Kernels
-------
>>> import numpy as np, px
>>> mod = px.compile('''
... GPU_KERNEL saxpy
... GPU_PARAM a float
... GPU_PARAM x float[N]
... GPU_PARAM y float[N]
... GPU_THREAD_CODE:
...     PARALLEL_MAP x y -> y : a * x + y
... GPU_END
... ''')
>>> k = mod["saxpy"]
>>> k.params, k.sizes, k.kernel_class, k.formulas["flops"]
>>> out = k(a=2.0, x=np.arange(4, dtype=np.float32), y=np.ones(4, np.float32))
>>> out["y"]                   # array([1., 3., 5., 7.], dtype=float32)
>>> k.cost(N=1 << 20)["bytes_read"], k.predict(N=1 << 20)

``px.compile`` raises ``px.CompileError`` whose message is the located
diagnostics. Calling a kernel returns ``{name: array}`` for every buffer
it writes; on host-visible device memory (lavapipe, the CPU backend)
those arrays are zero-copy views of the device buffers (see
``px.Kernel``). ``px.Device("cpu")`` and friends choose where
(``device=``).

Sharing devices
---------------
>>> with px.Hypervisor(policy="fair", memory="8G") as hv:
...     a = hv.add_vm(1, memory="2G", share=50)
...     b = hv.add_vm(2, profile="Q2")             # 2 GiB, 20 %
...     fut = a.submit(k, a=2.0, x=x, y=y)         # concurrent.futures.Future
...     b.run(k, a=1.0, x=x, y=y)["y"]
...     fut.result()["y"], hv.stats()["vms"]

``px.connect(vm=1, hvd=DIR)`` gives the same ``run``/``submit``/``stats``
as VM 1 of the pxhvd listening in DIR.

Errors
------
Every failure of the library is a ``px.Error`` (``code``: the PxResult
number, ``result``: its name such as ``"PX_ERR_QUOTA"``, ``message``: the
library's text), or a subclass: CompileError, QuotaError,
UnsupportedError, NotFoundError, DeviceError. Wrong Python types are
TypeError. Objects free what they hold when dropped or closed (each is a
context manager).

The library
-----------
``px.load(path)`` (or ``PX_LIBRARY``) picks libpx; else the copy bundled
by ``pip install ./python``, else the system's ``libpx.so.0``.
``px.library_path()`` says which; ``px.version()`` its version.
"""
from ._lib import (CompileError, DeviceError, Error, NotFoundError, QuotaError, UnsupportedError,
                   library_path, load)
from ._core import Device, Kernel, KernelInfo, Module, Param, compile, default_device
from ._tenant import VM, Client, Hypervisor, connect

__all__ = ["compile", "Module", "Kernel", "Param", "KernelInfo", "Device", "default_device",
           "Hypervisor", "VM", "connect", "Client",
           "Error", "CompileError", "QuotaError", "UnsupportedError", "NotFoundError", "DeviceError",
           "load", "library_path", "version"]


def version() -> str:
    """The loaded libpx's version ("0.2.0")."""
    from ._lib import lib, string
    return string(lib().px_version())
