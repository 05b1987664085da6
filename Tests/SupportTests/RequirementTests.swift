import Foundation
import Testing
import PlashTestSupport

/// On a machine where scripts/install-deps has not run, a test that needs a program says
/// so in one line that names it and the command installing it; the VM and fuse tests say
/// exactly what they lack.
@Suite struct RequirementTests {
    /// A directory for PATH holding an executable file for each of `commands`.
    func path(with commands: [String]) throws -> String {
        let dir = makeDirectory("path")
        for command in commands { try writeExecutable(dir + "/" + command, "#!/bin/sh\n") }
        return dir
    }

    @Test func aToolMissingFromPATHIsOneLineNamingItAndInstallDeps() throws {
        let line = missing([.skopeo, .runsv, .umoci], path: try path(with: ["umoci"]))
        #expect(line == "missing skopeo, runsv: run scripts/install-deps skopeo runit"
                + " (as root; scripts/test installs what every test needs)")
        #expect(missing([.skopeo, .runsv], path: try path(with: ["skopeo", "runsv"])) == nil)
    }

    @Test func aFileThatCannotRunOrADirectoryIsNoTool() throws {
        let dir = makeDirectory("path")
        try "".write(toFile: dir + "/skopeo", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/umoci", withIntermediateDirectories: false)
        #expect(missing([.skopeo, .umoci], path: dir)?.hasPrefix("missing skopeo, umoci: ") == true)
    }

    @Test func theVMTestsNameQemuAndTheFuseTestsFuseOverlayfsWhenPATHLacksThem() throws {
        let empty = makeDirectory("path")
        let vm = vmMissing(path: empty)
        #expect(vm?.contains("missing qemu-system-x86_64: run scripts/install-deps qemu-system-x86") == true, "\(vm ?? "nil")")
        #expect(vm?.contains("\n") == false)
        let fuse = fuseMissing(forOrdinaryUsers: true, path: empty)
        #expect(fuse?.contains("missing fuse-overlayfs: run scripts/install-deps fuse-overlayfs") == true, "\(fuse ?? "nil")")
    }
}
