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

    /// PLASH_DATA=$HOME by mistake, a home without a store's shape: listing or cleaning
    /// it as an empty store would tell the user their images are gone, or purged.
    @Test func aDirectoryOfOtherFilesIsNoEmptyStoreToListOrClean() throws {
        let home = makeDirectory("plain home")
        try shell("cd '\(home)' && mkdir Documents && echo letter > Documents/letter.txt")
        let before = try treeListing(home)
        for arguments in [["ls"], ["ls", "--json"], ["du"], ["clean"], ["shrink"], ["purge", "--yes"]] {
            let result = try plashWith(data: home, arguments)
            #expect(result.status == 1 && isOneLine(result) && result.stdout.isEmpty, "\(arguments): \(result)")
            #expect(result.stderr.contains("\(home): not a plash store"), "\(arguments): \(result)")
        }
        #expect(try treeListing(home) == before)
        // A store not made yet, or an empty directory, is still an empty store.
        #expect(try plashWith(data: makeDirectory("empty"), ["ls"]).status == 0)
        #expect(try plashWith(data: home + "/new", ["ls"]).status == 0)
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
        // What an older plash left at the top of its store, seccomp/ of plash seccomp too.
        try FileManager.default.createDirectory(atPath: store.data + "/seccomp", withIntermediateDirectories: false)
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

@Suite(.needs(.podman)) struct ExportTargetTests {
    static let exports: [(String, [String])] = [("export-tar", []), ("export-oci", ["--tag", "t"]), ("export-docker-archive", [])]

    /// The names in the tar at `file`, or nil when it is none.
    static func tarNames(_ file: String) throws -> [String]? {
        let listed = try run("/bin/tar", ["-tf", file])
        return listed.status == 0 ? listed.stdout.split(separator: "\n").map(String.init) : nil
    }

    @Test func everyExportWritesIntoAFIFOAndLeavesItAFIFO() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        for (command, options) in Self.exports {
            let dir = makeDirectory("fifo")
            #expect(mkfifo(dir + "/pipe", 0o644) == 0)
            let reader = try Child("/bin/sh", ["-c", "exec cat \"$0\" > \"$1\"", dir + "/pipe", dir + "/read.tar"])
            let result = try store.plash([command, id, dir + "/pipe"] + options)
            #expect(result.status == 0, "\(command): \(result)")
            // A FIFO that the export replaced never gets a writer: the reader waits for one.
            if reader.wait(timeout: 10) == nil { kill(reader.pid, SIGKILL); _ = reader.wait() }
            var info = stat()
            #expect(lstat(dir + "/pipe", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "\(command) replaced the FIFO")
            #expect(try Self.tarNames(dir + "/read.tar")?.isEmpty == false, "\(command): nothing came through the FIFO")
        }
    }

    @Test func everyExportWritesIntoADeviceAndThroughASymlinkWithoutReplacingThem() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        for (command, options) in Self.exports {
            let dir = makeDirectory("targets")
            // A null device of the test's own, beside, not the host's /dev/null.
            try shell("mknod '\(dir)/null' c 1 3 && echo old > '\(dir)/real.tar' && ln -s real.tar '\(dir)/link.tar'")
            for target in ["null", "link.tar"] {
                let result = try store.plash([command, id, dir + "/" + target] + options)
                #expect(result.status == 0, "\(command) \(target): \(result)")
            }
            var info = stat()
            #expect(lstat(dir + "/null", &info) == 0 && info.st_mode & S_IFMT == S_IFCHR, "\(command) replaced the device")
            #expect(lstat(dir + "/link.tar", &info) == 0 && info.st_mode & S_IFMT == S_IFLNK, "\(command) replaced the symlink")
            #expect(try Self.tarNames(dir + "/real.tar")?.isEmpty == false, "\(command): the link's target is no archive")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["link.tar", "null", "real.tar"])
        }
    }

    @Test func everyExportToStdoutLoadsIntoPodmanThroughAPipe() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        let dir = makeDirectory("podman")
        let runroot = try shell("mktemp -d /tmp/plash-podman.XXXXXX").stdout.trimmingCharacters(in: .newlines)
        defer { _ = try? shell("rm -rf '\(runroot)'") }
        let podman = "podman --root '\(dir)/root' --runroot '\(runroot)' --storage-driver vfs"
        // /dev/stdout as the test's own link: an export that replaced it (the bug) must
        // not replace the host's.
        try FileManager.default.createSymbolicLink(atPath: dir + "/stdout", withDestinationPath: "/proc/self/fd/1")
        for target in ["-", dir + "/stdout"] {
            let loaded = try shell("set -o pipefail; '\(plash)' export-docker-archive \(id) '\(target)' | \(podman) load",
                                   environment: store.environment)
            #expect(loaded.status == 0 && loaded.stdout.contains("Loaded image"), "\(target): \(loaded)")
        }
        for (command, options) in [("export-tar", [String]()), ("export-oci", ["--tag", "t"])] {
            let piped = try shell("set -o pipefail; '\(plash)' \(command) \(id) - \(options.joined(separator: " ")) | tar -t",
                                  environment: store.environment)
            #expect(piped.status == 0 && !piped.stdout.isEmpty, "\(command): \(piped)")
        }
    }

    @Test func exportOCIWritesNoBlobThroughALinkInTheLayout() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        let elsewhere = makeDirectory("elsewhere")
        for link in ["blobs", "blobs/sha256"] {
            let layout = makeDirectory("layout")
            try shell("mkdir -p '\(layout)/\((link as NSString).deletingLastPathComponent)' && ln -s '\(elsewhere)' '\(layout)/\(link)'")
            let result = try store.plash(["export-oci", id, layout])
            #expect(result.status == 1 && isOneLine(result), "\(link): \(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: elsewhere) == [], "\(link): written through the link")
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

    @Test(.skippedWhenMissing(fuseMissing()))
    func aFuseOverlayfsContainerIsListedRefusedForRemovalAndKilled() throws {
        try requirePresent(fuseMissing())
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

@Suite struct TruthfulLineTests {
    @Test func anExportOntoTheStoresParentSaysItHoldsTheStore() throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox"])
        let parent = (store.data as NSString).deletingLastPathComponent
        let result = try store.plash(["export-tar", "1", parent])
        #expect(result.status == 1 && isOneLine(result), "\(result)")
        #expect(result.stderr.contains("\(parent): holds the store"), "\(result)")
    }

    @Test func mountOntoAPlashMountIsRefused() throws {
        let store = TestStore()
        let one = try store.id(["build", "--from", "busybox"])
        let two = try store.id(["build", "--from", one, "--run", "touch /two"])
        for (first, second) in [(one, two), (two, one)] {
            let dir = makeDirectory("mount")
            #expect(try store.plash(["mount", first, dir]).status == 0)
            defer { umount2(dir, Int32(MNT_DETACH)) }
            let again = try store.plash(["mount", second, dir])
            #expect(again.status == 1 && isOneLine(again) && again.stderr.contains("mounted there already"), "\(again)")
            let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
                .split(separator: "\n").filter { $0.split(separator: " ")[4] == dir.replacingOccurrences(of: " ", with: "\\040") }
            #expect(mounts.count == 1, "\(mounts)")
        }
    }
}
