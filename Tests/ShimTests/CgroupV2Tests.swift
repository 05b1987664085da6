import Foundation
import Testing
import PlashTestSupport

// This host has hybrid cgroups; most hosts have a pure v2 hierarchy. The v2 path is
// tested for real in a small VM (../shared/tools/vm-run): Tests/vm/cgroup-v2.sh runs
// the memory, pids, cpus and restart checks there with the built plash-exec.

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

@Test(.skippedWhenMissing(vmMissing()))
func limitsWorkOnAPureCgroupV2Hierarchy() throws {
    try requirePresent(vmMissing())
    let dir = makeDirectory("vm")
    try copyExecutable(plashExec, to: dir + "/plash-exec")
    try copyExecutable(probe, to: dir + "/probe")
    let script = repository.appendingPathComponent("Tests/vm/cgroup-v2.sh").path
    let result = try run("/bin/bash", [vmRun, dir, script], environment: ["VM_TIMEOUT": "600"], deadline: 660)  // a bound for a hung VM: emulated, it is slow on a loaded machine
    let report = result.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") || $0.hasPrefix("summary") }
    #expect(result.status == 0, "\(report.joined(separator: "\n"))\n\(result.stdout.suffix(2000))")
    #expect(report.contains("summary: 0 failed"))
}
