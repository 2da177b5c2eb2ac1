#!/usr/bin/python3
# tests/hvd_pty.py SOCKET LINK — stands in for QEMU's virtio-serial port in
# tests/hvd.sh: a pseudo-terminal in raw mode whose far end is connected to
# pxhvd's SOCKET (as QEMU connects to vm<ID>.sock), its path linked at
# LINK. Clients open LINK as a character device (pxrun --hvd-port), one
# after another, over the one long-lived stream. Holds the slave side open
# so the stream outlives every client, as a guest's port does.
import os, pty, select, socket, sys, tty

sock_path, link = sys.argv[1], sys.argv[2]
master, slave = pty.openpty()
tty.setraw(slave)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sock_path)
os.symlink(os.ttyname(slave), link)
while True:
    r, _, _ = select.select([master, c], [], [])
    if master in r:
        try:
            d = os.read(master, 65536)
        except OSError:
            d = b''
        if d:
            c.sendall(d)
    if c in r:
        d = c.recv(65536)
        if not d:
            break
        os.write(master, d)
