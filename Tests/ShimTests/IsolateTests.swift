import Foundation
import PlashExec
import Testing
import PlashTestSupport

// --isolate: the routes by which a root container of the default mode reaches the host
// (/proc/PID/root, /proc/PID/ns, ptrace, the keyring, mounts, the terminal, device
// nodes, set-id files left in what the host sees) are closed, while a package manager's
// work (chown, becoming its own users) still succeeds.

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
func execInThrowAwayPIDNamespace(_ arguments: [String], as user: TestUser? = nil,
                                 environment: [String: String] = [:]) throws -> Finished {
    let wrapper = ["--pid", "--fork", "--mount-proc", "--", "/bin/sh", "-c", "\"$@\"; exit $?", "sh"]
    guard let user else { return try run("/usr/bin/unshare", wrapper + [plashExec] + arguments, environment: environment) }
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
        probe mknod /node | tr '\\n' ' '; echo
        echo pty > /dev/null && test -c /dev/pts/ptmx && echo ptmx
        """
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", script])
    #expect(result.stdout == """
        fd full null ptmx pts random shm stderr stdin stdout tty urandom zero 
        0
         1 plash-exec 2 sh 
        read-only
        read-only
        EPERM ENOENT 
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
    // CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT
    // AUDIT_WRITE: 0x200405eb.
    #expect(result.stdout == """
        CapInh: 0000000000000000 CapEff: 00000000200405eb CapBnd: 00000000200405eb CapAmb: 0000000000000000 
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

// What a container of --isolate writes where the host sees it (a --bind, the --persist
// directory) carries no privilege out to whoever finds it there: no device node, no
// set-id bit, no file capability. As root, whose container has no user namespace, and
// as an ordinary user.

let isolatedCallers = ["root", "user with subordinate ids"]

/// `plash-exec --isolate` with a new host directory bound at /out and a new --persist
/// directory, as `name`, running SCRIPT in the probe root.
func isolatedWithHostDirectories(_ name: String, _ script: String, options: [String] = [])
    throws -> (result: Finished, out: String, persist: String) {
    let user = try caller(name)
    let out = user.map { makeDirectory("out", ownedBy: $0) } ?? makeDirectory("out")
    // Root's below a directory only root may enter (rootsAlone).
    let persist = (user.map { makeDirectory("persist", ownedBy: $0) } ?? privateDirectory("persist")) + "/upper"
    let arguments = ["--isolate", "--bind", out + ":/out", "--persist", persist] + options
        + ["--root", try user == nil ? probeRoot : subRoot, "--", "sh", "-c", script]
    return (try execInThrowAwayPIDNamespace(arguments, as: user), out, persist)
}

/// A new directory of root's, mode 700.
func privateDirectory(_ name: String) -> String {
    let dir = makeDirectory(name)
    chmod(dir, 0o700)
    return dir
}

/// The host's view: every device node, set-id file or file with capabilities below `dir`.
func privilegedFiles(_ dir: String) throws -> String {
    try shell("find '\(dir)' \\( -type b -o -type c -o -perm /6000 \\) -print; getcap -r '\(dir)'").stdout
}

@Test(arguments: isolatedCallers)
func anIsolatedContainerMakesNoDeviceNodeInABindInItsPersistedRootOrInDev(_ name: String) throws {
    let (result, out, persist) = try isolatedWithHostDirectories(name, "for n in /out/n /n /dev/n; do probe mknod $n; done")
    #expect(result.stdout == String(repeating: "EPERM\nENOENT\n", count: 3), "\(result)")
    #expect(try privilegedFiles(out) + privilegedFiles(persist) == "")
}

/// The file systems an isolated container gets of its own carry the flags Docker gives
/// them: nothing set-id or device-like works from any, and nothing runs from /proc or
/// /dev. (Read from the container's own mountinfo: field 5 the mount point, 6 its flags.)
@Test func anIsolatedContainersOwnFileSystemsAreNosuidNodevAndNoexecWhereNothingRuns() throws {
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "cat", "/proc/self/mountinfo"])
    var flags: [String: Set<Substring>] = [:]
    for line in result.stdout.split(separator: "\n") {
        let fields = line.split(separator: " ")
        if fields.count > 5 { flags[String(fields[4])] = Set(fields[5].split(separator: ",")) }
    }
    let expected: [String: [Substring]] = [
        "/proc": ["nosuid", "nodev", "noexec"], "/dev": ["nosuid", "nodev", "noexec"],
        "/dev/shm": ["nosuid", "nodev", "noexec"], "/dev/pts": ["nosuid", "noexec"], "/tmp": ["nosuid", "nodev"],
    ]
    for (path, needed) in expected {
        #expect(flags[path].map { Set(needed).isSubset(of: $0) } == true, "\(path): \(flags[path].map { $0.sorted() } ?? [])")
    }
}

@Test func withMknodAddedBackTheNodesOfAnIsolatedContainerStillDoNotOpen() throws {
    // Each place has its own guard: the root, /dev, its /dev/shm, /tmp and the bind are nodev.
    let places = ["/out/n", "/n", "/dev/n", "/dev/shm/n", "/tmp/n"]
    let (result, _, _) = try isolatedWithHostDirectories("root", "for n in \(places.joined(separator: " ")); do probe mknod $n; done",
                                                         options: ["--cap-add", "mknod"])
    #expect(result.stdout == String(repeating: "ok\nEACCES\n", count: places.count), "\(result)")
}

@Test(arguments: isolatedCallers)
func anIsolatedContainerSetsNoSetIDBitInABindOrItsPersistedRoot(_ name: String) throws {
    let (result, out, persist) = try isolatedWithHostDirectories(name, "probe setid /out; mkdir /p && probe setid /p")
    let refused = "open EPERM\nchmod EPERM\nfchmod EPERM\nfchmodat2 EPERM\nmknod EPERM\nopenat2 ENOSYS\n"
    #expect(result.stdout == refused + refused, "\(result)")
    #expect(try privilegedFiles(out) + privilegedFiles(persist) == "")
}

@Test func withoutIsolateTheSameProbeLeavesSetIDFilesOnTheHost() throws {
    // Proves the probe above: each way it tries makes a set-id file.
    let out = makeDirectory("out")
    let result = try exec(["--bind", out + ":/out", "--root", probeRoot, "--", "probe", "setid", "/out"])
    #expect(result.stdout == "open ok\nchmod ok\nfchmod ok\nfchmodat2 ok\nmknod ok\nopenat2 ok\n", "\(result)")
    #expect(try privilegedFiles(out).split(separator: "\n").count == 4)
}

@Test(arguments: isolatedCallers)
func anIsolatedContainerGivesNoFileACapability(_ name: String) throws {
    let (result, out, _) = try isolatedWithHostDirectories(name, "touch /out/f && probe setcap /out/f")
    #expect(result.stdout == "EPERM\n", "\(result)")
    #expect(try privilegedFiles(out) == "")
    let unconfined = try exec(["--bind", out + ":/out", "--root", probeRoot, "--", "probe", "setcap", "/out/f"])
    #expect(try unconfined.stdout == "ok\n" && privilegedFiles(out).contains("cap_setuid"), "\(unconfined)")
}

@Test func aWriteOfAnIsolatedRootIntoASetuidFileOfABindClearsItsSetuidBit() throws {
    let out = makeDirectory("out")
    let file = out + "/tool"
    FileManager.default.createFile(atPath: file, contents: Data("#!/bin/sh\n".utf8))
    chmod(file, 0o4755)
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--bind", out + ":/out", "--root", probeRoot, "--",
                                                  "sh", "-c", "echo 'exec sh' >> /out/tool"])
    #expect(result.status == 0, "\(result)")
    #expect(try privilegedFiles(out) == "")
}

@Test func anIsolatedRootContainersPersistDirectoryMustBeOutOfOtherUsersReach() throws {
    // The image's own set-id programs and device nodes are copied up into it when
    // touched: here a node of /dev/null, made open to all, lands in DIR.
    let image = makeDirectory("image")
    try shell("cp -a '\(try probeRoot)/.' '\(image)' && mknod -m 666 '\(image)/node' c 1 3")
    let script = "chmod 666 /node; touch /node && echo touched"
    let open = makeDirectory("open") + "/upper"
    let refused = try execInThrowAwayPIDNamespace(["--isolate", "--persist", open, "--root", image, "--", "sh", "-c", script])
    #expect(refused.status == 125 && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
    #expect(!FileManager.default.fileExists(atPath: open))
    let closed = privateDirectory("closed") + "/upper"
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--persist", closed, "--root", image, "--", "sh", "-c", script])
    #expect(result.stdout == "touched\n", "\(result)")
    var info = stat()
    #expect(lstat(closed + "/node", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "copied up")
}

// Every path of /proc and /sys that --isolate protects, from the code's own lists,
// which docs/plash-exec.md's table of what is shared must state as well.

/// The `--isolate` column of the row `row` of docs/plash-exec.md's table of what a
/// container shares with the host.
func isolateColumn(_ row: String) throws -> String {
    let rows = try documentedTable("docs/plash-exec.md", after: "## What the container shares with the host")
    return try #require(rows.first { $0.first == row }?.last, "docs/plash-exec.md: no row \(row)")
}

@Test func thePathsIsolateProtectsAreThoseItsDocsName() throws {
    // "its own PID namespace's; A, B read-only, C, D empty"
    let proc = try isolateColumn("/proc").components(separatedBy: "; ").last ?? ""
    let parts = proc.components(separatedBy: " read-only, ")
    #expect(parts.count == 2 && parts[1].hasSuffix(" empty"), "\(proc)")
    let readOnly = parts[0].components(separatedBy: ", ")
    let empty = parts.last!.replacingOccurrences(of: " empty", with: "").components(separatedBy: ", ")
    #expect(Set(readOnly) == Set(isolatedReadOnlyProcPaths), "docs: \(readOnly)")
    #expect(Set(empty) == Set(isolatedEmptyPaths), "docs: \(empty)")
    for path in isolatedReadOnlyHostPaths {
        #expect(try isolateColumn(path).contains("read-only"), "\(path)")
    }
    let nameService = isolatedNameServiceFiles.joined(separator: ", ")
    #expect(try isolateColumn(nameService) == "the host's, read-only", "docs/plash-exec.md: no row \(nameService)")
    #expect(try isolateColumn("/sys") == "the host's, read-only (cgroups too)" && isolatedReadOnlyHostPaths.contains("/sys"))
}

/// A file below `path` (or `path` itself) that root may write, if there is one: opened
/// for writing by the tests below, never written.
func fileRootMayWrite(_ path: String) throws -> String? {
    let found = try shell("find '\(path)' -maxdepth 3 -type f -perm -u+w -print -quit 2>/dev/null").stdout
    return found.isEmpty ? nil : found.trimmingCharacters(in: .newlines)
}

@Test func anIsolatedRootContainerCannotWriteNorUncoverAnyPathIsolateMakesReadOnly() throws {
    // Where this kernel and host have them (no /proc/sysrq-trigger without CONFIG_MAGIC_SYSRQ).
    let paths = (isolatedReadOnlyProcPaths + isolatedReadOnlyHostPaths + isolatedNameServiceFiles)
        .filter { FileManager.default.fileExists(atPath: $0) }
    let files = try paths.compactMap(fileRootMayWrite)
    #expect(paths.contains("/proc/sys") && files.contains { $0.hasPrefix("/proc/sys/") } && files.contains { $0.hasPrefix("/sys/") },
            "\(files)")
    let script = """
        cat /proc/self/mountinfo; echo --
        probe open-write \(files.joined(separator: " ")); echo --
        probe unprotect \(paths.joined(separator: " ")); echo --
        probe open-write \(files.joined(separator: " "))
        """
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", script])
    let sections = result.stdout.components(separatedBy: "--\n").map { $0.split(separator: "\n").map(String.init) }
    try #require(sections.count == 4, "\(result)")
    // mountinfo: ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS ...
    let mounts = sections[0].map { $0.split(separator: " ").map(String.init) }.filter { $0.count > 5 }
    for path in paths {
        let covering = mounts.filter { $0[4] == path || $0[4].hasPrefix(path + "/") }
        #expect(covering.contains { $0[4] == path }, "\(path) is no mount of its own")
        for mount in covering {
            #expect(mount[5].split(separator: ",").contains("ro"), "\(mount[4]) is mounted \(mount[5])")
        }
    }
    for (index, file) in files.enumerated() {
        #expect(sections[1][safe: index] == "EROFS" && sections[3][safe: index] == "EROFS",
                "\(file): \(sections[1][safe: index] ?? "-"), after trying to uncover it \(sections[3][safe: index] ?? "-")")
    }
    for (index, path) in paths.enumerated() {
        let line = sections[2][safe: index] ?? "-"
        #expect(line.split(separator: " ").count == 3 && !line.contains("ok"), "\(path): \(line)")
    }
}

@Test func withoutIsolateRootOpensTheSameFilesForWriting() throws {
    // Proves the probe above: what it finds refused, the default mode lets through.
    let paths = (isolatedReadOnlyProcPaths + isolatedReadOnlyHostPaths + isolatedNameServiceFiles)
        .filter { FileManager.default.fileExists(atPath: $0) }
    let files = try paths.compactMap(fileRootMayWrite)
    let result = try execInThrowAwayPIDNamespace(["--no-tmp", "--no-home", "--root", probeRoot, "--",
                                                  "probe", "open-write"] + files)
    #expect(result.stdout == String(repeating: "ok\n", count: files.count), "\(files): \(result)")
}

@Test func anIsolatedContainerFindsEveryPathIsolateEmptiesEmpty() throws {
    let paths = isolatedEmptyPaths.filter { FileManager.default.fileExists(atPath: $0) }
    #expect(!paths.isEmpty, "this kernel has none of \(isolatedEmptyPaths)")
    let script = paths.map { "echo \"$(stat -c %t:%T \($0)) $(wc -c < \($0))\"" }.joined(separator: "\n")
    let result = try execInThrowAwayPIDNamespace(["--isolate", "--root", probeRoot, "--", "sh", "-c", script])
    // /dev/null (1:3) over each, so nothing of the host's is read.
    #expect(result.stdout == String(repeating: "1:3 0\n", count: paths.count), "\(paths): \(result)")
    let unisolated = try execInThrowAwayPIDNamespace(["--root", probeRoot, "--", "sh", "-c", script])
    #expect(!unisolated.stdout.contains("1:3"), "\(unisolated)")
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
