#!/bin/sh
# Installs, with apt-get as root, the Debian packages the real-VM tests need
# (guest/), skipping those already present. Kept apart from
# tools/install-deps.sh so that `make check` does not pull in QEMU until the
# VM tests are part of it. Quiet when nothing is missing.
#   qemu-system-x86  the emulator (qemu-system-x86_64)
#   busybox-static   the guest's userland: one static binary, no libc needed
#   libc6-dev        libc.a, for the statically linked guest test program
#   gcc, gzip        compile that program, compress the initramfs (its cpio
#                    archive is written by busybox, so no cpio package)
#   python3          the host side of `make vm-test` (guest/relay.py, stdlib only)
set -e
PKGS="qemu-system-x86 busybox-static libc6-dev gcc gzip python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "error: packages missing and not root; run: sudo apt-get install$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
