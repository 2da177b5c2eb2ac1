"""The cffi declarations (px/_cdef.py) against the real headers: a C
program prints sizeof/offsetof of every mirrored struct and field and
every enum constant the package uses; cffi must agree on each."""
import os
import shutil
import subprocess

import pytest

from px._cdef import CONSTANTS, RESULTS, STRUCTS
from px._lib import ffi, lib, string
from conftest import ROOT


def c_program():
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "px.h"', '#include "pxsched.h"',
             '#include "pxclient.h"', "int main(void) {"]
    for s in STRUCTS:
        lines.append('printf("sizeof %s %%zu\\n", sizeof(%s));' % (s, s))
        for name, _ in ffi.typeof(s).fields:
            lines.append('printf("offsetof %s.%s %%zu\\n", offsetof(%s, %s));' % (s, name, s, name))
    lines.append('printf("sizeof PxTicketResult.outputs[0] %zu\\n", sizeof(((PxTicketResult *)0)->outputs[0]));')
    lines.append('printf("offsetof PxTicketResult.outputs[0].buffer %zu\\n", '
                 'offsetof(PxTicketResult, outputs[0].buffer));')
    for name in list(RESULTS) + list(CONSTANTS):
        lines.append('printf("value %s %%lld\\n", (long long)%s);' % (name, name))
    lines.append("return 0; }")
    return "\n".join(lines) + "\n"


def test_structs_and_enums_match_the_headers(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.fail("no C compiler to check the declarations with")
    src = tmp_path / "abi.c"
    src.write_text(c_program())
    exe = tmp_path / "abi"
    subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe)],
                   check=True)
    got = dict(line.rsplit(" ", 1) for line in subprocess.run([str(exe)], check=True, capture_output=True,
                                                              text=True).stdout.splitlines())
    want = {}
    for s in STRUCTS:
        want["sizeof %s" % s] = ffi.sizeof(s)
        for name, _ in ffi.typeof(s).fields:
            want["offsetof %s.%s" % (s, name)] = ffi.offsetof(s, name)
    out_t = ffi.typeof("PxTicketResult").fields[-1][1].type.item
    want["sizeof PxTicketResult.outputs[0]"] = ffi.sizeof(out_t)
    want["offsetof PxTicketResult.outputs[0].buffer"] = ffi.offsetof("PxTicketResult", "outputs") + \
        ffi.offsetof(out_t, "buffer")
    for i, name in enumerate(RESULTS):
        want["value %s" % name] = i
    for name, v in CONSTANTS.items():
        want["value %s" % name] = v
    assert len(want) > 100
    bad = {k: (int(got.get(k, -1)), v) for k, v in want.items() if int(got.get(k, -1)) != v}
    assert not bad, "C (header) vs cffi (px/_cdef.py): %s" % bad


def test_result_names_match_the_library():
    # px_result_string's text for each code is the one of PX_RESULTS' row
    assert string(lib().px_result_string(17)) == "memory quota exceeded"
    assert string(lib().px_result_string(5)) == "compilation failed"
