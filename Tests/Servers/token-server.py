#!/usr/bin/env python3
"""A bearer-token realm for docker-registry (its `auth: token:` configuration): on
127.0.0.1, on a port the kernel picks and that it prints as its first line, GET
/token?service=S&scope=repository:NAME:ACTIONS answers {"token": JWT} granting the
actions asked for, signed RS256 with KEY (through the openssl CLI) and naming CERT in
its x5c header, the certificate that the registry's rootcertbundle trusts.

It grants anonymous requests; with --user USER:PASSWORD it wants that basic auth.
Every request's path goes to stderr, one line each.

Usage: token-server.py KEY CERT ISSUER [--user USER:PASSWORD]
"""
import base64, http.server, json, subprocess, sys, time, urllib.parse

key, cert, issuer = sys.argv[1:4]
user = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--user" else None


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


with open(cert) as f:
    pem = f.read()
der = base64.b64decode("".join(l for l in pem.splitlines() if l and not l.startswith("-----")))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        print(self.path, file=sys.stderr, flush=True)
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path != "/token":
            return self.answer(404, {"error": "not found"})
        if user is not None:
            sent = self.headers.get("Authorization", "")
            if sent != "Basic " + base64.b64encode(user.encode()).decode():
                return self.answer(401, {"error": "credentials wanted"})
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": issuer, "sub": "", "aud": query.get("service", [""])[0], "exp": now + 3600,
                  "nbf": now - 60, "iat": now, "jti": str(now), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(),
                                   capture_output=True, check=True).stdout
        self.answer(200, {"token": signing + "." + b64(signature)})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
