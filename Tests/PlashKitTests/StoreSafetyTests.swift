import Foundation
import PlashTestSupport
import Testing

// The commands that manage the store harm neither the host nor the store, and every
// bad input gets one line and a non-zero exit (issue 9).

/// One line on stderr, starting `plash: `.
func isOneLine(_ result: Finished) -> Bool {
    result.stderr.hasPrefix("plash: ") && result.stderr.hasSuffix("\n") && result.stderr.dropLast().split(separator: "\n").count == 1
}

/// The mount options (the sixth field of /proc/self/mountinfo) of what is mounted at `dir`.
func mountOptions(_ dir: String) -> [String]? {
    let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
    var options: [String]? = nil
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ").map(String.init)
        if fields.count > 5 && fields[4] == dir { options = fields[5].split(separator: ",").map(String.init) }
    }
    return options
}

@Suite struct MountSafetyTests {
    /// An image of one layer whose root holds a setuid-root copy of the probe and a
    /// device node, as an imported tar may; and an image of two layers on top of it.
    static func imagesWithSetuidFileAndDevice(_ store: TestStore) throws -> (String, String) {
        let root = makeDirectory("setuid-root")
        try shell("cp -a '\(busyboxRoot)/.' '\(root)' && cp '\(probe)' '\(root)/suid' && chmod 4755 '\(root)/suid' "
                  + "&& mknod '\(root)/null' c 1 3 && chmod 666 '\(root)/null' && tar -C '\(root)' -cf '\(root).tar' .")
        let one = try store.id(["import-tar", root + ".tar"])
        let two = try store.id(["build", "--from", one, "--run", "touch /two"])
        return (one, two)
    }

    @Test func mountedImagesAreReadOnlyNosuidAndNodev() throws {
        let store = TestStore()
        let (one, two) = try Self.imagesWithSetuidFileAndDevice(store)
        let user = userWithoutSubordinateIDs
        for id in [one, two] {
            let dir = makeDirectory("mount")
            let mounted = try store.plash(["mount", id, dir])
            #expect(mounted.status == 0, "\(mounted)")
            defer { umount2(dir, Int32(MNT_DETACH)) }
            let options = mountOptions(dir) ?? []
            #expect(["ro", "nosuid", "nodev"].allSatisfy(options.contains), "image \(id): \(options)")
            // Through the mount point the setuid file gives no root, the device no device.
            let ids = try user.run(dir + "/suid", ["ids"])
            #expect(ids.stdout == "uid=\(user.uid) euid=\(user.uid)\n", "image \(id): \(ids)")
            let device = try shell("cat '\(dir)/null'")
            #expect(device.status != 0 && device.stderr.contains("Permission denied"), "image \(id): \(device)")
            #expect(try store.plash(["umount", dir]).status == 0)
        }
    }

    @Test func anOrdinaryUsersMountSaysThatOnlyRootMounts() throws {
        let user = userWithoutSubordinateIDs
        let cwd = makeDirectory("user-mount", ownedBy: user)
        let data = cwd + "/store"
        #expect(try plashAs(user, ["build", "--from", "busybox"], data: data, directory: cwd).status == 0)
        let dir = makeDirectory("target", ownedBy: user)
        let result = try plashAs(user, ["mount", "1", dir], data: data, directory: cwd)
        #expect(result.status == 1, "\(result)")
        #expect(isOneLine(result) && result.stderr.contains("only root can mount on the host"), "\(result)")
        #expect(!result.stderr.contains("Linux 5.11"), "\(result)")
    }
}

/// A store that someone edited by hand crashes nothing and loses nothing.
@Suite struct BadStoreTests {
    @Test func aCounterAtTheLargestIdIsRefusedInOneLine() throws {
        let store = TestStore()
        try store.plash(["init"])
        for text in ["9223372036854775807", "banana"] {
            try (text + "\n").write(toFile: store.data + "/counter", atomically: true, encoding: .utf8)
            let result = try store.plash(["import", "busybox"])
            #expect(result.signal == nil && result.status == 1, "\(text): \(result)")
            // The import's progress comes first, then the one line of the failure.
            let last = result.stderr.split(separator: "\n").last ?? ""
            #expect(last.hasPrefix("plash: import busybox: id counter \(store.data)/counter: "), "\(text): \(result)")
            #expect(store.indexedIDs == [])
        }
    }

    @Test func linksThatLeadOutsideAnImageCrashNothingAndCostNoData() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        let before = treeListing(store.data + "/layer")
        // Links to the image's own node by another way, into its data, out of the store,
        // and nodes with numbers too big for an id.
        try shell("""
            cd '\(store.data)' && mkdir -p layer/0/1/99999999999999999999/_data layer/0/1/_data/_data \
            && ln -s ../layer/0/1/. index/7 && ln -s ../layer/0/1/2/.. index/8 && ln -s ../layer/0/1/_data index/9 \
            && ln -s ../layer/0/../../../../../../.. index/10 && ln -s ../layer/0/1/99999999999999999999 index/11 \
            && ln -s ../index/1/.. map/up && ln -s ../index/99999999999999999999 map/big && ln -s /etc map/etc
            """)
        for arguments in [["ls"], ["run", "7", "--", "true"], ["run", "up", "--", "true"], ["nodepath", "8"],
                          ["rm", "8"], ["rm", "9"], ["rm", "11"], ["rm", "up"], ["rm", "big"], ["parent", "10"], ["clean"], ["ls"]] {
            let result = try store.plash(arguments)
            #expect(result.signal == nil && result.status <= 1 || result.status == 125, "\(arguments): \(result)")
            #expect(result.status == 0 || isOneLine(result), "\(arguments): \(result)")
        }
        try shell("rm -r '\(store.data)/layer/0/1/99999999999999999999' '\(store.data)/layer/0/1/_data/_data'")
        #expect(treeListing(store.data + "/layer") == before)
        #expect(try store.plash(["run", id, "--", "ls", "/a"]).stdout == "/a\n")
    }
}

/// No Foundation error reaches the user raw.
@Suite struct RawErrorTests {
    @Test func withoutHOMEThePasswdEntryNamesTheStore() throws {
        let user = userWithoutSubordinateIDs
        let cwd = makeDirectory("nohome", ownedBy: user)
        let result = try user.run("/usr/bin/env", ["-u", "HOME", userPlash, "data"], directory: cwd)
        #expect(result.stdout == user.home + "/.local/share/plash\n", "\(result)")
    }

    @Test func aStoreThatCannotBeCreatedFailsInOneLine() throws {
        let user = userWithoutSubordinateIDs
        let cwd = makeDirectory("uncreatable", ownedBy: user)
        let parent = makeDirectory("root-owned")   // the user may not write here
        let profile = cwd + "/profile.json"
        try #"{"defaultAction": "SCMP_ACT_ALLOW"}"#.write(toFile: profile, atomically: true, encoding: .utf8)
        for arguments in [["init"], ["build", "--from", "busybox"], ["seccomp", profile], ["map", "x", "1"]] {
            let result = try plashAs(user, arguments, data: parent + "/deeper/plash", directory: cwd)
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(isOneLine(result) && result.stderr.contains("create store \(parent)/deeper: Permission denied"),
                    "\(arguments): \(result)")
            #expect(!result.stderr.contains("Cocoa"), "\(arguments): \(result)")
        }
    }
}

@Suite struct StagingTests {
    @Test func theNextBuildRemovesStagingThatNobodyHolds() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let stale = store.data + "/tmp/build-999999-1"
        let held = store.data + "/tmp/build-999999-2"
        try shell("mkdir -p '\(stale)/_data/d' '\(held)' && head -c 100000 /dev/zero > '\(stale)/_data/d/f'")
        let holder = try Child("/usr/bin/flock", [held, "-c", "echo locked; exec cat"], stdin: .pipe)
        defer { holder.closeStdin(); _ = holder.finish() }
        #expect(holder.readLine() == "locked")
        #expect(try store.id(["build", "--from", "busybox", "--run", "touch /new"]) == "2")
        #expect(!FileManager.default.fileExists(atPath: stale))
        #expect(FileManager.default.fileExists(atPath: held))
    }

    @Test func cleanCarriesOnPastWhatItCannotRemoveAndNamesIt() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        #expect(try store.plash(["map", "dangling", id]).status == 0)
        let removed = try store.plash(["rm", id])
        #expect(removed.status == 0, "\(removed)")
        let busy = store.data + "/tmp/build-999999-3"
        // A mount point inside a leftover cannot be removed (EBUSY), like a directory that
        // something still writes into; in a mount namespace of its own, gone with it.
        let result = try run("/usr/bin/unshare", ["-m", "/bin/sh", "-c",
                                                  "mkdir -p \"$1/sub\" && mount -t tmpfs none \"$1/sub\" && exec \"$0\" clean",
                                                  plash, busy], environment: store.environment)
        #expect(result.status == 1, "\(result)")
        #expect(isOneLine(result), "\(result)")
        #expect(result.stderr.contains("clean: could not remove everything: remove \(busy)/sub: Device or resource busy"),
                "\(result)")
        // ... and the rest was cleaned all the same.
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/map/dangling")) == nil)
    }
}

/// No silent or wrong answers.
@Suite struct StoreAnswerTests {
    @Test func anUnreadableStoreFailsInOneLineInsteadOfLookingEmpty() throws {
        let user = userWithoutSubordinateIDs
        let cwd = makeDirectory("unreadable", ownedBy: user)
        let own = cwd + "/store"
        #expect(try plashAs(user, ["build", "--from", "busybox"], data: own, directory: cwd).status == 0)
        let roots = TestStore()
        _ = try roots.id(["import", "busybox"])
        try shell("chmod 000 '\(own)'")
        defer { chmod(own, 0o700) }
        for data in [own, roots.data] {
            for arguments in [["ls"], ["clean"], ["run", "1", "--", "true"], ["rm", "1"]] {
                let result = try plashAs(user, arguments, data: data, directory: cwd)
                #expect(result.status != 0, "\(data) \(arguments): \(result)")
                #expect(isOneLine(result) && result.stderr.hasSuffix("Permission denied\n"), "\(data) \(arguments): \(result)")
            }
        }
        #expect(roots.indexedIDs == [1])
    }

    @Test func mapRefusesNamesWithWhitespaceOrControlCharacters() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        for name in ["two words", "new\nline", "tab\there", "bell\u{7}", "nbsp\u{a0}x", "del\u{7f}"] {
            let result = try store.plash(["map", name, "1"])
            #expect(result.status == 1 && isOneLine(result), "\(name.debugDescription): \(result)")
            #expect(result.stderr.contains("not a valid name"), "\(result)")
        }
        #expect(try store.plash(["map", "fine-name_2.0", "1"]).status == 0)
        #expect(try store.plash(["ls"]).stdout.split(separator: "\n").count == 2)
    }

    @Test func lsWorksOnAReadOnlyStore() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let result = try run("/usr/bin/unshare", ["-m", "/bin/sh", "-c",
                                                  "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" && exec \"$0\" ls",
                                                  plash, store.data], environment: store.environment)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.split(separator: "\n").count == 2, "\(result)")
    }
}
