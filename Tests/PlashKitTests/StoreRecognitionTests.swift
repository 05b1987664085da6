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
