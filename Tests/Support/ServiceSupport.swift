import Foundation

/// Helpers for the tests that drive runit and supervisord against the shipped service
/// definitions (runit/, supervisord/ at the top of the repository).

/// The repository's top directory.
public let repositoryDirectory: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
}()

/// The environment a supervisor gets in the tests: the built binaries first on PATH
/// (the shipped files call `plash` and `plash-exec` by name) and the test's own store.
public func serviceEnvironment(_ store: TestStore, _ extra: [String: String] = [:]) -> [String: String] {
    var env = store.environment
    env["PATH"] = productsDirectory.path + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env.merging(extra) { $1 }
}

/// A TCP port on 127.0.0.1 held for one test: a socket bound to it with SO_REUSEADDR and
/// never listening. The kernel hands the port to no other bind(0) or connect() while the
/// socket exists, yet a server that sets SO_REUSEADDR (busybox httpd does) may bind it
/// and listen. Picking a free port and closing it before the server starts would let
/// another test take it meanwhile.
public final class ReservedPort: @unchecked Sendable {
    public let port: Int
    private let fd: Int32

    /// Two sockets that both set SO_REUSEADDR and do not listen may share a port, so
    /// the kernel can hand the same port to two reservations of parallel tests: each
    /// port is handed out once per test process.
    private static let handedOut = Locked(Set<Int>())
    private static let handOut = NSLock()

    public init() throws {
        ReservedPort.handOut.lock()
        defer { ReservedPort.handOut.unlock() }
        var taken: [ReservedPort] = []
        while true {
            let candidate = try ReservedPort(bindingAnyPort: ())
            if !ReservedPort.handedOut.value.contains(candidate.port) {
                ReservedPort.handedOut.set(ReservedPort.handedOut.value.union([candidate.port]))
                (fd, port) = (candidate.takeDescriptor(), candidate.port)
                return
            }
            taken.append(candidate)  // held until a fresh port comes, so bind(0) moves on
            guard taken.count < 1000 else { throw SetupError("no free port on 127.0.0.1") }
        }
    }

    private var owned = true
    private func takeDescriptor() -> Int32 {
        owned = false
        return fd
    }

    private init(bindingAnyPort: ()) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SetupError("socket: \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw SetupError("bind 127.0.0.1:0: \(String(cString: strerror(errno)))")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { if owned { close(fd) } }
}

/// busybox httpd on the host, serving `root` on a reserved port, once it answers.
public final class HTTPServer: @unchecked Sendable {
    public let reservation: ReservedPort
    public var port: Int { reservation.port }
    private let server: Child

    public init(root: String) throws {
        reservation = try ReservedPort()
        server = try Child("/bin/busybox", ["httpd", "-f", "-p", "127.0.0.1:\(reservation.port)", "-h", root])
        let port = reservation.port
        let server = self.server
        guard waitUntil(10, { httpResponse(port: port) != nil || !isAlive(server.pid) }), isAlive(server.pid) else {
            stop()
            throw SetupError("busybox httpd on port \(port) did not answer within 10 s")
        }
    }

    public func stop() {
        kill(server.pid, SIGKILL)
        _ = server.finish()
    }
}

/// A document root with an index page and a CGI script that leaves a background
/// child behind (it prints that child's PID).
public func cgiDocumentRoot() throws -> String {
    let root = makeDirectory("www")
    try "hello from plash\n".write(toFile: root + "/index.html", atomically: true, encoding: .utf8)
    try FileManager.default.createDirectory(atPath: root + "/cgi-bin", withIntermediateDirectories: true)
    try writeExecutable(root + "/cgi-bin/fork", """
        #!/bin/sh
        sleep 1000 </dev/null >/dev/null 2>&1 &
        printf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' $!

        """)
    return root
}

/// Polls `condition` every 20 ms until it holds or `timeout` seconds passed.
@discardableResult
public func waitUntil(_ timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(20_000)
    }
    return try condition()
}

/// The body of http://127.0.0.1:PORT/PATH when it answers 200, else nil. (A socket of
/// its own: no curl or wget needed on the host.)
public func httpGet(port: Int, path: String = "/") -> String? {
    guard let response = httpResponse(port: port, path: path), response.status == 200 else { return nil }
    return response.body
}

/// A TCP connection to 127.0.0.1:PORT whose reads and writes give up after `seconds`;
/// nil when nothing listens there.
public func connectToLoopback(port: Int, seconds: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var timeout = timeval(tv_sec: seconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        close(fd)
        return nil
    }
    return fd
}

/// The status code and body of an HTTP/1.0 GET, nil when nothing answered within 2 s
/// or the answer did not end within 10 s.
public func httpResponse(port: Int, path: String = "/") -> (status: Int, body: String)? {
    guard let fd = connectToLoopback(port: port, seconds: 2) else { return nil }
    defer { close(fd) }
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
    else { return nil }
    var answer: [[UInt8]] = [[]]
    guard readToEnd([fd], into: &answer, until: Date().addingTimeInterval(10)) else { return nil }
    let text = String(decoding: answer[0], as: UTF8.self)
    guard let head = text.range(of: "\r\n\r\n"),
          let status = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
    return (status, String(text[head.upperBound...]))
}

/// Every process whose cgroup (in any hierarchy, v1 or v2) is plash/NAME.
public func processes(inCgroup name: String) -> [pid_t] {
    allPIDs().filter { pid in
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return false }
        return text.split(separator: "\n").contains { $0.hasSuffix("/plash/\(name)") }
    }
}

/// Removes the cgroup plash/NAME from every hierarchy once its processes are gone
/// (a process killed a moment ago may hold it busy for a while).
public func removeCgroup(_ name: String) {
    let hierarchies = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? []
    let paths = hierarchies.map { "/sys/fs/cgroup/\($0)/plash/\(name)" } + ["/sys/fs/cgroup/plash/\(name)"]
    waitUntil(5) { paths.allSatisfy { rmdir($0) == 0 || errno == ENOENT || errno == ENOTDIR } }
}

public func allPIDs() -> [pid_t] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
}

/// The state letter of /proc/PID/stat (R, S, T, Z, …), nil once the process is gone.
public func processState(_ pid: pid_t) -> Character? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let end = stat.lastIndex(of: ")") else { return nil }
    return stat[stat.index(end, offsetBy: 2)...].first
}

/// True while PID exists and is not a zombie.
public func isAlive(_ pid: pid_t) -> Bool {
    guard let state = processState(pid) else { return false }
    return state != "Z" && state != "X"
}

/// Where /proc/PID/exe points (as the process sees its root), or nil.
public func executable(_ pid: pid_t) -> String? {
    try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")
}

/// The command line of PID, its words joined by spaces.
public func commandLine(_ pid: pid_t) -> String {
    let data = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
    return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
}

/// Every living process whose last command-line word is `marker`. Start one in a
/// container with `sh -c 'sleep 1000; :' MARKER`: busybox sleep rejects extra words,
/// and the `; :` keeps that shell from exec'ing sleep in its place.
public func processes(markedWith marker: String) -> [pid_t] {
    allPIDs().filter { pid in
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
              let last = data.split(separator: 0).last else { return false }
        return String(decoding: last, as: UTF8.self) == marker && isAlive(pid)
    }
}

/// Every descendant of PID, children before grandchildren.
public func descendants(of pid: pid_t) -> [pid_t] {
    var result: [pid_t] = []
    var queue = [pid]
    while !queue.isEmpty {
        let parent = queue.removeFirst()
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(parent)/task")) ?? []
        for task in tasks {
            let text = (try? String(contentsOfFile: "/proc/\(parent)/task/\(task)/children", encoding: .utf8)) ?? ""
            let children = text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            result += children
            queue += children
        }
    }
    return result
}

/// A copy of a shipped runit service directory under the scratch directory, named
/// uniquely (its name is the service's cgroup), supervised by a runsv of its own.
public final class RunitService: @unchecked Sendable {
    public let directory: String
    public let name: String
    private let runsv: Child

    /// Copies runit/SHIPPED, writes `settings` into its env/ files (the only change),
    /// and starts runsv on it with `environment`.
    public init(_ shipped: String, settings: [String: String], environment: [String: String],
                prepare: (String) throws -> Void = { _ in }) throws {
        try require(.runsv)
        let parent = makeDirectory("service")
        name = "\(shipped)-\(getpid())-\(UUID().uuidString.prefix(6))"
        directory = "\(parent)/\(name)"
        try FileManager.default.copyItem(atPath: "\(repositoryDirectory)/runit/\(shipped)", toPath: directory)
        for (key, value) in settings {
            try (value + "\n").write(toFile: "\(directory)/env/\(key)", atomically: true, encoding: .utf8)
        }
        try prepare(directory)
        runsv = try Child("/bin/sh", ["-c", "exec runsv . >../runsv.out 2>&1"], environment: environment,
                          directory: directory)
    }

    /// Runs `sv ARGS... DIR`.
    @discardableResult
    public func sv(_ arguments: String...) throws -> Finished {
        try run("/usr/bin/sv", arguments + [directory])
    }

    /// The PID that runsv reports for the service (`sv status`), nil when it is down.
    public func pid() throws -> pid_t? {
        let status = try sv("status").stdout
        guard status.hasPrefix("run: "), let range = status.range(of: #"\(pid (\d+)\)"#, options: .regularExpression)
        else { return nil }
        return pid_t(status[range].dropFirst(5).dropLast())
    }

    /// The PID once runsv reports one that is not `except`, waiting up to 10 s.
    public func waitForPID(except old: pid_t? = nil) throws -> pid_t? {
        var found: pid_t?
        try waitUntil { found = try pid(); return found != nil && found != old }
        return found != old ? found : nil
    }

    public var log: String {
        (try? String(contentsOfFile: "\(directory)/log/main/current", encoding: .utf8)) ?? ""
    }

    /// Takes the service down, makes runsv exit, and kills whatever survived that.
    public func stop() {
        _ = try? sv("-w", "10", "down")
        _ = try? run("/usr/bin/sv", ["exit", directory, "\(directory)/log"])
        if !waitUntil(5, { !isAlive(runsv.pid) }) { kill(runsv.pid, SIGKILL) }
        _ = runsv.finish()
        if let text = try? String(contentsOfFile: "\(directory)/log/supervise/pid", encoding: .utf8),
           let logger = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(logger, SIGKILL)
        }
        processes(inCgroup: name).forEach { kill($0, SIGKILL) }
        waitUntil(5) { processes(inCgroup: name).isEmpty }
        removeCgroup(name)
    }
}

/// A supervisord of its own for one test: a configuration in a scratch directory that
/// includes the given section files, its socket there, run in the foreground (-n) in a
/// session of its own.
public final class Supervisord: @unchecked Sendable {
    public let directory: String
    public let configuration: String
    private let daemon: Child
    private let cgroups: [String]

    /// `include`: section files (absolute paths); `cgroups`: the cgroup names its
    /// programs use, cleaned up at the end.
    public init(include: [String], environment: [String: String], cgroups: [String]) throws {
        try require(.supervisord)
        directory = makeDirectory("supervisord")
        configuration = directory + "/supervisord.conf"
        self.cgroups = cgroups
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        let text = """
            [unix_http_server]
            file=\(directory)/supervisor.sock

            [supervisord]
            logfile=\(directory)/supervisord.log
            pidfile=\(directory)/supervisord.pid
            childlogdir=\(directory)/logs
            nodaemon=true

            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

            [supervisorctl]
            serverurl=unix://\(directory)/supervisor.sock

            [include]
            files=\(include.joined(separator: " "))

            """
        try text.write(toFile: configuration, atomically: true, encoding: .utf8)
        daemon = try Child("/bin/sh", ["-c", "exec setsid supervisord -c \"$0\" -n >\"$1\" 2>&1",
                                       configuration, directory + "/supervisord.out"],
                           environment: environment)
        waitUntil { (try? self.ctl("pid"))?.status == 0 }
    }

    /// Runs `supervisorctl -c CONF ARGS...`.
    @discardableResult
    public func ctl(_ arguments: String...) throws -> Finished {
        try run("/usr/bin/supervisorctl", ["-c", configuration] + arguments)
    }

    /// The program's line of `supervisorctl status`, e.g. `web RUNNING pid 7, uptime 0:00:01`.
    public func status(_ program: String) throws -> String {
        try ctl("status", program).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The PID of a RUNNING program, nil otherwise.
    public func pid(_ program: String) throws -> pid_t? {
        let line = try status(program)
        guard line.contains("RUNNING"), let range = line.range(of: #"pid (\d+)"#, options: .regularExpression)
        else { return nil }
        return pid_t(line[range].dropFirst(4))
    }

    /// Waits up to 10 s for the program to be RUNNING with a PID that is not `except`.
    public func waitForPID(_ program: String, except old: pid_t? = nil) throws -> pid_t? {
        var found: pid_t?
        try waitUntil { found = try pid(program); return found != nil && found != old }
        return found != old ? found : nil
    }

    /// supervisord's own log (program starts and exits, with their status).
    public var log: String {
        (try? String(contentsOfFile: directory + "/supervisord.log", encoding: .utf8)) ?? ""
    }

    /// Stops every program, shuts supervisord down, and kills whatever survived that.
    public func stop() {
        _ = try? ctl("stop", "all")
        _ = try? ctl("shutdown")
        if !waitUntil(10, { !isAlive(daemon.pid) }) { kill(-daemon.pid, SIGKILL) }
        _ = daemon.finish()
        for name in cgroups {
            processes(inCgroup: name).forEach { kill($0, SIGKILL) }
            waitUntil(5) { processes(inCgroup: name).isEmpty }
            removeCgroup(name)
        }
    }
}

/// Tests/Servers/http-server.py on 127.0.0.1, on the port it picked: `root`'s files, the
/// paths that misbehave on purpose (404, redirects, chunked, truncated, stalled,
/// trickling, endless heads; see the script) and a proxy; over TLS too when given a
/// certificate and key. With `challenge`, a request without credentials gets a 401 Basic
/// challenge; with `downgrade`, one with credentials a redirect to plain http; with
/// `trickleTLS`, a TLS handshake a byte every 0.2 s.
public final class WebServer: @unchecked Sendable {
    public let port: Int
    private let server: Child
    private let logFile = makeDirectory("web-log") + "/requests.log"

    public init(root: String, tls: TestCertificate? = nil, challenge: Bool = false, downgrade: Bool = false,
                trickleTLS: Bool = false) throws {
        try require(.python3)
        let script = repositoryDirectory + "/Tests/Servers/http-server.py"
        server = try Child("/usr/bin/python3", [script, root, "--log", logFile] + (tls.map { ["--tls", $0.certificate, $0.key] } ?? [])
                           + (challenge ? ["--challenge"] : []) + (downgrade ? ["--downgrade"] : [])
                           + (trickleTLS ? ["--trickle-tls"] : []))
        guard let port = Int(server.readLine()) else {
            kill(server.pid, SIGKILL)
            throw SetupError("http-server.py did not report its port: \(server.finish().stderr)")
        }
        self.port = port
    }

    /// The requests so far, one `METHOD PATH AUTH` line each (AUTH: whether it carried
    /// an Authorization header; a CONNECT's PATH is its host:port).
    public var requests: [String] {
        ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() {
        kill(server.pid, SIGKILL)
        _ = server.finish()
    }
}

/// A self-signed certificate for `localhost` and `proxied.invalid` (not for 127.0.0.1),
/// its own CA: what SSL_CERT_FILE names for a client that should trust it.
public struct TestCertificate: Sendable {
    public let certificate: String
    public let key: String

    public init() throws {
        try require(.openssl)
        let dir = makeDirectory("tls")
        certificate = dir + "/cert.pem"
        key = dir + "/key.pem"
        let made = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                "-subj", "/CN=plash test", "-keyout", key, "-out", certificate,
                                                "-addext", "subjectAltName=DNS:localhost,DNS:proxied.invalid"])
        guard made.status == 0 else { throw SetupError("openssl req: \(made)") }
    }

    public init(certificate: String, key: String) {
        self.certificate = certificate
        self.key = key
    }
}

/// A certificate authority of its own (`certificate`: what SSL_CERT_FILE names for a
/// client that should trust it), which signs server certificates for the names given.
public struct TestAuthority: Sendable {
    public let certificate: String
    private let key: String
    private let dir = makeDirectory("ca")

    public init() throws {
        certificate = dir + "/ca.pem"
        key = dir + "/ca-key.pem"
        let made = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                "-subj", "/CN=plash test CA", "-keyout", key, "-out", certificate,
                                                "-addext", "basicConstraints=critical,CA:TRUE",
                                                "-addext", "keyUsage=critical,keyCertSign"])
        guard made.status == 0 else { throw SetupError("openssl req: \(made)") }
    }

    /// A server certificate for the DNS `names`, signed by this authority.
    public func sign(_ names: [String]) throws -> TestCertificate {
        let base = makeDirectory("cert")
        let signed = try run("/bin/sh", ["-c", """
            set -e
            openssl req -newkey rsa:2048 -nodes -subj '/CN=plash test server' -keyout "$1/key.pem" -out "$1/request.pem" 2>&1
            printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$4" > "$1/extensions"
            openssl x509 -req -in "$1/request.pem" -CA "$2" -CAkey "$3" -CAcreateserial -days 2 \
                -extfile "$1/extensions" -out "$1/cert.pem" 2>&1
            """, "sh", base, certificate, key, names.map { "DNS:" + $0 }.joined(separator: ",")])
        guard signed.status == 0 else { throw SetupError("openssl x509: \(signed)") }
        return TestCertificate(certificate: base + "/cert.pem", key: base + "/key.pem")
    }
}

/// Debian's docker-registry on a reserved port of 127.0.0.1, storing below a fresh
/// directory. Anonymous; or htpasswd basic auth for user/password; or a bearer-token
/// realm (Tests/Servers/token-server.py) that grants anyone a token, or only
/// user/password. The images come from OCI layouts through skopeo (`push`). Its access
/// log (`log`: a line per request, method and path) and the realm's (`tokenLog`: a line
/// per token asked for, with its query) go to files.
public final class RegistryServer: @unchecked Sendable {
    public enum Auth: Sendable { case anonymous, basic, token, tokenForUser }
    public let reservation: ReservedPort
    public var port: Int { reservation.port }
    public var host: String { "127.0.0.1:\(port)" }
    public let storage: String
    public let auth: Auth
    private let directory: String
    private let server: Child
    private var tokenServer: Child?

    public init(auth: Auth = .anonymous) throws {
        try require(.dockerRegistry, .skopeo, .htpasswd, .openssl, .python3)
        reservation = try ReservedPort()
        self.auth = auth
        let dir = makeDirectory("registry")
        directory = dir
        storage = dir + "/data"
        var config = """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(storage)
            http:
              addr: 127.0.0.1:\(reservation.port)

            """
        switch auth {
        case .anonymous:
            break
        case .basic:
            let made = try run("/usr/bin/htpasswd", ["-Bbc", dir + "/htpasswd", "user", "password"])
            guard made.status == 0 else { throw SetupError("htpasswd: \(made)") }
            config += "auth:\n  htpasswd:\n    realm: plash-test\n    path: \(dir)/htpasswd\n"
        case .token, .tokenForUser:
            let made = try run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                                    "-subj", "/CN=plash token", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
            guard made.status == 0 else { throw SetupError("openssl req: \(made)") }
            let script = repositoryDirectory + "/Tests/Servers/token-server.py"
            // Its first line of stdout is its port; its stderr, the requests, goes to a file.
            let tokens = try Child("/bin/sh", ["-c", "exec /usr/bin/python3 \"$@\" 2>\(dir)/token.log", "sh",
                                               script, dir + "/key.pem", dir + "/cert.pem", "plash-issuer"]
                                   + (auth == .tokenForUser ? ["--user", "user:password"] : []))
            tokenServer = tokens
            guard let tokenPort = Int(tokens.readLine()) else {
                kill(tokens.pid, SIGKILL)
                throw SetupError("token-server.py did not report its port: \(tokens.finish().stderr)")
            }
            config += """
                auth:
                  token:
                    realm: http://127.0.0.1:\(tokenPort)/token
                    service: plash-registry
                    issuer: plash-issuer
                    rootcertbundle: \(dir)/cert.pem

                """
        }
        try config.write(toFile: dir + "/config.yml", atomically: true, encoding: .utf8)
        // The access log is its stdout: into a file, never a pipe that nobody reads
        // (a full pipe would stop the registry). exec keeps the pid, for `listens`.
        server = try Child("/bin/sh", ["-c", "exec /usr/bin/docker-registry serve \(dir)/config.yml >\(dir)/registry.log 2>&1"])
        let port = reservation.port
        let server = self.server
        // The listener must be this registry's: two reservations with SO_REUSEADDR may get
        // the same port, and then the other test's registry would answer here.
        guard waitUntil(10, { listens(server.pid, port: port) || !isAlive(server.pid) }), isAlive(server.pid),
              waitUntil(10, { httpResponse(port: port, path: "/v2/") != nil }) else {
            kill(server.pid, SIGKILL)
            let output = server.finish()
            tokenServer.map { kill($0.pid, SIGKILL); _ = $0.finish() }
            throw SetupError("docker-registry on port \(port) did not answer within 10 s: \(output) \(log)")
        }
    }

    /// The access log so far: one line per request, `"METHOD PATH HTTP/1.1" STATUS`.
    public var log: String { (try? String(contentsOfFile: directory + "/registry.log", encoding: .utf8)) ?? "" }

    /// The requests the token realm got, one path with its query a line.
    public var tokenLog: String { (try? String(contentsOfFile: directory + "/token.log", encoding: .utf8)) ?? "" }

    /// The access log's requests with this method whose path starts with `prefix`.
    public func requests(_ method: String, _ prefix: String) -> [String] {
        log.split(separator: "\n").map(String.init).filter { $0.contains("\"\(method) \(prefix)") }
    }

    /// Copies TAG of the OCI layout DIR to NAME (repository:tag) on this registry; with
    /// `all`, every image of an index.
    public func push(_ layout: String, tag: String, as name: String, all: Bool = false,
                     deadline: Double = defaultDeadline) throws {
        let credentials = auth == .anonymous || auth == .token ? [] : ["--dest-creds", "user:password"]
        let copied = try run("/usr/bin/skopeo", ["copy", "-q", "--dest-tls-verify=false"] + credentials + (all ? ["--all"] : [])
                             + ["oci:\(layout):\(tag)", "docker://\(host)/\(name)"], deadline: deadline)
        guard copied.status == 0 else { throw SetupError("skopeo copy: \(copied)") }
    }

    public func stop() {
        kill(server.pid, SIGKILL)
        _ = server.finish()
        if let tokenServer {
            kill(tokenServer.pid, SIGKILL)
            _ = tokenServer.finish()
            self.tokenServer = nil
        }
    }
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port` (/proc/net/tcp
/// names the socket's inode, /proc/PID/fd the process's sockets).
public func listens(_ pid: pid_t, port: Int) -> Bool {
    guard let table = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return false }
    let local = String(format: "0100007F:%04X", port)
    let inodes = table.split(separator: "\n").dropFirst().compactMap { line -> String? in
        let fields = line.split(separator: " ")
        return fields.count > 9 && fields[1] == local && fields[3] == "0A" ? String(fields[9]) : nil
    }
    guard !inodes.isEmpty, let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { return false }
    return fds.contains { fd in
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)") else { return false }
        return inodes.contains { target == "socket:[\($0)]" }
    }
}

/// Tests/Servers/registry-proxy.py in front of a RegistryServer: every request passes
/// through, but those its rules name (`METHOD:N:STATUS`, N counted from 1, 0 for every
/// one) get STATUS instead: a registry that refuses PATCH, or fails in mid-upload; or
/// (`METHOD:N:host=NAME`) answers whose Location names another host.
public final class RegistryProxy: @unchecked Sendable {
    public let port: Int
    public var host: String { "127.0.0.1:\(port)" }
    private let proxy: Child
    private let logFile = makeDirectory("proxy") + "/requests.log"

    public init(to registry: RegistryServer, rules: [String]) throws {
        let script = repositoryDirectory + "/Tests/Servers/registry-proxy.py"
        proxy = try Child("/usr/bin/python3", [script, "--log", logFile, String(registry.port)] + rules)
        guard let port = Int(proxy.readLine()) else {
            kill(proxy.pid, SIGKILL)
            throw SetupError("registry-proxy.py did not report its port: \(proxy.finish().stderr)")
        }
        self.port = port
    }

    /// The requests so far, one `METHOD HOST PATH AUTH` line each (AUTH: whether it
    /// carried an Authorization header).
    public var requests: [String] {
        ((try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() {
        kill(proxy.pid, SIGKILL)
        _ = proxy.finish()
    }
}
