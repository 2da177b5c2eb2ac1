"""Bundles the built shared library into the package: build/libpx.so.0.2.0
(as px/_lib/libpx.so.0) and the LLVM plugin build/libpx-llvm.so.0 beside
it, where libpx looks for it (codegen/llvm_load.c), so an installed
package runs without `make install`. The build tree is ../build, or
PX_BUILD_DIR. Without a built library nothing is bundled and the package
uses the system's libpx.so.0 (make install)."""
import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithLib(build_py):
    def run(self):
        super().run()
        build = os.environ.get("PX_BUILD_DIR") or os.path.join(HERE, "..", "build")
        libs = sorted(glob.glob(os.path.join(build, "libpx.so.*.*.*")))
        dst = os.path.join(self.build_lib, "px", "_lib")
        shutil.rmtree(dst, ignore_errors=True)  # never a copy left by an earlier build
        if not libs:
            self.announce("px: no libpx.so in %s: the package will use the system's libpx.so.0" % build, level=3)
            return
        os.makedirs(dst)
        shutil.copyfile(libs[-1], os.path.join(dst, "libpx.so.0"))
        plugin = os.path.join(build, "libpx-llvm.so.0")
        if os.path.exists(plugin):
            shutil.copyfile(plugin, os.path.join(dst, "libpx-llvm.so.0"))


setup(cmdclass={"build_py": BuildWithLib})
