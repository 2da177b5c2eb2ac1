"""Loading libpx and turning its results into Python exceptions.

Where the library comes from, first that applies:

1. an explicit path: ``px.load(path)`` before first use, or the
   ``PX_LIBRARY`` environment variable;
2. the copy bundled in the package (``px/_lib/libpx.so.0``, put there by
   ``pip install ./python`` from a built tree; the LLVM plugin
   ``libpx-llvm.so.0`` lies beside it, where libpx looks for it);
3. the system loader: ``libpx.so.0`` (``make install``, ldconfig's paths).
"""
from __future__ import annotations

import os
import threading
from typing import Optional

from cffi import FFI

from ._cdef import CDEF, RESULTS

ffi = FFI()
ffi.cdef(CDEF)

_lock = threading.Lock()
_lib = None
# the types the package makes, parsed once at load (see load)
_TYPES = ("PxConfig *", "PxContext **", "char **", "PxDeviceInfo *", "PxModule **", "PxKernel **",
          "PxParamInfo *", "PxBuffer **", "int64_t[]", "void **", "PxLaunch **", "PxCost *", "double *",
          "char *", "char[]", "PxSchedConfig *", "PxSched **", "PxVmConfig *", "char[256]", "char[512]",
          "uint32_t *", "uint64_t *", "PxArg[]", "PxTicketResult *", "PxVmStats *", "PxMigrateStats *",
          "PxDtype *", "int *", "int64_t[4]", "PxClient **", "PxClientModule **")
_lib_path: Optional[str] = None

#: PxResult codes by name ("PX_ERR_QUOTA": 17) and names by code.
RESULT_CODES = {name: i for i, name in enumerate(RESULTS)}
RESULT_NAMES = dict(enumerate(RESULTS))


class Error(Exception):
    """A failure of libpx: ``code`` is the PxResult (an int), ``result``
    its name (``"PX_ERR_QUOTA"``), ``message`` the library's message."""

    def __init__(self, code: int, message: str):
        self.code = int(code)
        self.result = RESULT_NAMES.get(self.code, "PX_ERR_%d" % self.code)
        self.message = message
        super().__init__("%s (%s)" % (message, self.result) if message else self.result)


class CompileError(Error):
    """The source has errors. ``diagnostics`` (also the message) holds the
    located ``file:line:col: error: ...`` lines with source line and caret."""

    def __init__(self, code: int, message: str, diagnostics: str = ""):
        self.diagnostics = diagnostics
        super().__init__(code, diagnostics.rstrip("\n") or message)

    def __str__(self) -> str:
        return self.message


class QuotaError(Error):
    """A VM's memory quota or a device's capacity or share would be passed."""


class UnsupportedError(Error):
    """The device or build cannot do this (PX_ERR_UNSUPPORTED)."""


class NotFoundError(Error):
    """No such kernel, parameter, VM, buffer or hypervisor."""


class DeviceError(Error):
    """No device, a lost device, or a Vulkan failure."""


_CLASSES = {
    "PX_ERR_COMPILE": CompileError,
    "PX_ERR_QUOTA": QuotaError,
    "PX_ERR_UNSUPPORTED": UnsupportedError,
    "PX_ERR_NOT_FOUND": NotFoundError,
    "PX_ERR_NO_DEVICE": DeviceError,
    "PX_ERR_DEVICE_LOST": DeviceError,
    "PX_ERR_VULKAN": DeviceError,
}


def error(code: int, message: str, diagnostics: str = "") -> Error:
    """The exception for result ``code`` (its class by the result)."""
    cls = _CLASSES.get(RESULT_NAMES.get(code, ""), Error)
    if cls is CompileError:
        return CompileError(code, message, diagnostics)
    return cls(code, message)


def string(p) -> str:
    """A C string (NULL: "")."""
    return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""


def take_string(p) -> str:
    """A malloc'd C string the library handed over, freed here."""
    if p == ffi.NULL:
        return ""
    try:
        return string(p)
    finally:
        lib().px_free(p)


def _bundled() -> Optional[str]:
    p = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_lib", "libpx.so.0")
    return p if os.path.exists(p) else None


def load(path: Optional[str] = None):
    """Loads libpx (once per process) and returns the cffi library object.

    ``path`` (or ``PX_LIBRARY``) names a file; without either, the bundled
    copy, then the system's ``libpx.so.0``. Loading a second, different
    path after the first raises RuntimeError."""
    global _lib, _lib_path
    with _lock:
        want = path or os.environ.get("PX_LIBRARY") or None
        if _lib is not None:
            if path and os.path.abspath(path) != _lib_path:
                raise RuntimeError("px: libpx is already loaded from %s" % _lib_path)
            return _lib
        cand = want or _bundled() or "libpx.so.0"
        try:
            # global: the LLVM plugin libpx loads resolves the compiler's
            # symbols in libpx itself (as in a program linked with it)
            _lib = ffi.dlopen(cand, ffi.RTLD_NOW | ffi.RTLD_GLOBAL)
        except OSError as e:
            raise ImportError("px: cannot load libpx from %s (%s); build it (make) and set PX_LIBRARY, "
                              "pip install ./python from a built tree, or make install" % (cand, e)) from None
        _lib_path = os.path.abspath(cand) if os.sep in cand else cand
        # Resolve every function now: cffi resolves a name lazily under
        # its own lock, and a finalizer run by the garbage collector inside
        # cffi (while that lock is held) must never need it.
        for name in dir(_lib):
            try:
                getattr(_lib, name)
            except AttributeError:
                pass  # an older libpx without it: its call fails when made
        for t in _TYPES:
            ffi.typeof(t)
        return _lib


def lib():
    """The loaded library (loading it on first use)."""
    return _lib if _lib is not None else load()


def library_path() -> str:
    """Where libpx was loaded from (loading it first when needed)."""
    lib()
    return _lib_path or ""
