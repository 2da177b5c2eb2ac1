"""Local devices, compiled modules and kernels (include/px.h)."""
from __future__ import annotations

import json
import numbers
import threading
import weakref
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from ._lib import CompileError, Error, error, ffi, lib, string, take_string

# ---- element types ----------------------------------------------------------------

#: PxDtype -> NumPy dtype (little-endian, as .npy files and the device use)
DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<i4"), 2: np.dtype("<u4"), 3: np.dtype("<f2")}
DTYPE_NAMES = {0: "float", 1: "int", 2: "uint", 3: "half"}


def px_dtype(dt: np.dtype) -> int:
    for k, v in DTYPES.items():
        if v == dt:
            return k
    raise TypeError("PX has no element type for NumPy dtype %s (float32, int32, uint32, float16)" % dt)


class Param:
    """A kernel parameter: ``name``; ``is_buffer``; ``dtype`` (a NumPy
    dtype: the scalar's type or the buffer's element type); ``rank`` and
    ``dims`` (each extent: a literal like ``"16"`` or a size symbol like
    ``"N"``); ``read``/``written`` (some stage reads/writes it);
    ``flexible`` (``T[]`` used elementwise: binds data of any rank)."""

    __slots__ = ("name", "is_buffer", "dtype", "rank", "dims", "read", "written", "flexible")

    def __init__(self, info):
        self.name = string(info.name)
        self.is_buffer = bool(info.is_buffer)
        self.dtype = DTYPES[info.dtype]
        self.rank = int(info.rank) if self.is_buffer else 0
        self.dims = tuple(string(info.dims[d]) for d in range(self.rank))
        self.read = bool(info.read)
        self.written = bool(info.written)
        self.flexible = bool(info.flexible)

    @property
    def decl(self) -> str:
        """The declared type as in the source: ``float[N]``, ``float[]``, ``int``."""
        t = DTYPE_NAMES[px_dtype(self.dtype)]
        if not self.is_buffer:
            return t
        return t + ("[]" if self.flexible else "".join("[%s]" % d for d in self.dims))

    def __repr__(self) -> str:
        return "Param(%s %s%s)" % (self.name, self.decl, ", written" if self.written else "")


class KernelInfo:
    """What binding arguments needs to know of a kernel: ``name``,
    ``kernel_class`` (REALTIME, INTERACTIVE, THROUGHPUT or BATCH), ``params``
    (tuple of Param), ``sizes`` (size symbols)."""

    def __init__(self, name: str, kernel_class: str, params: Tuple[Param, ...], sizes: Tuple[str, ...]):
        self.name, self.kernel_class, self.params, self.sizes = name, kernel_class, params, sizes

    @classmethod
    def _describe(cls, h, prefix: str) -> "KernelInfo":
        """From the accessors px_<prefix>_{name,class,param_count,param,
        size_count,size_name} of handle h (a PxKernel or a PxClientModule)."""
        L = lib()
        f = {n: getattr(L, "px_%s_%s" % (prefix, n))
             for n in ("name", "class", "param_count", "param", "size_count", "size_name")}
        info = ffi.new("PxParamInfo *")
        params = []
        for i in range(f["param_count"](h)):
            f["param"](h, i, info)
            params.append(Param(info))
        sizes = tuple(string(f["size_name"](h, i)) for i in range(f["size_count"](h)))
        return cls(string(f["name"](h)), string(f["class"](h)), tuple(params), sizes)

    @classmethod
    def of_kernel(cls, k) -> "KernelInfo":
        """A PxKernel's description (px.h)."""
        return cls._describe(k, "kernel")

    @classmethod
    def of_client_module(cls, m) -> "KernelInfo":
        """A PxClientModule's description (pxclient.h)."""
        return cls._describe(m, "client_kernel")

    def param(self, name: str) -> Optional[Param]:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def bind(self, args: Mapping[str, Any], sizes: Optional[Mapping[str, int]]):
        """Checks and converts arguments: (buffers [(Param, C-ordered
        array)], scalars [(Param, value)], sizes {symbol: int}). A keyword
        naming a size symbol (not a parameter) binds that symbol."""
        bufs, scalars, syms = [], [], {}
        for name, v in dict(sizes or {}).items():
            if name not in self.sizes:
                raise TypeError("kernel %s has no size symbol %s (it has: %s)"
                                % (self.name, name, ", ".join(self.sizes) or "none"))
            syms[name] = _index(v, "size %s" % name)
        for name, v in args.items():
            p = self.param(name)
            if p is None:
                if name in self.sizes:
                    syms[name] = _index(v, "size %s" % name)
                    continue
                raise TypeError("kernel %s has no parameter or size symbol named %s (parameters: %s)"
                                % (self.name, name, ", ".join(q.name for q in self.params)))
            if p.is_buffer:
                a = np.asarray(v)
                if not np.can_cast(a.dtype, p.dtype, "same_kind"):
                    raise TypeError("%s: %s is %s; a %s array cannot become %s without losing its kind"
                                    % (self.name, name, p.decl, a.dtype, p.dtype))
                bufs.append((p, np.ascontiguousarray(a, dtype=p.dtype)))
            else:
                scalars.append((p, _scalar(p, v)))
        return bufs, scalars, syms

    def outputs(self) -> List[Param]:
        """The buffer parameters some stage writes: the results of a run."""
        return [p for p in self.params if p.is_buffer and p.written]


def _index(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
        raise TypeError("%s must be a whole number >= 0, not %r" % (what, v))
    return int(v)


def _scalar(p: Param, v):
    if p.dtype.kind == "f":
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError("%s is %s: expected a number, not %r" % (p.name, p.decl, v))
        return float(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError("%s is %s: expected an integer, not %r" % (p.name, p.decl, v))
    lo, hi = (0, 2**32 - 1) if p.dtype.kind == "u" else (-2**31, 2**31 - 1)
    if not lo <= v <= hi:
        raise OverflowError("%s is %s: %d does not fit in 32 bits" % (p.name, p.decl, v))
    return int(v)


# ---- devices -------------------------------------------------------------------------

_BACKENDS = {"auto": 0, "vulkan": 1, "cpu": 2}


class Device:
    """One device (a PxContext): a Vulkan device (lavapipe where there is
    no GPU) or the host CPU through the LLVM JIT.

    ``Device()`` picks as px.h does (a GPU, else lavapipe, else the CPU);
    ``Device("cpu")``, ``Device("vulkan")``, ``Device(0)`` (a Vulkan device
    index) or ``Device("llvmpipe")`` (a case-insensitive name substring).
    Calls on one device are serialised (a context is used by one thread
    at a time); use one Device per thread for parallel work.

    ``close()`` (or ``with``) releases it once no module or result array
    made on it remains."""

    def __init__(self, spec: Union[None, int, str] = None, *, opt_level: int = 2, cpu_threads: int = 0):
        L = lib()
        cfg = ffi.new("PxConfig *")
        L.px_config_default(cfg)
        keep = None
        if isinstance(spec, bool):
            raise TypeError("device: expected an index or a name, not %r" % spec)
        if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
            cfg.backend, cfg.device_index = _BACKENDS["vulkan"], int(spec)
        elif isinstance(spec, str) and spec.lower() in _BACKENDS:
            cfg.backend = _BACKENDS[spec.lower()]
        elif isinstance(spec, str):
            cfg.backend = _BACKENDS["vulkan"]
            keep = ffi.new("char[]", spec.encode())
            cfg.device_name = keep
        elif spec is not None:
            raise TypeError("device: expected None, an index or a name, not %r" % (spec,))
        cfg.opt_level = opt_level
        cfg.cpu_threads = cpu_threads
        out = ffi.new("PxContext **")
        err = ffi.new("char **")
        r = L.px_context_create(cfg, out, err)
        if r:
            raise error(r, take_string(err[0]) or "cannot open device %r" % (spec,))
        self._ctx = out[0]
        self._lock = threading.RLock()
        self._users = 0          # modules and result holders made on it, alive
        self._closed = False
        self._owner = None       # True while a Hypervisor holds it: only the scheduler may touch it
        self._deferred: List[Any] = []  # frees a finalizer could not do at once
        self._finalizer = weakref.finalize(self, L.px_context_destroy, self._ctx)
        info = ffi.new("PxDeviceInfo *")
        L.px_device_info(self._ctx, info)
        self.name: str = string(info.name)
        self.backend: str = string(L.px_context_backend(self._ctx))
        self.info: Dict[str, Any] = {
            "name": self.name, "index": info.index, "is_cpu": bool(info.is_cpu),
            "has_half": bool(info.has_half), "has_timestamps": bool(info.has_timestamps),
            "max_storage_buffer_range": int(info.max_storage_buffer_range),
            "subgroup_size": int(info.subgroup_size), "device_local_bytes": int(info.device_local_bytes),
            "backend": self.backend,
        }

    def __repr__(self) -> str:
        return "<px.Device %s (%s)%s>" % (self.name, self.backend, " closed" if self._closed else "")

    def _free(self, fn) -> None:
        """Runs fn (a free of something made on this device) under the
        lock now, or, when another thread holds the lock, at that thread's
        next call: a finalizer (run by the garbage collector at any point of
        any thread) must never wait for a lock."""
        if self._lock.acquire(blocking=False):
            try:
                fn()
                self._drain()
            finally:
                self._lock.release()
        else:
            self._deferred.append(fn)  # atomic; drained by the holder's next _use

    def _drain(self) -> None:
        while self._deferred:
            self._deferred.pop()()

    def _use(self):
        """The context, for a call by this thread under self._lock."""
        self._drain()
        if self._closed:
            raise RuntimeError("px: %r is closed" % self)
        if self._owner is not None:
            raise RuntimeError("px: %r belongs to a Hypervisor now: run through its VMs" % self)
        return self._ctx

    def _check(self, r: int, what: str = "") -> None:
        if r:
            msg = string(lib().px_last_error(self._ctx))
            raise error(r, "%s: %s" % (what, msg) if what and msg else msg or what)

    def _acquire(self) -> None:
        self._users += 1

    def _release(self) -> None:
        """(under self._lock)"""
        self._users -= 1
        if self._closed and self._users == 0 and self._owner is None:
            self._finalizer()

    def close(self) -> None:
        """No new work; the context goes when nothing made on it remains."""
        with self._lock:
            if self._owner is not None:
                raise RuntimeError("px: %r belongs to a Hypervisor: close that" % self)
            self._drain()
            self._closed = True
            if self._users == 0:
                self._finalizer()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_default_lock = threading.Lock()
_default: Optional[Device] = None


def default_device() -> Device:
    """The device ``compile`` and kernels use when none is given: made on
    first use with ``Device()``."""
    global _default
    with _default_lock:
        if _default is None or _default._closed:
            _default = Device()
        return _default


def as_device(d) -> Device:
    return d if isinstance(d, Device) else default_device() if d is None else Device(d)


# ---- modules ---------------------------------------------------------------------------


def _destroy_module(dev: Device, ptr, destroy) -> None:
    def free():
        destroy(ptr)
        dev._release()
    dev._free(free)


class _Compiled:
    """A module compiled on one device; freed when no kernel call needs it."""

    def __init__(self, dev: Device, source: bytes, file: str):
        L = lib()
        out = ffi.new("PxModule **")
        diags = ffi.new("char **")
        with dev._lock:
            ctx = dev._use()
            r = L.px_module_compile(ctx, source, len(source), file.encode(), out, diags)
            text = take_string(diags[0])
            if r:
                raise error(r, string(L.px_last_error(ctx)), text)
            dev._acquire()
        self.dev, self.ptr, self.diagnostics = dev, out[0], text
        self._finalizer = weakref.finalize(self, _destroy_module, dev, out[0], L.px_module_destroy)

    def kernel(self, name: str):
        k = ffi.new("PxKernel **")
        with self.dev._lock:
            self.dev._check(lib().px_module_kernel(self.ptr, name.encode(), k))
        return k[0]


class Module:
    """A compiled .px source: ``kernels`` (names, in source order),
    ``module["saxpy"]`` (a Kernel), ``warnings`` (rendered diagnostics, ""
    when none), ``cost`` (every kernel's cost formulas and class, as
    ``pxcc --emit=cost-json`` gives them). Iterating gives the kernels.

    It compiles again, once, on each other device a kernel is called on."""

    def __init__(self, source: str, file: str = "<string>", device=None):
        self.source = source
        self.file = file
        self._src = source.encode("utf-8")
        self._lock = threading.Lock()
        dev = as_device(device)
        first = _Compiled(dev, self._src, file)
        self._per_device: Dict[int, _Compiled] = {id(dev): first}
        self.device = dev
        self.warnings: str = first.diagnostics
        L = lib()
        with dev._lock:
            n = L.px_module_kernel_count(first.ptr)
            ks = [L.px_module_kernel_at(first.ptr, i) for i in range(n)]
            self._infos = {string(L.px_kernel_name(k)): KernelInfo.of_kernel(k) for k in ks}
            self.cost: Dict[str, Any] = json.loads(take_string(L.px_module_cost_json(first.ptr)) or '{"kernels": []}')
        self.kernels: Tuple[str, ...] = tuple(self._infos)
        self._kernels = {n: Kernel(self, n) for n in self.kernels}

    def _on(self, dev: Device) -> _Compiled:
        with self._lock:
            c = self._per_device.get(id(dev))
            if c is None or c.dev is not dev:
                c = self._per_device[id(dev)] = _Compiled(dev, self._src, self.file)
            return c

    def __getitem__(self, name: str) -> "Kernel":
        try:
            return self._kernels[name]
        except KeyError:
            raise KeyError("no kernel named %s in %s (kernels: %s)" % (name, self.file, ", ".join(self.kernels))) from None

    def __iter__(self) -> Iterator["Kernel"]:
        return iter(self._kernels.values())

    def __len__(self) -> int:
        return len(self.kernels)

    def __repr__(self) -> str:
        return "<px.Module %s: %s>" % (self.file, ", ".join(self.kernels))

    def close(self) -> None:
        """Frees the compiled code on every device now."""
        with self._lock:
            for c in self._per_device.values():
                c._finalizer()
            self._per_device.clear()

    def __enter__(self) -> "Module":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def compile(source: str, file: str = "<string>", device=None) -> Module:
    """Compiles PX source text; raises CompileError whose message is the
    located diagnostics (``file:line:col: error: ...``, source line, caret).
    ``device``: a Device, a spec for one, or None (``default_device()``)."""
    return Module(source, file, device)


# ---- runs -----------------------------------------------------------------------------


def _free_run(dev: Device, compiled: _Compiled, launch, buffers) -> None:
    """The launch (with the buffers it made) and the buffers bound to it.
    `compiled` is passed only to keep the kernel's module alive until now."""
    L = lib()

    def free():
        L.px_launch_destroy(launch)
        for b in buffers:
            L.px_buffer_destroy(b)
        dev._release()
        compiled.dev  # (the module stays until the launch is gone)
    dev._free(free)


class _Run:
    """One launch with its buffers. Result arrays that view device memory
    keep it alive; it is freed when the last of them goes."""

    def __init__(self, dev: Device, compiled: _Compiled, k):
        out = ffi.new("PxLaunch **")
        dev._check(lib().px_launch_create(k, out))
        dev._acquire()
        self.dev, self.launch, self.buffers = dev, out[0], []
        self._finalizer = weakref.finalize(self, _free_run, dev, compiled, out[0], self.buffers)

    def setup(self, info: KernelInfo, bufs, scalars, syms) -> None:
        L, dev, l = lib(), self.dev, self.launch
        for p, a in bufs:
            shape = ffi.new("int64_t[]", list(a.shape) or [1])
            b = ffi.new("PxBuffer **")
            dev._check(L.px_buffer_create(dev._ctx, px_dtype(p.dtype), a.ndim, shape, b), "argument %s" % p.name)
            self.buffers.append(b[0])
            dev._check(L.px_buffer_write(b[0], ffi.from_buffer(a), a.nbytes), "argument %s" % p.name)
            dev._check(L.px_launch_bind(l, p.name.encode(), b[0], ("argument %s" % p.name).encode()))
        for p, v in scalars:
            n = p.name.encode()
            k = px_dtype(p.dtype)
            r = (L.px_launch_set_float(l, n, v) if k == 0 else L.px_launch_set_half(l, n, v) if k == 3
                 else L.px_launch_set_int(l, n, v) if k == 1 else L.px_launch_set_uint(l, n, v))
            dev._check(r)
        for s, v in syms.items():
            dev._check(L.px_launch_set_size(l, s.encode(), v, ("sizes[%r]" % s).encode()))

    def array(self, name: str) -> Optional[np.ndarray]:
        """The buffer of param `name` as an array: a view of the device
        memory where it is host-visible (kept alive by the array), else a copy."""
        L = lib()
        b = L.px_launch_buffer(self.launch, name.encode())
        if b == ffi.NULL:
            return None
        dt = DTYPES[L.px_buffer_dtype(b)]
        shp = L.px_buffer_shape(b)
        shape = tuple(int(shp[i]) for i in range(L.px_buffer_rank(b)))
        n = int(L.px_buffer_bytes(b))
        ptr = ffi.new("void **")
        if L.px_buffer_map(b, ptr) == 0 and n:
            # the gc'd pointer's destructor holds the run: the run lives
            # while the array (base: buffer -> pointer) does
            keep = ffi.gc(ffi.cast("char *", ptr[0]), lambda _p, run=self: None)
            return np.frombuffer(ffi.buffer(keep, n), dtype=dt).reshape(shape)
        a = np.empty(shape, dtype=dt)
        self.dev._check(L.px_buffer_read(b, ffi.from_buffer(a), a.nbytes), "reading %s" % name)
        return a


def _cost_dict(c) -> Dict[str, float]:
    return {"flops": c.flops, "int_ops": c.int_ops, "bytes_read": c.bytes_read,
            "bytes_written": c.bytes_written, "accesses": c.accesses,
            "checked_accesses": c.checked_accesses, "uniform_accesses": c.uniform_accesses,
            "dispatches": c.dispatches, "groups": c.groups, "predicted_ns": c.predicted_ns}


class Kernel:
    """A kernel of a Module. Metadata: ``name``, ``kernel_class``,
    ``params`` (tuple of Param), ``sizes`` (size symbols), ``formulas``
    (cost formulas in the size symbols, e.g. ``{"flops": "2*N", ...}``).

    Call it with keyword arguments: arrays for buffer parameters, numbers
    for scalars, ``sizes={"N": 1024}`` (or ``N=1024``) for size symbols
    not fixed by the arrays' shapes, ``device=`` to run elsewhere. Arrays
    are converted to the parameter's element type when NumPy can do so
    within their kind (float64 -> float32, int64 -> int32), and copied
    once into device buffers: the caller's arrays are never changed.

    Returns ``{name: array}`` for every buffer the kernel writes (also
    those not given, created in the shape the kernel gives them). Where
    the device memory is host-visible (lavapipe, the CPU backend) these
    arrays are zero-copy views of the device buffers, which live as long
    as the arrays do; elsewhere they are copies."""

    def __init__(self, module: Module, name: str):
        self.module = module
        self.name = name
        info = module._infos[name]
        self.info = info
        self.kernel_class: str = info.kernel_class
        self.params: Tuple[Param, ...] = info.params
        self.sizes: Tuple[str, ...] = info.sizes
        self.formulas: Dict[str, Any] = next((k for k in module.cost.get("kernels", []) if k.get("name") == name), {})

    def __repr__(self) -> str:
        return "<px.Kernel %s(%s) %s>" % (self.name, ", ".join(p.name + " " + p.decl for p in self.params),
                                         self.kernel_class)

    def _costing(self, args) -> Dict[str, Any]:
        """args for cost/predict: float scalars left out are 0 (no cost
        formula depends on a float's value; int and uint ones may)."""
        fill = {p.name: 0.0 for p in self.params if not p.is_buffer and p.dtype.kind == "f"}
        fill.update(args)
        return fill

    def _launch(self, device, args, sizes) -> _Run:
        dev = as_device(device)
        bufs, scalars, syms = self.info.bind(args, sizes)
        compiled = self.module._on(dev)
        k = compiled.kernel(self.name)
        with dev._lock:
            dev._use()
            run = _Run(dev, compiled, k)
            try:
                run.setup(self.info, bufs, scalars, syms)
            except BaseException:
                run._finalizer()
                raise
        return run

    def __call__(self, *, sizes: Optional[Mapping[str, int]] = None, device=None, **args) -> Dict[str, np.ndarray]:
        """Runs the kernel and waits: ``{name: array}`` for every buffer it
        writes (zero-copy views where the device memory is host-visible;
        see the class). Raises px.Error (shape, unbound size, device) or
        TypeError (an unknown name, a value of the wrong kind)."""
        run = self._launch(device, args, sizes)
        dev = run.dev
        try:
            with dev._lock:
                dev._check(lib().px_launch_run(run.launch), "running %s" % self.name)
                return {p.name: a for p in self.info.outputs() if (a := run.array(p.name)) is not None}
        finally:
            del run  # freed now unless a result array views its memory

    def cost(self, *, device=None, **args) -> Dict[str, Any]:
        """The compiler's cost figures at these sizes (size symbols by
        keyword, or arrays and scalars as for a call): flops, int_ops,
        bytes_read, bytes_written, accesses, dispatches, groups,
        predicted_ns (the device profile's roofline), and ``stages``, the
        same per stage (with its ``name``). -1 where there is no figure.
        Nothing runs (buffers not given are made, zero-filled)."""
        run = self._launch(device, self._costing(args), None)
        L, dev = lib(), run.dev
        c = ffi.new("PxCost *")
        with dev._lock:
            dev._check(L.px_launch_cost(run.launch, -1, c), "cost of %s" % self.name)
            out = _cost_dict(c)
            k = self.module._on(dev).kernel(self.name)
            stages = []
            for i in range(L.px_kernel_stage_count(k)):
                dev._check(L.px_launch_cost(run.launch, i, c))
                stages.append(dict(_cost_dict(c), name=string(L.px_kernel_stage_name(k, i))))
            out["stages"] = stages
        run._finalizer()
        return out

    def predict(self, *, device=None, **args) -> float:
        """Predicted run time in ns at these sizes (as ``cost``): the
        roofline figure times the kernel's learned correction."""
        run = self._launch(device, self._costing(args), None)
        ns = ffi.new("double *")
        with run.dev._lock:
            run.dev._check(lib().px_launch_predict_ns(run.launch, -1, ns), "predicting %s" % self.name)
        run._finalizer()
        return float(ns[0])
