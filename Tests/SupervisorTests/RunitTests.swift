import Foundation
import PlashTestSupport
import Testing

/// runsv, sv and svlogd on copies of the shipped runit/ service directories; only their
/// env/ files differ (the port and paths).
@Suite struct RunitTests {
    @Test func runsvRunsTheHttpdServiceAsTheServerItself() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let service = try RunitService("httpd-demo", settings: ["HTTPD_PORT": "\(port)", "HTTPD_ROOT": try cgiDocumentRoot()],
                                       environment: serviceEnvironment(store))
        defer { service.stop() }

        let pid = try #require(try service.waitForPID())
        var body: String?
        #expect(waitUntil { body = httpGet(port: port, path: "/index.html"); return body != nil })
        #expect(body == "hello from plash\n")
        // The PID runsv started is the server: busybox (the image's, in the container's
        // overlay root) running httpd; no plash and no shell in between.
        #expect(executable(pid) == "/bin/busybox")
        #expect(commandLine(pid).hasPrefix("httpd -f -v -p 127.0.0.1:\(port)"))
        let mounts = try String(contentsOfFile: "/proc/\(pid)/mountinfo", encoding: .utf8)
        #expect(mounts.split(separator: "\n").first?.contains(" overlay plash:") == true)
        #expect(waitUntil { service.log.contains("response:200") }, "svlogd's current: \(service.log)")
    }

    @Test func svRestartStartsANewServerAndDownLeavesNothing() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let service = try RunitService("httpd-demo", settings: ["HTTPD_PORT": "\(port)", "HTTPD_ROOT": try cgiDocumentRoot()],
                                       environment: serviceEnvironment(store))
        defer { service.stop() }
        let first = try #require(try service.waitForPID())
        #expect(waitUntil { httpGet(port: port) != nil })

        try service.sv("restart")
        let second = try #require(try service.waitForPID(except: first))
        #expect(second != first)
        #expect(waitUntil { !isAlive(first) })
        #expect(waitUntil { httpGet(port: port) != nil })

        let down = try service.sv("-w", "10", "down")
        #expect(down.status == 0, "\(down)")
        #expect(waitUntil { processes(inCgroup: service.name).isEmpty })
        #expect(!isAlive(second))
        #expect(httpGet(port: port) == nil)
    }

    @Test func svDownKillsWhatTheServerForkedThroughFinish() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let service = try RunitService("httpd-demo", settings: ["HTTPD_PORT": "\(port)", "HTTPD_ROOT": try cgiDocumentRoot()],
                                       environment: serviceEnvironment(store))
        defer { service.stop() }
        let server = try #require(try service.waitForPID())
        var body: String?
        #expect(waitUntil { body = httpGet(port: port, path: "/cgi-bin/fork"); return body != nil })
        let child = try #require(pid_t(body?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        #expect(isAlive(child))
        // httpd's connection process may linger a moment after the answer.
        #expect(waitUntil { Set(processes(inCgroup: service.name)) == [server, child] })

        try service.sv("-w", "10", "down")
        // runsv signals the server only; ./finish (plash kill NAME KILL) takes the rest.
        #expect(waitUntil { processes(inCgroup: service.name).isEmpty })
        #expect(!isAlive(server))
        #expect(!isAlive(child))
    }

    @Test func svOnceRunsTheSortFilterOnceAndItStaysDown() throws {
        let store = TestStore()
        let data = makeDirectory("sort")
        let numbers = (1...500).shuffled().map(String.init).joined(separator: "\n") + "\n"
        try numbers.write(toFile: data + "/numbers", atomically: true, encoding: .utf8)
        let service = try RunitService("sort-demo", settings: ["SORT_INPUT": data + "/numbers", "SORT_OUTPUT": data + "/sorted"],
                                       environment: serviceEnvironment(store))
        defer { service.stop() }
        // ./down: runsv waits for `sv once`.
        #expect(waitUntil { (try? service.sv("status").stdout.hasPrefix("down: ")) == true })
        #expect(!FileManager.default.fileExists(atPath: data + "/sorted"))

        try service.sv("once")
        let expected = (1...500).map(String.init).joined(separator: "\n") + "\n"
        #expect(waitUntil { (try? String(contentsOfFile: data + "/sorted", encoding: .utf8)) == expected })
        #expect(waitUntil { (try? service.sv("status").stdout.hasPrefix("down: ")) == true })
        #expect(processes(inCgroup: service.name).isEmpty)
    }
}
