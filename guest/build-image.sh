#!/bin/sh
# Builds the guest image for the real-VM tests into OUT (default build/guest):
#   OUT/vmlinuz              a Debian cloud kernel, taken from its package
#   OUT/kernel/              the package extracted (dpkg-deb -x; never installed)
#   OUT/initramfs.cpio.gz    busybox, the virtio modules, /init, the client
#   OUT/pxecho               the static test program (from guest/pxecho.c)
# Usage: sh guest/build-image.sh [OUT] [CLIENT]
#   CLIENT: a statically linked client copied to /bin/pxrun in the guest,
#   default OUT/pxrun when it exists (built by the daemon's side).
# Environment: PX_GUEST_KERNEL=linux-image-6.1.0-NN-cloud-amd64 picks the
# package; default the newest 6.1 cloud kernel apt knows.
# Nothing is downloaded but the kernel package, through apt.
set -e
OUT=${1:-build/guest}
CLIENT=${2:-$OUT/pxrun}
HERE=$(cd "$(dirname "$0")" && pwd)
t0=$(date +%s.%N)

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "error: $1 not found: apt-get install $2 (or: sh guest/install-deps.sh)" >&2; exit 1; }
}
need busybox busybox-static
need gzip gzip
need gcc gcc
need dpkg-deb dpkg
need apt-get apt
# A static binary has no program interpreter (INTERP header): only such
# binaries run in the guest, which has no libc.
is_static() {
    if command -v readelf >/dev/null 2>&1; then
        ! LC_ALL=C readelf -lW "$1" 2>/dev/null | grep -q 'INTERP'
    else
        ! LC_ALL=C grep -q '/lib64/ld-linux' "$1"
    fi
}
# the Debian busybox package is dynamic; busybox-static's runs in the guest
BB=/bin/busybox
[ -x "$BB" ] && is_static "$BB" ||
    { echo "error: no static $BB: apt-get install busybox-static" >&2; exit 1; }
mkdir -p "$OUT"

# ---- kernel ----------------------------------------------------------------
pkg=${PX_GUEST_KERNEL:-}
if [ -z "$pkg" ]; then
    find_kernel() {
        apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' 2>/dev/null |
            cut -d' ' -f1 | sort -V | tail -n 1
    }
    pkg=$(find_kernel)
    # a fresh machine (or container) may have no package lists yet
    if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        pkg=$(find_kernel)
    fi
    [ -n "$pkg" ] || { echo "error: no linux-image-6.1.0-*-cloud-amd64 in apt's lists (run apt-get update as root)" >&2; exit 1; }
fi
kver=${pkg#linux-image-}
if [ "$(cat "$OUT/kernel/.package" 2>/dev/null)" != "$pkg" ]; then
    echo "guest-image: extracting $pkg (apt-get download + dpkg-deb -x, not installed)"
    rm -rf "$OUT/kernel" "$OUT/deb"
    mkdir -p "$OUT/deb"
    # apt drops root to _apt for downloads; give it a folder it may write to
    chmod 0777 "$OUT/deb"
    (cd "$OUT/deb" && apt-get download -qq "$pkg") ||
        { echo "error: apt-get download $pkg failed" >&2; exit 1; }
    dpkg-deb -x "$OUT"/deb/"$pkg"_*.deb "$OUT/kernel"
    rm -rf "$OUT/deb"
    echo "$pkg" >"$OUT/kernel/.package"
fi
vmlinuz=$(ls "$OUT/kernel/boot/vmlinuz-$kver" 2>/dev/null) ||
    { echo "error: $OUT/kernel has no boot/vmlinuz-$kver" >&2; exit 1; }
cp "$vmlinuz" "$OUT/vmlinuz"
moddir="$OUT/kernel/lib/modules/$kver/kernel"

# ---- test program ----------------------------------------------------------
# static, so it needs nothing in the guest but the kernel
gcc -static -O2 -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE \
    -o "$OUT/pxecho" "$HERE/pxecho.c" ||
    { echo "error: cannot link guest/pxecho.c statically (libc.a: apt-get install libc6-dev)" >&2; exit 1; }

# ---- initramfs -------------------------------------------------------------
root="$OUT/root"
rm -rf "$root"
mkdir -p "$root/bin" "$root/sbin" "$root/lib/modules" "$root/proc" "$root/sys" \
    "$root/dev" "$root/tmp" "$root/px"
cp "$BB" "$root/bin/busybox"
# one link per applet, so /init and commands use plain names
for a in $("$BB" --list); do
    [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
done
# The cloud kernel has virtio as modules and the package has no modprobe
# data (depmod runs at install), so /init loads them with insmod in an order
# worked out here from each module's own "depends=" field: dependencies
# first. (The order differs between kernel builds: in 6.1.0-57 virtio needs
# virtio_ring.) Wanted: the PCI transport and the console/serial-port driver.
modfile() {
    f=$(find "$moddir" \( -name "$1.ko*" -o -name "$(echo "$1" | tr _ -).ko*" \) | head -n 1)
    [ -n "$f" ] || { echo "error: module $1 missing from $pkg" >&2; exit 1; }
    echo "$f"
}
moddeps() {
    case $1 in
    *.ko) tr '\0' '\n' <"$1" ;;
    *.ko.xz) xz -dc "$1" | tr '\0' '\n' ;;
    *.ko.zst) zstd -dqc "$1" | tr '\0' '\n' ;;
    esac | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}
order=" "
add_module() {
    case $order in *" $1 "*) return ;; esac
    _f=$(modfile "$1") || exit 1
    for _d in $(moddeps "$_f"); do add_module "$_d" || exit 1; done
    _f=$(modfile "$1")
    case $order in *" $1 "*) return ;; esac
    order="$order$1 "
    case $_f in
    *.ko) cp "$_f" "$root/lib/modules/$1.ko" ;;
    # later kernels compress modules; busybox insmod wants them plain
    *.ko.xz) xz -dc "$_f" >"$root/lib/modules/$1.ko" ;;
    *.ko.zst) zstd -dqc "$_f" >"$root/lib/modules/$1.ko" ;;
    esac
    echo "$1.ko" >>"$root/lib/px-modules"
}
: >"$root/lib/px-modules"
add_module virtio_pci || exit 1
add_module virtio_console || exit 1
cp "$HERE/init" "$root/init"
chmod 755 "$root/init"
cp "$OUT/pxecho" "$root/bin/pxecho"
if [ -f "$CLIENT" ]; then
    # only a static client can run here: there is no libc in the guest
    if ! is_static "$CLIENT"; then
        echo "error: $CLIENT is dynamically linked; the guest has no libc (link it with -static)" >&2
        exit 1
    fi
    cp "$CLIENT" "$root/bin/pxrun"
    chmod 755 "$root/bin/pxrun"
    client="$CLIENT -> /bin/pxrun"
else
    client="none ($CLIENT does not exist yet)"
fi
echo "$pkg" >"$root/px/kernel"
# sorted names: the same inputs give the same archive
(cd "$root" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc 2>/dev/null) |
    gzip -6 -n >"$OUT/initramfs.cpio.gz.tmp"
mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
rm -rf "$root"

t1=$(date +%s.%N)
ksz=$(wc -c <"$OUT/vmlinuz"); isz=$(wc -c <"$OUT/initramfs.cpio.gz")
echo "guest-image: $OUT/vmlinuz ($pkg, $((ksz / 1024)) KiB), $OUT/initramfs.cpio.gz ($((isz / 1024)) KiB), client: $client, $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
