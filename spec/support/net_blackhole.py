#!/usr/bin/python3
"""net_blackhole.py PORTFILE: a TCP listener that never accepts, its queue filled, so a new
connect hangs in SYN_SENT (the kernel drops the SYNs). Writes "PORT PID"; lives 20 s at most.
For spec/net_loop_spec.lua's connect_timeout case."""
import os
import socket
import sys
import time

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(0)
port = srv.getsockname()[1]
fill = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)
time.sleep(0.2)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d %d\n" % (port, os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(20)
