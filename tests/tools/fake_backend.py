#!/usr/bin/python3
"""fake_backend.py: a scriptable HTTP/1.1 backend for hotspan's exporter tests.

Standard library only (Debian's /usr/bin/python3). One thread per
connection; HTTP/1.1 keep-alive; request bodies with Content-Length or
Transfer-Encoding: chunked; "Expect: 100-continue" is answered.

Usage:
  fake_backend.py [--port N] [--unix PATH] [--record DIR] [--mode MODE]
                  [--body TEXT]

  --port N     TCP port on 127.0.0.1 (default 0: the kernel picks one).
               Once listening, prints one line "PORT <n>" on stdout
               (flushed); read it before sending anything.
  --unix PATH  also listen on a Unix socket at PATH (replaced if it exists).
  --record DIR write every received request (except the /__ control paths)
               to DIR: NNNNNN.body (raw body, de-chunked) and then
               NNNNNN.json {"seq", "method", "path", "query", "headers":
               [[name, value], ...], "body_file", "body_len", "time"} (the
               .json appears atomically after the body is complete; NNNNNN
               counts from 000001 in arrival order).
  --mode MODE  initial answer mode (default "ok"), see below.
  --body TEXT  response body of mode "ok" (default "{}").

Modes:
  ok                       200 with the --body text (application/json)
  status:<code>            that status, body {"status": code}
  status:<code>:<retry>    same, with "Retry-After: <retry>" (seconds or an
                           HTTP date, sent as given)
  blackhole                read the request, never answer (the connection
                           stays open until the client closes it)
  slow:<ms>                200 like ok, after <ms> milliseconds
  close                    read the request, close without answering
  <mode>*<n>               <mode> for the next n requests, then back to ok

Control (not counted, not recorded):
  POST /__mode   body = a mode string; answers 200 "ok" or 400.
  GET  /__stats  JSON: {"requests": total, "connections": accepted
                 connections, "bytes": total body bytes, "paths": {path:
                 count}, "status": {"200": n, "none": unanswered}, "mode":
                 current mode, "log": [{"path", "time", "status",
                 "connection"} for the last 1000 requests]}. "time" is
                 time.monotonic() of the request's arrival (same clock as
                 CLOCK_MONOTONIC on Linux).

A server that is down is simply no server on the port. The process runs
until it is killed (SIGTERM or SIGINT).
"""

import argparse
import http.server
import json
import os
import select
import socket
import socketserver
import sys
import threading
import time

LOCK = threading.Lock()
STATE = {
    "mode": "ok",
    "remaining": None,  # requests left in a "<mode>*<n>" mode
    "body": b"{}",
    "record": None,
    "seq": 0,
    "requests": 0,
    "connections": 0,
    "bytes": 0,
    "paths": {},
    "status": {},
    "log": [],
}


def parse_mode(text):
    """Returns (mode, remaining) or raises ValueError."""
    text = text.strip()
    remaining = None
    if "*" in text:
        text, n = text.rsplit("*", 1)
        remaining = int(n)
        if remaining < 0:
            raise ValueError("negative count")
    if text in ("ok", "blackhole", "close"):
        return text, remaining
    if text.startswith("slow:"):
        if int(text[5:]) < 0:
            raise ValueError("negative delay")
        return text, remaining
    if text.startswith("status:"):
        parts = text.split(":", 2)
        code = int(parts[1])
        if code < 100 or code > 999:
            raise ValueError("bad status")
        return text, remaining
    raise ValueError("unknown mode " + text)


def take_mode():
    """The mode for one request (counts down a "*n" mode)."""
    with LOCK:
        mode = STATE["mode"]
        if STATE["remaining"] is not None:
            if STATE["remaining"] <= 0:
                STATE["mode"], STATE["remaining"] = "ok", None
                mode = "ok"
            else:
                STATE["remaining"] -= 1
                if STATE["remaining"] == 0:
                    STATE["mode"], STATE["remaining"] = "ok", None
        return mode


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_backend/1"

    def setup(self):
        super().setup()
        with LOCK:
            STATE["connections"] += 1
            self.conn_id = STATE["connections"]

    def log_message(self, fmt, *args):  # quiet: tests read stdout
        pass

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("truncated chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    return bytes(out)
                data = self.rfile.read(size)
                if len(data) != size:
                    raise ConnectionError("truncated chunk")
                out += data
                self.rfile.readline(3)  # CRLF after the chunk
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n > 0 else b""
        if len(data) != n:
            raise ConnectionError("truncated body")
        return data

    def answer(self, code, body, ctype="application/json", extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def control(self, path, body):
        if path == "/__mode" and self.command == "POST":
            try:
                mode, remaining = parse_mode(body.decode("utf-8", "replace"))
            except ValueError as e:
                self.answer(400, str(e).encode(), "text/plain")
                return
            with LOCK:
                STATE["mode"], STATE["remaining"] = mode, remaining
            self.answer(200, b"ok", "text/plain")
        elif path == "/__stats":
            with LOCK:
                s = {k: STATE[k] for k in ("requests", "connections", "bytes",
                                           "paths", "status", "mode")}
                s["log"] = list(STATE["log"])
                data = json.dumps(s).encode()
            self.answer(200, data)
        else:
            self.answer(404, b"{}")

    def record(self, seq, path, query, body, now):
        d = STATE["record"]
        if d is None:
            return
        base = os.path.join(d, "%06d" % seq)
        with open(base + ".body", "wb") as f:
            f.write(body)
        meta = {
            "seq": seq, "method": self.command, "path": path,
            "query": query, "headers": [[k, v] for k, v in
                                        self.headers.items()],
            "body_file": os.path.basename(base + ".body"),
            "body_len": len(body), "time": now,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")

    def wait_for_close(self):
        """Blackhole: hold the connection, never answer, until the client
        goes away (or the server stops)."""
        sock = self.connection
        while True:
            r, _, _ = select.select([sock], [], [], 1.0)
            if r:
                try:
                    if not sock.recv(65536):
                        return
                except OSError:
                    return

    def handle_any(self):
        now = time.monotonic()
        path, _, query = self.path.partition("?")
        try:
            body = self.read_body()
        except (ConnectionError, ValueError):
            self.close_connection = True
            return
        if path.startswith("/__"):
            self.control(path, body)
            return
        mode = take_mode()
        with LOCK:
            STATE["seq"] += 1
            seq = STATE["seq"]
            STATE["requests"] += 1
            STATE["bytes"] += len(body)
            STATE["paths"][path] = STATE["paths"].get(path, 0) + 1
        self.record(seq, path, query, body, now)
        status = None
        if mode == "blackhole":
            self.log_request_done(path, now, None)
            self.wait_for_close()
            self.close_connection = True
            return
        if mode == "close":
            self.log_request_done(path, now, None)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode.startswith("slow:"):
            time.sleep(int(mode[5:]) / 1000.0)
            mode = "ok"
        if mode == "ok":
            status = 200
            self.log_request_done(path, now, status)
            self.answer(200, STATE["body"])
            return
        parts = mode.split(":", 2)
        status = int(parts[1])
        extra = [("Retry-After", parts[2])] if len(parts) > 2 else []
        self.log_request_done(path, now, status)
        self.answer(status, json.dumps({"status": status}).encode(),
                    extra=extra)

    def log_request_done(self, path, now, status):
        with LOCK:
            key = str(status) if status is not None else "none"
            STATE["status"][key] = STATE["status"].get(key, 0) + 1
            STATE["log"].append({"path": path, "time": now,
                                 "status": status,
                                 "connection": self.conn_id})
            del STATE["log"][:-1000]

    do_POST = do_PUT = do_GET = do_DELETE = do_PATCH = handle_any

    def address_string(self):
        ca = self.client_address
        return ca[0] if isinstance(ca, tuple) and ca else "unix"


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 128

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("unix", 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--unix")
    ap.add_argument("--record")
    ap.add_argument("--mode", default="ok")
    ap.add_argument("--body", default="{}")
    a = ap.parse_args()
    try:
        STATE["mode"], STATE["remaining"] = parse_mode(a.mode)
    except ValueError as e:
        ap.error("bad --mode: %s" % e)
    STATE["body"] = a.body.encode()
    if a.record:
        os.makedirs(a.record, exist_ok=True)
        STATE["record"] = a.record
    servers = [TCPServer(("127.0.0.1", a.port), Handler)]
    if a.unix:
        try:
            os.unlink(a.unix)
        except FileNotFoundError:
            pass
        servers.append(UnixServer(a.unix, Handler))
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    sys.stdout.write("PORT %d\n" % servers[0].server_address[1])
    sys.stdout.flush()
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
