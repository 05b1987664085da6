import Foundation
import PlashTestSupport
import Testing

/// import-debootstrap and --from-debootstrap: a real Debian bookworm root from mmdebstrap
/// and Debian's mirror, built once per test run as root and once as an ordinary user (at
/// the same time: the tests that need them run in parallel), then served from the test
/// image server and registry. The failures run a stand-in mmdebstrap.
@Suite struct DebootstrapTests {
    @Test func theRootServedByAnImageServerAsDebianBookwormInstallsAndRunsCowsay() throws {
        let built = try DebianBookworm.root.get()
        let root = makeDirectory("lxc-debian")
        let path = "/images/debian/bookworm/\(imageArchitecture)/default/20260101_00:00/"
        try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
        // With the SHA256SUMS that import-lxc checks it against, as the real server has.
        let packed = try shell("'\(plash)' export-tar \(built.id) - | xz -T0 -1 > '\(root + path)rootfs.tar.xz' && cd '\(root + path)' && sha256sum rootfs.tar.xz > SHA256SUMS",
                               environment: built.store.environment, deadline: DebianBookworm.buildDeadline)
        #expect(packed.status == 0, "\(packed)")
        try FileManager.default.createDirectory(atPath: root + "/meta/1.0", withIntermediateDirectories: true)
        try "debian;bookworm;\(imageArchitecture);default;20260101_00:00;\(path)\n"
            .write(toFile: root + "/meta/1.0/index-system", atomically: false, encoding: .utf8)
        let server = try WebServer(root: root)
        defer { server.stop() }
        let store = TestStore()
        let cow = try store.plash(["run", "--from", "debian:bookworm", "--apt", "cowsay", "--", "/usr/games/cowsay", "hi"],
                                  environment: ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)"],
                                  deadline: DebianBookworm.buildDeadline)
        #expect(cow.status == 0 && cow.stdout.contains("< hi >") && cow.stdout.contains("(oo)"), "\(cow)")
    }

    /// As Debian's own images: no package lists and no downloaded packages in the layer,
    /// and `plash ls` names what it installed rather than `apt-get update`.
    @Test func aptInstallsAndLeavesNoListsOrDownloadsAndLsNamesThePackages() throws {
        let built = try DebianBookworm.root.get()
        let id = try built.store.id(["build", "--from", built.id, "--apt", "cowsay"])
        let left = try built.store.plash(["run", id, "--", "sh", "-c",
                                          "ls /usr/games/cowsay; find /var/lib/apt/lists /var/cache/apt -type f ! -name lock"])
        #expect(left.status == 0 && left.stdout == "/usr/games/cowsay\n", "\(left)")
        let listing = try built.store.plash(["ls"]).stdout
        #expect(listing.split(separator: "\n").contains { $0.hasPrefix(id + " ") && $0.hasSuffix("  # apt cowsay") }, "\(listing)")
    }

    @Test func theRootPushedToARegistryRunsWithFromDockerAndUnpacksAsUmociUnpacksIt() throws {
        let layout = try DebianBookworm.layout.get()
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(layout, tag: "bookworm", as: "debian:bookworm", deadline: DebianBookworm.buildDeadline)
        let store = TestStore()
        let version = try store.plash(["run", "--from-docker", "\(registry.host)/debian:bookworm", "--", "cat", "/etc/debian_version"],
                                      deadline: DebianBookworm.buildDeadline)
        #expect(version.status == 0 && version.stdout.hasPrefix("12."), "\(version)")
        // The pull is cached: the comparison mounts the same image.
        let differences = try umociDifferences(registry, "debian:bookworm", store: store, deadline: DebianBookworm.buildDeadline)
        #expect(differences.isEmpty, "\(differences.prefix(40).joined(separator: "\n"))")
    }

    @Test func anOrdinaryUserBuildsTheRootWithItsOwnersAndTheSecondBuildIsCached() throws {
        let user = try userWithSubordinateIDs
        let (cwd, data, first) = try DebianBookworm.user.get()
        #expect(first.status == 0, "\(first)")
        let id = first.stdout.trimmingCharacters(in: .newlines)
        let apt = try plashAs(user, ["run", id, "--", "stat", "-c", "%U %G", "/var/cache/apt/archives/partial"], data: data, directory: cwd)
        #expect(apt.stdout == "_apt root\n", "\(apt)")
        let again = try user.run(userPlash, ["build", "--from-debootstrap", "bookworm", "--run", "echo built > /built"],
                                 environment: ["PLASH_DATA": data, "PATH": DebianBookworm.noMmdebstrap], directory: cwd)
        #expect(again.status == 0 && !again.stderr.contains("import-debootstrap"), "\(again)")
        let built = again.stdout.trimmingCharacters(in: .newlines)
        #expect(try plashAs(user, ["run", built, "--", "cat", "/built"], data: data, directory: cwd).stdout == "built\n")
        #expect(try rootOwnedFiles([data]) == "")
    }
}

/// A stand-in for mmdebstrap, first on PATH: it writes its arguments to `ARGS` and then
/// does what `script` says (a tar of the busybox root on stdout, messages on stderr).
func fakeMmdebstrap(_ script: String) throws -> (path: String, arguments: String) {
    let dir = makeDirectory("fake-mmdebstrap")
    try writeExecutable(dir + "/mmdebstrap", """
        #!/bin/sh
        echo "$@" > \(dir)/arguments
        echo $$ > \(dir)/pid
        \(script)
        """)
    return (dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", dir + "/arguments")
}

@Test func importDebootstrapRunsMmdebstrapOncePerSuiteAndMirrorAndAgainWithRefresh() throws {
    let store = TestStore()
    let root = try busyboxRoot
    // Records of 2 MiB: the zeros after the end of the archive outgrow a pipe's buffer, and
    // mmdebstrap fails unless plash reads them all.
    let fake = try fakeMmdebstrap("echo \"I: building\" >&2; tar -b 4096 -C \(root) -c .")
    let (first, ended) = try runWithDeadline(plash, ["import-debootstrap", "stable"],
                                             environment: store.environment.merging(["PATH": fake.path]) { $1 }, seconds: 60)
    guard ended else {
        Issue.record("plash import-debootstrap never ended: it waits for mmdebstrap, which waits for it to read")
        return
    }
    #expect(first.status == 0 && first.stdout == "1\n", "\(first)")
    #expect(try String(contentsOfFile: fake.arguments, encoding: .utf8) == "--variant=minbase -- stable -\n")
    #expect(!first.stderr.contains("I: building"), "\(first)")
    #expect(try store.plash(["run", "1", "--", "busybox", "true"]).status == 0)

    let mirrored = try store.plash(["build", "--from-debootstrap", "stable", "http://127.0.0.1:9/debian"],
                                   environment: ["PATH": fake.path])
    #expect(mirrored.stdout == "2\n", "\(mirrored)")
    #expect(try String(contentsOfFile: fake.arguments, encoding: .utf8) == "--variant=minbase -- stable - http://127.0.0.1:9/debian\n")
    #expect(try store.plash(["ls"]).stdout.contains("import-debootstrap stable http://127.0.0.1:9/debian\n"))

    #expect(try store.plash(["build", "--from-debootstrap", "stable"], environment: ["PATH": DebianBookworm.noMmdebstrap]).stdout == "1\n")
    let refreshed = try store.plash(["build", "--refresh", "--from-debootstrap", "stable"], environment: ["PATH": fake.path])
    #expect(refreshed.stdout == "3\n", "\(refreshed)")
    #expect(try store.plash(["import-debootstrap", "stable"], environment: ["PATH": DebianBookworm.noMmdebstrap]).stdout == "3\n")
}

@Test func anOrdinaryUserWithoutSubordinateIdsIsToldTheyAreMissingAndHowToAddThem() throws {
    let user = try userWithoutSubordinateIDs
    // A stand-in that would build: only the missing ids stop the import.
    let fake = try fakeMmdebstrap("tar -C \(try busyboxRoot) -c .")
    let cwd = makeDirectory("userdeb-nosub", ownedBy: user)
    let result = try user.run(userPlash, ["import-debootstrap", "bookworm"],
                              environment: ["PLASH_DATA": cwd + "/store", "PATH": fake.path], directory: cwd)
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.hasPrefix("plash: import-debootstrap bookworm: no subordinate ids for \(user.name) in /etc/subuid and /etc/subgid: "
                                    + "mmdebstrap needs them to build as an ordinary user (as root: usermod --add-subuids "), "\(result)")
    #expect(!FileManager.default.fileExists(atPath: fake.arguments), "mmdebstrap ran")
}

@Test func aMissingMmdebstrapIsOneLineThatSaysHowToInstallIt() throws {
    let store = TestStore()
    let result = try store.plash(["build", "--from-debootstrap", "bookworm"], environment: ["PATH": DebianBookworm.noMmdebstrap])
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr == "plash: import-debootstrap bookworm: mmdebstrap not found on PATH (apt-get install mmdebstrap)\n")
    // An ordinary user's build imports in a plash of its own: its failure is still one line.
    let user = try userWithSubordinateIDs
    let cwd = makeDirectory("userdeb-missing", ownedBy: user)
    let users = try user.run(userPlash, ["build", "--from-debootstrap", "bookworm", "--run", "true"],
                             environment: ["PLASH_DATA": cwd + "/store", "PATH": DebianBookworm.noMmdebstrap], directory: cwd)
    #expect(users.status == 1, "\(users)")
    #expect(users.stderr == "plash: import-debootstrap bookworm: mmdebstrap not found on PATH (apt-get install mmdebstrap)\n")
    let usage = try store.plash(["import-debootstrap", "--variant=x", "bookworm"])
    #expect(usage.status == 2 && usage.stderr.hasPrefix("plash: import-debootstrap: unknown option --variant=x\n"), "\(usage)")
    let macro = try store.plash(["build", "--from-debootstrap", "bookworm", "a", "b"])
    #expect(macro.status == 2 && macro.stderr.hasPrefix("plash: --from-debootstrap: give a SUITE and at most a MIRROR"), "\(macro)")
}

/// mmdebstrap sends SIGHUP to its whole process group when writing its tar fails. plash
/// runs it in a group of its own, so plash lives to say why, and nothing that started
/// beside plash (a shell's pipeline, the other builds of this test run) is hung up.
/// plash runs in a session of its own here: without that guard the signal reaches it,
/// never this test.
@Test func mmdebstrapHangingUpItsProcessGroupReachesNeitherPlashNorItsNeighbours() throws {
    let store = TestStore()
    let fake = try fakeMmdebstrap("echo 'E: creating tarball failed' >&2; kill -HUP -$(ps -o pgid= $$ | tr -d ' '); exit 1")
    let neighbour = makeDirectory("neighbour")
    let result = try run("/usr/bin/setsid", ["--wait", "/bin/sh", "-c", "sleep 5 & echo $! > \"$0\"/pid; \"$@\"; status=$?; kill -0 $(cat \"$0\"/pid) && echo alive >> \"$0\"/pid; exit $status",
                                             neighbour, plash, "import-debootstrap", "bookworm"],
                         environment: store.environment.merging(["PATH": fake.path]) { $1 })
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.hasSuffix("plash: import-debootstrap bookworm: creating tarball failed\n"), "\(result)")
    #expect(try String(contentsOfFile: neighbour + "/pid", encoding: .utf8).hasSuffix("alive\n"))
    #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
}

@Test func anUnknownSuiteIsMmdebstrapsOwnErrorLineAndLeavesNothing() throws {
    // The real mmdebstrap and apt, against a mirror on 127.0.0.1 that has no suite.
    let store = TestStore()
    let server = try WebServer(root: makeDirectory("mirror"))
    defer { server.stop() }
    let mirror = "http://127.0.0.1:\(server.port)/debian"
    let result = try store.plash(["import-debootstrap", "nosuch", mirror])
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr == "--> import-debootstrap nosuch \(mirror)\nplash: import-debootstrap nosuch \(mirror): "
            + "The repository '\(mirror) nosuch Release' does not have a Release file.\n", "\(result)")
    #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
}

@Test func aRunThatFailsMidwayReportsItsCauseNotItsSummariesAndLeavesNothing() throws {
    let store = TestStore()
    let root = try busyboxRoot
    // What mmdebstrap printed here for a mirror that refused connections, after half a tar.
    let fake = try fakeMmdebstrap("""
        tar -C \(root) -c . | head -c 100000
        cat >&2 <<'EOF'
        I: running apt-get update...
        E: Failed to fetch http://127.0.0.1:1/debian/dists/bookworm/InRelease  Could not connect to 127.0.0.1:1 (127.0.0.1). - connect (111: Connection refused)
        E: Some index files failed to download. They have been ignored, or old ones used instead.
        E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed
        I: main() received signal PIPE: waiting for setup...
        E: mmdebstrap failed to run
        EOF
        exit 25
        """)
    let result = try store.plash(["build", "--from-debootstrap", "bookworm", "--run", "true"], environment: ["PATH": fake.path])
    #expect(result.status == 1, "\(result)")
    #expect(result.stderr.hasSuffix("\nplash: import-debootstrap bookworm: Failed to fetch http://127.0.0.1:1/debian/dists/bookworm/InRelease  "
                                    + "Could not connect to 127.0.0.1:1 (127.0.0.1). - connect (111: Connection refused)\n"), "\(result)")
    #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
    // A whole tar and a failure all the same: no image.
    let late = try fakeMmdebstrap("tar -C \(root) -c .; echo 'E: setup hook failed: 1' >&2; exit 1")
    let failed = try store.plash(["import-debootstrap", "bookworm"], environment: ["PATH": late.path])
    #expect(failed.stderr.hasSuffix("\nplash: import-debootstrap bookworm: setup hook failed: 1\n"), "\(failed)")
    #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
}

@Test func aKilledImportLeavesNothingAndTheNextOneBuilds() throws {
    let store = TestStore()
    let root = try busyboxRoot
    let fake = try fakeMmdebstrap("tar -C \(root) -c . | head -c 100000; exec sleep 600")
    let child = try Child(plash, ["import-debootstrap", "bookworm"], environment: store.environment.merging(["PATH": fake.path]) { $1 })
    let pidFile = splitPath(fake.arguments) + "/pid"
    // The extractor has begun once the staging directory holds the image's files.
    let started = waitUntil(30) { store.stagingDirectories.contains { FileManager.default.fileExists(atPath: store.data + "/tmp/" + $0 + "/_data/bin") } }
    kill(child.pid, SIGKILL)
    _ = child.finish()
    if let pid = pid_t((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .newlines) ?? "") {
        kill(pid, SIGKILL)
    }
    #expect(started, "the import never started extracting")
    #expect(store.indexedIDs.isEmpty)
    let whole = try fakeMmdebstrap("tar -C \(root) -c .")
    let next = try store.plash(["import-debootstrap", "bookworm"], environment: ["PATH": whole.path])
    #expect(next.status == 0 && next.stdout == "1\n", "\(next)")
    #expect(store.stagingDirectories.isEmpty, "\(store.stagingDirectories)")
}

func splitPath(_ path: String) -> String { (path as NSString).deletingLastPathComponent }

@Test func outputThatIsNoTarFailsAtOnceWhileMmdebstrapStillRuns() throws {
    let store = TestStore()
    // As mmdebstrap, which on TERM first finishes its step: here it never ends by itself.
    let fake = try fakeMmdebstrap("trap '' TERM; yes | head -c 4096; exec sleep 600")
    let (result, ended) = try runWithDeadline(plash, ["import-debootstrap", "bookworm"],
                                              environment: store.environment.merging(["PATH": fake.path]) { $1 }, seconds: 30)
    if let pid = pid_t((try? String(contentsOfFile: splitPath(fake.arguments) + "/pid", encoding: .utf8))?
        .trimmingCharacters(in: .newlines) ?? "") {
        kill(pid, SIGKILL)
    }
    #expect(ended, "plash waited for mmdebstrap to end")
    #expect(result.status == 1 && result.stderr.hasSuffix("\n") && result.stderr.contains("plash: import-debootstrap bookworm: ")
            && result.stderr.contains("not a tar archive"), "\(result)")
    #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
}

@Test func onATerminalMmdebstrapsOwnProgressShowsAndWithoutOneItDoesNot() throws {
    let store = TestStore()
    let fake = try fakeMmdebstrap("echo 'I: downloading packages with apt...' >&2; tar -C \(try busyboxRoot) -c .")
    let terminal = try run("/usr/bin/script", ["-qec", "\(plash) import-debootstrap stable", "/dev/null"],
                           environment: store.environment.merging(["PATH": fake.path]) { $1 })
    #expect(terminal.status == 0 && terminal.stdout.contains("I: downloading packages with apt..."), "\(terminal)")
    let piped = try store.plash(["import-debootstrap", "--refresh", "stable"], environment: ["PATH": fake.path])
    #expect(piped.status == 0 && !piped.stderr.contains("I: downloading"), "\(piped)")
}
