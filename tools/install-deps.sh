#!/bin/sh
# Installs, with apt-get as root, the Debian packages given (default: every
# package PX needs to build and test), skipping those already present.
# Quiet when nothing is missing. guest/install-deps.sh names the guests'.
set -e
PKGS="${*:-llvm-16-dev clang-16 libclang-rt-16-dev spirv-tools spirv-headers libvulkan-dev
      mesa-vulkan-drivers vulkan-tools glslang-tools re2c bison pkg-config
      python3-numpy make gcc libmicrohttpd-dev libjansson-dev prometheus chromium
      python3-cffi python3-pytest python3-setuptools python3-pip python3-venv}"
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
