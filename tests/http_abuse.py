#!/usr/bin/python3
"""tests/http_abuse.py PORT — malformed and hostile HTTP against pxhvd's
metrics endpoint on 127.0.0.1:PORT over raw sockets: bad methods, POST,
garbage, a huge request line, huge and many headers, slow clients holding
connections (slowloris), a burst of idle connections. After each, and while
the slow clients hold their connections, a normal GET must still answer.
Prints `ok NAME` / `FAIL NAME: why`; exit 1 when any failed. Every socket
has a time-out: the script cannot hang."""
import socket
import sys
import time

from checklib import done, report

PORT = int(sys.argv[1])


def conn(timeout=5):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.settimeout(timeout)
    return s


def exchange(data, timeout=5):
    """Sends data, returns what comes back until the server closes (or
    the time-out): b"" when it just closed."""
    s = conn(timeout)
    out = b""
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass  # reset by the server, or the time-out: judged by the caller
    finally:
        s.close()
    return out


def status_of(reply):
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def get_ok(path="/metrics"):
    r = exchange(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
    return status_of(r) == 200 and b"px_vm_gpu_seconds_total" in r if path == "/metrics" else status_of(r) == 200


def case(name, data, want):
    r = exchange(data)
    code = status_of(r)
    report(name + " -> " + (str(code) if code else "closed"), code in want or (0 in want and not r),
           repr(r[:80]))
    report("GET after " + name, get_ok())


report("GET /metrics", get_ok())
report("GET /api/status", get_ok("/api/status"))
report("GET /", get_ok("/"))
case("POST /metrics", b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
     {405})
case("DELETE /", b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {405})
case("PUT with a large body", b"PUT /api/status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
     b"Connection: close\r\n\r\n" + b"x" * 100000, {405, 413, 0})
case("unknown method FROB", b"FROB / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {405, 400, 501})
case("unknown path", b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404})
case("path traversal", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", {404, 400})
case("garbage bytes", bytes(range(256)) * 8 + b"\r\n\r\n", {400, 0})
case("no HTTP version", b"GET /\r\n\r\n", {400, 505, 0})
case("HTTP/9.9", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", {505, 400, 0})
case("request line of 1 MB", b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414, 400, 431, 0})
case("one header of 200 KB", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200000 + b"\r\n\r\n",
     {431, 400, 413, 0})
case("5000 headers", b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(5000)) + b"\r\n",
     {431, 400, 413, 0})
case("GET with a body", b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
     {200})
case("bad Content-Length", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -7\r\n\r\n", {400, 0})
case("chunked garbage", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", {405, 400, 0})

# slowloris: 20 clients each send a started request a byte at a time and
# never finish it; meanwhile normal GETs must answer
slow = []
for i in range(20):
    try:
        s = conn()
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    except OSError:
        pass
report("20 slow clients connected", len(slow) == 20, str(len(slow)))
good = 0
for round_ in range(4):
    for s in slow:
        try:
            s.sendall(b"X")
        except OSError:
            pass
    good += get_ok()
    time.sleep(0.5)
report("GET answers while 20 slow clients hold connections (4 of 4)", good == 4, str(good))
for s in slow:
    s.close()

# a burst of idle connections past the per-address limit: the ones over it
# are refused or closed, and once they go the endpoint serves again
burst = []
for i in range(80):
    try:
        burst.append(conn(2))
    except OSError:
        break
for s in burst:
    s.close()
time.sleep(0.5)
report("GET after a burst of %d idle connections" % len(burst), get_ok())

# a client that connects and closes at once, 200 times
for i in range(200):
    try:
        conn(2).close()
    except OSError:
        pass
report("GET after 200 connect-and-close", get_ok())
done()
