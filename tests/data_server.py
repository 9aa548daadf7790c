#!/usr/bin/python3
"""A loopback HTTP server for the tests of `usagi data get` (tests/cli/data.sh).

    /usr/bin/python3 tests/data_server.py ROOT PORT_FILE LOG_FILE

Serves the files under ROOT on 127.0.0.1 (a free port, written to PORT_FILE)
with HTTP Range support, and logs one line per request (path and Range header)
to LOG_FILE. Path prefixes inject the faults a download must survive:

    /cut/REL       sends half of the bytes it promised, then closes
    /corrupt/REL   the whole file with one byte changed
    /redirect/REL  a 302 to /REL
    /slow/REL      the file in 16 kB pieces, 50 ms apart (to interrupt)
    /norange/REL   ignores Range: always the whole file (200)
Anything missing is a 404. It only listens on the loopback interface.
"""
import http.server
import os
import re
import sys
import time

ROOT, PORT_FILE, LOG_FILE = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        with open(LOG_FILE, "a") as log:
            log.write("%s %s\n" % (self.path, self.headers.get("Range", "-")))
        path, mode = self.path, None
        m = re.match(r"^/(cut|corrupt|redirect|slow|norange)(/.*)$", path)
        if m:
            mode, path = m.group(1), m.group(2)
        if mode == "redirect":
            self.send_response(302)
            self.send_header("Location", path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        full = os.path.normpath(os.path.join(ROOT, path.lstrip("/")))
        if not full.startswith(os.path.normpath(ROOT) + os.sep) or not os.path.isfile(full):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        with open(full, "rb") as f:
            data = f.read()
        if mode == "corrupt":
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        start = 0
        r = mode != "norange" and re.match(r"^bytes=(\d+)-$", self.headers.get("Range", ""))
        if r:
            start = int(r.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        part = data[start:]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if mode == "slow":
            for i in range(0, len(part), 16384):
                self.wfile.write(part[i:i + 16384])
                self.wfile.flush()
                time.sleep(0.05)
            return
        self.wfile.write(part)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hangs up (an interrupted or cut download) is expected.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


server = Server(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.replace(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
