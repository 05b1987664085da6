import Foundation
import PlashTestSupport
import Testing

/// export-tar, round trips, GNU tar's view of plash's archives, full disks, kills and
/// ordinary users.
extension TarTests {
    /// An archive with every kind of entry plash keeps: long names and link targets,
    /// large ids, odd modes, hard links, devices, a fifo, xattrs.
    func craftEverything() throws -> String {
        let long = String(repeating: "long-directory-name/", count: 8)
        return try craft("""
            add('d', tarfile.DIRTYPE, mode=0o750, uid=1000, gid=100)
            add('d/file', data=b'data', mode=0o640, uid=1000, gid=100)
            add('d/setuid', data=b'#!/bin/sh\\n', mode=0o4755)
            add('d/hard', tarfile.LNKTYPE, link='d/file')
            add('d/soft', tarfile.SYMTYPE, link='../\(long)target')
            add('d/fifo', tarfile.FIFOTYPE, mode=0o600)
            add('d/null', tarfile.CHRTYPE, mode=0o666, major=1, minor=3)
            add('d/loop', tarfile.BLKTYPE, mode=0o660, major=7, minor=300)
            add('big-ids', data=b'x', uid=3000000, gid=3000001)
            add('\(long)', tarfile.DIRTYPE, mode=0o755)
            add('\(long)target', data=b'far', mode=0o600)
            info = tarfile.TarInfo('xattrs'); info.size = 1
            info.pax_headers = {'SCHILY.xattr.user.comment': 'hello', 'SCHILY.xattr.trusted.evil': 'no'}
            out.addfile(info, io.BytesIO(b'x'))
            """)
    }

    /// Every file below `dir`: name, type and mode, owner, size, link count, link
    /// target, mtime in seconds, xattrs (Python: getfattr is not installed everywhere).
    func treeOf(_ dir: String) throws -> String {
        let script = """
            import os, sys
            root = sys.argv[1]
            for base, dirs, files in sorted(os.walk(root)):
                for name in sorted(dirs + files) + ([] if base != root else ['.']):
                    path = os.path.join(base, name); s = os.lstat(path)
                    link = os.readlink(path) if os.path.islink(path) else ''
                    xattrs = sorted((k, os.getxattr(path, k, follow_symlinks=False)) for k in os.listxattr(path, follow_symlinks=False))
                    print(os.path.relpath(path, root), oct(s.st_mode), s.st_uid, s.st_gid, s.st_size if not os.path.isdir(path) else '-',
                          s.st_nlink if not os.path.isdir(path) else '-', link, int(s.st_mtime), s.st_rdev, xattrs)
            """
        let result = try run("/usr/bin/env", ["python3", "-c", script, dir],
                             environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
        guard result.status == 0 else { throw StoreTestError("python: \(result)") }
        return result.stdout
    }

    @Test func aRoundTripGivesTheSameTreeAndTheSameBytes() throws {
        let store = TestStore()
        let first = try store.id(["import-tar", try craftEverything()])
        let dir = makeDirectory("round")
        #expect(try store.plash(["export-tar", first, dir + "/1.tar"]).status == 0)
        let second = try store.id(["import-tar", dir + "/1.tar"])
        #expect(try store.plash(["export-tar", second, dir + "/2.tar"]).status == 0)
        #expect(try treeOf(store.data + "/files/\(first)") == treeOf(store.data + "/files/\(second)"))
        // The same image twice, and its round trip, give byte-identical archives.
        #expect(try store.plash(["export-tar", first, dir + "/1-again.tar"]).status == 0)
        let sums = try shell("cd '\(dir)' && sha256sum 1.tar 1-again.tar 2.tar | cut -d' ' -f1 | uniq | wc -l").stdout
        #expect(sums == "1\n")
        // What the xattr filter keeps: user.*, not trusted.*.
        let tree = try treeOf(store.data + "/files/\(second)")
        #expect(tree.contains("[('user.comment', b'hello')]") && !tree.contains("trusted"), "\(tree)")
    }

    @Test func gnuTarListsPlashsArchiveAsItsOwnOfTheSameTree() throws {
        let store = TestStore()
        let id = try store.id(["import-tar", try craftEverything()])
        let dir = makeDirectory("gnu")
        #expect(try store.plash(["export-tar", id, dir + "/plash.tar"]).status == 0)
        let data = store.data + "/files/\(id)"
        try shell("tar -c --numeric-owner --sort=name -f '\(dir)/gnu.tar' -C '\(data)' .")
        let plash = try shell("tar -tvf '\(dir)/plash.tar'"), gnu = try shell("tar -tvf '\(dir)/gnu.tar'")
        #expect(plash.status == 0 && plash.stderr == "", "\(plash)")
        #expect(plash.stdout == gnu.stdout)
        let fields = try shell("tar -tvf '\(dir)/plash.tar' | awk '{ print $1, $2, $3, $6, $7, $8 }'").stdout
        #expect(fields.contains("hrw-r----- 1000/100 0 ./d/hard link to\n"), "\(fields)")
        #expect(fields.contains("crw-rw-rw- 0/0 1,3 ./d/null  \n"), "\(fields)")
        #expect(fields.contains("-rw-r--r-- 3000000/3000001 1 ./big-ids  \n"), "\(fields)")
    }

    @Test func aNameThatIsNotUTF8ExportsAsItsBytes() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "touch \"/caf$(printf '\\351')\"; ln -s \"caf$(printf '\\351')\" /l"])
        let out = makeDirectory("latin1") + "/out.tar"
        let result = try store.plash(["export-tar", id, out])
        #expect(result.status == 0, "\(result)")
        let listing = try shell("tar -tvf '\(out)' | grep caf").stdout
        #expect(listing.contains("./caf\\351\n") && listing.contains("./l -> caf\\351\n"), "\(listing)")
    }

    @Test func exportToStdoutWritesTheSameArchive() throws {
        let store = TestStore()
        let id = try store.id(["import-tar", try craftEverything()])
        let dir = makeDirectory("stdout")
        #expect(try store.plash(["export-tar", id, dir + "/file.tar"]).status == 0)
        let piped = try shell("PLASH_DATA='\(store.data)' '\(plash)' export-tar \(id) - > '\(dir)/piped.tar' && cmp '\(dir)/file.tar' '\(dir)/piped.tar'")
        #expect(piped.status == 0, "\(piped)")
    }

    /// Runs `command` with PLASH_DATA on a 2 MB tmpfs of its own mount namespace (the
    /// host never sees the mount); `$D` is that tmpfs.
    func onFullDisk(_ command: String) throws -> Finished {
        let dir = makeDirectory("full")
        return try shell("""
            unshare -m sh -c 'set -e; mount -t tmpfs -o size=2m plash-test "$0"; export D="$0" PLASH_DATA="$0/plash"
            \(command)' '\(dir)'
            """)
    }

    @Test func aFullDiskIsOneLineAndLeavesNothing() throws {
        let archive = try craft("import os\nfor i in range(40): add('f%02d' % i, data=os.urandom(100000))")
        let result = try onFullDisk("""
            "\(plash)" import-tar "\(archive)" 2> "$D/err" && exit 9 || true
            cat "$D/err"; echo "tmp: $(ls "$PLASH_DATA/tmp")"; echo "index: $(ls "$PLASH_DATA/index")"
            """)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("plash:") }.count == 1, "\(result)")
        #expect(lines.contains { $0.hasPrefix("plash: import-tar \(archive): f") && $0.hasSuffix(": write: No space left on device") },
                "\(result)")
        #expect(lines.suffix(2) == ["tmp: ", "index: 0"], "\(result)")   // index/0: the empty root, no image
        #expect(lines.count == 4, "\(result)")   // --> import-tar, the error, tmp, index
    }

    @Test func anExportToAFullDiskIsOneLineAndLeavesNoPartialArchive() throws {
        let store = TestStore()
        let id = try store.id(["import-tar", try craft("import os\nfor i in range(40): add('f%02d' % i, data=os.urandom(100000))")])
        // Only the output is on the full disk: the store is the test's own.
        let full = try shell("""
            unshare -m sh -c 'mount -t tmpfs -o size=2m plash-test "$0" && \\
            PLASH_DATA="\(store.data)" "\(plash)" export-tar \(id) "$0/out.tar" 2>&1; echo "status $?"; echo "left: $(ls -A "$0")"' \\
            '\(makeDirectory("out"))'
            """)
        let lines = full.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(full)")
        #expect(lines.first?.hasPrefix("plash: export-tar \(id): write ") == true, "\(full)")
        #expect(lines.first?.hasSuffix("out.tar: No space left on device") == true, "\(full)")
        #expect(lines.suffix(2) == ["status 1", "left: "], "\(full)")
    }

    /// Another user's symlink where an export writes its file before the rename (in /tmp,
    /// say; its name holds the PID) is replaced, never written through: root's file it
    /// points at is left as it was.
    @Test func anExportNeverWritesThroughASymlinkPlantedAtItsPartialFile() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let dir = makeDirectory("shared")
        let victim = makeDirectory("victim") + "/precious"
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        for (command, partial) in [("export-tar \(id) '\(dir)/out.tar'", ".out.tar"),
                                   ("export-oci \(id) '\(dir)/layout.tar'", ".layout.tar"),
                                   ("export-oci \(id) '\(dir)/layout'", "layout/.index.json"),
                                   ("export-docker-archive \(id) '\(dir)/docker.tar'", ".docker.tar")] {
            // exec keeps the shell's PID: the one the partial file's name holds.
            let result = try shell("""
                mkdir -p '\(dir)/layout' && ln -sf '\(victim)' '\(dir)/\(partial).plash-'$$ && \\
                PLASH_DATA='\(store.data)' exec '\(plash)' \(command)
                """)
            #expect(result.status == 0, "\(command): \(result)")
            #expect(FileManager.default.contents(atPath: victim) == Data("precious\n".utf8), "\(command) wrote through the link")
        }
        let listed = try shell("cd '\(dir)' && tar -tf out.tar >/dev/null && tar -tf layout.tar >/dev/null && tar -tf docker.tar >/dev/null && test -f layout/index.json -a ! -L layout/index.json && ls -A . layout")
        #expect(listed.status == 0 && !listed.stdout.contains(".plash-"), "\(listed)")
    }

    @Test func aKilledImportLeavesNoProcessAndTheStoreAsBefore() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        // 400 MB of zeros, 400 KB gzipped: extraction takes long enough to be caught.
        let archive = try craft("for i in range(200): add('z%03d' % i, data=bytes(2 << 20))", compression: "gz")
        let child = try Child(plash, ["import-tar", archive], environment: store.environment, stdin: .null)
        // Caught writing: some file of the archive exists in a staging directory.
        let deadline = Date().addingTimeInterval(60)
        var caught = false
        while !caught && Date() < deadline {
            caught = (try? shell("ls '\(store.data)'/tmp/*/_data/z000 '\(store.data)'/tmp/*/archive* 2>/dev/null").stdout.isEmpty) == false
        }
        kill(child.pid, SIGKILL)
        _ = child.wait()   // not finish(): that would wait for whatever still holds its stderr
        #expect(caught, "the import was never seen at work")
        // Nothing of it runs on: no process holds a file in the store.
        let holders = try shell("for fd in /proc/[0-9]*/fd/*; do readlink \"$fd\"; done 2>/dev/null | grep -F '\(store.data)' || true")
        #expect(holders.stdout == "", "\(holders.stdout)")
        #expect(try store.plash(["clean"]).status == 0)
        #expect(store.indexedIDs == [1])
        #expect(store.stagingDirectories == [])
    }
}

extension TarTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: alpineRoot) || mustRun, "needs ../shared/fixtures"))
    func aRealRootExtractsAsGNUTarExtractsIt() throws {
        let store = TestStore()
        let id = try store.id(["import-tar", alpineRoot])
        let gnu = makeDirectory("gnu-alpine")
        let extracted = try shell("tar -x --numeric-owner --xattrs --xattrs-include='*' -f '\(alpineRoot)' -C '\(gnu)'")
        #expect(extracted.status == 0, "\(extracted)")
        let plashTree = try treeOf(store.data + "/files/\(id)"), gnuTree = try treeOf(gnu)
        #expect(plashTree.split(separator: "\n").count == 1378)   // its entries, "." included
        #expect(plashTree == gnuTree)
        #expect(try shell("diff -r --no-dereference '\(store.data)/files/\(id)' '\(gnu)'").status == 0)
    }
}

extension TarTests {
    /// An ordinary user's overlay (userxattr) reads `user.overlay.*` as its own: a layer
    /// carrying them would make a directory opaque or redirect it in every image above.
    @Test func anImportedLayerKeepsUserXattrsButNotOverlaysOwn() throws {
        let store = TestStore()
        let archive = try craft("""
            for name, kind in [('d', tarfile.DIRTYPE), ('f', tarfile.REGTYPE)]:
                info = tarfile.TarInfo(name); info.type = kind
                info.pax_headers = {'SCHILY.xattr.user.overlay.opaque': 'y', 'SCHILY.xattr.user.overlay.redirect': '/etc',
                                    'SCHILY.xattr.user.comment': 'kept'}
                out.addfile(info, io.BytesIO(b''))
            """)
        let id = try store.id(["import-tar", archive])
        let tree = try treeOf(store.data + "/layer/0/\(id)/_data")
        #expect(tree.components(separatedBy: "[('user.comment', b'kept')]").count == 3, "\(tree)")
        #expect(!tree.contains("overlay"), "\(tree)")
    }
}
