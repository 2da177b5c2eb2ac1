"""Tenants: a VM of an in-process Hypervisor (include/pxsched.h) and a VM
of a running pxhvd (include/pxclient.h). Both bind arguments, run and
submit the same way (_Tenant); they differ only in the calls underneath."""
from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import weakref
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ._core import DTYPES, Device, Kernel, KernelInfo, Module, Param, as_device, px_dtype
from ._lib import CompileError, Error, error, ffi, lib, string, take_string

KernelLike = Union[Kernel, Module, str]


def _source_of(kernel_or_source: KernelLike, kernel: Optional[str], file: Optional[str]) -> Tuple[str, str, Optional[str]]:
    """(source, file, kernel name or None for the only one)."""
    if isinstance(kernel_or_source, Kernel):
        m = kernel_or_source.module
        return m.source, file or m.file, kernel or kernel_or_source.name
    if isinstance(kernel_or_source, Module):
        return kernel_or_source.source, file or kernel_or_source.file, kernel
    if isinstance(kernel_or_source, str):
        return kernel_or_source, file or "<string>", kernel
    raise TypeError("expected a px.Kernel, a px.Module or PX source text, not %r" % type(kernel_or_source).__name__)


class _Pending:
    __slots__ = ("ticket", "info", "bound", "created")

    def __init__(self, ticket: int, info: KernelInfo, bound: Dict[str, int], created: List[int]):
        self.ticket, self.info, self.bound, self.created = ticket, info, bound, created


class _Tenant:
    """run/submit over a subclass's primitives (_compile, _buf_*, _submit, _wait)."""

    def __init__(self, workers: int):
        self._lock = threading.Lock()
        self._modules: Dict[Tuple[str, str, Optional[str]], Tuple[Any, KernelInfo]] = {}
        self._pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="px-wait")
        self._pending: Dict[int, _Pending] = {}
        self._closed = False

    # -- the shared part ------------------------------------------------------------------

    def _module(self, key) -> Tuple[Any, KernelInfo]:
        with self._lock:
            got = self._modules.get(key)
        if got is None:
            got = self._compile(*key)
            with self._lock:
                old = self._modules.setdefault(key, got)
            if old is not got:
                self._drop_module(got[0])
                got = old
        return got

    def kernel_info(self, kernel_or_source: KernelLike, *, kernel: Optional[str] = None,
                    file: Optional[str] = None) -> KernelInfo:
        """Compiles (once) and describes the kernel: params, sizes, class."""
        return self._module(_source_of(kernel_or_source, kernel, file))[1]

    def _start(self, kernel_or_source, kernel, file, sizes, args) -> _Pending:
        if self._closed:
            raise RuntimeError("px: %r is closed" % self)
        handle, info = self._module(_source_of(kernel_or_source, kernel, file))
        bufs, scalars, syms = info.bind(args, sizes)
        created: List[int] = []
        bound: Dict[str, int] = {}
        try:
            for p, a in bufs:
                b = self._buf_create(px_dtype(p.dtype), a.shape)
                created.append(b)
                bound[p.name] = b
                self._buf_write(b, a)
            n = len(bufs) + len(scalars) + len(syms)
            pa = ffi.new("PxArg[]", max(n, 1))
            names = []  # the C strings live until the submit returns
            i = 0
            for p, _ in bufs:
                names.append(ffi.new("char[]", p.name.encode()))
                pa[i].name, pa[i].kind, pa[i].buffer = names[-1], 0, bound[p.name]
                i += 1
            for p, v in scalars:
                names.append(ffi.new("char[]", p.name.encode()))
                pa[i].name = names[-1]
                if p.dtype.kind == "f":
                    pa[i].kind, pa[i].f = 1, v
                else:
                    pa[i].kind, pa[i].i = (3 if p.dtype.kind == "u" else 2), v
                i += 1
            for s, v in syms.items():
                names.append(ffi.new("char[]", s.encode()))
                pa[i].name, pa[i].kind, pa[i].i = names[-1], 4, v
                i += 1
            ticket = self._submit(handle, info, pa, n)
        except BaseException:
            self._free_buffers(created)
            raise
        pend = _Pending(ticket, info, bound, created)
        with self._lock:
            self._pending[ticket] = pend
        return pend

    def _finish(self, pend: _Pending) -> Dict[str, np.ndarray]:
        try:
            res = self._wait(pend.ticket)
        except BaseException:
            self._free_buffers(pend.created)
            raise
        finally:
            with self._lock:
                self._pending.pop(pend.ticket, None)
        made = {string(res.outputs[i].param): int(res.outputs[i].buffer) for i in range(res.noutputs)}
        try:
            if res.result:
                raise error(res.result, string(res.error))
            out = {}
            for p in pend.info.outputs():
                b = pend.bound.get(p.name) or made.get(p.name)
                if b:
                    out[p.name] = self._buf_read(b)
            return out
        finally:
            self._free_buffers(pend.created + list(made.values()))

    def _free_buffers(self, ids) -> None:
        for b in ids:
            try:
                self._buf_free(b)
            except Error:
                pass  # the VM or connection is gone, and the buffer with it

    def run(self, kernel_or_source: KernelLike, *, kernel: Optional[str] = None, file: Optional[str] = None,
            sizes: Optional[Mapping[str, int]] = None, **args) -> Dict[str, np.ndarray]:
        """Runs a kernel as this VM and waits: ``kernel_or_source`` is a
        px.Kernel, a px.Module (``kernel=`` names one of several) or PX
        source text; arguments as for calling a px.Kernel. Returns
        ``{name: array}`` for every buffer the kernel writes (copies: the
        VM's buffers are freed when the run is done). The VM compiles a
        source once and keeps it."""
        return self._finish(self._start(kernel_or_source, kernel, file, sizes, args))

    def submit(self, kernel_or_source: KernelLike, *, kernel: Optional[str] = None, file: Optional[str] = None,
               sizes: Optional[Mapping[str, int]] = None, **args) -> "cf.Future[Dict[str, np.ndarray]]":
        """As ``run``, without waiting: the launch is queued before this
        returns (a VM's launches run in the order submitted) and the
        Future's result is run's dict, or its exception."""
        pend = self._start(kernel_or_source, kernel, file, sizes, args)
        return self._pool.submit(self._finish, pend)

    def _close_tenant(self) -> None:
        """Waits for every submitted launch's Future (cancel first to hurry)."""
        self._closed = True
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _vm_stats_dict(v) -> Dict[str, Any]:
    return {"id": int(v.id), "name": string(v.name), "profile": string(v.profile), "device": int(v.device),
            "mem_quota_bytes": int(v.mem_quota_bytes), "mem_used_bytes": int(v.mem_used_bytes),
            "share": float(v.share), "gpu_ns": int(v.gpu_ns), "launches_done": int(v.launches_done),
            "launches_failed": int(v.launches_failed), "queued": int(v.queued),
            "latency_p50_us": float(v.latency_p50_us), "latency_p99_us": float(v.latency_p99_us),
            "slices": int(v.slices), "running": int(v.running), "achieved_10s": float(v.achieved_10s),
            "achieved_60s": float(v.achieved_60s), "migrations": int(v.migrations),
            "evictions": int(v.evictions), "launches_lost": int(v.launches_lost)}


# ---- in-process: the scheduler ------------------------------------------------------------------


def _sched_check(r: int, what: str = "") -> None:
    if r:
        msg = string(lib().px_sched_last_error())
        raise error(r, "%s: %s" % (what, msg) if what and msg else msg or what)


def _bytes_of(size: Union[int, str], what: str) -> int:
    """'2G', '512M', 1024: bytes (K, M, G: powers of 1024; pxsched.h's parser)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    c = ffi.new("PxVmConfig *")
    err = ffi.new("char[256]")
    r = lib().px_vm_spec_parse(("mem=%s" % size).encode(), c, err, 256)
    if r:
        raise ValueError("%s: %s" % (what, string(err)))
    return int(c.mem_quota)


class VM(_Tenant):
    """A tenant of a Hypervisor: ``id``, ``run``, ``submit``, ``stats()``,
    ``set(memory=, share=)``, ``remove()``."""

    def __init__(self, hv: "Hypervisor", vm_id: int, workers: int):
        super().__init__(workers)
        self.hv, self.id = hv, vm_id

    def __repr__(self) -> str:
        return "<px.VM %d>" % self.id

    def _compile(self, source: str, file: str, kernel: Optional[str]):
        L, s = lib(), self.hv._sched()
        src = source.encode()
        mod = ffi.new("uint32_t *")
        diags = ffi.new("char **")
        r = L.px_vm_compile(s, self.id, src, len(src), file.encode(), mod, diags)
        text = take_string(diags[0])
        if r:
            raise error(r, string(L.px_sched_last_error()), text)
        k = ffi.new("PxKernel **")
        r = L.px_vm_module_kernel(s, self.id, mod[0], kernel.encode() if kernel else ffi.NULL, k)
        if r:
            msg = string(L.px_sched_last_error())
            L.px_vm_module_destroy(s, self.id, mod[0])
            raise error(r, msg)
        # the module stays until the VM goes: the kernel pointer is valid that long
        return int(mod[0]), KernelInfo.of_kernel(k[0])

    def _drop_module(self, handle) -> None:
        lib().px_vm_module_destroy(self.hv._sched(), self.id, handle)

    def _buf_create(self, dtype: int, shape) -> int:
        b = ffi.new("uint32_t *")
        _sched_check(lib().px_vm_buffer_create(self.hv._sched(), self.id, dtype, len(shape),
                                               ffi.new("int64_t[]", list(shape) or [1]), b))
        return int(b[0])

    def _buf_write(self, b: int, a: np.ndarray) -> None:
        _sched_check(lib().px_vm_buffer_write(self.hv._sched(), self.id, b, ffi.from_buffer(a), a.nbytes))

    def _buf_read(self, b: int) -> np.ndarray:
        L, s = lib(), self.hv._sched()
        t, rank, shape = ffi.new("PxDtype *"), ffi.new("int *"), ffi.new("int64_t[4]")
        _sched_check(L.px_vm_buffer_info(s, self.id, b, t, rank, shape))
        a = np.empty(tuple(int(shape[i]) for i in range(rank[0])), dtype=DTYPES[t[0]])
        _sched_check(L.px_vm_buffer_read(s, self.id, b, ffi.from_buffer(a), a.nbytes))
        return a

    def _buf_free(self, b: int) -> None:
        _sched_check(lib().px_vm_buffer_destroy(self.hv._sched(), self.id, b))

    def _submit(self, handle, info: KernelInfo, args, n: int) -> int:
        t = ffi.new("uint64_t *")
        _sched_check(lib().px_vm_submit(self.hv._sched(), self.id, handle, info.name.encode(), args, n, t),
                     "VM %d: %s" % (self.id, info.name))
        return int(t[0])

    def _wait(self, ticket: int):
        res = ffi.new("PxTicketResult *")
        _sched_check(lib().px_vm_wait(self.hv._sched(), self.id, ticket, -1, res))
        return res

    def cancel_all(self) -> None:
        """Cancels every launch of this VM not yet finished (their
        Futures raise Error with result PX_ERR_CANCELLED)."""
        with self._lock:
            tickets = list(self._pending)
        for t in tickets:
            lib().px_vm_cancel(self.hv._sched(), self.id, t)

    def stats(self) -> Dict[str, Any]:
        """This VM's figures (pxsched.h's PxVmStats) as a dict: id, name,
        profile, device, mem_quota_bytes, mem_used_bytes, share, gpu_ns,
        launches_done, launches_failed, queued, latency_p50_us,
        latency_p99_us, slices, running, achieved_10s and achieved_60s
        (its part of its device's busy time, 0..1), migrations, evictions,
        launches_lost."""
        v = ffi.new("PxVmStats *")
        _sched_check(lib().px_sched_vm_stats(self.hv._sched(), self.id, v))
        return _vm_stats_dict(v)

    def set(self, *, memory: Union[int, str, None] = None, share: Optional[float] = None,
            name: Optional[str] = None) -> None:
        """Changes the quota, share or name live (a quota below what the
        VM holds is refused: QuotaError)."""
        c = ffi.new("PxVmConfig *")
        st = self.stats()
        c.id, c.mem_quota, c.share, c.device = self.id, st["mem_quota_bytes"], st["share"], st["device"]
        c.name = (name if name is not None else st["name"]).encode()[:63]
        if memory is not None:
            c.mem_quota = _bytes_of(memory, "memory")
        if share is not None:
            c.share = float(share)
        _sched_check(lib().px_sched_vm_set(self.hv._sched(), c), "VM %d" % self.id)

    def close(self) -> None:
        """Waits for this VM's submitted launches (the VM stays)."""
        self._close_tenant()

    def remove(self) -> None:
        """Cancels the VM's launches and frees everything it holds."""
        self.cancel_all()
        self._close_tenant()
        self.hv._remove(self)


_POLICIES = {"fair": 0, "fixed": 1}


class Hypervisor:
    """Many VMs sharing devices in this process (include/pxsched.h): exact
    memory quotas, compute shares, time slicing.

    ``devices``: a list of Devices or specs for them (``"cpu"``, ``0``,
    ``"llvmpipe"``; the same spec twice gives two logical devices); None:
    one, as ``Device()`` picks. Devices handed in belong to the scheduler
    until ``close()``. ``policy``: ``"fair"`` (an idle VM's share is lent)
    or ``"fixed"``. ``slice_us``: slice length while a latency-sensitive
    VM is active. ``memory``: what each device hands out to quotas
    (``"8G"``, bytes, or one per device; None: its device-local heap).

    ``add_vm(1, profile="Q2")`` or ``add_vm(2, memory="2G", share=30)``
    returns a VM; ``stats()``, ``migrate(vm, device)``, ``close()``."""

    def __init__(self, devices: Optional[Sequence[Union[Device, int, str, None]]] = None, *, policy: str = "fair",
                 slice_us: int = 1000, long_slice_us: int = 0, memory: Union[None, int, str, Sequence] = None,
                 max_queued: int = 1024, compile_cache: int = 64, workers: int = 8):
        L = lib()
        if policy not in _POLICIES:
            raise ValueError("policy must be 'fair' or 'fixed', not %r" % (policy,))
        specs = list(devices) if devices is not None else [None]
        if not 1 <= len(specs) <= 16:
            raise ValueError("a Hypervisor takes 1 to 16 devices, not %d" % len(specs))
        mem = list(memory) if isinstance(memory, (list, tuple)) else [memory] * len(specs)
        if len(mem) != len(specs):
            raise ValueError("memory: %d values for %d devices" % (len(mem), len(specs)))
        self._workers = workers
        self._lock = threading.Lock()
        self._vms: Dict[int, VM] = {}
        self._s = None
        self.devices: List[Device] = []
        self._own: List[Device] = []
        try:
            for d in specs:
                dev = d if isinstance(d, Device) else Device(d)
                if dev not in self._own and not isinstance(d, Device):
                    self._own.append(dev)
                with dev._lock:
                    dev._use()
                    if dev in self.devices:
                        raise ValueError("%r is given twice: pass its spec twice for two logical devices" % dev)
                    dev._owner = True  # (not the Hypervisor: the device must not keep it alive)
                self.devices.append(dev)
            cfg = ffi.new("PxSchedConfig *")
            L.px_sched_config_default(cfg)
            cfg.policy, cfg.slice_us = _POLICIES[policy], slice_us
            if long_slice_us:
                cfg.long_slice_us = long_slice_us
            cfg.max_queued, cfg.compile_cache, cfg.ndevices = max_queued, compile_cache, len(specs)
            for i, dev in enumerate(self.devices):
                cfg.devices[i] = dev._ctx
                cfg.capacity[i] = 0 if mem[i] is None else _bytes_of(mem[i], "memory")
            out = ffi.new("PxSched **")
            _sched_check(L.px_sched_create(cfg, out), "creating the scheduler")
            self._s = out[0]
        except BaseException:
            self._release_devices()
            raise
        self.policy = policy
        self._finalizer = weakref.finalize(self, Hypervisor._destroy, self._s, self.devices, self._own)

    @staticmethod
    def _destroy(s, devices, own) -> None:
        lib().px_sched_destroy(s)
        for d in devices:
            d._owner = None
        for d in own:
            d.close()

    def _release_devices(self) -> None:
        for d in self.devices:
            d._owner = None
        for d in self._own:
            d.close()

    def _sched(self):
        if self._s is None or not self._finalizer.alive:
            raise RuntimeError("px: the Hypervisor is closed")
        return self._s

    def __repr__(self) -> str:
        return "<px.Hypervisor %s, %d devices, VMs %s>" % (self.policy, len(self.devices), sorted(self._vms))

    def add_vm(self, vm_id: int, profile: Optional[str] = None, *, memory: Union[int, str, None] = None,
               share: Optional[float] = None, device: Optional[int] = None, name: Optional[str] = None) -> VM:
        """Creates VM ``vm_id`` (1..65535): a profile (``"Q1"``, ``"Q2"``,
        ``"Q4"``, ``"Q8"``: 1/2/4/8 GiB and 10/20/40/80 % share), or
        ``memory`` (``"2G"``, bytes) and ``share`` (percent); either may
        override the profile's part. ``device``: an index (None: the one
        with the most share free). QuotaError when the shares on a device
        would pass 100 or its quotas its memory."""
        parts = []
        if profile:
            parts.append("profile=%s" % profile)
        if memory is not None:
            parts.append("mem=%d" % _bytes_of(memory, "memory"))
        if share is not None:
            parts.append("share=%r" % float(share))
        if device is not None:
            parts.append("device=%d" % device)
        if not parts:
            raise ValueError("add_vm: give a profile, or memory and share")
        c = ffi.new("PxVmConfig *")
        c.device = -1
        err = ffi.new("char[512]")
        r = lib().px_vm_spec_parse(",".join(parts).encode(), c, err, 512)
        if r:
            raise error(r, string(err))
        c.id = vm_id
        if name:
            c.name = name.encode()[:63]
        _sched_check(lib().px_sched_vm_create(self._sched(), c), "VM %d" % vm_id)
        vm = VM(self, vm_id, self._workers)
        with self._lock:
            self._vms[vm_id] = vm
        return vm

    def vm(self, vm_id: int) -> VM:
        """The VM ``vm_id`` made by add_vm."""
        with self._lock:
            return self._vms[vm_id]

    @property
    def vms(self) -> List[VM]:
        with self._lock:
            return list(self._vms.values())

    def _remove(self, vm: VM) -> None:
        with self._lock:
            self._vms.pop(vm.id, None)
        _sched_check(lib().px_sched_vm_destroy(self._sched(), vm.id), "VM %d" % vm.id)

    def stats(self) -> Dict[str, Any]:
        """The status object of ``pxctl status --json``: policy, slice_us,
        devices (index, name, memory_bytes, memory_used_bytes, busy_ns),
        vms (each as VM.stats()), compile_cache."""
        from ._lib import take_string as _take
        text = _take(lib().px_sched_status_json(self._sched()))
        if not text:
            raise MemoryError("px_sched_status_json")
        return json.loads(text)

    def set_policy(self, policy: str, slice_us: int = 0) -> None:
        """Changes the policy (and the slice length when not 0) live."""
        if policy not in _POLICIES:
            raise ValueError("policy must be 'fair' or 'fixed', not %r" % (policy,))
        _sched_check(lib().px_sched_set_policy(self._sched(), _POLICIES[policy], slice_us, 0))
        self.policy = policy

    def migrate(self, vm: Union[VM, int], device: int) -> Dict[str, Any]:
        """Moves a VM, its buffers, modules and queued launches to device
        index ``device`` (live; results stay bit-identical). Returns
        total_ns, downtime_ns, bytes, launches_moved. QuotaError when it
        does not fit there; UnsupportedError where the library cannot."""
        vid = vm.id if isinstance(vm, VM) else int(vm)
        st = ffi.new("PxMigrateStats *")
        _sched_check(lib().px_vm_migrate(self._sched(), vid, device, st), "migrating VM %d" % vid)
        return {"total_ns": st.total_ns, "downtime_ns": st.downtime_ns, "bytes": int(st.bytes),
                "launches_moved": int(st.launches_moved)}

    def close(self) -> None:
        """Cancels what is queued, waits for what runs, frees every VM and
        closes the devices it opened (devices handed in are the caller's
        again). Futures not yet done raise Error (PX_ERR_CANCELLED)."""
        if not self._finalizer.alive:
            return
        for vm in self.vms:
            vm.cancel_all()
        for vm in self.vms:
            vm._close_tenant()
        self._finalizer()

    def __enter__(self) -> "Hypervisor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---- a running pxhvd ----------------------------------------------------------------------


def _client_check(r: int, what: str = "") -> None:
    if r:
        msg = string(lib().px_client_last_error())
        raise error(r, "%s: %s" % (what, msg) if what and msg else msg or what)


class Client(_Tenant):
    """VM ``vm`` of a running pxhvd, over its socket ``hvd/vm<vm>.sock``:
    the same ``run``/``submit`` as a Hypervisor's VM, and ``stats()``.
    Everything it made at the daemon is freed when it closes."""

    def __init__(self, vm: int = 1, hvd: Optional[str] = None, *, workers: int = 8):
        L = lib()
        out = ffi.new("PxClient **")
        err = ffi.new("char **")
        r = L.px_client_connect(hvd.encode() if hvd else ffi.NULL, vm, out, err)
        if r:
            raise error(r, take_string(err[0]))
        super().__init__(workers)
        self._c = out[0]
        self.vm: int = int(L.px_client_vm(self._c))
        self.device: str = string(L.px_client_device(self._c))
        self._finalizer = weakref.finalize(self, Client._destroy, self._c, self._modules)

    @staticmethod
    def _destroy(c, modules) -> None:
        L = lib()
        for m, _ in modules.values():
            L.px_client_module_free(m)
        modules.clear()
        L.px_client_close(c)

    def __repr__(self) -> str:
        return "<px.Client VM %d on %s>" % (self.vm, self.device)

    def _cl(self):
        if not self._finalizer.alive:
            raise RuntimeError("px: the client is closed")
        return self._c

    def _compile(self, source: str, file: str, kernel: Optional[str]):
        L = lib()
        src = source.encode()
        out = ffi.new("PxClientModule **")
        diags = ffi.new("char **")
        r = L.px_client_compile(self._cl(), src, len(src), file.encode(), kernel.encode() if kernel else ffi.NULL,
                                out, diags)
        text = take_string(diags[0])
        if r:
            raise error(r, string(L.px_client_last_error()), text)
        return out[0], KernelInfo.of_client_module(out[0])

    def _drop_module(self, handle) -> None:
        lib().px_client_module_free(handle)

    def _buf_create(self, dtype: int, shape) -> int:
        b = ffi.new("uint32_t *")
        _client_check(lib().px_client_buffer_create(self._cl(), dtype, len(shape),
                                                    ffi.new("int64_t[]", list(shape) or [1]), b))
        return int(b[0])

    def _buf_write(self, b: int, a: np.ndarray) -> None:
        _client_check(lib().px_client_buffer_write(self._cl(), b, ffi.from_buffer(a), a.nbytes))

    def _buf_read(self, b: int) -> np.ndarray:
        L = lib()
        t, rank, shape = ffi.new("PxDtype *"), ffi.new("int *"), ffi.new("int64_t[4]")
        _client_check(L.px_client_buffer_info(self._cl(), b, t, rank, shape))
        a = np.empty(tuple(int(shape[i]) for i in range(rank[0])), dtype=DTYPES[t[0]])
        _client_check(L.px_client_buffer_read(self._cl(), b, ffi.from_buffer(a), a.nbytes))
        return a

    def _buf_free(self, b: int) -> None:
        _client_check(lib().px_client_buffer_free(self._cl(), b))

    def _submit(self, handle, info: KernelInfo, args, n: int) -> int:
        t = ffi.new("uint64_t *")
        _client_check(lib().px_client_submit(self._cl(), handle, args, n, t), "VM %d: %s" % (self.vm, info.name))
        return int(t[0])

    def _wait(self, ticket: int):
        res = ffi.new("PxTicketResult *")
        _client_check(lib().px_client_wait(self._cl(), ticket, -1, res))
        return res

    def stats(self) -> Dict[str, Any]:
        """This VM's figures at the daemon, as VM.stats()."""
        v = ffi.new("PxVmStats *")
        _client_check(lib().px_client_stats(self._cl(), v))
        return _vm_stats_dict(v)

    def close(self) -> None:
        """Waits for submitted launches, frees the modules, disconnects."""
        if not self._finalizer.alive:
            return
        self._close_tenant()
        self._finalizer()


def connect(vm: int = 1, hvd: Optional[str] = None, **kw) -> Client:
    """Connects as VM ``vm`` to the pxhvd listening in directory ``hvd``
    (None: the contract's default, ``$PX_HVD``, else
    ``$XDG_RUNTIME_DIR/px``, else ``/tmp/px-$UID``). NotFoundError when no
    daemon or no such VM is there."""
    return Client(vm, hvd, **kw)
