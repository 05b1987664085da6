import Foundation
import PlashTestSupport
import Testing

/// Older kernels, played by a seccomp filter around plash itself that answers the
/// system calls they lack with ENOSYS, as they do (Tests/Probe/old-kernel.c). plash
/// falls back where it has another way, or fails with one line naming the Linux release
/// it needs; nothing crashes, and a failed build leaves the store as it was.
/// docs/install.md, "Kernels", lists each call.
@Suite struct OldKernelTests {
    /// Calls of newer kernels that plash, and the libc under it, do without.
    static let fallbacks = ["fsopen", "fsconfig", "fsmount", "move_mount", "mount_setattr", "open_tree",
                            "clone3", "close_range", "pidfd_open", "pidfd_send_signal", "statx"]

    /// `plash ARGUMENTS` as root, in `store`, where each of `calls` answers ENOSYS.
    func plash(without calls: String, _ arguments: [String], in store: TestStore) throws -> Finished {
        try run(try oldKernel, [calls, PlashTestSupport.plash] + arguments, environment: store.environment)
    }

    @Test(arguments: fallbacks)
    func withoutACallOfNewerKernelsABuildAndARunStillWork(call: String) throws {
        let store = TestStore()
        let build = try plash(without: call, ["build", "--from", "busybox", "--run", "touch /file"], in: store)
        #expect(build.status == 0, "\(build)")
        let id = build.stdout.trimmingCharacters(in: .newlines)
        let result = try plash(without: call, ["run", id, "--", "ls", "/file"], in: store)
        #expect(result.status == 0 && result.stdout == "/file\n", "\(result)")
    }

    @Test(arguments: ["fsopen", "mount_setattr"])
    func withoutACallOfNewerKernelsAUserBuildsAndRuns(call: String) throws {
        let user = try userWithoutSubordinateIDs
        let dir = makeDirectory("old-kernel", ownedBy: user)
        let result = try user.run(try oldKernel, [call, "/bin/sh", "-ec", #"id=$("$PLASH" build --from busybox --run "touch /file"); "$PLASH" run "$id" -- ls /file"#],
                                  environment: ["PLASH": try userPlash, "PLASH_DATA": dir + "/store", "PATH": "/usr/bin:/bin"], directory: dir)
        #expect(result.status == 0 && result.stdout == "/file\n", "\(result)")
    }

    /// An imported layout's blobs are kept in the store by copy_file_range (5.3 across
    /// file systems): before it, by reading and writing; the export reads them back.
    @Test func withoutCopyFileRangeAnImportedLayoutKeepsItsBlobsAndRuns() throws {
        let store = TestStore()
        let layout = makeDirectory("layout")
        try writeDeepLayout(layout, layers: 2)
        let imported = try plash(without: "copy_file_range", ["import-oci", layout + ":t"], in: store)
        #expect(imported.status == 0, "\(imported)")
        let id = imported.stdout.trimmingCharacters(in: .newlines)
        let result = try plash(without: "copy_file_range", ["run", id, "--", "ls", "/l1", "/l2"], in: store)
        #expect(result.status == 0 && result.stdout == "/l1\n/l2\n", "\(result)")
        let exported = makeDirectory("exported")
        let export = try plash(without: "copy_file_range", ["export-oci", id, exported + ":t"], in: store)
        #expect(export.status == 0, "\(export)")
    }

    /// Before 5.6 there is no way to resolve a path inside the image that a symlink
    /// cannot lead out of: no fallback, one line.
    @Test func withoutOpenat2ARunFailsWithOneLineNamingLinux5_6() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "true"])
        let result = try plash(without: "openat2", ["run", id, "--", "true"], in: store)
        #expect(result.status == 125, "\(result)")
        #expect(result.stderr == "plash: open mount point /proc: Function not implemented (openat2 needs Linux 5.6 or later)\n", "\(result)")
    }

    @Test(arguments: [("openat2", "plash: build failed: open mount point /dev: Function not implemented (openat2 needs Linux 5.6 or later)"),
                      ("memfd_create", "plash: create memory file for build step: Function not implemented (memfd_create needs Linux 3.17 or later)")])
    func withoutACallItNeedsABuildFailsWithOneLineAndLeavesTheStore(call: String, line: String) throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "true"])
        let before = try treeListing(store.data)
        let result = try plash(without: call, ["build", "--from", id, "--run", "touch /file"], in: store)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.split(separator: "\n").last.map(String.init) == line, "\(result)")
        #expect(try treeListing(store.data) == before)
    }

    /// --isolate makes /sys read-only with everything mounted below it, which only
    /// mount_setattr does at once: one line, not a /sys whose submounts stay writable.
    @Test func withoutMountSetattrIsolateFailsWithOneLineNamingLinux5_12() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "true"])
        let result = try plash(without: "mount_setattr", ["run", "--isolate", id, "--", "true"], in: store)
        #expect(result.status == 125, "\(result)")
        #expect(result.stderr == "plash: make read-only /sys: Function not implemented (mount_setattr needs Linux 5.12 or later)\n", "\(result)")
    }

    /// Before 5.2 the writable layer lives in a tmpfs over the top layer's directory;
    /// the image `/` has none.
    @Test func withoutFsopenTheImageSlashFailsWithOneLineNamingLinux5_2() throws {
        let result = try run(try oldKernel, ["fsopen", plashExec, "--root", "/", "--", "true"],
                             environment: TestStore().environment)
        #expect(result.status == 125, "\(result)")
        #expect(result.stderr == "plash-exec: mount scratch tmpfs on /: Function not implemented (fsopen needs Linux 5.2 or later)\n", "\(result)")
    }
}

/// Tests/Probe/old-kernel.c, compiled statically with libseccomp once per test process.
var oldKernel: String { get throws { try oldKernelFixture.get() } }
private let oldKernelFixture = Fixture {
    let source = repositoryDirectory + "/Tests/Probe/old-kernel.c"
    let binary = scratch + "/old-kernel"
    let result = try run("/usr/bin/cc", ["-static", "-O2", "-o", binary, source, "-lseccomp"])
    guard result.status == 0 else { throw SetupError("cannot compile old-kernel (install gcc and libseccomp-dev): \(result)") }
    return binary
}
