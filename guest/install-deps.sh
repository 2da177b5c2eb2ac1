#!/bin/sh
# Installs, with apt-get as root, the Debian packages the real-VM suites
# (guest/, part of `make check`) need, skipping those already present:
#   qemu-system-x86  the emulator (qemu-system-x86_64)
#   busybox-static   the guest's userland: one static binary, no libc needed
#   libc6-dev        libc.a, for the statically linked guest programs
#   gcc, gzip        compile them, compress the initramfs (its cpio
#                    archive is written by busybox, so no cpio package)
#   python3          the host side of `make vm-test` (guest/relay.py, stdlib only)
exec sh "$(dirname "$0")/../tools/install-deps.sh" qemu-system-x86 busybox-static libc6-dev gcc gzip python3
