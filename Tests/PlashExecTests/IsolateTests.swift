import Foundation
import Testing
import PlashTestSupport

// --isolate: the routes by which a root container of the default mode reaches the host
// (/proc/PID/root, /proc/PID/ns, ptrace, the keyring, mounts, the terminal, device
// nodes) are closed, while a package manager's work (chown, setuid) still succeeds.

/// The probes, one line each: `WHAT: RESULT`.
let hostRoutes = """
    for c in "read /proc/1/root/etc/shadow" "read /proc/$PPID/root/etc/shadow" "setns /proc/1/ns/mnt" \
             "setns /proc/$PPID/ns/mnt" "ptrace 1" "ptrace $PPID" keyctl mount tiocsti; do
        echo "$c: $(probe $c | tr '\\n' ' ')"
    done
    """

/// plash-exec as the child of a shell in a throw-away PID namespace with its own /proc:
/// a probe that wrongly gets through reaches only that shell, never a process of the
/// host.
func execInThrowAwayPIDNamespace(_ arguments: [String], as user: TestUser? = nil) throws -> Finished {
    let wrapper = ["--pid", "--fork", "--mount-proc", "--", "/bin/sh", "-c", "\"$@\"; exit $?", "sh"]
    guard let user else { return try run("/usr/bin/unshare", wrapper + [plashExec] + arguments) }
    // As root, unshare with --mount-proc; then setpriv drops to the user.
    return try run("/usr/bin/unshare", wrapper + ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.uid)",
                                                  "--init-groups", "--", try userExec] + arguments,
                   environment: ["HOME": user.home])
}

@Test func anIsolatedRootContainerReachesNoHostProcessNamespaceKeyringMountOrTerminal() throws {
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", hostRoutes])
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 9, "\(result)")
    for line in lines {
        // Every route fails, with EACCES or EPERM, never ENOENT: each target exists.
        #expect(!line.contains("ok") && !line.contains("ENOENT"), "\(line)")
    }
    #expect(result.stdout.contains("tiocsti: EPERM EPERM"), "\(result)")
}

@Test func withoutIsolateTheSameRootContainerReadsTheHostsFilesThroughItsParent() throws {
    // The route --isolate closes, open in the default mode even with everything else
    // withheld: this proves the probe above can see it.
    let result = try execInThrowAwayPIDNamespace(["--no-tmp", "--no-home", "--seccomp", "default", "--root", probeRoot,
                                                  "--", "sh", "-c", "probe read /proc/$PPID/root/etc/shadow"])
    #expect(result.stdout == "ok\n", "\(result)")
}

@Test func anIsolatedContainerHasAMinimalDevAndItsOwnTmpProcAndProcesses() throws {
    let marker = "/tmp/plash-isolate-\(getpid())"
    FileManager.default.createFile(atPath: marker, contents: nil)
    defer { unlink(marker) }
    let script = """
        ls /dev | tr '\\n' ' '; echo
        ls -A /tmp | wc -l
        ps -o pid,comm | tail -n +2 | head -2 | tr -s ' \\n' '  '; echo
        (echo x > /proc/sys/kernel/hostname) 2>/dev/null || echo read-only
        (echo x > /sys/kernel/uevent_helper) 2>/dev/null || echo read-only
        probe mknod /disk | tr '\\n' ' '; echo
        echo pty > /dev/null && test -c /dev/pts/ptmx && echo ptmx
        """
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", script])
    #expect(result.stdout == """
        fd full null ptmx pts random shm stderr stdin stdout tty urandom zero 
        0
         1 plash-exec 2 sh 
        read-only
        read-only
        ok EACCES 
        ptmx

        """, "\(result)")
}

@Test func inAnIsolatedRootContainerAPackageManagerCanChownAndChangeUser() throws {
    let script = """
        grep -E '^Cap(Bnd|Eff|Inh|Amb)' /proc/self/status | tr '\\t\\n' '  '; echo
        touch /pkg && chown 100:101 /pkg && stat -c %u:%g /pkg
        probe as 100 /bin/sh -c 'id -u; touch /tmp/own && stat -c %u /tmp/own'
        """
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", script])
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
    // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: 0xa80405fb.
    #expect(result.stdout == """
        CapInh: 0000000000000000 CapEff: 00000000a80405fb CapBnd: 00000000a80405fb CapAmb: 0000000000000000 
        100:101
        100
        100

        """, "\(result)")
}

@Test func anOrdinaryUsersIsolatedContainerWorksAndIsClosedToo() throws {
    let user = try userWithSubordinateIDs
    let script = hostRoutes + """

        touch /f && chown 1000:1000 /f && stat -c %u /f && probe as 1000 /bin/sh -c 'id -u'
        """
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", subRoot, "--", "sh", "-c", script], as: user)
    let lines = result.stdout.split(separator: "\n")
    #expect(lines.count == 11, "\(result)")
    for line in lines.prefix(9) { #expect(!line.contains("ok") && !line.contains("ENOENT"), "\(line)") }
    #expect(lines.suffix(2) == ["1000", "1000"], "\(result)")
}
