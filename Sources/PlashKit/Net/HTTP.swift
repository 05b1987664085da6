#if canImport(Glibc)
import Glibc
#endif
import CTLS
import FoundationEssentials
import PlashSystem

// A small HTTP/1.1 client over sockets and OpenSSL, for the commands that download
// (docs/http.md tells why not a library): GET and HEAD, and the uploads of plash push;
// one connection per request, redirects, timeouts, HTTP(S)_PROXY and NO_PROXY, chunked
// and Content-Length bodies.

/// An http or https URL: where to connect and what to ask for.
public struct WebAddress: Equatable, Sendable, CustomStringConvertible {
    public var scheme: String   // "http" or "https"
    public var host: String     // an IPv6 address without its brackets
    public var port: Int
    public var target: String   // the path and query, starting with "/"

    public init(_ text: String) throws {
        let invalid = PlashError.failure("\(text): not an http or https URL")
        guard let colon = text.firstRange(of: "://") else { throw invalid }
        scheme = text[..<colon.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { throw invalid }
        var rest = text[colon.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        target = rest[authorityEnd...].isEmpty ? "/" : String(rest[authorityEnd...])
        if target.hasPrefix("?") { target = "/" + target }
        guard !authority.contains("@") else {
            throw PlashError.failure("\(text): credentials in URLs are not supported")
        }
        var portText: Substring = ""
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            authority = authority[authority.index(after: close)...]
            guard authority.isEmpty || authority.hasPrefix(":") else { throw invalid }
            portText = authority.dropFirst()
        } else if let portColon = authority.firstIndex(of: ":") {
            host = String(authority[..<portColon])
            portText = authority[authority.index(after: portColon)...]
        } else {
            host = String(authority)
        }
        if portText.isEmpty {
            port = scheme == "https" ? 443 : 80
        } else {
            guard let number = Int(portText), (1...65535).contains(number) else { throw invalid }
            port = number
        }
        guard !host.isEmpty, host.allSatisfy({ !$0.isWhitespace }), target.allSatisfy({ !$0.isWhitespace }) else {
            throw invalid
        }
    }

    var isDefaultPort: Bool { port == (scheme == "https" ? 443 : 80) }

    /// host:port as the Host header and CONNECT want it.
    var authority: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return isDefaultPort ? name : "\(name):\(port)"
    }

    public var description: String { "\(scheme)://\(authority)\(target)" }

    /// Where a redirect's Location points, relative to this address.
    public func resolving(_ location: String) throws -> WebAddress {
        if location.contains("://") { return try WebAddress(location) }
        if location.hasPrefix("//") { return try WebAddress(scheme + ":" + location) }
        var resolved = self
        if location.hasPrefix("/") {
            resolved.target = location
        } else {
            let path = target.prefix { $0 != "?" }
            resolved.target = path[...(path.lastIndex(of: "/") ?? path.startIndex)] + location
        }
        return resolved
    }
}

/// A usage error unless `url` is an http or https URL plash can fetch.
public func checkURL(_ url: String, usage: String) throws {
    do { _ = try WebAddress(url) } catch let error as PlashError { throw PlashError.usage(error.reason ?? url, usage: usage) }
}

/// GETs `url` and hands its body to `body` piece by piece, following up to 10 redirects.
/// `progress` gets the bytes received so far and the total when the server told it.
/// No data for `timeout` seconds (or no connection within it) is an error, as is any
/// status but 2xx and a body shorter than announced.
public func httpGet(_ url: String, timeout: Int = httpTimeout, progress: ((Int64, Int64?) -> Void)? = nil,
                   body: (UnsafeRawBufferPointer) throws -> Void) throws {
    let head = try httpRequest(url, timeout: timeout, progress: progress, body: body)
    guard (200..<300).contains(head.status) else { throw PlashError.failure("HTTP \(head.status) \(head.reason)") }
}

/// What a request answered: its status and header fields (lowercased names).
public struct HTTPAnswer: Sendable {
    public var status: Int
    public var reason: String
    public var fields: [String: String]
}

/// GETs (HEADs, or with `upload` PUTs, POSTs or PATCHes: `size` bytes of the file from
/// `offset`, read afresh for each redirect) `url` with extra header lines (`Name: value`), following
/// up to 10 redirects; a 2xx body goes to `body`, any other status is returned with its body
/// unread, for the caller to tell (a registry's 401 asks for credentials). An
/// Authorization header goes only to the scheme, host and port it was meant for, never to
/// where a redirect points (a registry sends blobs to storage elsewhere), and never over
/// plain http but to this machine (`mayCarryCredentials`).
public func httpRequest(_ url: String, method: String = "GET", headers: [String] = [],
                        upload: (fd: Int32, offset: Int64, size: Int64)? = nil, timeout: Int = httpTimeout,
                        progress: ((Int64, Int64?) -> Void)? = nil,
                        body: (UnsafeRawBufferPointer) throws -> Void) throws -> HTTPAnswer {
    // A server that closes early makes a write raise SIGPIPE; a handler (not SIG_IGN,
    // which build steps would inherit through exec) turns it into EPIPE.
    signal(SIGPIPE, { _ in })
    var address = try WebAddress(url)
    let origin = address.scheme + "://" + address.authority
    for _ in 0..<10 {
        let proxy = try proxyAddress(for: address)
        let connection = try HTTPConnection(address, through: proxy, timeout: timeout)
        defer { connection.close() }
        let target = proxy != nil && address.scheme == "http" ? address.description : address.target
        let extra = headers.filter {
            !$0.lowercased().hasPrefix("authorization:")
                || address.scheme + "://" + address.authority == origin && mayCarryCredentials(address, proxy: proxy)
        }
        let accept = headers.contains { $0.lowercased().hasPrefix("accept:") } ? "" : "Accept: */*\r\n"
        let length = upload.map { "Content-Length: \($0.size)\r\n" } ?? (["POST", "PUT"].contains(method) ? "Content-Length: 0\r\n" : "")
        try connection.send("\(method) \(target) HTTP/1.1\r\nHost: \(address.authority)\r\nUser-Agent: plash\r\n" + accept + length
                            + extra.map { $0 + "\r\n" }.joined() + "Accept-Encoding: identity\r\nConnection: close\r\n\r\n")
        // A server may answer (413 Payload Too Large, say) and close before it read the
        // whole body; the kernel keeps its answer for us to read, and it says more than
        // the reset that the rest of the body met. (A stalled one is not waited for twice.)
        var unsent: PlashError?
        if let upload {
            do {
                try connection.send(file: upload.fd, offset: upload.offset, size: upload.size, progress: progress)
            } catch let error as PlashError where error.errno == EPIPE || error.errno == ECONNRESET {
                unsent = error
            }
        }
        let head: ResponseHead
        do { head = try connection.readHead() } catch { throw unsent ?? error }
        if let unsent, head.status < 400 { throw unsent }
        if [301, 302, 303, 307, 308].contains(head.status), let location = head.fields["location"] {
            address = try address.resolving(location)
            continue
        }
        let answer = HTTPAnswer(status: head.status, reason: head.reason, fields: head.fields)
        if (200..<300).contains(head.status) && method != "HEAD" {
            try connection.readBody(head, progress: upload == nil ? progress : nil, body: body)
        }
        return answer
    }
    throw PlashError.failure("more than 10 redirects")
}

/// The whole body of `url`, at most `limit` bytes (see BoundedBody).
public func httpGet(_ url: String, limit: Int) throws -> [UInt8] {
    var body = BoundedBody(nil, limit: limit)
    try httpGet(url) { try body.append($0) }
    return body.bytes
}

/// An answer read into memory (a manifest, a config, a token, an index, a checksum list,
/// a Plashfile): at most `limit` bytes, or what $PLASH_HTTP_MAX_MEMORY says, so that an
/// endless or oversized answer fails at the limit instead of filling the memory. The
/// one place that collects a body in memory.
public struct BoundedBody {
    public private(set) var bytes: [UInt8] = []
    let what: String?
    let limit: Int

    public init(_ what: String?, limit: Int) {
        self.what = what
        self.limit = numberSetting("PLASH_HTTP_MAX_MEMORY").map { max($0, 0) } ?? limit
    }

    public mutating func append(_ piece: UnsafeRawBufferPointer) throws {
        guard bytes.count + piece.count <= limit else {
            throw PlashError.failure((what.map { $0 + ": " } ?? "") + "larger than \(byteCount(Int64(limit)))")
                .advising("PLASH_HTTP_MAX_MEMORY=BYTES raises the limit")
        }
        bytes += piece
    }
}

/// Seconds without progress before a download fails: $PLASH_HTTP_TIMEOUT, else 60.
public var httpTimeout: Int { numberSetting("PLASH_HTTP_TIMEOUT").map { max($0, 1) } ?? 60 }

/// The slowest transfer allowed, in bytes a second over each `httpTimeout` seconds:
/// $PLASH_HTTP_MIN_RATE, else 1024; 0 allows any. A server that trickles a byte now and
/// then never leaves a read waiting `httpTimeout` seconds, and would hold plash for ever.
var httpMinimumRate: Int { numberSetting("PLASH_HTTP_MIN_RATE").map { max($0, 0) } ?? 1024 }

/// The most bytes of a response's head (status line, header fields, and any 1xx answers
/// and chunked trailers with it): $PLASH_HTTP_MAX_HEAD, else 256 KiB; and at most
/// `maximumHeaderFields` fields. (curl allows 300 KiB, Go 10 MiB; real heads are a few KiB.)
var httpHeadLimit: Int { numberSetting("PLASH_HTTP_MAX_HEAD").map { max($0, 1024) } ?? 256 << 10 }
let maximumHeaderFields = 1000

/// Whether `host` (a URL's, IPv6 without brackets) is this machine's loopback: the name
/// `localhost`, an address in 127.0.0.0/8, or ::1 (also as ::ffff:127.x.y.z). Addresses
/// as inet_pton reads them, whole: `127.evil.example` is a name anyone may own.
public func isLoopback(_ host: String) -> Bool {
    let name = host.lowercased()
    if name == "localhost" || name == "localhost." { return true }
    var v4 = in_addr()
    if inet_pton(AF_INET, name, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, name, &v6) == 1 else { return false }
    let bytes = withUnsafeBytes(of: &v6) { Array($0) }
    if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
    return bytes[..<12].elementsEqual([UInt8](repeating: 0, count: 10) + [0xff, 0xff]) && bytes[12] == 127
}

/// Whether credentials (an Authorization header) may go to `address`: over https, or
/// over plain http only straight to this machine's loopback. Through a proxy, plain http
/// would hand them to the proxy and the network on its way.
public func mayCarryCredentials(_ address: WebAddress, proxy: WebAddress?) -> Bool {
    address.scheme == "https" || (proxy == nil && isLoopback(address.host))
}

/// The proxy that HTTP_PROXY or HTTPS_PROXY (either case) names for `address`, unless
/// NO_PROXY lists its host: `*`, or names matched as a domain suffix (`example.com`
/// and `.example.com` both match `a.example.com`).
func proxyAddress(for address: WebAddress) throws -> WebAddress? {
    let names = address.scheme == "https" ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy", "HTTP_PROXY"]
    guard let value = names.lazy.compactMap(environment).first(where: { !$0.isEmpty }) else { return nil }
    let bypass = (environment("no_proxy") ?? environment("NO_PROXY") ?? "").split(separator: ",")
    let host = address.host.lowercased()
    for entry in bypass.map({ trimmed($0).lowercased() }) where !entry.isEmpty {
        if entry == "*" { return nil }
        var domain = entry.hasPrefix(".") ? String(entry.dropFirst()) : entry
        if !domain.hasPrefix("["), let colon = domain.lastIndex(of: ":"), !domain[..<colon].contains(":") {
            domain = String(domain[..<colon])   // a port: every port of the host
        }
        if domain.hasPrefix("["), domain.hasSuffix("]") { domain = String(domain.dropFirst().dropLast()) }
        if host == domain || host.hasSuffix("." + domain) { return nil }
    }
    let proxy = try WebAddress(value.contains("://") ? value : "http://" + value)
    guard proxy.scheme == "http" else { throw PlashError.failure("proxy \(value): only http:// proxies are supported") }
    return proxy
}

struct ResponseHead {
    var status: Int
    var reason: String
    var fields: [String: String]   // lowercased names; a repeated field keeps its last value
}

/// One connection, plain or TLS, with a read buffer for the head and chunk lines.
final class HTTPConnection {
    private let fd: Int32
    private var tls: OpaquePointer?
    private let timeout: Int
    private var buffer = [UInt8](repeating: 0, count: 65536)
    private var start = 0, end = 0
    private let peer: String
    /// The bytes received since `windowStart`: each `timeout` seconds must bring
    /// `httpMinimumRate` a second (see countReceived).
    private var windowStart = monotonicSeconds()
    private var windowBytes = 0
    private let minimumRate = httpMinimumRate
    /// What is left of the head's bytes and fields (the head of a CONNECT answer and of
    /// the response, 1xx answers and chunked trailers).
    private var headBytesLeft = httpHeadLimit
    private var headFieldsLeft = maximumHeaderFields

    init(_ address: WebAddress, through proxy: WebAddress?, timeout: Int) throws {
        let hop = proxy ?? address
        peer = hop.authority
        self.timeout = timeout
        do {
            fd = try connectSocket(hop, timeout: timeout)
        } catch where proxy != nil {
            // http_proxy=garbage: the name that does not resolve is the proxy's, not the URL's.
            throw error.context("proxy")
        }
        do {
            if proxy != nil, address.scheme == "https" {
                try send("CONNECT \(address.authority) HTTP/1.1\r\nHost: \(address.authority)\r\n\r\n")
                let head = try readHead()
                guard (200..<300).contains(head.status) else {
                    throw PlashError.failure("proxy \(peer): CONNECT \(address.authority): HTTP \(head.status) \(head.reason)")
                }
            }
            if address.scheme == "https" { try startTLS(address.host) }
        } catch {
            close()
            throw error
        }
    }

    func close() {
        if let tls { SSL_free(tls) }
        tls = nil
        if fd >= 0 { Glibc.close(fd) }
    }

    private func startTLS(_ host: String) throws {
        guard let context = tlsContext else { throw PlashError.failure("TLS setup: \(tlsErrorText())") }
        guard let ssl = SSL_new(context) else { throw PlashError.failure("TLS setup: \(tlsErrorText())") }
        tls = ssl
        guard plash_tls_expect_host(ssl, host) == 1, SSL_set_fd(ssl, fd) == 1 else {
            throw PlashError.failure("TLS setup for \(host): \(tlsErrorText())")
        }
        // Non-blocking, so that the handshake as a whole is bounded by `timeout`: a server
        // that trickles its certificate a byte at a time passes each read's SO_RCVTIMEO.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        let deadline = monotonicSeconds() + Double(timeout)
        while true {
            ERR_clear_error()
            let result = SSL_connect(ssl)
            if result == 1 { return }
            let wanted = SSL_get_error(ssl, result)
            guard wanted == SSL_ERROR_WANT_READ || wanted == SSL_ERROR_WANT_WRITE else {
                let verified = SSL_get_verify_result(ssl)
                let why = verified != X509_V_OK ? "certificate verify failed: " + String(cString: X509_verify_cert_error_string(verified))
                                                : tlsFailure(ssl, result)
                throw PlashError.failure("TLS handshake with \(peer): \(why)")
            }
            let left = deadline - monotonicSeconds()
            guard left > 0 else { throw PlashError.failure("TLS handshake with \(peer): not done within \(timeout) s, timed out") }
            var waiting = pollfd(fd: fd, events: Int16(wanted == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), revents: 0)
            if poll(&waiting, 1, Int32(left * 1000) + 1) < 0 && errno != EINTR { throw PlashError.system("poll", peer) }
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)[...]) }

    /// `size` bytes of the file from `offset`; progress counts from the request's start.
    func send(file fd: Int32, offset: Int64, size: Int64, progress: ((Int64, Int64?) -> Void)?) throws {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var sent: Int64 = 0
        while sent < size {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(min(Int64($0.count), size - sent)), off_t(offset + sent)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw n == 0 ? PlashError.failure("a file shorter than \(size) bytes") : PlashError.system("read", "the upload") }
            try send(chunk[0..<n])
            sent += Int64(n)
            progress?(sent, size)
        }
    }

    func send(_ data: ArraySlice<UInt8>) throws {
        var bytes = data
        while !bytes.isEmpty {
            let n: Int = bytes.withUnsafeBytes { raw in
                if let tls {
                    ERR_clear_error()
                    return Int(SSL_write(tls, raw.baseAddress, Int32(raw.count)))
                }
                return Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 {
                if tls == nil && errno == EINTR { continue }
                throw transferError(n, "send to")
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Reads into the buffer when it is empty; false at the end of the stream.
    private func fill() throws -> Bool {
        if start < end { return true }
        start = 0
        while true {
            let n: Int = buffer.withUnsafeMutableBytes { raw in
                if let tls {
                    ERR_clear_error()
                    return Int(SSL_read(tls, raw.baseAddress, Int32(raw.count)))
                }
                return Glibc.read(fd, raw.baseAddress, raw.count)
            }
            if n > 0 {
                end = n
                try countReceived(n)
                return true
            }
            end = 0
            if n == 0 && (tls == nil || SSL_get_error(tls, 0) == SSL_ERROR_ZERO_RETURN) { return false }
            if tls == nil && errno == EINTR { continue }
            if let tls, SSL_get_error(tls, Int32(n)) == SSL_ERROR_SYSCALL, errno == 0 { return false }
            throw transferError(n, "receive from")
        }
    }

    /// Each read waits at most `timeout` seconds (SO_RCVTIMEO); over each `timeout`
    /// seconds, at least `minimumRate` bytes a second must come, or the transfer fails
    /// (within twice `timeout`), as curl's --speed-limit does.
    private func countReceived(_ count: Int) throws {
        windowBytes += count
        let now = monotonicSeconds()
        guard now - windowStart >= Double(timeout) else { return }
        if windowBytes < minimumRate * timeout {
            throw PlashError.failure("\(peer): \(windowBytes) bytes in \(Int(now - windowStart)) s, slower than "
                                     + "\(byteCount(Int64(minimumRate)))/s").advising("PLASH_HTTP_MIN_RATE=BYTES lowers the limit")
        }
        windowStart = now
        windowBytes = 0
    }

    private func transferError(_ result: Int, _ step: String) -> PlashError {
        let code = errno
        if code == EAGAIN || code == EWOULDBLOCK { return PlashError.failure("\(peer): no data for \(timeout) s, timed out") }
        if let tls, SSL_get_error(tls, Int32(result)) != SSL_ERROR_SYSCALL {
            return PlashError.failure("\(step) \(peer): \(tlsFailure(tls, Int32(result)))")
        }
        return PlashError.system("\(step)", peer, errno: code)
    }

    /// A line without its CRLF (or LF), nil at the end of the stream. A line of the head
    /// (`head`) counts against the head's limits.
    private func readLine(head: Bool = false) throws -> String? {
        var line: [UInt8] = []
        var taken = 0
        defer { if head { headBytesLeft -= taken } }
        while try fill() {
            let newline = buffer[start..<end].firstIndex(of: UInt8(ascii: "\n"))
            let piece = buffer[start..<(newline ?? end)]
            taken += piece.count + (newline == nil ? 0 : 1)
            if head && taken > headBytesLeft {
                throw PlashError.failure("\(peer): a response head larger than \(byteCount(Int64(httpHeadLimit)))")
                    .advising("PLASH_HTTP_MAX_HEAD=BYTES raises the limit")
            }
            line += piece
            if let newline {
                start = newline + 1
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            start = end
            guard line.count < 65536 else { throw PlashError.failure("\(peer): a response line longer than 64 KiB") }
        }
        return line.isEmpty ? nil : String(decoding: line, as: UTF8.self)
    }

    /// A header field's line of the head or of a chunked body's trailers: counted.
    private func readFieldLine() throws -> String? {
        guard let line = try readLine(head: true), !line.isEmpty else { return nil }
        headFieldsLeft -= 1
        guard headFieldsLeft >= 0 else {
            throw PlashError.failure("\(peer): a response head of more than \(maximumHeaderFields) header fields")
        }
        return line
    }

    func readHead() throws -> ResponseHead {
        // The rate is measured from here: sending an upload, or a server thinking about
        // its answer for less than `timeout` seconds, is no slow transfer.
        windowStart = monotonicSeconds()
        windowBytes = 0
        while true {
            guard let statusLine = try readLine(head: true) else { throw PlashError.failure("\(peer): closed without a response") }
            let words = statusLine.split(separator: " ", maxSplits: 2)
            guard words.count >= 2, words[0].hasPrefix("HTTP/1."), let status = Int(words[1]) else {
                throw PlashError.failure("\(peer): not an HTTP response: \(statusLine.prefix(80))")
            }
            var fields: [String: String] = [:]
            while let line = try readFieldLine() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon].lowercased()] = trimmed(line[line.index(after: colon)...])
            }
            // 1xx are interim answers (100 Continue, 103 Early Hints); the real one follows.
            if (100..<200).contains(status) { continue }
            return ResponseHead(status: status, reason: words.count > 2 ? String(words[2]) : "", fields: fields)
        }
    }

    /// Hands up to `limit` buffered or newly read bytes to `body`; 0 at the end of the stream.
    private func pass(_ limit: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        guard try fill() else { return 0 }
        let count = Int(min(Int64(end - start), limit))
        try buffer[start..<(start + count)].withUnsafeBytes(body)
        start += count
        return count
    }

    func readBody(_ head: ResponseHead, progress: ((Int64, Int64?) -> Void)?,
                  body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var received: Int64 = 0
        if head.fields["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while true {
                guard let line = try readLine() else { throw truncated(received, nil) }
                guard let size = Int64(trimmed(line.prefix { $0 != ";" }), radix: 16), size >= 0 else {
                    throw PlashError.failure("\(peer): a bad chunk size: \(line.prefix(40))")
                }
                if size == 0 { break }
                var left = size
                while left > 0 {
                    let n = try pass(left, body)
                    guard n > 0 else { throw truncated(received, nil) }
                    left -= Int64(n)
                    received += Int64(n)
                    progress?(received, nil)
                }
                guard try readLine() == "" else { throw PlashError.failure("\(peer): a chunk longer than its size") }
            }
            while try readFieldLine() != nil {}
            return
        }
        if let text = head.fields["content-length"] {
            guard let total = Int64(text), total >= 0 else { throw PlashError.failure("\(peer): a bad Content-Length: \(text)") }
            progress?(0, total)
            while received < total {
                let n = try pass(total - received, body)
                guard n > 0 else { throw truncated(received, total) }
                received += Int64(n)
                progress?(received, total)
            }
            return
        }
        while case let n = try pass(Int64.max, body), n > 0 {
            received += Int64(n)
            progress?(received, nil)
        }
    }

    private func truncated(_ received: Int64, _ total: Int64?) -> PlashError {
        let what = total.map { "\(received) of \($0) bytes" } ?? "\(received) bytes of a chunked body"
        return PlashError.failure("\(peer): closed after \(what), truncated")
    }
}

/// A connected TCP socket to the first address of `address.host` that answers within
/// `timeout` seconds; reads and writes time out after as long without progress.
private func connectSocket(_ address: WebAddress, timeout: Int) throws -> Int32 {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var list: UnsafeMutablePointer<addrinfo>?
    let resolved = getaddrinfo(address.host, String(address.port), &hints, &list)
    guard resolved == 0, let list else {
        let why = resolved == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(resolved))
        throw PlashError.failure("resolve \(address.host): \(why)")
    }
    defer { freeaddrinfo(list) }
    var failure = PlashError.failure("resolve \(address.host): no address")
    var entry: UnsafeMutablePointer<addrinfo>? = list
    while let current = entry {
        entry = current.pointee.ai_next
        let fd = socket(current.pointee.ai_family, current.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { failure = .system("socket", address.authority); continue }
        // Non-blocking for the connect, so that it can time out; blocking afterwards,
        // with SO_RCVTIMEO/SO_SNDTIMEO bounding each read and write.
        var connected = connect(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0
        if !connected && errno == EINPROGRESS {
            var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            var ready: Int32
            repeat { ready = poll(&waiting, 1, Int32(timeout * 1000)) } while ready == -1 && errno == EINTR
            var code: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if ready == 0 {
                errno = ETIMEDOUT
            } else if getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 {
                errno = code
                connected = code == 0
            }
        }
        guard connected else {
            failure = .system("connect", address.authority)
            Glibc.close(fd)
            continue
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }
    throw failure
}

/// Made at the first https request, never at start: plash run does not pay for it.
nonisolated(unsafe) private let tlsContext: OpaquePointer? = plash_tls_context()

private func tlsFailure(_ ssl: OpaquePointer, _ result: Int32) -> String {
    if SSL_get_error(ssl, result) == SSL_ERROR_SYSCALL && errno != 0 { return String(cString: strerror(errno)) }
    return tlsErrorText()
}

/// OpenSSL's reason for the latest error, as "certificate verify failed".
private func tlsErrorText() -> String {
    let code = ERR_peek_last_error()
    guard code != 0, let reason = ERR_reason_error_string(code) else { return "connection closed" }
    return String(cString: reason)
}
