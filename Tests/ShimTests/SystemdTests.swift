import Foundation
import Testing
import PlashTestSupport

// The shipped units (systemd/) under a real systemd as PID 1: Tests/vm/systemd.sh runs
// in a VM that boots Debian's systemd (Tests/vm/boot-systemd.sh): start, stop and
// status, Type=notify, a .socket unit, Delegate=yes limits and an OOM kill in the
// unit's cgroup, the journal, a templated unit and an ordinary user's --user unit.

let systemdBoot = repository.appendingPathComponent("Tests/vm/boot-systemd.sh").path

/// What the systemd VM lacks here: the VM's needs, and mmdebstrap for its Debian root
/// (made once from Debian's mirror, then kept in /var/cache/plash-tests).
func systemdVMMissing() -> String? {
    [vmMissing(), missing([.mmdebstrap])].compactMap { $0 }.first
}

@Test(.skippedWhenMissing(systemdVMMissing()))
func theShippedUnitsWorkUnderARealSystemd() throws {
    try requirePresent(systemdVMMissing())
    let dir = makeDirectory("systemd-vm")
    try copyExecutable(plashExec, to: dir + "/plash-exec")
    try copyPlash(to: dir)
    try copyExecutable("/bin/busybox", to: dir + "/busybox")
    let units = try run("/bin/cp", ["-r", repository.appendingPathComponent("systemd").path, dir + "/systemd"])
    #expect(units.status == 0, "\(units)")

    // The demo image: busybox, the probe, and two servers that speak systemd's protocols.
    let root = try makeBusyboxRoot(at: makeDirectory("demo-root"))
    try copyExecutable(probe, to: root + "/bin/probe")
    try writeExecutable(root + "/bin/notify-server", """
        #!/bin/sh
        # READY=1 from the main PID itself (probe execs httpd after sending it).
        exec probe notify READY=1 httpd -f -p 127.0.0.1:8082 -h /srv/www

        """)
    try writeExecutable(root + "/bin/socket-server", "#!/bin/sh\nexec probe listen socket-server\n")
    try FileManager.default.createDirectory(atPath: root + "/srv/www", withIntermediateDirectories: true)
    try "hello from plash\n".write(toFile: root + "/srv/www/index.html", atomically: false, encoding: .utf8)
    let packed = try run("/bin/tar", ["-C", root, "-cf", dir + "/demo.tar", "."])
    #expect(packed.status == 0, "\(packed)")

    let script = repository.appendingPathComponent("Tests/vm/systemd.sh").path
    // A bound for a hung VM: emulated, it is slow on a loaded machine.
    let result = try run("/bin/bash", [systemdBoot, dir, script], environment: ["VM_TIMEOUT": "900"], deadline: 960)
    let report = result.stdout.split(separator: "\n").filter { $0.hasPrefix("PASS") || $0.hasPrefix("FAIL") || $0.hasPrefix("summary") }
    #expect(result.status == 0, "\(report.joined(separator: "\n"))\n\(result.stdout.suffix(3000))\n\(result.stderr.suffix(1000))")
    #expect(report.contains("summary: 0 failed"))
}
