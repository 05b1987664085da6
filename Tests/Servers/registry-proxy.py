#!/usr/bin/env python3
"""A registry that misbehaves on purpose: on 127.0.0.1, on a port the kernel picks and
that it prints as its first line, it passes every request to the registry on
127.0.0.1:UPSTREAM (Host header unchanged, so the Locations the registry writes point
back here) and its answer back, except where a rule says otherwise.

A rule METHOD:N:STATUS answers the Nth request of METHOD (counted from 1; 0: every one)
with STATUS and an empty body, after reading the request's body, without passing it on;
METHOD:N:STATUS! answers at once and closes, the body unread (a proxy that caps bodies).
METHOD:N:host=NAME passes the request on, and in the answer's Location puts NAME for
the host (port kept): the registry sends the client elsewhere, here `localhost`, which is
still this proxy. METHOD:N:realm=URL answers 401 with a Bearer challenge whose realm is
URL: a token server of the test's choosing. With --log FILE, each request is a line `METHOD HOST PATH AUTH` there,
AUTH `yes` when it carried an Authorization header, else `no`.

Usage: registry-proxy.py [--log FILE] UPSTREAM [RULE...]   e.g. PATCH:0:405, PUT:2:413!, POST:0:host=localhost
"""
import http.client, http.server, re, sys, threading

arguments = sys.argv[1:]
log = None
if arguments[:1] == ["--log"]:
    log = open(arguments[1], "a", buffering=1)
    arguments = arguments[2:]
upstream = int(arguments[0])
rules = []
for method, n, action in (rule.split(":", 2) for rule in arguments[1:]):
    if action.startswith("host=") or action.startswith("realm="):
        rules.append((method, int(n), action, False))
    else:
        rules.append((method, int(n), int(action.rstrip("!")), action.endswith("!")))
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def handle_one(self):
        with lock:
            counts[self.command] = counts.get(self.command, 0) + 1
            number = counts[self.command]
        if log:
            log.write("%s %s %s %s\n" % (self.command, self.headers.get("Host"), self.path,
                                         "yes" if self.headers.get("Authorization") else "no"))
        rule = next((r for r in rules if r[0] == self.command and r[1] in (0, number)), None)
        if rule is None or not rule[3]:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        host = None
        if rule is not None and rule[2] == str(rule[2]) and rule[2].startswith("realm="):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="%s",service="proxy"' % rule[2][len("realm="):])
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        if rule is not None and rule[2] == str(rule[2]):
            host, rule = rule[2][len("host="):], None
        if rule is not None:
            self.send_response(rule[2])
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        connection.request(self.command, self.path, body=body, headers=headers)
        answer = connection.getresponse()
        data = answer.read()
        self.send_response(answer.status, answer.reason)
        for k, v in answer.getheaders():
            if k.lower() not in ("connection", "content-length", "transfer-encoding", "date", "server"):
                if host and k.lower() == "location":
                    v = re.sub(r"^(https?://)[^/:]+", lambda m: m.group(1) + host, v)
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
