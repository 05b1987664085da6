import Foundation
import PlashTestSupport
import Testing

/// A service directory under an s6-svscan of its own: a copy of the shipped
/// s6/httpd-demo whose env/ files are the only change, or one the test writes.
final class S6Service: @unchecked Sendable {
    let scan: String
    let directory: String
    let name: String
    private let svscan: Child

    init(shipped: String? = nil, settings: [String: String] = [:], environment: [String: String],
         write: (String) throws -> Void = { _ in }) throws {
        scan = makeDirectory("s6-scan")
        name = "\(shipped ?? "s6-test")-\(getpid())-\(UUID().uuidString.prefix(6))"
        directory = "\(scan)/\(name)"
        if let shipped {
            try FileManager.default.copyItem(atPath: "\(repositoryDirectory)/s6/\(shipped)", toPath: directory)
        } else {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        for (key, value) in settings {
            try (value + "\n").write(toFile: "\(directory)/env/\(key)", atomically: true, encoding: .utf8)
        }
        try write(directory)
        svscan = try Child("/usr/bin/s6-svscan", [scan], environment: environment)
        // s6-svwait and s6-svstat need the service's s6-supervise to be running.
        let directory = directory
        waitUntil { (try? run("/usr/bin/s6-svok", [directory]))?.status == 0 }
    }

    /// `s6-svc ARGS DIR`.
    @discardableResult
    func svc(_ arguments: String...) throws -> Finished { try run("/usr/bin/s6-svc", arguments + [directory]) }

    /// `s6-svwait FLAG -t 20000 DIR`: true once the service is in that state (-U: up
    /// and ready, -D: down and finished) within 20 s.
    func wait(_ flag: String) throws -> Bool {
        try run("/usr/bin/s6-svwait", [flag, "-t", "20000", directory]).status == 0
    }

    /// up, ready and pid, as s6-svstat reports them.
    func status() throws -> (up: Bool, ready: Bool, pid: pid_t?) {
        let words = try run("/usr/bin/s6-svstat", ["-o", "up,ready,pid", directory]).stdout.split(separator: " ")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard words.count == 3 else { return (false, false, nil) }
        return (words[0] == "true", words[1] == "true", pid_t(words[2]).flatMap { $0 > 0 ? $0 : nil })
    }

    /// Brings the service (and its logger) down, then ends s6-svscan.
    func stop() {
        _ = try? svc("-dx")
        if FileManager.default.fileExists(atPath: directory + "/log") { _ = try? run("/usr/bin/s6-svc", ["-dx", directory + "/log"]) }
        _ = try? run("/usr/bin/s6-svscanctl", ["-t", scan])
        if svscan.wait(timeout: 10) == nil { kill(svscan.pid, SIGKILL) }
        _ = svscan.finish()
        removeCgroup(name)
    }

    var log: String { (try? String(contentsOfFile: directory + "/log/main/current", encoding: .utf8)) ?? "" }
}

/// s6-svscan and s6-supervise (Debian's s6) on the shipped s6/ service directory, and
/// readiness that the program in the container reports on s6's notification-fd.
@Suite(.needs(.s6)) struct S6Tests {
    @Test func s6SupervisesTheHttpdServiceAsTheServerItselfAndMarksItReady() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let service = try S6Service(shipped: "httpd-demo", settings: ["HTTPD_PORT": "\(port)", "HTTPD_ROOT": try cgiDocumentRoot()],
                                    environment: serviceEnvironment(store))
        defer { service.stop() }

        #expect(try service.wait("-U"), "\(String(describing: try? service.status())) log: \(service.log)")
        let pid = try #require(try service.status().pid)
        #expect(executable(pid) == "/bin/busybox")
        #expect(commandLine(pid).hasPrefix("httpd -f -v -p 127.0.0.1:\(port)"))
        #expect(httpGet(port: port, path: "/index.html") == "hello from plash\n")
        #expect(waitUntil { service.log.contains("response:200") }, "s6-log's current: \(service.log)")
    }

    @Test func s6SvcRestartGivesANewServerAndDownLeavesNothing() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let service = try S6Service(shipped: "httpd-demo", settings: ["HTTPD_PORT": "\(port)", "HTTPD_ROOT": try cgiDocumentRoot()],
                                    environment: serviceEnvironment(store))
        defer { service.stop() }
        #expect(try service.wait("-U"))
        let first = try #require(try service.status().pid)
        var body: String?
        #expect(waitUntil { body = httpGet(port: port, path: "/cgi-bin/fork"); return body != nil })
        let child = try #require(pid_t(body?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))

        try service.svc("-r")
        var second: pid_t?
        #expect(waitUntil(20) { second = try? service.status().pid; return second != nil && second != first })
        #expect(try service.wait("-U"))
        #expect(waitUntil { !isAlive(first) })
        #expect(httpGet(port: port, path: "/index.html") == "hello from plash\n")
        // The next start killed what the first server's CGI left in the cgroup.
        #expect(!isAlive(child))

        try service.svc("-d")
        #expect(try service.wait("-D"))
        #expect(waitUntil { processes(inCgroup: service.name).isEmpty })
        #expect(!isAlive(second ?? first))
        #expect(httpGet(port: port) == nil)
    }

    @Test(arguments: [[], ["--pid-ns"]])
    func aProgramInTheContainerReportsReadinessOnTheNotificationFd(_ options: [String]) throws {
        let go = makeDirectory("go") + "/go"
        let service = try S6Service(environment: serviceEnvironment(TestStore())) { dir in
            try "3\n".write(toFile: dir + "/notification-fd", atomically: true, encoding: .utf8)
            // Ready only once the test says so: the newline on fd 3 comes from the
            // program in the container, through plash-exec.
            try writeExecutable(dir + "/run", """
                #!/bin/sh
                exec plash-exec \(options.joined(separator: " ")) --bind \(splitDirectory(go)):/go --root \(try busyboxRoot) -- \
                    sh -c 'while ! [ -e /go/go ]; do sleep 0.05; done; echo >&3; exec 3>&-; exec sleep 1000'

                """)
        }
        defer { service.stop() }
        #expect(waitUntil { (try? service.status().up) == true })
        #expect(try service.status().ready == false)
        try "".write(toFile: go, atomically: false, encoding: .utf8)
        #expect(try service.wait("-U"), "\(String(describing: try? service.status()))")
    }
}

func splitDirectory(_ path: String) -> String { (path as NSString).deletingLastPathComponent }
