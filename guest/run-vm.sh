#!/bin/sh
# run-vm.sh — boots one PX guest under QEMU, runs one command in it, and
# returns that command's output and exit status as if it had run here.
#
#   sh guest/run-vm.sh [options] --cmd 'COMMAND'
#
#   --cmd TEXT          shell command (busybox sh) run in the guest, cwd /
#   --socket PATH       host Unix socket, already listening (pxhvd's
#                       DIR/vm<ID>.sock, or a test server), wired to the
#                       guest's virtio-serial port px.0 = /dev/vport0p1
#                       (also /dev/virtio-ports/px.0); QEMU connects to it
#                       as a client. Without it the port leads nowhere.
#   --file SRC[:DEST]   copy SRC into the guest as DEST (default /NAME of
#                       SRC); repeatable. Files travel in a small cpio
#                       archive appended to the base initramfs.
#   --client PATH       a static client to run as /bin/pxrun in this guest
#                       (default: the one baked into the image by
#                       `make guest-image` from build/guest/pxrun, if any)
#   --timeout SEC       kill the guest after SEC s of wall time, boot
#                       included (default 120)
#   --cmd-timeout SEC   kill the guest when the command has run SEC s
#                       (counted from its start, so boot time under a
#                       loaded host does not eat into it; default none)
#   --mem MB            guest memory (default 256)
#   --accel auto|kvm|tcg   default auto: KVM only after a probe boot under
#                       KVM has succeeded on this host (cached), else TCG
#   --image DIR         the image of `make guest-image` (default build/guest
#                       of this checkout, wherever run-vm.sh is called from)
#   --console FILE      keep the guest's console log there
#   --name NAME         label of this guest in messages (default: the
#                       socket's name, else "guest")
#   --quiet             no summary line
#   --probe             only probe KVM (once per host boot), print the result
#
# Output: the command's stdout on stdout and its stderr on stderr (they come
# back through two more virtio-serial ports, px.stdout and px.stderr, so
# kernel messages never mix in), then one summary line on stderr:
#   run-vm[NAME]: exit=0 accel=tcg boot-to-command=4.1s command=0.2s total=4.6s
# Exit status: the command's; 124 when a timeout killed the guest; 125
# when the guest did not report a status (boot failure: the console's tail
# is shown); 2 for a usage error or a missing image, socket or program.
# Several guests may run at once: each invocation has its own temporary
# folder and QEMU process; the KVM probe is serialised by a lock.

HERE=$(cd "$(dirname "$0")" && pwd)
SELF="$HERE/run-vm.sh"
cmd='' sock='' files='' client='' timeout=120 cmd_timeout='' mem=256 accel=auto
image=$HERE/../build/guest console='' name='' quiet='' probe=''
NL='
'
usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$SELF" >&2; exit 2; }
err() { echo "run-vm${name:+[$name]}: error: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --cmd) cmd=$2; shift ;;
    --socket) sock=$2; shift ;;
    --file) files="$files$2$NL"; shift ;;
    --client) client=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --cmd-timeout) cmd_timeout=$2; shift ;;
    --mem) mem=$2; shift ;;
    --accel) accel=$2; shift ;;
    --image) image=$2; shift ;;
    --console) console=$2; shift ;;
    --name) name=$2; shift ;;
    --quiet|-q) quiet=1 ;;
    --probe) probe=1 ;;
    -h|--help) usage ;;
    *) echo "run-vm: unknown argument: $1" >&2; usage ;;
    esac
    [ $# -gt 0 ] || usage
    shift
done
[ -n "$name" ] || { [ -n "$sock" ] && name=$(basename "$sock" .sock); } || name=guest
[ -n "$name" ] || name=guest

case $timeout in ''|*[!0-9]*) err "--timeout wants whole seconds, got '$timeout'" ;; esac
case $cmd_timeout in *[!0-9]*) err "--cmd-timeout wants whole seconds, got '$cmd_timeout'" ;; esac
case $mem in ''|*[!0-9]*) err "--mem wants MiB, got '$mem'" ;; esac
case $accel in auto|kvm|tcg) ;; *) err "--accel is auto, kvm or tcg, not '$accel'" ;; esac
QEMU=qemu-system-x86_64
command -v $QEMU >/dev/null 2>&1 || err "$QEMU not found: apt-get install qemu-system-x86 (or: sh guest/install-deps.sh)"
command -v busybox >/dev/null 2>&1 || err "busybox not found: apt-get install busybox-static"
command -v timeout >/dev/null 2>&1 || err "timeout not found: apt-get install coreutils"
for f in vmlinuz initramfs.cpio.gz; do
    [ -f "$image/$f" ] || err "$image/$f missing: run make guest-image"
done
image=$(cd "$image" && pwd)

now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.1f\", $1}"; }

# ---- KVM probe --------------------------------------------------------------
# /dev/kvm opening is not enough on these hosts: a Linux guest may abort or
# hang under it (shared/qemu-notes.md). So KVM counts only after one real
# probe boot has reported PX-EXIT 0 within a short timeout. The result is
# cached in the image folder per host boot (boot_id) and kernel, and a lock makes
# parallel guests wait for one probe instead of each running their own.
probe_kvm() {
    cache="$image/accel-probe"
    # a new host boot or another kernel asks again
    boot_id="$(cat /proc/sys/kernel/random/boot_id 2>/dev/null) $(cat "$image/kernel/.package" 2>/dev/null)"
    if [ -f "$cache" ] && [ "$(sed -n 1p "$cache")" = "$boot_id" ]; then
        sed -n 2p "$cache"; return
    fi
    (
        flock 9 2>/dev/null
        if [ -f "$cache" ] && [ "$(sed -n 1p "$cache")" = "$boot_id" ]; then
            sed -n 2p "$cache"; exit
        fi
        if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
            res="tcg (no usable /dev/kvm)"
        else
            pt0=$(now)
            out=$(sh "$SELF" --accel kvm --timeout 10 --image "$image" --name kvm-probe \
                  --cmd 'echo probe-ok' 2>&1)
            st=$?
            if [ $st = 0 ] && [ "$(printf '%s\n' "$out" | sed -n 1p)" = probe-ok ]; then
                res="kvm (probe boot ok in $(secs "$(now) - $pt0") s)"
            elif [ $st = 124 ]; then
                res="tcg (KVM probe boot hung: killed after 10 s)"
                # kvm_pvm (a KVM without hardware virtualisation, for hosts
                # that are VMs themselves) runs only PVM-enabled guest
                # kernels, not Debian's: the probe hangs, as it must
                [ -d /sys/module/kvm_pvm ] && res="tcg (KVM probe boot hung: killed after 10 s; the host's KVM is kvm_pvm, which needs a PVM guest kernel)"
            else
                why=$(printf '%s\n' "$out" | grep -m1 -i 'error\|assert\|fail' | cut -c1-120)
                res="tcg (KVM probe boot failed, status $st${why:+: $why})"
            fi
        fi
        printf '%s\n%s\n' "$boot_id" "$res" >"$cache.tmp" && mv "$cache.tmp" "$cache"
        echo "$res"
    ) 9>"$image/accel-probe.lock"
}
if [ -n "$probe" ]; then
    res=$(probe_kvm)
    echo "run-vm: accelerator: $res"
    exit 0
fi
[ -n "$cmd" ] || err "--cmd is required"
if [ -n "$sock" ]; then
    [ -S "$sock" ] || err "$sock is not a listening Unix socket (start pxhvd or the test server first)"
fi
if [ "$accel" = auto ]; then
    res=$(probe_kvm)
    accel=${res%% *}
    why=${res#* }
else
    why="(asked for)"
fi
if [ "$accel" = kvm ]; then
    # -cpu host: the guest sees the host's CPU, as a tenant would
    accel_opts="-accel kvm -cpu host"
else
    accel_opts="-accel tcg -cpu max"
fi

# ---- per-run initramfs: the base one plus an overlay -------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/px-vm.XXXXXX") || err "cannot make a temporary folder"
qpid=
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$work/ov/px"
printf '%s\n' "$cmd" >"$work/ov/px/cmd"
# /init waits for these ports before it runs the command
echo "px.0 px.stdout px.stderr" >"$work/ov/px/ports"
printf '%s\n' "$files" | while IFS= read -r spec; do
    [ -n "$spec" ] || continue
    src=${spec%%:*}
    case $spec in *:*) dest=${spec#*:} ;; *) dest=/$(basename "$src") ;; esac
    case $dest in /*) ;; *) dest=/$dest ;; esac
    # the base image's own files must not be replaced by accident
    case $dest in
    /init|/bin|/bin/*|/sbin|/sbin/*|/lib|/lib/*|/proc*|/sys*|/dev*|/px|/px/cmd|/px/ports|/)
        echo "run-vm[$name]: error: --file destination $dest is part of the guest image" >&2; exit 1 ;;
    esac
    [ -f "$src" ] || { echo "run-vm[$name]: error: --file $src: no such file" >&2; exit 1; }
    mkdir -p "$work/ov$(dirname "$dest")"
    cp "$src" "$work/ov$dest" || exit 1
done || exit 2
if [ -n "$client" ]; then
    [ -f "$client" ] || err "--client $client: no such file"
    # the guest has no libc: a dynamic program cannot start there
    if LC_ALL=C readelf -lW "$client" 2>/dev/null | grep -q INTERP; then
        err "--client $client is dynamically linked; the guest has no libc (link it with -static)"
    fi
    mkdir -p "$work/ov/bin"
    cp "$client" "$work/ov/bin/pxrun" && chmod 755 "$work/ov/bin/pxrun" || err "cannot copy $client"
fi
# The kernel unpacks concatenated archives, compressed or not; a plain one
# must start at a multiple of 4 bytes, hence the zero padding (zeros
# between archives are skipped).
cp "$image/initramfs.cpio.gz" "$work/initrd"
pad=$(( (4 - $(wc -c <"$work/initrd") % 4) % 4 ))
[ $pad = 0 ] || head -c $pad /dev/zero >>"$work/initrd"
(cd "$work/ov" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) >>"$work/initrd" ||
    err "cannot write the overlay archive"

# ---- boot ---------------------------------------------------------------------
keep=$console
[ -n "$console" ] || console="$work/console"
: >"$console" || err "cannot write $console"
: >"$work/stdout"; : >"$work/stderr"
if [ -n "$sock" ]; then
    px0="-chardev socket,id=px0,path=$sock"
else
    px0="-chardev null,id=px0"
fi
# -nodefaults: no VGA, NIC, floppy or CD-ROM to probe (faster boot, nothing
# shared with the host but the three ports). quiet: few kernel lines on the
# slow emulated UART. panic=-1 with -no-reboot: a guest that panics exits.
# no_timer_check: on a loaded host a TCG vCPU can miss the ticks the kernel
# counts at boot to check the IO-APIC timer, and it then panics ("IO-APIC +
# timer doesn't work!"; seen here at load 10 on 2 cores).
t0=$(now)
(
    timeout --kill-after=5 "$timeout" $QEMU -nodefaults -no-user-config \
        -display none -no-reboot -pidfile "$work/qemu.pid" $accel_opts -m "$mem" -smp 1 \
        -kernel "$image/vmlinuz" -initrd "$work/initrd" \
        -append "console=ttyS0 panic=-1 quiet no_timer_check" \
        -serial "file:$console" \
        -device virtio-serial-pci,id=vs0 \
        $px0 -device virtserialport,bus=vs0.0,nr=1,chardev=px0,name=px.0 \
        -chardev "file,id=pxo,path=$work/stdout" \
        -device virtserialport,bus=vs0.0,nr=2,chardev=pxo,name=px.stdout \
        -chardev "file,id=pxe,path=$work/stderr" \
        -device virtserialport,bus=vs0.0,nr=3,chardev=pxe,name=px.stderr \
        </dev/null >"$work/qemu.log" 2>&1
    echo $? >"$work/rc"
) &
qpid=$!
# Poll the console until the command starts, for the boot-to-command time
# measured here (the guest's clock starts after the firmware).
tstart=
# (A command that ends within one poll counts as starting when seen: the
# figure is an upper bound, to 0.1 s.)
while :; do
    if grep -q '^PX-START' "$console" 2>/dev/null; then
        tstart=$(now); break
    fi
    [ -f "$work/rc" ] && break
    sleep 0.1
done
# --cmd-timeout: count 0.2 s ticks from the command's start (at least SEC
# seconds pass: each tick also costs a sleep's start-up)
cmd_killed=
if [ -n "$cmd_timeout" ] && [ -n "$tstart" ]; then
    ticks=0
    while [ ! -f "$work/rc" ]; do
        if [ $ticks -ge $((cmd_timeout * 5)) ]; then
            kill "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null && cmd_killed=1
            break
        fi
        sleep 0.2
        ticks=$((ticks + 1))
    done
fi
wait "$qpid"
qpid=
t1=$(now)
rc=$(cat "$work/rc" 2>/dev/null)

cat "$work/stdout"
cat "$work/stderr" >&2
st=$(tr -d '\r' <"$console" | sed -n 's/^PX-EXIT \([0-9][0-9]*\)$/\1/p' | tail -n 1)
cmd_s=$(tr -d '\r' <"$console" | awk '/^PX-START uptime=/{split($2,a,"=");s=a[2]} /^PX-END uptime=/{split($2,a,"=");e=a[2]} END{if(s!=""&&e!="")printf "%.1f", e-s}')
summary="accel=$accel"
[ -n "$tstart" ] && summary="$summary boot-to-command=$(secs "$tstart - $t0")s"
[ -n "$cmd_s" ] && summary="$summary command=${cmd_s}s"
summary="$summary total=$(secs "$t1 - $t0")s"
tail_console() {
    echo "run-vm[$name]: console${keep:+ ($console)}, last lines:" >&2
    tr -d '\r' <"$console" | tail -n 15 | sed 's/^/  | /' >&2
    [ -s "$work/qemu.log" ] && sed 's/^/  qemu: /' "$work/qemu.log" | tail -n 5 >&2
}
if [ -n "$cmd_killed" ] && [ -z "$st" ]; then
    echo "run-vm[$name]: timeout: command killed after running ${cmd_timeout}s ($summary)" >&2
    exit 124
fi
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "run-vm[$name]: timeout: guest killed after ${timeout}s ($summary${tstart:+, command had started})" >&2
    [ -n "$tstart" ] || tail_console
    exit 124
fi
if [ -z "$tstart" ] && [ -n "$sock" ] && grep -q 'Failed to connect' "$work/qemu.log"; then
    # a socket file left behind by a server that is gone
    err "nobody listens on $sock (start pxhvd or the test server first)"
fi
if [ -z "$st" ]; then
    echo "run-vm[$name]: error: guest ended without reporting a status (qemu status $rc, $summary)" >&2
    tail_console
    exit 125
fi
# a PX-ERROR from /init (module, port) comes with PX-EXIT 125
tr -d '\r' <"$console" | grep '^PX-ERROR' | sed "s/^/run-vm[$name]: /" >&2
[ -n "$quiet" ] || echo "run-vm[$name]: exit=$st $summary $why" >&2
exit "$st"
