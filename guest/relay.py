#!/usr/bin/env python3
"""relay.py -- the host side of `make vm-test` (stdlib only), standing in
for pxhvd until it exists: one listening Unix socket per guest, as pxhvd's
DIR/vm<ID>.sock, each wired by guest/run-vm.sh to the guest's /dev/vport0p1.

  relay.py [--ready FILE] [--timeout S] PATH:SEED:BYTES[:corrupt] ...

For each socket it accepts one connection (QEMU connects when it starts),
reads the request of guest/pxecho.c (16-byte header "PXE1", seed, length,
0; then the payload), checks the header and every payload byte against what
SEED must generate -- so a guest wired to the wrong socket is caught -- and
answers out[i] = ~in[N-1-i] ^ (i*31) & 0xff, which pxecho checks byte by
byte. ":corrupt" flips one bit of the answer: a control that the guest's
check can fail. Prints one line per socket, `relay NAME: ok ...` or
`relay NAME: FAIL ...`; exit status 0 when every socket was served right.
FILE is written once every socket listens (QEMU fails if it connects
earlier)."""
import os
import socket
import struct
import sys
import threading
import time


def payload(seed, n):
    """xorshift32 from seed, the low byte of each state (as pxecho.c)."""
    x = seed
    out = bytearray(n)
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    return bytes(out)


def answer(data):
    n = len(data)
    return bytes((~data[n - 1 - i] ^ (i * 31)) & 0xFF for i in range(n))


def recv_exact(conn, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(min(65536, n - len(buf)))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def serve(lsock, name, seed, nbytes, corrupt, deadline, results):
    def done(line):
        results[name] = line
    try:
        lsock.settimeout(max(0.1, deadline - time.monotonic()))
        conn, _ = lsock.accept()
    except socket.timeout:
        return done("FAIL no connection before the timeout")
    with conn:
        conn.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            hdr = recv_exact(conn, 16)
            if len(hdr) < 16:
                return done("FAIL connection closed after %d header bytes" % len(hdr))
            magic, s, n, _ = struct.unpack("<4sIII", hdr)
            if magic != b"PXE1":
                return done("FAIL bad magic %r" % magic)
            if s != seed or n != nbytes:
                # read the request to its end first: a guest writing to a
                # port whose host end has gone blocks for ever
                if n <= 64 << 20:
                    recv_exact(conn, n)
                return done("FAIL request for seed %d, %d bytes; this socket expects seed %d, %d bytes"
                            % (s, n, seed, nbytes))
            data = recv_exact(conn, n)
            if len(data) < n:
                return done("FAIL payload short: %d of %d bytes" % (len(data), n))
            want = payload(seed, n)
            bad = [i for i in range(n) if data[i] != want[i]]
            if bad:
                return done("FAIL payload: %d of %d bytes wrong, first at %d (got 0x%02x, want 0x%02x)"
                            % (len(bad), n, bad[0], data[bad[0]], want[bad[0]]))
            ans = bytearray(answer(data))
            if corrupt:
                ans[n // 2] ^= 0x10
            conn.sendall(bytes(ans))
            # the guest powers off once it has read and checked the answer;
            # QEMU then closes the connection
            while conn.recv(4096):
                pass
            done("ok %d bytes from seed %d checked, answer sent%s"
                 % (n, seed, " with one bit flipped at %d (control)" % (n // 2) if corrupt else ""))
        except socket.timeout:
            done("FAIL timed out during the exchange")
        except OSError as e:
            done("FAIL %s" % e)


def main(argv):
    ready, timeout, specs = None, 60.0, []
    i = 0
    while i < len(argv):
        if argv[i] == "--ready":
            ready = argv[i + 1]; i += 2
        elif argv[i] == "--timeout":
            timeout = float(argv[i + 1]); i += 2
        else:
            specs.append(argv[i]); i += 1
    if not specs:
        print(__doc__, file=sys.stderr)
        return 2
    deadline = time.monotonic() + timeout
    results, threads = {}, []
    for spec in specs:
        parts = spec.split(":")
        path, seed, nbytes = parts[0], int(parts[1], 0), int(parts[2], 0)
        corrupt = len(parts) > 3 and parts[3] == "corrupt"
        name = os.path.basename(path).rsplit(".sock", 1)[0]
        if os.path.exists(path):
            os.unlink(path)
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(path)
        os.chmod(path, 0o600)
        lsock.listen(1)
        t = threading.Thread(target=serve, args=(lsock, name, seed, nbytes, corrupt, deadline, results))
        threads.append((t, name, lsock, path))
    for t, *_ in threads:
        t.start()
    if ready:
        with open(ready, "w") as f:
            f.write("ready\n")
    ok = True
    for t, name, lsock, path in threads:
        t.join()
        lsock.close()
        os.unlink(path)
        line = results.get(name, "FAIL no result")
        ok = ok and line.startswith("ok")
        print("relay %s: %s" % (name, line), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
