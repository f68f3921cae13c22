#!/usr/bin/env python3
"""A journal collector for the tests: takes trunkgate's NDJSON batches over HTTP and misbehaves
on purpose, the way real collectors do.

    http_collector.py DIR TOKEN PLAN REJECT_SEQ

Listens on 127.0.0.1 (a free port, written to DIR/port). PLAN is a comma-separated list of what
to do with the first requests, one each: 500, 401, 301 (a redirect elsewhere, storing nothing),
429:SECONDS (with Retry-After),
slow:SECONDS (answer 200 that late), reset (close the connection halfway through the body), 200. Requests
after the plan get 200. A batch holding the record with seq REJECT_SEQ gets 400 every time.
Each request is logged to DIR/requests.log as `ACTION IDEMPOTENCY-KEY`; the records of every
batch answered 2xx (or answered too late) are appended to DIR/records.ndjson, decompressed.
"""
import gzip
import http.server
import json
import os
import socket
import struct
import sys
import threading
import time

DIR, TOKEN, PLAN, REJECT_SEQ = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
lock = threading.Lock()
served = 0


def log(action, key):
    with lock, open(os.path.join(DIR, "requests.log"), "a") as f:
        f.write(f"{action} {key}\n")


class Collector(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        global served
        with lock:
            action = PLAN[served] if served < len(PLAN) else "200"
            served += 1
        key = self.headers.get("Idempotency-Key", "")
        length = int(self.headers.get("Content-Length", "0"))
        if action == "reset":
            self.rfile.read(length // 2)
            log("reset", key)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        body = self.rfile.read(length)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            log("401", key)
            return self.answer(401)
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        lines = [l for l in body.split(b"\n") if l]
        if any(json.loads(l)["seq"] == REJECT_SEQ for l in lines):
            log("400", key)
            return self.answer(400)
        if action in ("500", "401"):
            log(action, key)
            return self.answer(int(action))
        if action == "301":
            log("301", key)
            return self.answer(301, {"Location": "http://127.0.0.1:9/elsewhere"})
        if action.startswith("429:"):
            log("429", key)
            return self.answer(429, {"Retry-After": action.split(":")[1]})
        if action.startswith("slow:"):
            time.sleep(float(action.split(":")[1]))
        with lock, open(os.path.join(DIR, "records.ndjson"), "ab") as f:
            f.write(b"\n".join(lines) + b"\n")
        log(action.split(":")[0], key)
        try:
            self.answer(200)
        except OSError:
            pass

    def answer(self, status, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
