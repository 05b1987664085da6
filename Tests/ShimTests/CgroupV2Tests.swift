import Foundation
import Testing
import PlashTestSupport

// This host has hybrid cgroups; most hosts have a pure v2 hierarchy. The v2 path is
// tested for real in a small VM (../shared/tools/vm-run): Tests/vm/cgroup-v2.sh runs
// the memory, pids, cpus and restart checks there with the built plash-exec.

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let vmRun = repository.deletingLastPathComponent().appendingPathComponent("shared/tools/vm-run/run-in-vm.sh").path
let vmAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64")
    && FileManager.default.fileExists(atPath: vmRun)
    && ((try? FileManager.default.contentsOfDirectory(atPath: "/boot"))?.contains { $0.hasPrefix("vmlinuz-") } ?? false)

@Test(.enabled(if: vmAvailable || mustRun, "needs qemu-system-x86, a kernel in /boot and ../shared/tools/vm-run"))
func limitsWorkOnAPureCgroupV2Hierarchy() throws {
    let dir = makeDirectory("vm")
    try copyExecutable(plashExec, to: dir + "/plash-exec")
    try copyExecutable(probe, to: dir + "/probe")
    let script = repository.appendingPathComponent("Tests/vm/cgroup-v2.sh").path
    let result = try run("/bin/bash", [vmRun, dir, script], environment: ["VM_TIMEOUT": "600"], deadline: 660)  // a bound for a hung VM: emulated, it is slow on a loaded machine
    let report = result.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") || $0.hasPrefix("summary") }
    #expect(result.status == 0, "\(report.joined(separator: "\n"))\n\(result.stdout.suffix(2000))")
    #expect(report.contains("summary: 0 failed"))
}
