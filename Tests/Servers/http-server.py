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

It is a proxy too: an absolute-form request (GET http://any/PATH) is answered from
ROOT as /PATH, and CONNECT any:PORT tunnels to 127.0.0.1:PORT.

Usage: http-server.py ROOT [--tls CERT KEY]
"""
import http.server, os, select, socket, ssl, sys, threading, time

root = sys.argv[1]


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

    def do_CONNECT(self):
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
        path = self.path
        if path.startswith("/status/"):
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
        elif path in ("/endless", "/announce-huge"):
            huge = path == "/announce-huge"
            self.wfile.write(b"HTTP/1.1 200 OK\r\n" + (b"Content-Length: 1125899906842624\r\n" if huge else b"") + b"\r\n")
            piece = b"\0" * 65536 if huge else b"no tar here " * 5462
            try:
                while True:
                    self.wfile.write(piece)
            except OSError:
                pass
            self.close_connection = True
        else:
            super().do_GET()


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
if len(sys.argv) == 5 and sys.argv[2] == "--tls":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
