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
        if fields.count > 5 && fields[4] == dir.replacingOccurrences(of: " ", with: "\\040") { options = fields[5].split(separator: ",").map(String.init) }
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
        let user = try userWithoutSubordinateIDs
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

    @Test func umountUnmountsOnlyWhatPlashMounted() throws {
        let store = TestStore()
        let (one, two) = try Self.imagesWithSetuidFileAndDevice(store)
        let host = makeDirectory("host mount")
        #expect(mount("tmpfs", host, "tmpfs", 0, nil) == 0)
        defer { umount2(host, Int32(MNT_DETACH)) }
        for dir in [host, host + "/", makeDirectory("nothing mounted")] {
            let result = try store.plash(["umount", dir])
            #expect(result.status == 1 && isOneLine(result), "\(dir): \(result)")
        }
        #expect(mountOptions(host) != nil, "the host's tmpfs was unmounted")
        // Both shapes plash mounts (a bind of one layer, an overlay), by any path.
        for id in [one, two] {
            let dir = makeDirectory("plash mount \(id)")
            #expect(try store.plash(["mount", id, dir]).status == 0)
            defer { umount2(dir, Int32(MNT_DETACH)) }
            let result = try store.plash(["umount", "./" + (dir as NSString).lastPathComponent + "/"],
                                         directory: (dir as NSString).deletingLastPathComponent)
            #expect(result.status == 0, "image \(id): \(result)")
            #expect(mountOptions(dir) == nil, "image \(id) is still mounted")
        }
    }

    @Test func anOrdinaryUsersMountSaysThatOnlyRootMounts() throws {
        let user = try userWithoutSubordinateIDs
        let cwd = makeDirectory("user-mount", ownedBy: user)
        let data = cwd + "/store"
        #expect(try plashAs(user, ["build", "--from", "busybox"], data: data, directory: cwd).status == 0)
        let dir = makeDirectory("target", ownedBy: user)
        let result = try plashAs(user, ["mount", "1", dir], data: data, directory: cwd)
        #expect(result.status == 1, "\(result)")
        #expect(isOneLine(result) && result.stderr.contains("only root can mount on the host"), "\(result)")
        #expect(!result.stderr.contains("Linux 5.11"), "\(result)")
        let unmount = try plashAs(user, ["umount", dir], data: data, directory: cwd)
        #expect(unmount.status == 1 && isOneLine(unmount) && unmount.stderr.contains("only root"), "\(unmount)")
    }
}

/// A store that someone edited by hand crashes nothing and loses nothing.
/// plash run hands --bind and --ro-bind to plash-exec: a symlink to the store's parent
/// shares the parent with the store covered, empty and read-only; one into the store is
/// refused. Root inside writes nothing to the store.
@Test func plashRunBindsThroughSymlinksLeaveTheStoreHidden() throws {
    let store = TestStore()
    let id = try store.id(["build", "--from", "busybox", "--run", "touch /image"])
    let links = makeDirectory("links")
    try FileManager.default.createSymbolicLink(atPath: links + "/parent", withDestinationPath: (store.data as NSString).deletingLastPathComponent)
    try FileManager.default.createSymbolicLink(atPath: links + "/layer", withDestinationPath: store.data + "/layer")
    let before = try treeListing(store.data + "/layer") + treeListing(store.data + "/index")
    let writes = "for p in plash/layer/0/\(id)/_data/x plash/index/x plash/x; do touch /mnt/$p 2>/dev/null || echo refused; done; ls -A /mnt/plash"
    for option in ["--bind", "--ro-bind"] {
        let hidden = try store.plash(["run", option, links + "/parent:/mnt", id, "--", "sh", "-c", writes])
        #expect(hidden.status == 0 && hidden.stdout == "refused\nrefused\nrefused\n", "\(option): \(hidden)")
        let refused = try store.plash(["run", option, links + "/layer:/mnt/plash", id, "--", "sh", "-c", writes])
        #expect(refused.status != 0 && refused.stdout == "", "\(option): \(refused)")
    }
    #expect(try treeListing(store.data + "/layer") + treeListing(store.data + "/index") == before)
}

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

    @Test func aCounterThatNeverEndsIsRefusedInOneLine() throws {
        let store = TestStore()
        try store.plash(["init"])
        try FileManager.default.createSymbolicLink(atPath: store.data + "/counter", withDestinationPath: "/dev/zero")
        let (result, ended) = try runWithDeadline(plash, ["import", "busybox"], environment: store.environment)
        #expect(ended, "plash read /dev/zero as its counter without end")
        let last = result.stderr.split(separator: "\n").last ?? ""
        #expect(result.status == 1 && last.hasPrefix("plash: import busybox: "), "\(result)")
        #expect(store.indexedIDs == [])
    }

    @Test func linksThatLeadOutsideAnImageCrashNothingAndCostNoData() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        let before = try treeListing(store.data + "/layer")
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
        #expect(try treeListing(store.data + "/layer") == before)
        #expect(try store.plash(["run", id, "--", "ls", "/a"]).stdout == "/a\n")
    }
}

/// No Foundation error reaches the user raw.
@Suite struct RawErrorTests {
    @Test func withoutHOMEThePasswdEntryNamesTheStore() throws {
        let user = try userWithoutSubordinateIDs
        let cwd = makeDirectory("nohome", ownedBy: user)
        let result = try user.run("/usr/bin/env", ["-u", "HOME", userPlash, "data"], directory: cwd)
        #expect(result.stdout == user.home + "/.local/share/plash\n", "\(result)")
    }

    @Test func aStoreThatCannotBeCreatedFailsInOneLine() throws {
        let user = try userWithoutSubordinateIDs
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
        #expect(result.stderr.contains("clean: could not remove everything: remove \(busy)/sub: something is mounted there"),
                "\(result)")
        // ... and the rest was cleaned all the same.
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: store.data + "/map/dangling")) == nil)
    }
}

/// No silent or wrong answers.
@Suite struct StoreAnswerTests {
    @Test func anUnreadableStoreFailsInOneLineInsteadOfLookingEmpty() throws {
        let user = try userWithoutSubordinateIDs
        let cwd = makeDirectory("unreadable", ownedBy: user)
        let own = cwd + "/store"
        #expect(try plashAs(user, ["build", "--from", "busybox"], data: own, directory: cwd).status == 0)
        let roots = TestStore()
        _ = try roots.id(["import", "busybox"])
        try shell("chmod 000 '\(own)'")
        defer { chmod(own, 0o700) }
        for data in [own, roots.data] {
            for arguments in [["ls"], ["clean"], ["run", "1", "--", "true"], ["rm", "1"], ["shrink"]] {
                let result = try plashAs(user, arguments, data: data, directory: cwd)
                #expect(result.status != 0, "\(data) \(arguments): \(result)")
                #expect(isOneLine(result) && result.stderr.hasSuffix("Permission denied\n"), "\(data) \(arguments): \(result)")
            }
        }
        #expect(roots.indexedIDs == [1])
    }

    @Test func aStoreThatIsAFileIsNotADirectoryForEveryCommand() throws {
        let file = makeDirectory("file-store") + "/plash"
        try "not a store\n".write(toFile: file, atomically: true, encoding: .utf8)
        for data in [file, file + "/below"] {
            for arguments in [["ls"], ["du"], ["clean"], ["build", "--from", "busybox"], ["run", "1", "--", "true"], ["rm", "1"]] {
                let result = try run(plash, arguments, environment: ["PLASH_DATA": data, "HOME": makeDirectory("home")])
                #expect(result.status != 0, "\(data) \(arguments): \(result)")
                #expect(isOneLine(result) && result.stderr.hasSuffix(": Not a directory\n"), "\(data) \(arguments): \(result)")
            }
        }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "not a store\n")
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

@Suite struct RemoveInUseTests {
    /// A container of `image` that runs until killed; its first line means it runs.
    static func running(_ store: TestStore, _ image: String) throws -> Child {
        let child = try Child(plash, ["run", image, "--", "sh", "-c", "echo up; exec cat /bin/busybox /dev/stdin >/dev/null"],
                              environment: store.environment, stdin: .pipe)
        guard child.readLine() == "up" else { throw StoreTestError("the container did not start") }
        return child
    }

    /// The container's label names its store by the canonical path; plash finds it there
    /// whichever spelling of the store PLASH_DATA has: relative (to the working
    /// directory, where every command runs), through a symlink, or with a space.
    @Test(arguments: ["relative", "symlink", "space"])
    func rmShrinkAndPurgeRefuseImagesInUseWhateverTheStoresSpelling(spelling: String) throws {
        let cwd = makeDirectory("spelling")
        let data = ["relative": "relative/plash", "symlink": cwd + "/link/plash", "space": cwd + "/with space/plash"][spelling]!
        if spelling == "symlink" {
            try FileManager.default.createDirectory(atPath: cwd + "/real", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: cwd + "/link", withDestinationPath: "real")
        }
        let environment = TestStore().environment.merging(["PLASH_DATA": data]) { $1 }
        func plash(_ arguments: [String]) throws -> Finished {
            try run(PlashTestSupport.plash, arguments, environment: environment, directory: cwd)
        }
        let base = try plash(["build", "--from", "busybox", "--run", "touch /base"]).stdout.trimmingCharacters(in: .newlines)
        let top = try plash(["build", "--from", base, "--run", "touch /top"]).stdout.trimmingCharacters(in: .newlines)
        let container = try Child(PlashTestSupport.plash, ["run", top, "--", "sh", "-c", "echo up; exec cat /dev/stdin >/dev/null"],
                                  environment: environment, directory: cwd, stdin: .pipe)
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        #expect(container.readLine() == "up")
        let index = (data.hasPrefix("/") ? data : cwd + "/" + data) + "/index"
        func images() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: index)) ?? []).filter { $0 != "0" }.sorted() }
        let all = images()
        #expect(all.contains(base) && all.contains(top), "\(all)")
        // shrink keeps what is in use; rm and purge refuse it.
        #expect(try plash(["shrink"]).status == 0)
        #expect(images() == all)
        for command in [["rm", top], ["rm", base], ["purge", "--yes"]] {
            let refused = try plash(command)
            #expect(refused.status == 1 && isOneLine(refused), "\(command): \(refused)")
            #expect(images() == all, "\(command)")
        }
        #expect(try shell("cat /proc/\(container.pid)/root/top /proc/\(container.pid)/root/base").status == 0)
    }

    @Test func rmRefusesAnImageThatARunningContainerUsesUnlessForced() throws {
        let store = TestStore()
        let base = try store.id(["build", "--from", "busybox", "--run", "touch /base"])
        let top = try store.id(["build", "--from", base, "--run", "touch /top"])
        let container = try Self.running(store, top)
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        for id in [top, base] {
            let refused = try store.plash(["rm", id])
            #expect(refused.status == 1, "\(refused)")
            #expect(isOneLine(refused), "\(refused)")
            #expect(refused.stderr.contains("rm: image \(id) is in use: PID \(container.pid) runs"), "\(refused)")
        }
        #expect(store.indexedIDs.map(String.init).contains(top))
        // The container still reads its files.
        #expect(try shell("cat /proc/\(container.pid)/root/top").status == 0)

        let forced = try store.plash(["rm", "--force", base])
        #expect(forced.status == 0, "\(forced)")
        #expect(forced.stdout == "")
        #expect(forced.stderr == "plash: removed images \(base) \(top)\n")
    }

    /// The mount table writes a space in a path as `\040`: read raw, the store's mounts
    /// would not be found and the image under a running container would go.
    @Test func rmShrinkAndPurgeKeepAnImageInUseWhenTheStorePathHasASpace() throws {
        let store = TestStore(data: makeDirectory("store") + "/a store/plash")
        let id = try store.id(["build", "--from", "busybox", "--run", "touch /spaced"])
        let container = try Self.running(store, id)
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        for arguments in [["rm", id], ["purge", "--yes"], ["shrink"]] {
            let result = try store.plash(arguments)
            #expect(arguments == ["shrink"] ? result.stderr == "plash: removed no images\n"
                    : result.status == 1 && result.stderr.contains("in use: PID \(container.pid)"), "\(arguments): \(result)")
        }
        #expect(store.indexedIDs == [1, Int(id)!])
        #expect(try shell("cat /proc/\(container.pid)/root/spaced").status == 0)
    }

    @Test func purgeRefusesWhileAContainerOfTheStoreRuns() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        let container = try Self.running(store, id)
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        let refused = try store.plash(["purge", "--yes"])
        #expect(refused.status == 1 && isOneLine(refused), "\(refused)")
        #expect(refused.stderr.contains("is in use: PID \(container.pid)"), "\(refused)")
        #expect(store.indexedIDs == [1])
        let forced = try store.plash(["purge", "--yes", "--force"])
        #expect(forced.status == 0 && forced.stderr == "plash: removed images 1\n", "\(forced)")
        #expect(store.indexedIDs == [])
        // ps and kill still show the container's image as 1: no new image takes that id.
        #expect(try store.id(["build", "--from", "busybox"]) == "2")
    }

    @Test func shrinkKeepsNamedImagesAndThoseInUse() throws {
        let store = TestStore()
        var ids: [String] = []
        for n in 0..<5 { ids.append(try store.id(["build", "--from", "busybox", "--run", "echo \(n) > /n"])) }
        #expect(ids == ["2", "3", "4", "5", "6"])
        #expect(try store.plash(["map", "kept", "2"]).status == 0)
        let container = try Self.running(store, "3")
        defer { kill(container.pid, SIGKILL); _ = container.finish() }
        let result = try store.plash(["shrink"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr == "plash: removed images 4 5 6\n", "\(result)")
        #expect(store.indexedIDs == [1, 2, 3])
    }
}

@Suite struct UserCommandTests {
    @Test func everyStoreCommandWorksForAnOrdinaryUserOrSaysWhy() throws {
        let user = try userWithSubordinateIDs
        let cwd = makeDirectory("user-commands", ownedBy: user)
        let data = cwd + "/store"
        func plash(_ arguments: [String]) throws -> Finished { try plashAs(user, arguments, data: data, directory: cwd) }
        #expect(try plash(["init"]).status == 0)
        #expect(try plash(["build", "--from", "busybox", "--run", "touch /a"]).stdout == "2\n")
        #expect(try plash(["build", "--from", "busybox", "--run", "touch /b"]).stdout == "3\n")
        for arguments in [["map", "a", "2"], ["map", "a"], ["nodepath", "a"], ["parent", "a"], ["ls"], ["ps"], ["data"],
                          ["clean"], ["sudo", "true"], ["shrink"], ["map", "-d", "a"], ["rm", "2"]] {
            let result = try plash(arguments)
            #expect(result.status == 0, "\(arguments): \(result)")
        }
        let id = try plash(["build", "--from", "busybox", "--run", "touch /c"]).stdout.trimmingCharacters(in: .newlines)
        let container = try user.start(userPlash, ["run", id, "--", "sh", "-c", "echo up; exec cat"],
                                       environment: ["PLASH_DATA": data], directory: cwd, stdin: .pipe)
        #expect(container.readLine() == "up")
        let refused = try plash(["rm", id])
        #expect(refused.status == 1 && refused.stderr.contains("is in use: PID \(container.pid)"), "\(refused)")
        let killed = try plash(["kill", id])
        #expect(killed.status == 0, "\(killed)")
        if killed.status != 0 { kill(container.pid, SIGKILL) }
        #expect(container.finish().signal == SIGTERM)
        let denied = try plash(["kill", ".."])
        #expect(denied.status == 1 && isOneLine(denied), "\(denied)")
        #expect(try plash(["purge", "--yes"]).stderr == "plash: removed images 1 \(id)\n")
    }
}
