#!/usr/bin/env python3
"""The tests' web server: serves ROOT on 127.0.0.1, on a port the kernel picks and
that it prints as its first line, plus paths that misbehave on purpose:

  /status/N            answers status N
  /redirect/PATH       302 to /PATH
  /redirect-loop       302 to itself, for ever
  /redirect-to/URL     302 to URL (absolute: another server, as a registry's blob storage)
  /headers             the request's header lines as the body
  /chunked/PATH        PATH with Transfer-Encoding: chunked
  /chunked-cut/PATH    the same without the last chunk, then closes
  /truncate/PATH       announces PATH's length, sends half, closes
  /stall               announces a body and sends nothing until the client leaves
  /endless             sends text without end and without a length
  /announce-huge       announces 1 PiB, then sends zeros until the client leaves
  /trickle             announces 1 MiB, then sends a byte every 0.2 s
  /trickle-head        sends its status line, then a byte of header every 0.2 s
  /huge-head           sends header fields without end
  /many-fields         sends 5,000 short header fields, then a body
  /endless-interim     sends `100 Continue` answers without end
  /endless-trailers    sends a chunked body, then trailer fields without end
  /endless-gzip        sends a gzip stream (stored, of random bytes) without end
  /v2/NAME/...         as /NAME for the names above: a registry's answer
  PATH, when PATH.endless is a file: that file's bytes, then zeros without end and
                       without a length; when the client leaves, --log gets a line
                       `SENT PATH BYTES` (how much the client let it send)
  /include/F/N/MAX     macros that --eval-url F URLs /include/F/N+1/MAX?I (I < F), while N < MAX

It is a proxy too: an absolute-form request (GET http://any/PATH) is answered from
ROOT as /PATH, and CONNECT any:PORT tunnels to 127.0.0.1:PORT.

Options: --tls CERT KEY serves https; --log FILE writes a line `METHOD PATH AUTH` for
each request (AUTH: `yes` when it carried an Authorization header, else `no`);
--challenge answers a request without Authorization with 401 and a Basic challenge, as
a registry does; --downgrade redirects a request with Authorization to the same host
and port over plain http; --trickle-tls answers a TLS handshake with the start of a
16 KiB record, a byte every 0.2 s.

Usage: http-server.py ROOT [--tls CERT KEY] [--log FILE] [--challenge] [--downgrade] [--trickle-tls]
"""
import http.server, os, select, socket, ssl, sys, threading, time, zlib

root = sys.argv[1]
options = sys.argv[2:]
tls = log = None
challenge = downgrade = trickle_tls = False
while options:
    option = options.pop(0)
    if option == "--tls":
        tls = (options.pop(0), options.pop(0))
    elif option == "--log":
        log = open(options.pop(0), "a", buffering=1)
    elif option == "--challenge":
        challenge = True
    elif option == "--downgrade":
        downgrade = True
    elif option == "--trickle-tls":
        trickle_tls = True
    else:
        sys.exit("unknown option " + option)
hostile = ("stall", "endless", "announce-huge", "trickle", "trickle-head", "huge-head", "many-fields",
           "endless-interim", "endless-trailers", "endless-gzip")


def endlessly(write):
    """Calls write until the client leaves."""
    try:
        while True:
            write()
    except OSError:
        pass


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)

    def log_message(self, *args):
        pass

    def file(self, path):
        with open(os.path.join(root, path.lstrip("/")), "rb") as f:
            return f.read()

    def raw(self, head, body=b""):
        self.wfile.write(head.encode() + b"\r\n\r\n" + body)
        self.wfile.flush()
        self.close_connection = True

    def handle(self):
        if trickle_tls and self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
            record = iter(b"\x16\x03\x03\x40\x00" + b"\0" * 16384)
            endlessly(lambda: (time.sleep(0.2), self.connection.sendall(bytes([next(record)]))))
            return
        super().handle()

    def do_CONNECT(self):
        if log:
            log.write("CONNECT %s no\n" % self.path)
        port = int(self.path.rsplit(":", 1)[1])
        upstream = socket.create_connection(("127.0.0.1", port))
        self.raw("HTTP/1.1 200 Connection established")
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [])
            for s in readable:
                data = s.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if s is self.connection else self.connection).sendall(data)

    def do_GET(self):
        if self.path.startswith("http://"):
            self.path = "/" + self.path.split("/", 3)[3]
        authorized = self.headers.get("Authorization") is not None
        if log:
            log.write("%s %s %s\n" % (self.command, self.path, "yes" if authorized else "no"))
        parts = self.path.split("/")
        if len(parts) > 3 and parts[1] == "v2" and parts[2] in hostile:
            self.path = "/" + parts[2]
        path = self.path
        if challenge and not authorized:
            self.raw('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="plash-test"\r\nContent-Length: 0')
        elif downgrade and authorized:
            self.raw("HTTP/1.1 302 Found\r\nLocation: http://" + self.headers.get("Host") + path + "\r\nContent-Length: 0")
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            self.send_error(code)
        elif path.startswith("/redirect/"):
            self.raw("HTTP/1.1 302 Found\r\nLocation: /" + path[len("/redirect/"):] + "\r\nContent-Length: 0")
        elif path.startswith("/redirect-to/"):
            self.raw("HTTP/1.1 302 Found\r\nLocation: " + path[len("/redirect-to/"):] + "\r\nContent-Length: 0")
        elif path == "/headers":
            self.raw("HTTP/1.1 200 OK\r\nContent-Length: %d" % len(bytes(self.headers)), bytes(self.headers))
        elif path == "/redirect-loop":
            self.raw("HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0")
        elif path.startswith("/chunked/") or path.startswith("/chunked-cut/"):
            data = self.file(path.split("/", 2)[2])
            body = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(data[i:i + 7]), data[i:i + 7]) for i in range(0, len(data), 7))
            if path.startswith("/chunked/"):
                body += b"0\r\nX-Trailer: yes\r\n\r\n"
            self.raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", body)
        elif path.startswith("/truncate/"):
            data = self.file(path[len("/truncate/"):])
            self.raw("HTTP/1.1 200 OK\r\nContent-Length: %d" % len(data), data[:len(data) // 2])
        elif path == "/stall":
            self.raw("HTTP/1.1 200 OK\r\nContent-Length: 10")
            self.connection.recv(1)   # returns when the client closes
        elif os.path.isfile(os.path.join(root, path.lstrip("/")) + ".endless"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\n\r\n")
            sent = [0]
            def send(piece):
                self.wfile.write(piece)
                sent[0] += len(piece)
            endlessly(lambda: send(self.file(path + ".endless")) if sent[0] == 0 else send(b"\0" * 65536))
            if log:
                log.write("SENT %s %d\n" % (path, sent[0]))
            self.close_connection = True
        elif path.startswith("/include/"):
            fanout, n, most = (int(word) for word in path.split("?")[0].split("/")[2:5])
            host = "http://" + self.headers.get("Host")
            body = "".join("--eval-url %s/include/%d/%d/%d?%d\n" % (host, fanout, n + 1, most, i)
                           for i in range(fanout)) if n < most else "--run\ntrue\n"
            self.raw("HTTP/1.1 200 OK\r\nContent-Length: %d" % len(body), body.encode())
        elif path in ("/endless", "/announce-huge"):
            huge = path == "/announce-huge"
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: 1125899906842624\r\n" if huge else b"") + b"\r\n")
            piece = b"\0" * 65536 if huge else b"no tar here " * 5462
            endlessly(lambda: self.wfile.write(piece))
            self.close_connection = True
        elif path in ("/trickle", "/trickle-head"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: 1048576\r\n\r\n" if path == "/trickle" else b"X-Slow: "))
            self.wfile.flush()
            endlessly(lambda: (time.sleep(0.2), self.wfile.write(b"x"), self.wfile.flush()))
            self.close_connection = True
        elif path == "/huge-head":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            endlessly(lambda: self.wfile.write(b"X-Field: " + b"y" * 1000 + b"\r\n"))
            self.close_connection = True
        elif path == "/many-fields":
            self.raw("HTTP/1.1 200 OK\r\n" + "".join("X-%d: y\r\n" % n for n in range(5000)) + "Content-Length: 2", b"ok")
        elif path == "/endless-interim":
            endlessly(lambda: self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n"))
            self.close_connection = True
        elif path == "/endless-gzip":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n\r\n")
            stream = zlib.compressobj(0, zlib.DEFLATED, 31)
            endlessly(lambda: self.wfile.write(stream.compress(os.urandom(65536))))
            self.close_connection = True
        elif path == "/endless-trailers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n")
            endlessly(lambda: self.wfile.write(b"X-Trailer: " + b"z" * 1000 + b"\r\n"))
            self.close_connection = True
        else:
            super().do_GET()

    def do_POST(self):
        """The hostile paths answer a POST as a GET (a registry's upload that never
        ends); any other path refuses it."""
        parts = self.path.split("/")
        if len(parts) > 3 and parts[1] == "v2" and parts[2] in hostile:
            self.do_GET()
        else:
            self.send_error(501)



class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        """With --tls, a connection that starts with a TLS handshake is https, any other
        plain http: one port for both, so that https://H:P can redirect to http://H:P."""
        connection, address = self.socket.accept()
        if tls and connection.recv(1, socket.MSG_PEEK) == b"\x16":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            connection = context.wrap_socket(connection, server_side=True)
        return connection, address


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
