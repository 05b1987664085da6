import Foundation
import PlashTestSupport
import Testing

/// Build steps never write to the host: they read the caller's working directory, $HOME
/// and /home's entries, but their writes land in the layer or fail (issue 18).
@Suite struct BuildHostTests {
    /// What `inScratchHost` saw: the listings of /home, /tmp, /dev/shm and the working directory
    /// before and after the builds, and each build's result.
    struct HostRun {
        let before: String
        let after: String
        let builds: [Build]
        let directory: String
    }

    struct Build: CustomStringConvertible {
        let status: Int32
        let stdout: String
        let stderr: String
        var id: String { stdout.trimmingCharacters(in: .newlines) }
        var description: String { "status \(status) stdout \(stdout.debugDescription) stderr \(stderr.debugDescription)" }
    }

    /// Runs each of `builds` (plash build's arguments) from a scratch working directory
    /// outside /home (or `directory`, made inside the scratch /tmp), as root or as `user`,
    /// with HOME in /home. Everything happens in mount and PID namespaces of its own
    /// whose /home, /tmp and /dev/shm are fresh tmpfs mounts: a build that writes there
    /// (as the old plash did) changes nothing of the real host, and no other test's files
    /// change the listings. /home holds alice's home with a file, /tmp another's directory.
    func inScratchHost(_ builds: [[String]], data: String, user: TestUser? = nil, directory: String? = nil,
                       setup: String = "") throws -> HostRun {
        let out = makeDirectory("host-run")
        let cwd = directory ?? makeDirectory("build-cwd")
        for (n, build) in builds.enumerated() {
            try Data(build.map { $0 + "\0" }.joined().utf8).write(to: URL(fileURLWithPath: "\(out)/build.\(n)"))
        }
        let script = """
            set -eu
            mount -t tmpfs -o mode=755 tmpfs /home
            mount -t tmpfs -o mode=1777 tmpfs /tmp
            mount -t tmpfs -o mode=1777 tmpfs /dev/shm
            mkdir /home/alice /tmp/other
            echo notes > /home/alice/notes
            echo other > /tmp/other/file
            home=/home/alice
            if [ -n "$TESTUSER" ]; then
                home=/home/$TESTUSER
                mkdir $home && echo notes > $home/notes && chown -R $TESTUSER: $home
            fi
            mkdir -p "$CWD" && echo input > "$CWD/input"
            [ -z "$TESTUSER" ] || chown -R $TESTUSER: "$CWD"
            \(setup)
            cd "$CWD"
            list() { find /home /tmp /dev/shm "$CWD" -printf '%p %y %s %m %U %G %T@ %l\\n' | sort; }
            list > "$OUT/before"
            n=0
            while [ -e "$OUT/build.$n" ]; do
                mapfile -d '' arguments < "$OUT/build.$n"
                set +e
                if [ -n "$TESTUSER" ]; then
                    setpriv --reuid=$TESTUID --regid=$TESTUID --init-groups \\
                        env -i HOME=$home PATH=/usr/bin:/bin PLASH_DATA="$DATA" "$PLASH" build "${arguments[@]}"
                else
                    env -i HOME=$home PATH=/usr/bin:/bin PLASH_DATA="$DATA" "$PLASH" build "${arguments[@]}"
                fi > "$OUT/stdout.$n" 2> "$OUT/stderr.$n"
                echo $? > "$OUT/status.$n"
                set -e
                n=$((n + 1))
            done
            list > "$OUT/after"
            """
        let environment = ["OUT": out, "CWD": cwd, "DATA": data, "TESTUSER": user?.name ?? "", "TESTUID": user.map { "\($0.uid)" } ?? "",
                           "PLASH": user == nil ? plash : try userPlash, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let result = try run("/usr/bin/unshare", ["--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
                                                  "/bin/bash", "-c", script], environment: environment)
        guard result.status == 0 else { throw SetupError("the scratch host failed: \(result)") }
        // Lossy: a listing may hold a name that is not UTF-8.
        func read(_ name: String) throws -> String { String(decoding: try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(name)")), as: UTF8.self) }
        let finished = try builds.indices.map { n in
            Build(status: Int32(try read("status.\(n)").trimmingCharacters(in: .newlines)) ?? -1,
                  stdout: try read("stdout.\(n)"), stderr: try read("stderr.\(n)"))
        }
        return HostRun(before: try read("before"), after: try read("after"), builds: finished, directory: cwd)
    }

    /// The Alpine root of ../shared/fixtures imported into a store (by `user`, in a store
    /// of theirs, when given): its id and the store's directory.
    func alpine(_ user: TestUser? = nil) throws -> (id: String, data: String) {
        guard let user else {
            let store = TestStore()
            return (try store.id(["import-tar", alpineRoot]), store.data)
        }
        let data = makeDirectory("user-store", ownedBy: user) + "/store"
        let imported = try user.run(userPlash, ["import-tar", alpineRoot], environment: ["PLASH_DATA": data])
        guard imported.status == 0 else { throw SetupError("import-tar as \(user.name): \(imported)") }
        return (imported.stdout.trimmingCharacters(in: .newlines), data)
    }

    /// `plash run` of an image as root or as `user`, sharing neither /home nor /tmp: the
    /// image's own are seen.
    func inImage(_ id: String, data: String, user: TestUser? = nil, _ command: String) throws -> Finished {
        let arguments = ["run", "--no-home", "--no-tmp", "--cwd", "/", id, "--", "/bin/sh", "-c", command]
        guard let user else { return try run(plash, arguments, environment: ["PLASH_DATA": data]) }
        return try user.run(userPlash, arguments, environment: ["PLASH_DATA": data])
    }

    /// Steps that write to the working directory, $HOME, alice's home, /tmp and /dev/shm,
    /// and `adduser -D web`: the first three fail, the others land in the layer (or the
    /// step's own /dev/shm), and the host's /home, /tmp, /dev/shm and working directory
    /// are as they were.
    func buildsLeaveTheHostAsItWas(as user: TestUser?) throws {
        let (alpine, data) = try alpine(user)
        let steps = ["touch made-by-build", "echo x > ~/made-by-build", "rm -f /home/alice/notes",
                     "adduser -D web", "echo made > /tmp/made-by-build", "touch /dev/shm/made-by-build"]
        let host = try inScratchHost(steps.map { ["--from-id", alpine, "--run", $0] }, data: data, user: user)
        #expect(host.before == host.after)
        #expect(host.builds.map(\.status) == [1, 1, 1, 0, 0, 0], "\(host.builds)")
        #expect(host.builds[0].stderr.contains("made-by-build: Read-only file system"), "\(host.builds[0])")
        let web = host.builds[3].id
        // /home/web is the image's, and none of the host's entries became mount points left in it.
        #expect(try inImage(web, data: data, user: user, "stat -c '%U %G' /home/web; ls -A /home").stdout == "web web\nquicksand\nweb\n")
        let tmp = host.builds[4].id
        #expect(try inImage(tmp, data: data, user: user, "cat /tmp/made-by-build; test ! -e '\(host.directory)' && echo absent").stdout
                == "made\nabsent\n")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: alpineRoot) || mustRun, "needs ../shared/fixtures"))
    func buildStepsFromAScratchDirectoryChangeNothingOfTheHostsHomeTmpOrWorkingDirectory() throws {
        try buildsLeaveTheHostAsItWas(as: nil)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: alpineRoot) || mustRun, "needs ../shared/fixtures"))
    func buildStepsOfAnOrdinaryUserChangeNothingOfTheHostsHomeTmpOrWorkingDirectory() throws {
        try buildsLeaveTheHostAsItWas(as: try userWithSubordinateIDs)
    }

    @Test func useraddMakesTheHomeInTheDebianImageAsRoot() throws {
        let built = try DebianBookworm.root.get()
        let host = try inScratchHost([["--from-id", built.id, "--run", "useradd -m web"]], data: built.store.data)
        #expect(host.before == host.after)
        let web = host.builds[0].id
        #expect(host.builds[0].status == 0, "\(host.builds[0])")
        #expect(try inImage(web, data: built.store.data, "stat -c '%U %G' /home/web").stdout == "web web\n")
    }

    @Test func useraddMakesTheHomeInTheDebianImageAsAnOrdinaryUser() throws {
        let user = try userWithSubordinateIDs
        let (_, data, first) = try DebianBookworm.user.get()
        let bookworm = first.stdout.trimmingCharacters(in: .newlines)
        #expect(first.status == 0, "\(first)")
        let host = try inScratchHost([["--from-id", bookworm, "--run", "useradd -m web"]], data: data, user: user)
        #expect(host.before == host.after)
        let web = host.builds[0].id
        #expect(host.builds[0].status == 0, "\(host.builds[0])")
        #expect(try inImage(web, data: data, user: user, "stat -c '%U %G' /home/web").stdout == "web web\n")
    }

    @Test func aBuildFromADirectoryInTmpRunsThereReadsItsFilesAndCannotWriteThere() throws {
        let store = TestStore()
        let cwd = "/tmp/work/\(UUID().uuidString.prefix(8))"
        let host = try inScratchHost([["--from", "busybox", "--run", "pwd > /where; cat input > /copied"],
                                      ["--from", "busybox", "--run", "touch made-by-build"]],
                                     data: store.data, directory: cwd)
        #expect(host.before == host.after)
        let id = host.builds[0].id
        #expect(host.builds[0].status == 0, "\(host.builds[0])")
        #expect(try inImage(id, data: store.data, "cat /where /copied").stdout == "\(cwd)\ninput\n")
        // Not run in / instead, baking the file into the image.
        #expect(host.builds[1].status == 1, "\(host.builds[1])")
        #expect(store.indexedIDs == [1, 2])
    }

    @Test func aBuildReadsTheWorkingDirectoryAndAHomeOutsideHome() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try "input\n".write(toFile: dir + "/input", atomically: true, encoding: .utf8)
        try "in home\n".write(toFile: store.home + "/file", atomically: true, encoding: .utf8)
        let id = try store.id(["build", "--from", "busybox", "--run", "cat input ~/file > /copied"], directory: dir)
        #expect(try store.plash(["run", id, "--", "cat", "/copied"]).stdout == "input\nin home\n")
        let write = try store.plash(["build", "--from", "busybox", "--run", "touch ~/made-by-build"], directory: dir)
        #expect(write.status == 1 && !FileManager.default.fileExists(atPath: store.home + "/made-by-build"), "\(write)")
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: alpineRoot) || mustRun, "needs ../shared/fixtures"))
    func anImagesOwnHomeDirectoryIsNotHiddenByTheHostsOfTheSameName() throws {
        let (alpine, data) = try alpine()
        // Built where the host has no /home/alice; then built on where it has one.
        let own = try inScratchHost([["--from-id", alpine, "--run", "mkdir -p /home/alice && echo own > /home/alice/own"]],
                                    data: data, setup: "rm -r /home/alice")
        #expect(own.builds[0].status == 0, "\(own.builds[0])")
        let host = try inScratchHost([["--from-id", own.builds[0].id, "--run",
                                       "cat /home/alice/own > /seen; echo more >> /home/alice/own"]], data: data)
        #expect(host.before == host.after)
        let seen = host.builds[0].id
        #expect(host.builds[0].status == 0, "\(host.builds[0])")
        #expect(try inImage(seen, data: data, "cat /seen /home/alice/own").stdout == "own\nown\nmore\n")
    }

    @Test func aHomeEntryThatCannotBeOpenedByItsNameDoesNotStopABuild() throws {
        let store = TestStore()
        // A name that is not UTF-8: plash-exec reads it as another name, which is missing.
        let host = try inScratchHost([["--from", "busybox", "--run", "ls /home/alice > /seen"]], data: store.data,
                                     setup: "mkdir /home/$'\\xff'")
        #expect(host.builds[0].status == 0, "\(host.builds[0])")
        #expect(host.before == host.after)
    }

    @Test func aHomeEntryComingAndGoingDuringBuildsFailsNoneOfThem() throws {
        let store = TestStore()
        // Between plash-exec's listing of /home, its opening of an entry and the bind, the
        // entry may go: it is then skipped. 50 builds while it comes and goes.
        let builds = (0..<50).map { ["--from", "busybox", "--run", "true \($0)"] }
        let host = try inScratchHost(builds, data: store.data, setup: """
            timeout 60 python3 -c 'import os
            while True: os.mkdir("/home/churn"); os.rmdir("/home/churn")' &
            """)
        #expect(host.builds.map(\.status) == Array(repeating: 0, count: 50), "\(host.builds.filter { $0.status != 0 })")
    }

    @Test func theWorkingDirectoryAndHomeArePartOfTheCacheKey() throws {
        let store = TestStore()
        let (one, two) = (makeDirectory(), makeDirectory())
        let build = ["build", "--from", "busybox", "--run", "pwd > /where; echo $HOME > /home-was"]
        let first = try store.id(build, directory: one)
        #expect(try store.id(build, directory: one) == first)
        let elsewhere = try store.id(build, directory: two)
        #expect(elsewhere != first)
        #expect(try store.plash(["run", elsewhere, "--", "cat", "/where"]).stdout == two + "\n")
        let otherHome = try store.plash(build, directory: one, environment: ["HOME": makeDirectory("home")])
        #expect(otherHome.status == 0 && ![first, elsewhere].contains(otherHome.stdout.trimmingCharacters(in: .newlines)),
                "\(otherHome)")
    }
}
