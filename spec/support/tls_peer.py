#!/usr/bin/python3
"""tls_peer.py -- odd TLS peers for the TLS specs (Python's ssl module, a real socket).

  tls_peer.py server CERT KEY [ALPN,...]   a TLS server selecting only the given ALPN protocols
                                           (none: no ALPN at all); prints "listening on PORT",
                                           then one line per handshake: "alpn=<selected>" or
                                           "error=<reason>"; runs until killed or 20 s pass
  tls_peer.py client PORT CA ALPN,...      a TLS client offering only these ALPN protocols;
                                           prints "ok alpn=<selected>" or "error=<reason>"
  tls_peer.py silent PORT                  connects, sends nothing, prints "eof after S" when
                                           the server closes (or "no eof" after 10 s)
"""
import socket
import ssl
import sys
import threading
import time


def server(cert, key, alpn):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn.split(","))
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print("listening on %d" % ls.getsockname()[1], flush=True)
    ls.settimeout(20)

    def serve(conn):
        try:
            tconn = ctx.wrap_socket(conn, server_side=True)
            print("alpn=%s" % tconn.selected_alpn_protocol(), flush=True)
            tconn.settimeout(5)
            try:
                tconn.recv(100)
            except Exception:
                pass
            tconn.close()
        except Exception as e:  # the client refusing us
            print("error=%s" % e, flush=True)
            conn.close()

    while True:
        try:
            conn, _ = ls.accept()
        except socket.timeout:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def client(port, ca, alpn):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(alpn.split(","))
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
    try:
        t = ctx.wrap_socket(s, server_hostname="localhost")
        # TLS 1.3: a server's refusal may come after our side of the handshake
        t.settimeout(2)
        try:
            data = t.recv(100)
        except ssl.SSLError as e:
            print("error=%s" % (e.reason or e), flush=True)
            return
        except socket.timeout:
            data = b"?"
        print("ok alpn=%s" % t.selected_alpn_protocol(), flush=True)
    except ssl.SSLError as e:
        print("error=%s" % (e.reason or e), flush=True)


def silent(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    t0 = time.monotonic()
    try:
        data = s.recv(100)
        print("eof after %.2f%s" % (time.monotonic() - t0, "" if not data else " (data)"), flush=True)
    except socket.timeout:
        print("no eof", flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        server(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    elif mode == "client":
        client(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        silent(sys.argv[2])
