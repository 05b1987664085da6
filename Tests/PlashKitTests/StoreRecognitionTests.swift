import Foundation
import PlashTestSupport
import Testing

// Nothing outside what the user named is ever touched (issue 19): a store is deleted
// from only when it is recognisably one, deletion stays on the store's own mount, and
// exports write into what the user named instead of replacing it.

/// plash with PLASH_DATA as given (relative, through a symlink, under a space), in `directory`.
func plashWith(data: String, _ arguments: [String], directory: String? = nil,
               environment extra: [String: String] = [:]) throws -> Finished {
    try run(plash, arguments, environment: ["PLASH_DATA": data, "HOME": makeDirectory("home"),
                                            "PLASH_LXC_SERVER": "http://127.0.0.1:9"].merging(extra) { $1 },
            directory: directory)
}

@Suite struct StoreRecognitionTests {
    /// A throw-away home that looks like a store to a glance (an image 1), with data of
    /// its own beside.
    static func fakeHome() throws -> String {
        let home = makeDirectory("fake home")
        try shell("""
            cd '\(home)' && mkdir -p Documents .ssh layer/0/1/_data index tmp/build-1-1 && ln -s ../layer/0/1 index/1 \
            && echo letter > Documents/letter.txt && echo key > .ssh/id_ed25519 && echo x > tmp/build-1-1/x
            """)
        return home
    }

    @Test func aDirectoryThatIsNoStoreLosesNothingToAnyCommand() throws {
        let home = try Self.fakeHome()
        let before = try treeListing(home)
        for arguments in [["purge", "--yes"], ["purge", "--yes", "--force"], ["clean"], ["shrink"], ["rm", "1"], ["init"],
                          ["build", "--from", "busybox"]] {
            let result = try plashWith(data: home, arguments)
            #expect(result.status == 1 && isOneLine(result), "\(arguments): \(result)")
            #expect(result.stderr.contains("\(home): not a plash store"), "\(arguments): \(result)")
        }
        #expect(try treeListing(home) == before)
    }

    @Test func aStoreIsMadeOnlyInANewOrEmptyDirectory() throws {
        let empty = makeDirectory("empty")
        #expect(try plashWith(data: empty, ["build", "--from", "busybox"]).stdout == "1\n")
        #expect(FileManager.default.fileExists(atPath: empty + "/plash-store"))
        let fresh = makeDirectory("parent") + "/new/plash"
        #expect(try plashWith(data: fresh, ["init"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: fresh + "/plash-store"))
    }

    @Test func aStoreMadeBeforeTheMarkerIsStillOneAndGetsTheMarker() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        try FileManager.default.removeItem(atPath: store.data + "/plash-store")
        let removed = try store.plash(["rm", id])
        #expect(removed.status == 0, "\(removed)")
        #expect(store.indexedIDs == [1])
        #expect(FileManager.default.fileExists(atPath: store.data + "/plash-store"))
    }

    @Test func removalLeavesWhatIsMountedInTheStoreAndWhatLinksLeadTo() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "mkdir -p /mnt/bound"])
        let host = makeDirectory("host data")
        try shell("mkdir '\(host)/dir' && echo keep > '\(host)/dir/file'")
        let before = try treeListing(host)
        let node = try store.plash(["nodepath", id]).stdout.trimmingCharacters(in: .newlines)
        // Links out of the store, in staging and in an image's files.
        try shell("""
            mkdir -p '\(store.data)/tmp/build-999999-1' && ln -s '\(host)/dir' '\(store.data)/tmp/build-999999-1/out' \
            && ln -s '\(host)/dir' '\(store.data)/tmp/build-999999-2' && ln -s '\(host)' '\(node)/_data/link'
            """)
        // A bind mount of the host's directory inside an image and inside staging, in a
        // mount namespace of the test's own: rm, clean and purge run in it.
        for arguments in [["rm", "--force", id], ["clean"], ["purge", "--yes", "--force"]] {
            let staging = store.data + "/tmp/build-999999-3/sub"
            let inside = arguments[0] == "rm" ? node + "/_data/mnt/bound" : staging
            let result = try run("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sh", "-c",
                                                      "mkdir -p \"$2\" && mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                                                      "sh", host, inside, plash] + arguments, environment: store.environment)
            #expect(result.status == 1 && isOneLine(result), "\(arguments): \(result)")
            #expect(result.stderr.contains("something is mounted there"), "\(arguments): \(result)")
            #expect(try treeListing(host) == before, "\(arguments) deleted the host's files")
        }
    }
}

@Suite struct ContainersInUseTests {
    /// A container of `image` that runs until killed; its first line means it runs.
    static func running(data: String, _ image: String, directory: String? = nil,
                        environment extra: [String: String] = [:]) throws -> Child {
        let child = try Child(plash, ["run", image, "--", "sh", "-c", "echo up; exec cat /bin/busybox /dev/stdin >/dev/null"],
                              environment: ["PLASH_DATA": data].merging(extra) { $1 }, directory: directory, stdin: .pipe)
        guard child.readLine() == "up" else { throw StoreTestError("the container did not start") }
        return child
    }

    @Test func aFuseOverlayfsContainerIsListedRefusedForRemovalAndKilled() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/fuse-overlayfs") else {
            #expect(!mustRun, "install fuse-overlayfs")
            return
        }
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /fuse"])
        let container = try Self.running(data: store.data, id, environment: ["PLASH_OVERLAY": "fuse"])
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        let ps = try store.plash(["ps"])
        #expect(ps.stdout.split(separator: "\n").contains { $0.split(separator: " ").prefix(2) == ["\(container.pid)", "\(id)"] },
                "\(ps)")
        for arguments in [["rm", id], ["purge", "--yes"]] {
            let refused = try store.plash(arguments)
            #expect(refused.status == 1 && refused.stderr.contains("in use: PID \(container.pid)"), "\(arguments): \(refused)")
        }
        #expect(try store.plash(["shrink"]).stderr == "plash: removed no images\n")
        #expect(store.indexedIDs == [1, Int(id)!])
        #expect(try store.plash(["kill", id, "KILL"]).status == 0)
        #expect(container.wait(timeout: 10)?.1 == SIGKILL)
    }

    @Test func rmRefusesAnImageInUseWhateverThePathOfItsStore() throws {
        let parent = makeDirectory("with space")
        let store = parent + "/a store"
        try FileManager.default.createSymbolicLink(atPath: parent + "/link", withDestinationPath: store)
        let id = try plashWith(data: store, ["build", "--from", "busybox", "--run", "touch /x"]).stdout
            .trimmingCharacters(in: .newlines)
        #expect(id == "2")
        // The container and rm each name the store in one of these ways.
        for (data, directory) in [(store, "/"), ("a store", parent), (parent + "/link", "/"), ("./link/", parent)] {
            let container = try Self.running(data: data, id, directory: directory)
            defer { kill(container.pid, SIGKILL); _ = container.finish() }
            for (rmData, rmDirectory) in [(store, "/"), ("link", parent)] {
                let refused = try plashWith(data: rmData, ["rm", id], directory: rmDirectory)
                #expect(refused.status == 1 && refused.stderr.contains("in use: PID \(container.pid)"),
                        "container \(data), rm \(rmData): \(refused)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: store + "/index/2"))
    }
}

@Suite struct OwnCgroupTests {
    /// Where `plash/NAME` of a container without limits lives: the v1 pids hierarchy
    /// (plash-exec joins only that one), else the v2 mount.
    static func pidsMount() throws -> String? {
        var unified: String? = nil
        for line in try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let (fields, after) = (halves[0].split(separator: " "), halves[1].split(separator: " "))
            if after[0] == "cgroup" && after[2].split(separator: ",").contains("pids") { return String(fields[4]) }
            if after[0] == "cgroup2" { unified = unified ?? String(fields[4]) }
        }
        return unified
    }

    @Test func cleanRemovesOnlyTheEmptyCgroupsOfItsOwnStore() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        let suffix = UUID().uuidString.prefix(8)
        let own = "i19-own-\(suffix)", other = "i19-other-\(suffix)"
        #expect(try store.plash(["run", "--cgroup", own, id, "--", "true"]).status == 0)
        // Another store's container, as plash-exec makes it.
        let otherStore = TestStore()
        _ = try otherStore.id(["build", "--from", "busybox"])
        #expect(try otherStore.plash(["run", "--cgroup", other, "1", "--", "true"]).status == 0)
        let pidsMount = try #require(try Self.pidsMount())
        defer { _ = try? otherStore.plash(["clean"]) }
        #expect(FileManager.default.fileExists(atPath: "\(pidsMount)/plash/\(own)"))
        #expect(try store.plash(["clean"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(pidsMount)/plash/\(own)"))
        #expect(FileManager.default.fileExists(atPath: "\(pidsMount)/plash/\(other)"), "clean removed another store's cgroup")
        #expect(try otherStore.plash(["clean"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: "\(pidsMount)/plash/\(other)"))
    }
}
