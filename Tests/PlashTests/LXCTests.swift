import Foundation
import PlashTestSupport
import Testing

/// import-lxc and --from NAME[:RELEASE] against an image server in the LXC format that
/// the test makes and Tests/Servers/http-server.py serves on 127.0.0.1.
@Suite struct LXCTests {
    @Test func aNameStoredFromAnotherServerIsNamedWhenThisServerResolvesItOrFails() throws {
        let store = TestStore()
        let server = try lxcImageServer()
        defer { server.stop() }
        let other = "http://127.0.0.1:\(server.port)"
        #expect(try store.plash(["import-lxc", "tiny:1.0"], environment: ["PLASH_LXC_SERVER": other]).status == 0)
        // The store's own server (http://127.0.0.1:9) refuses at once.
        for from in ["tiny", "tiny:1.0"] {
            let result = try store.plash(["build", "--from", from])
            #expect(result.status == 1 && result.stderr.hasSuffix("(the store's tiny came from \(other): PLASH_LXC_SERVER=\(other))\n"),
                    "\(result)")
        }
        let release = try store.plash(["build", "--from", "tiny:2.0"])
        #expect(release.status == 1 && !release.stderr.contains("came from"), "\(release)")
        // A server that answers: the name resolves there, and the line says so first.
        let this = try lxcImageServer()
        defer { this.stop() }
        let here = "http://127.0.0.1:\(this.port)"
        let resolved = try store.plash(["build", "--from", "tiny"], environment: ["PLASH_LXC_SERVER": here])
        #expect(resolved.status == 0 && resolved.stderr.hasPrefix("--> tiny from \(here); the store's tiny came from \(other): PLASH_LXC_SERVER=\(other)\n"),
                "\(resolved)")
    }

    @Test func aNameResolvesOnTheServerOnceAndLaterBuildsTouchNoNetwork() throws {
        let store = TestStore()
        let server = try lxcImageServer()
        let env = ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)"]
        let imported = try store.plash(["import-lxc", "tiny:1.0"], environment: env)
        #expect(imported.status == 0, "\(imported)")
        let id = imported.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", id, "--", "cat", "/release"]).stdout == "1.0\n")
        // Without a release: the highest numbered one, its newest build.
        let newest = try store.plash(["build", "--from", "tiny", "--run", "cat /release > /seen"], environment: env)
        #expect(newest.status == 0, "\(newest)")
        let built = newest.stdout.trimmingCharacters(in: .newlines)
        #expect(try store.plash(["run", built, "--", "cat", "/seen"]).stdout == "1.10\n")
        let listing = try store.plash(["ls"]).stdout
        #expect(listing.contains("import-lxc tiny:1.10 20260102_00:00 from http://127.0.0.1:\(server.port)"), "\(listing)")
        server.stop()

        #expect(try store.plash(["build", "--from", "tiny", "--run", "cat /release > /seen"], environment: env).stdout == newest.stdout)
        #expect(try store.plash(["import-lxc", "tiny:1.0"], environment: env).stdout == imported.stdout)
        let refreshed = try store.plash(["import-lxc", "--refresh", "tiny:1.0"], environment: env)
        #expect(refreshed.status == 1 && refreshed.stderr.contains("connect 127.0.0.1:\(server.port): "), "\(refreshed)")
    }

    @Test func fromLXCAsksTheServerEvenWhenTheStoreHasTheName() throws {
        let store = TestStore()
        let server = try lxcImageServer()
        defer { server.stop() }
        let env = ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)"]
        _ = try store.id(["build", "--from", "busybox", "--run", "echo local > /release"])
        _ = try store.id(["map", "tiny", "2"])
        let result = try store.plash(["run", "--from-lxc", "tiny:1.0", "--", "cat", "/release"], environment: env)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "1.0\n")
        #expect(try store.plash(["run", "--from", "tiny", "--", "cat", "/release"], environment: env).stdout == "local\n")
    }

    /// A server named without its scheme: one line that names it once, and the variable.
    @Test func aServerWithoutASchemeIsNamedOnceInOneLine() throws {
        let store = TestStore()
        for server in ["127.0.0.1:9", "images.example.org"] {
            let failed = try store.plash(["import-lxc", "alpine"], environment: ["PLASH_LXC_SERVER": server])
            #expect(failed.status == 1 && failed.stderr.split(separator: "\n").count == 1, "\(failed)")
            #expect(failed.stderr.components(separatedBy: server).count == 2 && failed.stderr.contains("PLASH_LXC_SERVER"), "\(failed)")
        }
    }

    @Test func anUnknownNameOrReleaseListsWhatTheServerHas() throws {
        let store = TestStore()
        let server = try lxcImageServer()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let env = ["PLASH_LXC_SERVER": base]
        let name = try store.plash(["build", "-f", "nosuch", "--run", "true"], environment: env)
        let names = FileManager.default.fileExists(atPath: alpineRoot) ? "alpine, corrupt, gone, tiny, unsummed" : "corrupt, gone, tiny, unsummed"
        #expect(name.status == 1 && name.stderr == "plash: import-lxc nosuch: \(base) has no image nosuch for \(imageArchitecture) (it has: \(names))\n",
                "\(name)")
        let release = try store.plash(["import-lxc", "tiny:2.0"], environment: env)
        #expect(release.stderr == "plash: import-lxc tiny:2.0: \(base) has no release 2.0 of tiny (it has: 1.0, 1.10, 1.9)\n", "\(release)")
        let missing = try store.plash(["import-lxc", "gone"], environment: env)
        #expect(missing.status == 1 && missing.stderr.hasSuffix(": HTTP 404 File not found\n"), "\(missing)")
        #expect(try store.plash(["ls", "--json"]).stdout.filter { !$0.isWhitespace } == "[]")
        let redirected = try store.plash(["import-lxc", "tiny:1.9"], environment: ["PLASH_LXC_SERVER": base + "/redirect"])
        #expect(redirected.status == 0, "\(redirected)")
    }

    @Test func aRootfsThatIsNotWhatSHA256SUMSSaysOrHasNoneIsRefusedAndNothingIsStored() throws {
        let store = TestStore()
        let server = try lxcImageServer()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let env = ["PLASH_LXC_SERVER": base]
        let corrupt = try store.plash(["import-lxc", "corrupt"], environment: env)
        // Progress lines, then the one error line.
        let error = corrupt.stderr.split(separator: "\n").last ?? ""
        #expect(corrupt.status == 1 && error.hasPrefix("plash: import-lxc corrupt: \(base)/images/corrupt/1.0/\(imageArchitecture)/default/20260101_00:00/rootfs.tar.xz: the download, against SHA256SUMS: its digest is sha256:")
                && corrupt.stderr.components(separatedBy: "plash:").count == 2, "\(corrupt)")
        #expect(store.indexedIDs == [] && store.stagingDirectories == [])
        let unsummed = try store.plash(["build", "--from", "unsummed", "--run", "true"], environment: env)
        #expect(unsummed.status == 1 && unsummed.stderr.contains("rootfs.tar.xz: no SHA256SUMS beside it to check it against (HTTP 404)")
                && unsummed.stderr.contains("PLASH_LXC_UNCHECKED=\(base))") && unsummed.stderr.split(separator: "\n").count == 1, "\(unsummed)")
        #expect(store.indexedIDs == [] && store.stagingDirectories == [])
        // Another server named unchecked changes nothing; this one named, the image imports.
        let other = try store.plash(["import-lxc", "unsummed"], environment: env.merging(["PLASH_LXC_UNCHECKED": "http://127.0.0.1:9"]) { $1 })
        #expect(other.status == 1 && store.indexedIDs == [], "\(other)")
        let trusted = try store.plash(["run", "--from", "unsummed", "--", "cat", "/release"],
                                      environment: env.merging(["PLASH_LXC_UNCHECKED": base + "/"]) { $1 })
        #expect(trusted.status == 0 && trusted.stdout == "unsummed\n", "\(trusted)")
    }

    @Test func theRealAlpineRootRunsFromItsShortcut() throws {
        let alpine = alpineRoot
        guard FileManager.default.fileExists(atPath: alpine) else {
            #expect(!mustRun, "\(alpine) is missing")
            return
        }
        let store = TestStore()
        let server = try lxcImageServer()
        defer { server.stop() }
        let env = ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)"]
        let result = try store.plash(["run", "-A", "--", "cat", "/etc/alpine-release"], environment: env)
        #expect(result.status == 0 && result.stdout.hasPrefix("3.23."), "\(result)")
        #expect(try store.plash(["run", "--image", "alpine:3.23", "--", "apk", "--version"], environment: env).status == 0)
    }
}
