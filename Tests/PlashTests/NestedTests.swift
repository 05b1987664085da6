import Foundation
import PlashTestSupport
import Testing

/// plash inside other sandboxes and restricted places: each works, or fails with one
/// line naming the cause and the fix, which `plash doctor` names too. As an ordinary user
/// without subordinate ids: in a user namespace of `unshare -U`, and in bubblewrap's.
/// (Inside a default plash container, as root and as a user: PackageTests' seed session.
/// With user namespaces switched off: DoctorTests' VM.)
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

    /// bwrap --uid 0 --cap-add CAP_SYS_ADMIN: root of a user namespace that may mount,
    /// but not as the host's root does: overlayfs wants more capabilities there, and no
    /// new user namespace may map 0. One line says what to give, and doctor says the same.
    @Test func asUID0WithOnlyCapSysAdminInBubblewrapOneLineNamesTheFix() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            #expect(!mustRun, "bwrap is missing: apt-get install bubblewrap")
            return
        }
        let result = try asUser(#"bwrap --unshare-user --dev-bind / / --uid 0 --cap-add CAP_SYS_ADMIN sh -c '"$PLASH" run --from busybox -- true; echo "status $?"; "$PLASH" doctor'"#)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let advice = "Permission denied (root of this user namespace lacks capabilities that overlayfs needs: give it all (bwrap --cap-add ALL), or run plash as the sandbox's own user)"
        #expect(lines.first == "status 125", "\(result)")
        let line = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("plash: mount overlay on ") && line.hasSuffix(advice), "\(result)")
        #expect(lines.contains { $0.hasPrefix("FAIL  overlay in a mount namespace: mount overlay on ") && $0.hasSuffix(advice) }, "\(result)")
    }

    /// With every capability, root of bubblewrap's user namespace builds and runs, and
    /// sees the user's own images as the user does: their overlays keep metadata (here a
    /// directory made anew, opaque over the old one) in user.* xattrs, which it reads.
    @Test func asUID0WithAllCapabilitiesInBubblewrapAUserBuildsAndRunsTheirImages() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") else {
            #expect(!mustRun, "bwrap is missing: apt-get install bubblewrap")
            return
        }
        let result = try asUser("""
            set -e
            base=$("$PLASH" build --from busybox --run "mkdir /d && touch /d/old")
            id=$("$PLASH" build --from "$base" --run "rm -r /d && mkdir /d && touch /d/new")
            bwrap --unshare-user --dev-bind / / --uid 0 --cap-add ALL sh -ec '"$PLASH" run "$1" -- ls /d; id=$("$PLASH" build --from "$1" --run "touch /d/inner"); "$PLASH" run "$id" -- ls /d' - "$id"
            """)
        #expect(result.status == 0 && result.stdout == "new\ninner\nnew\n", "\(result)")
    }

    /// `plash run OPTIONS busybox-image -- plash run --from busybox -- echo inner`, with the
    /// binaries at /plash and a store of the inner plash's own at /inner, as root or as
    /// plash-test-nosub; then plash doctor inside. stdout: the inner output, "status N",
    /// doctor's lines.
    func nested(_ options: [String], asUser: Bool) throws -> Finished {
        let user = try userWithoutSubordinateIDs
        let dir = asUser ? makeDirectory("nested", ownedBy: user) : makeDirectory("nested")
        try FileManager.default.createDirectory(atPath: dir + "/inner", withIntermediateDirectories: false)
        if asUser { chown(dir + "/inner", user.uid, user.uid) }
        let binaries = try sharedBinaries
        let inner = #"PLASH_DATA=/inner/store /plash/plash run --from busybox -- echo inner; echo "status $?"; PLASH_DATA=/inner/store /plash/plash doctor"#
        let script = """
            id=$("$PLASH" build --from busybox --run true) || exit
            "$PLASH" run \(options.joined(separator: " ")) --bind \(dir)/inner:/inner --bind \(binaries):/plash "$id" -- sh -c '\(inner)'
            """
        let environment = ["PLASH": binaries + "/plash", "PLASH_DATA": dir + "/store", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        return asUser ? try user.run("/bin/sh", ["-c", script], environment: environment, directory: dir)
            : try run("/bin/sh", ["-c", script], environment: environment, directory: dir)
    }

    /// --isolate's filter refuses new namespaces, so no container starts inside one: one
    /// line names the filter (not disabled user namespaces), and doctor says the same.
    @Test(arguments: [false, true])
    func insideAPlashContainerOfIsolateOneLineNamesItsSeccompFilter(asUser: Bool) throws {
        let result = try nested(["--isolate"], asUser: asUser)
        let advice = "(a seccomp filter refuses new namespaces here, as plash --isolate and docker's default profile do: run plash outside it, "
            + "or that container without the filter: plash run without --isolate, docker run --security-opt seccomp=unconfined)"
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "status 125", "\(result)")
        #expect(result.stderr.split(separator: "\n").last.map(String.init) == "plash: unshare: Operation not permitted " + advice, "\(result)")
        #expect(lines.contains("FAIL  overlay in a mount namespace: unshare: Operation not permitted " + advice), "\(result)")
        #expect(lines.contains("warn  seccomp: a seccomp filter confines plash here: if it refuses namespaces (plash --isolate, docker's default profile), no container starts"), "\(result)")
    }

    /// podman's default profile (containers-common, as docker's but allowing namespaces)
    /// applied with plash's own --seccomp: plash runs inside it.
    @Test(arguments: [false, true])
    func underTheContainersDefaultSeccompProfilePlashRuns(asUser: Bool) throws {
        let profile = "/usr/share/containers/seccomp.json"
        guard FileManager.default.fileExists(atPath: profile) else {
            #expect(!mustRun, "\(profile) is missing: apt-get install golang-github-containers-common")
            return
        }
        let result = try nested(["--seccomp", profile], asUser: asUser)
        #expect(result.stdout.hasPrefix("inner\nstatus 0\n"), "\(result)")
    }

    /// Root without CAP_SYS_ADMIN, as docker's default capabilities leave it, takes an
    /// ordinary user's way, a user namespace of its own, and runs.
    @Test func insideAContainerAsRootWithoutCapSysAdminPlashRuns() throws {
        let result = try nested(["--cap-drop", "CAP_SYS_ADMIN"], asUser: false)
        #expect(result.stdout.hasPrefix("inner\nstatus 0\n"), "\(result)")
    }

    /// Runs `command` as root in a mount namespace (and PID namespace) of its own, whose
    /// mounts never reach the host: the restricted place is made there.
    func inOwnMountNamespace(_ command: String, propagation: String = "private") throws -> Finished {
        let dir = makeDirectory("restricted")
        return try run("/usr/bin/unshare", ["--mount", "--propagation", propagation, "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", command],
                       environment: ["PLASH": plash, "PLASH_DATA": dir + "/store", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"], directory: dir)
    }

    @Test(arguments: ["private", "slave"])
    func whereMountPropagationIsPrivateOrSlaveRootBuildsAndRuns(propagation: String) throws {
        let result = try inOwnMountNamespace(#"id=$("$PLASH" build --from busybox --run "touch /file") && "$PLASH" run "$id" -- ls /file"#,
                                             propagation: propagation)
        #expect(result.status == 0 && result.stdout == "/file\n", "\(result)")
    }

    /// Cgroups mounted read-only, as in most containers: a limit is refused in one line
    /// with the fix, a run without limits works, and doctor warns.
    @Test func whereCgroupsAreReadOnlyALimitIsRefusedInOneLineAndRunsWithoutLimitsWork() throws {
        let result = try inOwnMountNamespace("""
            for m in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do mount -o remount,bind,ro "$m" || exit; done
            id=$("$PLASH" build --from busybox --run true) || exit
            "$PLASH" run --memory 64M "$id" -- echo limited; echo "status $?"
            "$PLASH" run "$id" -- echo unlimited; "$PLASH" doctor
            """)
        let advice = "Read-only file system (cgroups are read-only here, as in most containers: run without --memory, --pids, --cpus and --cgroup, or where cgroups are writable)"
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.prefix(2) == ["status 125", "unlimited"], "\(result)")
        let line = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(line.hasPrefix("plash: create cgroup /sys/fs/cgroup/") && line.hasSuffix(advice), "\(result)")
        #expect(lines.contains { $0.hasPrefix("warn  cgroups: /sys/fs/cgroup") && $0.hasSuffix(" is read-only: --memory, --pids, --cpus and --cgroup fail") }, "\(result)")
    }

    /// No /dev/fuse (a container without the device): the kernel's overlay needs none;
    /// fuse-overlayfs fails in one line that says how to get it.
    @Test func whereDevFuseIsMissingRunsWorkAndFuseOverlayfsFailsInOneLine() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/fuse-overlayfs") else {
            #expect(!mustRun, "fuse-overlayfs is missing: apt-get install fuse-overlayfs")
            return
        }
        let result = try inOwnMountNamespace("""
            mkdir host-dev && mount --bind /dev host-dev && mount -t tmpfs -o mode=755 none /dev || exit
            for d in null zero full random urandom tty; do touch /dev/$d && mount --bind host-dev/$d /dev/$d || exit; done
            [ ! -e /dev/fuse ] || exit
            id=$("$PLASH" build --from busybox --run true) || exit
            "$PLASH" run "$id" -- echo kernel; PLASH_OVERLAY=fuse "$PLASH" run "$id" -- echo fuse; echo "status $?"
            """)
        #expect(result.stdout == "kernel\nstatus 125\n", "\(result)")
        #expect(result.stderr.split(separator: "\n").last == "plash: open /dev/fuse: No such file or directory (fuse-overlayfs needs /dev/fuse: as root, modprobe fuse; in a container, give it the device, as docker run --device /dev/fuse does)", "\(result)")
    }
}
