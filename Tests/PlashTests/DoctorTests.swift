import Foundation
import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// `plash doctor` against real misses: a user without subordinate ids, a store on a
/// read-only mount, cgroup v2 without delegation and user namespaces switched off (in a VM).
@Suite struct DoctorTests {
    @Test func rootOnThisHostHasWhatPlashNeeds() throws {
        let result = try TestStore().plash(["doctor"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasSuffix("plash works for root\n"), "\(result)")
        for subject in ["plash-exec", "kernel", "overlay in a mount namespace", "cgroups", "store", "seccomp"] {
            #expect(result.stdout.contains("\nok    \(subject): ") || result.stdout.hasPrefix("ok    \(subject): "), "\(subject): \(result)")
        }
    }

    @Test func aUserWithoutSubordinateIdsIsToldHowToGetThem() throws {
        let user = try userWithoutSubordinateIDs
        let result = try user.run(try sharedBinaries + "/plash", ["doctor"], directory: user.home)
        #expect(result.status == 0, "containers still run: \(result)")
        #expect(result.stdout.contains("\nwarn  subordinate ids: none for \(user.name) in /etc/subuid and /etc/subgid: "), "\(result)")
        // A range that neither /etc/subuid nor /etc/subgid holds (plash-test-sub has one).
        let taken = ["/etc/subuid", "/etc/subgid"].flatMap { subordinateRanges((try? String(contentsOfFile: $0, encoding: .utf8)) ?? "") }
        let start = freeSubordinateRange(taken: taken)
        #expect(!taken.contains { $0.start < start + 65536 && $0.start + $0.count > start })
        #expect(result.stdout.contains("\n      fix: as root: usermod --add-subuids \(start)-\(start + 65535) --add-subgids \(start)-\(start + 65535) \(user.name) "),
                "\(result)")
        #expect(result.stdout.contains("\nok    overlay in a mount namespace: works in a user namespace\n"), "\(result)")
    }

    @Test func withoutSystemdTheCgroupFixNamesNoSystemctl() throws {
        guard !FileManager.default.fileExists(atPath: "/run/systemd/system") else { return }
        let user = try userWithoutSubordinateIDs
        let result = try user.run(try sharedBinaries + "/plash", ["doctor"], directory: user.home)
        let lines = result.stdout.split(separator: "\n")
        let fix = try #require(lines.firstIndex { $0.hasPrefix("warn  cgroups: ") }.map { lines[$0 + 1] }, "\(result)")
        #expect(fix.hasPrefix("      fix: as root: mkdir "), "\(fix)")
        #expect(!result.stdout.contains("systemctl"), "\(result)")
    }

    /// On a v1 or hybrid host (this one), the user gets a cgroup in each hierarchy of the
    /// limits' controllers, not one in /sys/fs/cgroup, which holds only their mounts.
    @Test func onCgroupV1TheCgroupFixMakesOneInEachControllersHierarchy() throws {
        let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        guard !FileManager.default.fileExists(atPath: "/run/systemd/system"),
              case .legacy(let mounts)? = CgroupHierarchy(mountinfo: mountinfo) else { return }
        let user = try userWithoutSubordinateIDs
        let result = try user.run(try sharedBinaries + "/plash", ["doctor"], directory: user.home)
        let lines = result.stdout.split(separator: "\n")
        let fix = try #require(lines.firstIndex { $0.hasPrefix("warn  cgroups: ") }.map { String(lines[$0 + 1]) }, "\(result)")
        let made = fix.split(separator: " && ").first?.split(separator: " ").drop { $0 != "mkdir" }.dropFirst().map(String.init) ?? []
        #expect(Set(made) == Set(mounts.values.map { "\($0)/\(user.name)" }), "\(fix)")
    }

    @Test func aUserWithSubordinateIdsSeesThem() throws {
        let user = try userWithSubordinateIDs
        let result = try user.run(try sharedBinaries + "/plash", ["doctor"], directory: user.home)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("\nok    subordinate ids: \(user.name): 65536 uids from \(user.uid * 100000), "), "\(result)")
    }

    @Test func aStoreOnAReadOnlyMountFailsWithTheFix() throws {
        // The read-only mount lives in a mount namespace of its own, gone with it.
        let dir = makeDirectory("readonly")
        let result = try shell("unshare --mount sh -c 'mount -t tmpfs -o ro tmpfs \(dir) && PLASH_DATA=\(dir)/plash exec \(plash) doctor'")
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("\nFAIL  store: \(dir)/plash is on a read-only mount (\(dir))\n"
                                       + "      fix: set PLASH_DATA to a directory on a writable file system, or remount it read-write\n"),
                "\(result)")
        #expect(result.stdout.hasSuffix("plash cannot run containers for root: 1 problem above\n"), "\(result)")
    }

    @Test func aStoreThatIsAFileFailsWithTheFix() throws {
        let file = makeDirectory("file-store") + "/plash"
        FileManager.default.createFile(atPath: file, contents: nil)
        for data in [file, file + "/below"] {
            let result = try run(plash, ["doctor"], environment: ["PLASH_DATA": data, "HOME": makeDirectory("home")])
            #expect(result.status == 1, "\(data): \(result)")
            #expect(result.stdout.contains("\nFAIL  store: \(data): \(file) is not a directory\n"), "\(data): \(result)")
        }
    }

    @Test func aDirectoryThatIsNoStoreFailsWithTheFix() throws {
        let home = makeDirectory("fake home")
        try shell("mkdir '\(home)/Documents'")
        let result = try run(plash, ["doctor"], environment: ["PLASH_DATA": home, "HOME": makeDirectory("home")])
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("\nFAIL  store: \(home): not a plash store (no plash-store file, and it holds other files)\n"
                                       + "      fix: set PLASH_DATA to a new or empty directory\n"), "\(result)")
    }

    @Test func aPlashWithoutPlashExecFails() throws {
        let dir = makeDirectory("lone")
        try copyPlash(to: dir)
        let result = try run(dir + "/plash", ["doctor"], environment: TestStore().environment.merging(["PATH": "/usr/bin:/bin"]) { $1 })
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.afterFirstLine.hasPrefix("FAIL  plash-exec: not beside plash nor on PATH\n"
                                        + "      fix: install both with scripts/install, or put plash-exec on PATH\n"), "\(result)")
        #expect(result.stdout.hasSuffix("plash cannot run containers for root: 1 problem above\n"), "\(result)")
    }

    @Test func aDirectoryOrAPlainFileNamedPlashExecIsNotIt() throws {
        let dir = makeDirectory("lone")
        try copyPlash(to: dir)
        let onPath = makeDirectory("path")
        try FileManager.default.createDirectory(atPath: onPath + "/a/plash-exec", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: onPath + "/b", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: onPath + "/b/plash-exec", contents: Data("#!/bin/sh\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        let real = makeDirectory("real")
        try copyExecutable(plashExec, to: real + "/plash-exec")
        let environment = TestStore().environment.merging(["PATH": "\(onPath)/a:\(onPath)/b:\(real):/usr/bin:/bin"]) { $1 }
        let result = try run(dir + "/plash", ["doctor"], environment: environment)
        #expect(result.stdout.afterFirstLine.hasPrefix("ok    plash-exec: \(real)/plash-exec\n"), "\(result)")
        let build = try run(dir + "/plash", ["build", "--from", "busybox", "--run", "true"], environment: environment)
        #expect(build.status == 0, "\(build)")
    }

    @Test(.skippedWhenMissing(vmMissing()))
    func cgroupV2WithoutDelegationAndUserNamespacesOffInAVM() throws {
        try requirePresent(vmMissing())
        let dir = makeDirectory("vm")
        try copyExecutable(plashExec, to: dir + "/plash-exec")
        try copyPlash(to: dir)
        let script = repositoryDirectory + "/Tests/vm/doctor-cgroup-v2.sh"
        let result = try run("/bin/bash", [vmRun, dir, script], environment: ["VM_TIMEOUT": "600"], deadline: 660)  // a bound for a hung VM: emulated, it is slow on a loaded machine
        let report = result.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") || $0.hasPrefix("summary") }
        #expect(result.status == 0, "\(report.joined(separator: "\n"))\n\(result.stdout.suffix(2000))")
        #expect(report.contains("summary: 0 failed"))
    }
}

extension String {
    /// What follows the first line: plash doctor's findings, after its version line.
    var afterFirstLine: Substring { drop { $0 != "\n" }.dropFirst() }
}
