import Foundation
import PlashTestSupport
import Testing

/// plash inside other sandboxes, as an ordinary user without subordinate ids: in a user
/// namespace of `unshare -U`, and in bubblewrap's. (Inside a plash container, as root and
/// as a user: PackageTests' seed session.)
@Suite struct NestedTests {
    /// Runs `command` (a shell line; $PLASH is plash) as plash-test-nosub in a store of
    /// its own.
    func asUser(_ command: String) throws -> Finished {
        let user = try userWithoutSubordinateIDs
        let dir = makeDirectory("nested", ownedBy: user)
        return try user.run("/bin/sh", ["-c", command],
                            environment: ["PLASH": try userPlash, "PLASH_DATA": dir + "/store",
                                          "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], directory: dir)
    }

    @Test func insideUnshareUWithoutSubordinateIDsAUserBuildsAndRuns() throws {
        let result = try asUser("""
            unshare -U -r sh -ec 'id=$("$PLASH" build --from busybox --run "touch /file"); "$PLASH" run "$id" -- ls /file'
            """)
        #expect(result.status == 0 && result.stdout == "/file\n", "\(result)")
    }

    @Test func insideBubblewrapsUserNamespaceAUserBuildsAndRuns() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            #expect(!mustRun, "bwrap is missing: apt-get install bubblewrap")
            return
        }
        let result = try asUser("""
            bwrap --unshare-user --dev-bind / / sh -ec 'id=$("$PLASH" build --from busybox --run "touch /file"); "$PLASH" run "$id" -- ls /file'
            """)
        #expect(result.status == 0 && result.stdout == "/file\n", "\(result)")
    }

    /// bwrap --uid 0 leaves uid 0 without capabilities: plash takes the user's way (a user
    /// namespace), which such a sandbox cannot map. One line says so, not that user
    /// namespaces are disabled, and nothing is mounted or stored.
    @Test func asUID0WithoutCapabilitiesInBubblewrapOneLineNamesTheSandbox() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            #expect(!mustRun, "bwrap is missing: apt-get install bubblewrap")
            return
        }
        let result = try asUser("bwrap --unshare-user --dev-bind / / --uid 0 \"$PLASH\" run --from busybox -- true")
        #expect(result.status == 125, "\(result)")   // plash run's status for a container that did not start
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.last?.hasPrefix("plash: write /proc/self/uid_map: Operation not permitted (this sandbox") == true, "\(result)")
        #expect(!result.stderr.contains("user namespaces disabled"), "\(result)")
    }
}
