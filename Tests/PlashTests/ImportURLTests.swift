import Foundation
import PlashTestSupport
import Testing

/// plash import-url and --from-url, against Tests/Servers/http-server.py on 127.0.0.1.
@Suite struct ImportURLTests {
    /// A server with the busybox root as rootfs.tar (plain) and rootfs.tar.gz.
    static func served() throws -> WebServer {
        let root = makeDirectory("web")
        let source = try busyboxRoot
        for (name, flag) in [("rootfs.tar", ""), ("rootfs.tar.gz", "z")] {
            let made = try run("/bin/tar", ["-c\(flag)f", root + "/" + name, "-C", source, "."])
            guard made.status == 0 else { throw SetupError("tar: \(made)") }
        }
        return try WebServer(root: root)
    }

    func leftovers(_ store: TestStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store.data + "/tmp")) ?? []).filter { $0.hasPrefix("import-") }
    }

    @Test func aURLIsDownloadedOnceAndLaterBuildsTouchNoNetwork() throws {
        let store = TestStore()
        let server = try Self.served()
        let url = "http://127.0.0.1:\(server.port)/rootfs.tar.gz"
        let imported = try store.plash(["import-url", url])
        #expect(imported.status == 0, "\(imported)")
        let lines = imported.stderr.split(separator: "\n").map(String.init)
        // One line per stage: the download, then the extraction (the session).
        #expect(lines.count == 5 && lines[0] == "--> import-url \(url)" && lines[4] == "--:", "\(imported)")
        #expect(lines.count > 2 && lines[1].hasPrefix("downloaded ") && lines[1].contains("(100%)")
                && lines[2] == "extracting...", "\(imported)")
        let id = imported.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "--", "/bin/busybox", "true"]).status == 0)
        server.stop()

        let again = try store.plash(["import-url", url])
        #expect(again.status == 0 && again.stdout == imported.stdout && again.stderr == "", "\(again)")
        let built = try store.plash(["build", "--from-url", url, "--run", "touch /built"])
        #expect(built.status == 0, "\(built)")
        let refreshed = try store.plash(["build", "--refresh", "--from-url", url])
        #expect(refreshed.status == 1, "\(refreshed)")
        #expect(refreshed.stderr.split(separator: "\n").last?.hasPrefix("plash: import-url \(url): connect 127.0.0.1:\(server.port): ") == true,
                "\(refreshed)")
    }

    @Test func aFailedDownloadLeavesNothingAndAPlainTarOrARedirectWorks() throws {
        let store = TestStore()
        let server = try Self.served()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        for path in ["/truncate/rootfs.tar.gz", "/status/404"] {
            let failed = try store.plash(["import-url", base + path])
            #expect(failed.status == 1, "\(failed)")
            #expect(failed.stderr.split(separator: "\n").last?.hasPrefix("plash: import-url \(base + path): ") == true, "\(failed)")
            #expect(failed.stdout == "")
        }
        #expect(try store.plash(["ls", "--json"]).stdout.filter { !$0.isWhitespace } == "[]")
        #expect(leftovers(store) == [])
        let redirected = try store.plash(["build", "--from-url", base + "/redirect/rootfs.tar"])
        #expect(redirected.status == 0, "\(redirected)")
    }

    /// Without these checks both went to disk until it was full.
    @Test func aDownloadThatIsNoArchiveOrCannotFitFailsAtOnce() throws {
        let store = TestStore()
        let server = try Self.served()
        defer { server.stop() }
        for (path, reason) in [("/endless", "not a tar archive"), ("/announce-huge", "1024.0 TiB announced, but the store's file system has only ")] {
            let url = "http://127.0.0.1:\(server.port)\(path)"
            let (failed, ended) = try runWithDeadline(plash, ["import-url", url], environment: store.environment)
            #expect(ended && failed.status == 1, "\(failed)")
            #expect(failed.stderr.split(separator: "\n").last?.hasPrefix("plash: import-url \(url): \(reason)") == true, "\(failed)")
        }
        #expect(leftovers(store) == [])
    }

    /// Shorter than the 512 bytes the download's start is checked on: the extraction says it.
    @Test func aShortDownloadThatIsNoArchiveIsNotATarArchive() throws {
        let store = TestStore()
        let root = makeDirectory("web")
        try "Not Found\n".write(toFile: root + "/short", atomically: false, encoding: .utf8)
        let server = try WebServer(root: root)
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/short"
        let failed = try store.plash(["import-url", url])
        #expect(failed.status == 1 && failed.stderr.hasSuffix("\nplash: import-url \(url): not a tar archive\n"), "\(failed)")
        #expect(store.indexedIDs == [] && leftovers(store) == [])
    }

    @Test func anInterruptedDownloadLeavesNothingThatLasts() throws {
        let store = TestStore()
        let server = try Self.served()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let child = try Child(plash, ["import-url", base + "/stall"], environment: store.environment)
        let started = waitUntil { !leftovers(store).isEmpty }
        kill(child.pid, SIGINT)
        let interrupted = child.finish()
        #expect(started && interrupted.signal == SIGINT, "\(interrupted)")
        #expect(try store.plash(["ls", "--json"]).stdout.filter { !$0.isWhitespace } == "[]")
        // The next import sweeps what the killed one left in staging.
        #expect(try store.plash(["import-url", base + "/rootfs.tar"]).status == 0)
        #expect(leftovers(store) == [])
    }

    @Test func onATerminalTheProgressIsOneLineRedrawn() throws {
        let store = TestStore()
        let server = try Self.served()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/rootfs.tar"
        // script(1) gives plash a terminal for stderr.
        let result = try run("/usr/bin/script", ["-qec", "\(plash) import-url \(url)", "/dev/null"], environment: store.environment)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("\r\u{1b}[Kdownloaded ") && result.stdout.contains("(100%)"), "\(result)")
        #expect(result.stdout.contains("(100%)") && result.stdout.contains("\nextracting...\r\n"), "\(result.stdout.debugDescription)")
    }

    @Test func onATerminalAFailedDownloadsErrorStartsALineOfItsOwn() throws {
        let store = TestStore()
        let server = try Self.served()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(server.port)/truncate/rootfs.tar"
        let result = try run("/usr/bin/script", ["-qec", "\(plash) import-url \(url)", "/dev/null"], environment: store.environment)
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("\r\u{1b}[Kdownloaded ") && result.stdout.contains("\r\u{1b}[Kplash: import-url \(url): "),
                "\(result.stdout.debugDescription)")
    }

    @Test func aURLThatIsNoHTTPURLIsAUsageError() throws {
        let store = TestStore()
        let command = try store.plash(["import-url", "ftp://example.org/x.tar"])
        #expect(command.status == 2 && command.stderr.hasPrefix("plash: ftp://example.org/x.tar: not an http or https URL\n"),
                "\(command)")
        #expect(try store.plash(["build", "--from-url", "rootfs.tar"]).status == 2)
        #expect(try store.plash(["import-url"]).status == 2)
    }
}
