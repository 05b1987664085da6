import Foundation
import PlashTestSupport
import Testing

/// supervisord and supervisorctl with the shipped supervisord/ sections; only the
/// environment (port, paths, PATH, store) is the test's, and the program's name: the
/// shipped programs use it as their cgroup's name, which must not be shared with tests
/// running at the same time (here or in another checkout).
@Suite struct SupervisordTests {
    static let shipped = repositoryDirectory + "/supervisord"

    /// A copy of the shipped section file SHIPPED.conf whose program is named uniquely;
    /// returns the copy's path and the name.
    static func section(_ shipped: String) throws -> (path: String, program: String) {
        let program = "\(shipped)-\(getpid())-\(UUID().uuidString.prefix(6))"
        let text = try String(contentsOfFile: "\(Self.shipped)/\(shipped).conf", encoding: .utf8)
        guard text.contains("[program:\(shipped)]") else { throw SetupError("no [program:\(shipped)] in \(shipped).conf") }
        let path = makeDirectory("section") + "/\(program).conf"
        try text.replacingOccurrences(of: "[program:\(shipped)]", with: "[program:\(program)]")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return (path, program)
    }

    @Test func supervisorctlStartsStopsAndRestartsTheHttpdServer() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let (section, httpd) = try Self.section("httpd-demo")
        let daemon = try Supervisord(include: [section],
                                     environment: serviceEnvironment(store, ["HTTPD_PORT": "\(port)",
                                                                             "HTTPD_ROOT": try cgiDocumentRoot()]),
                                     cgroups: [httpd])
        defer { daemon.stop() }

        let first = try #require(try daemon.waitForPID(httpd))
        var body: String?
        #expect(waitUntil { body = httpGet(port: port, path: "/index.html"); return body != nil })
        #expect(body == "hello from plash\n")
        #expect(executable(first) == "/bin/busybox")
        #expect(commandLine(first).hasPrefix("httpd -f -v -p 127.0.0.1:\(port)"))
        #expect(waitUntil { (try? daemon.ctl("tail", httpd).stdout.contains("response:200")) == true })

        #expect(try daemon.ctl("restart", httpd).status == 0)
        let second = try #require(try daemon.waitForPID(httpd, except: first))
        #expect(!isAlive(first))
        #expect(waitUntil { httpGet(port: port) != nil })

        #expect(try daemon.ctl("stop", httpd).status == 0)
        #expect(try daemon.status(httpd).contains("STOPPED"))
        #expect(!isAlive(second))
        #expect(waitUntil { processes(inCgroup: httpd).isEmpty })

        let started = try daemon.ctl("start", httpd)
        #expect(started.status == 0, "\(started) \(daemon.log)")
        #expect(try daemon.waitForPID(httpd, except: second) != nil)
    }

    @Test func stopasgroupTakesDownWhatTheServerForked() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let (section, httpd) = try Self.section("httpd-demo")
        let daemon = try Supervisord(include: [section],
                                     environment: serviceEnvironment(store, ["HTTPD_PORT": "\(port)",
                                                                             "HTTPD_ROOT": try cgiDocumentRoot()]),
                                     cgroups: [httpd])
        defer { daemon.stop() }
        let server = try #require(try daemon.waitForPID(httpd))
        var body: String?
        #expect(waitUntil { body = httpGet(port: port, path: "/cgi-bin/fork"); return body != nil })
        let child = try #require(pid_t(body?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""))
        #expect(isAlive(child))

        #expect(try daemon.ctl("stop", httpd).status == 0)
        #expect(waitUntil { processes(inCgroup: httpd).isEmpty })
        // A process leaves its cgroup a moment before it becomes a zombie (do_exit's
        // cgroup_exit comes before exit_notify), so its end is polled too.
        #expect(waitUntil { !isAlive(server) && !isAlive(child) })
    }

    @Test func theSortFilterExitsZeroAndAFailureIsReportedWithItsCode() throws {
        let store = TestStore()
        let data = makeDirectory("sort")
        try "3\n10\n2\n".write(toFile: data + "/numbers", atomically: true, encoding: .utf8)
        let (section, sort) = try Self.section("sort-demo")
        let daemon = try Supervisord(include: [section],
                                     environment: serviceEnvironment(store, ["SORT_INPUT": data + "/numbers",
                                                                             "SORT_OUTPUT": data + "/sorted"]),
                                     cgroups: [sort])
        defer { daemon.stop() }
        #expect(try daemon.status(sort).contains("STOPPED"))   // autostart=false

        // supervisord tells the exit status in its log (supervisorctl status shows EXITED
        // and the time only).
        try daemon.ctl("start", sort)
        #expect(waitUntil { daemon.log.contains("exited: \(sort) (exit status 0; expected)") }, "\(daemon.log)")
        #expect(try daemon.status(sort).contains("EXITED"))
        #expect(try String(contentsOfFile: data + "/sorted", encoding: .utf8) == "2\n3\n10\n")

        // No input: the filter fails, and supervisord says so, with the code.
        try FileManager.default.removeItem(atPath: data + "/numbers")
        try daemon.ctl("start", sort)
        #expect(waitUntil { daemon.log.range(of: #"exited: \#(sort) \(exit status [1-9]\d*; not expected\)"#,
                                             options: .regularExpression) != nil }, "\(daemon.log)")
        #expect(try daemon.status(sort).contains("EXITED"))
    }

    /// A program whose own exit status is not in exitcodes= is reported with that code.
    @Test func aProgramsOwnNonZeroStatusIsReportedAsNotExpected() throws {
        let store = TestStore()
        let name = "fails-\(getpid())"
        let section = makeDirectory("section") + "/fails.conf"
        try """
            [program:\(name)]
            command=plash run --cgroup %(program_name)s --from busybox -- sh -c 'exit 3'
            autostart=false
            autorestart=false
            startsecs=0
            exitcodes=0
            redirect_stderr=true

            """.write(toFile: section, atomically: true, encoding: .utf8)
        let daemon = try Supervisord(include: [section], environment: serviceEnvironment(store), cgroups: [name])
        defer { daemon.stop() }
        try daemon.ctl("start", name)
        #expect(waitUntil { daemon.log.contains("exited: \(name) (exit status 3; not expected)") }, "\(daemon.log)")
    }

    /// In place, a child in another session survives `stop` (supervisord cannot see it);
    /// the next start of the program kills it through the cgroup (docs/supervisors.md).
    @Test func inPlaceAChildOfAnotherSessionSurvivesStopUntilTheNextStart() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let name = "session-\(getpid())"
        let section = makeDirectory("section") + "/session.conf"
        try """
            [program:\(name)]
            command=/bin/sh -c 'exec plash run --cgroup "$SUPERVISOR_PROCESS_NAME" --from busybox -- sh -c "setsid sleep 1000 </dev/null >/dev/null 2>&1 & exec httpd -f -p 127.0.0.1:\(port) -h /"'
            stopsignal=TERM
            stopasgroup=true
            killasgroup=true
            redirect_stderr=true
            stdout_logfile=AUTO

            """.write(toFile: section, atomically: true, encoding: .utf8)
        let daemon = try Supervisord(include: [section], environment: serviceEnvironment(store), cgroups: [name])
        defer { daemon.stop() }
        let first = try #require(try daemon.waitForPID(name))
        #expect(waitUntil { processes(inCgroup: name).count == 2 })
        let child = try #require(processes(inCgroup: name).first { $0 != first })

        #expect(try daemon.ctl("stop", name).status == 0)
        #expect(!isAlive(first))
        #expect(isAlive(child))

        #expect(try daemon.ctl("start", name).status == 0)
        let second = try #require(try daemon.waitForPID(name, except: first))
        #expect(!isAlive(child))
        #expect(waitUntil { processes(inCgroup: name).count == 2 })
        #expect(processes(inCgroup: name).contains(second))
    }

    /// A program that puts its child in a session of its own escapes stopasgroup; with
    /// --pid-ns the kernel ends it with the program (docs/supervisors.md).
    @Test func withPidNsStopLeavesNothingEvenOfAnotherSession() throws {
        let store = TestStore()
        let reserved = try ReservedPort(), port = reserved.port
        defer { withExtendedLifetime(reserved) {} }
        let name = "escape-\(getpid())"
        let section = makeDirectory("section") + "/escape.conf"
        try """
            [program:\(name)]
            command=/bin/sh -c 'exec plash run --pid-ns --cgroup "$SUPERVISOR_PROCESS_NAME" --from busybox -- sh -c "setsid sleep 1000 & exec httpd -f -p 127.0.0.1:\(port) -h /"'
            stopsignal=TERM
            stopasgroup=true
            killasgroup=true
            redirect_stderr=true
            stdout_logfile=AUTO

            """.write(toFile: section, atomically: true, encoding: .utf8)
        let daemon = try Supervisord(include: [section], environment: serviceEnvironment(store), cgroups: [name])
        defer { daemon.stop() }
        let pid = try #require(try daemon.waitForPID(name))
        #expect(waitUntil { processes(inCgroup: name).count == 4 })   // plash-exec, its init, httpd, sleep
        #expect(waitUntil { httpResponse(port: port) != nil })

        #expect(try daemon.ctl("stop", name).status == 0)
        #expect(waitUntil { processes(inCgroup: name).isEmpty })
        #expect(!isAlive(pid))
    }
}
