import Foundation
import PlashTestSupport
import Testing

/// Flat copies (FlatLayer.swift): every 32nd layer of an image also has files/ID.flat,
/// its files merged with all below it, so that an overlay stacks at most 32 layers. The
/// copy must show exactly what an overlay of all the layers shows.
@Suite struct FlatLayerTests {
    /// Everything below `dir` as the container sees it: type, mode, owner, xattrs but the
    /// overlay's own, a directory's mtime, a link's target, a file's inode (the copy's
    /// files are links to the layers' own), size and device.
    static let listing = """
        import os, stat, sys
        root = sys.argv[1]
        for path, dirs, files in sorted(os.walk(root)):
            for name in sorted(dirs + files):
                p = os.path.join(path, name); st = os.lstat(p)
                xattrs = sorted((k, os.getxattr(p, k, follow_symlinks=False))
                                for k in os.listxattr(p, follow_symlinks=False) if '.overlay.' not in k)
                entry = [os.path.relpath(p, root), stat.S_IFMT(st.st_mode), oct(st.st_mode & 0o7777), st.st_uid, st.st_gid, xattrs]
                if stat.S_ISDIR(st.st_mode): entry.append(st.st_mtime_ns)
                elif stat.S_ISLNK(st.st_mode): entry.append(os.readlink(p))
                else: entry += [st.st_ino, st.st_size, st.st_rdev]
                print(entry)
        """

    func listing(_ dir: String) throws -> String {
        try run("/usr/bin/python3", ["-c", FlatLayerTests.listing, dir]).stdout
    }

    func entries(_ store: TestStore) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: store.data + "/files")) ?? []).sorted()
    }

    /// Arguments of a build of `depth` layers on busybox (one `touch /lN` each) whose
    /// second layer makes `first` and whose last runs `last`.
    func layers(_ depth: Int, first: String, last: String) -> [String] {
        var arguments = ["build", "--from", "busybox", "--run", first]
        for layer in 3..<depth { arguments += ["--layer", "--run", "touch /l\(layer)"] }
        return arguments + ["--layer", "--run", last]
    }

    /// What a layer can hold and an image above can undo: modes, owners, set-id bits,
    /// hard links, symlinks, fifos, times, an xattr; then whiteouts, an opaque
    /// directory, a directory that became a file and a file that became a directory,
    /// a changed mode and time of a directory below.
    static let first = """
        mkdir -p /d/e /keep/sub /gone /o/old /f && echo one > /d/e/file && ln /d/e/file /d/link && ln -s ../d /keep/to-d
        mknod /keep/fifo p && cp /bin/busybox /keep/suid && chmod 4755 /keep/suid && chown 7:8 /d/e /d/e/file
        chmod 1777 /keep/sub && touch -d 2001-02-03 /keep/sub /d && echo gone > /gone/file && touch /o/old/file
        touch /f/x
        """
    static let last = """
        rm -r /gone /d/link && rm -r /o && mkdir /o && touch /o/new && rm -r /f && echo file > /f
        rm /keep/to-d && mkdir /keep/to-d && chmod 700 /keep && touch -d 2002-03-04 /keep/sub && rm /etc/passwd
        """

    @Test func theFlatCopyShowsWhatAnOverlayOfAllItsLayersShows() throws {
        let store = TestStore()
        let id = try store.id(layers(32, first: FlatLayerTests.first, last: FlatLayerTests.last))
        #expect(id == "32" && entries(store).contains("32.flat"))
        let mounted = makeDirectory("mounted")
        // plash mount stacks every layer: the kernel's merge.
        #expect(try store.plash(["mount", id, mounted]).status == 0)
        defer { _ = try? store.plash(["umount", mounted]) }
        let merged = try listing(mounted), flat = try listing(store.data + "/files/32.flat")
        #expect(merged.split(separator: "\n").count > 300)
        #expect(flat == merged)
        #expect(merged.contains("'o/new'") && !merged.contains("'o/old") && !merged.contains("'gone")
                && merged.contains("'keep/suid', 32768, '0o4755'") && !merged.contains("'etc/passwd'"))
    }

    /// A layer of add-layer (or of an imported tar) marks no directory opaque: its /n
    /// still hides a /n two layers down, because the layer between has a file there.
    @Test func aDirectoryAboveAFileHidesTheDirectoryBelowIt() throws {
        let store = TestStore()
        let three = try store.id(["build", "--from", "busybox", "--run", "mkdir /n && touch /n/inner", "--layer",
                                  "--run", "rm -r /n && touch /n"])
        let added = makeDirectory("added")
        #expect(try shell("mkdir '\(added)/n' && touch '\(added)/n/c'").status == 0)
        let four = try store.id(["add-layer", three, added])
        var arguments = ["build", "--from", four]
        for layer in 5...32 { arguments += (layer == 5 ? [] : ["--layer"]) + ["--run", "touch /l\(layer)"] }
        #expect(try store.id(arguments) == "32")
        let mounted = makeDirectory("mounted")
        #expect(try store.plash(["mount", "32", mounted]).status == 0)
        defer { _ = try? store.plash(["umount", mounted]) }
        let merged = try listing(mounted)
        #expect(merged.contains("'n/c'") && !merged.contains("'n/inner'"))
        #expect(try listing(store.data + "/files/32.flat") == merged)
    }

    @Test func anImageAboveAFlatCopyStacksItsOwnLayersAndTheCopy() throws {
        let store = TestStore()
        let id = try store.id(layers(34, first: FlatLayerTests.first, last: "touch /top"))
        #expect(entries(store).filter { $0.hasSuffix(".flat") } == ["32.flat"])
        let options = try store.plash(["run", id, "--", "sh", "-c", "grep -o 'lowerdir+=[^,]*' /proc/self/mountinfo | head -9"])
        #expect(options.stdout == "lowerdir+=34\nlowerdir+=33\nlowerdir+=32.flat\n", "\(options)")
        let seen = try store.plash(["run", id, "--", "sh", "-c", "cat /d/e/file /gone/file; ls -d /o/old /top /l3 /l31"])
        #expect(seen.stdout == "one\ngone\n/l3\n/l31\n/o/old\n/top\n", "\(seen)")
    }

    @Test func rmTakesTheFlatCopiesOfTheImagesItRemovesAndCleanTakesThoseOfNone() throws {
        let store = TestStore()
        let id = try store.id(layers(33, first: "true", last: "true"))
        #expect(entries(store).contains("32.flat"))
        #expect(try shell("mkdir '\(store.data)/files/77.flat' && touch '\(store.data)/files/77.flat/f'").status == 0)
        #expect(try store.plash(["clean"]).status == 0)
        #expect(!entries(store).contains("77.flat") && entries(store).contains("32.flat"))
        #expect(try store.plash(["run", id, "--", "ls", "/l31"]).stdout == "/l31\n")
        #expect(try store.plash(["rm", "30"]).status == 0)
        #expect(entries(store) == (1...29).map(String.init).sorted())
    }

    /// What the merge does not read as the kernel does, a redirect (an overlay with
    /// redirect_dir=on renamed a directory) or a metacopy file: no flat copy, one line
    /// says why, and the image mounts all its layers.
    @Test(arguments: [("d", "trusted.overlay.redirect", "/elsewhere"), ("d/e/file", "trusted.overlay.metacopy", "")])
    func aLayerWithMarksTheMergeDoesNotReadGetsNoFlatCopy(_ path: String, _ name: String, _ value: String) throws {
        let store = TestStore()
        _ = try store.id(["build", "--from", "busybox", "--run", FlatLayerTests.first])
        #expect(try run("/usr/bin/setfattr", ["-n", name, "-v", value, store.data + "/files/2/" + path]).status == 0)
        var arguments = ["build", "--from", "2"]
        for layer in 3...32 { arguments += (layer == 3 ? [] : ["--layer"]) + ["--run", "touch /l\(layer)"] }
        let built = try store.plash(arguments)
        #expect(built.status == 0 && built.stdout == "32\n", "\(built)")
        #expect(built.stderr.contains("plash: layer 32 has no flat copy, its image mounts all its layers: ")
                && built.stderr.contains(name), "\(built)")
        #expect(!entries(store).contains("32.flat") && store.stagingDirectories == [])
        let options = try store.plash(["run", "32", "--", "sh", "-c", "grep -o 'lowerdir+=[^,]*' /proc/self/mountinfo | wc -l"])
        #expect(options.stdout == "32\n", "\(options)")
    }

    /// An ordinary user's layers belong to their subordinate ids: the copy is made as
    /// root of their user namespace, with the same owners.
    @Test func anOrdinaryUsersImageGetsItsFlatCopyWithTheSameOwners() throws {
        let user = try userWithSubordinateIDs
        let cwd = makeDirectory("flat-user", ownedBy: user)
        let data = cwd + "/store"
        let built = try plashAs(user, layers(32, first: FlatLayerTests.first, last: FlatLayerTests.last), data: data, directory: cwd)
        #expect(built.stdout == "32\n" && !built.stderr.contains("no flat copy"), "\(built)")
        let owner = try FileManager.default.attributesOfItem(atPath: data + "/files/32.flat/d/e")[.ownerAccountID] as? NSNumber
        #expect(owner?.uint32Value == user.uid * 100_000 + 6)
        let seen = try plashAs(user, ["run", "32", "--", "sh", "-c", "stat -c '%u %g %a' /d/e /keep/suid /keep/sub; cat /d/e/file; ls /o"],
                               data: data, directory: cwd)
        #expect(seen.stdout == "7 8 755\n0 0 4755\n0 0 1777\none\nnew\n", "\(seen)")
        #expect(try rootOwnedFiles([data, cwd]) == "")
        #expect(try plashAs(user, ["purge", "--yes"], data: data, directory: cwd).status == 0)
    }
}
