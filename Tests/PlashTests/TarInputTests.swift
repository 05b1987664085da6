import Foundation
import PlashTestSupport
import Testing

/// Hostile, corrupt and odd archives: each refused with one line naming the archive and
/// the entry, nothing left in the store, never a crash; plash's own extractor only.
extension TarTests {
    /// Writes an archive byte by byte: Python with `raw(name, size_field, type, data)`
    /// returning a ustar header (plus data), `end` the two zero blocks, `out` the file.
    func craftRaw(_ body: String) throws -> String {
        let path = makeDirectory("raw") + "/archive.tar"
        let script = """
            def raw(name, size=None, kind=b'0', data=b'', mode=b'0000644\\0'):
                h = bytearray(512)
                h[0:len(name)] = name
                h[100:108] = mode; h[108:116] = b'0000000\\0'; h[116:124] = b'0000000\\0'
                h[124:136] = size if size is not None else b'%011o\\0' % len(data)
                h[136:148] = b'00000000000\\0'
                h[156:157] = kind
                h[257:265] = b'ustar\\x0000'
                h[148:156] = b'        '
                h[148:156] = b'%06o\\0 ' % sum(h)
                return bytes(h) + data + bytes((512 - len(data) % 512) % 512)
            end = bytes(1024)
            out = open(\(pythonString(path)), 'wb')
            \(body)
            out.close()
            """
        let result = try run("/usr/bin/env", ["python3", "-c", script],
                             environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
        guard result.status == 0 else { throw StoreTestError("python: \(result)") }
        return path
    }

    /// plash import-tar ARCHIVE fails with status 1 and one line starting `prefix`, and
    /// leaves no image and no staging behind.
    func expectRefused(_ archive: String, _ prefix: String, stdin: String? = nil) throws {
        let store = TestStore()
        let result = try store.plash(["import-tar", archive], stdin: stdin)
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout == "")
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("plash:") } == lines.suffix(1), "\(result.stderr)")
        #expect(lines.last?.hasPrefix("plash: import-tar \(archive == "-" ? "stdin" : archive): \(prefix)") == true,
                "\(result.stderr)")
        #expect(lines.count <= 2, "\(result.stderr)")
        #expect(store.indexedIDs == [])
        #expect(store.stagingDirectories == [])
    }

    @Test func aSizeNearIntMaxIsRefusedWithoutACrash() throws {
        // GNU base-256: 0x80, then the value big-endian: Int.max - 256, which rounded
        // up to whole blocks overflowed (SIGILL).
        let huge = try craftRaw("out.write(raw(b'big', size=b'\\x80\\0\\0\\0\\x7f' + b'\\xff' * 5 + b'\\xfe\\xff') + b'x' * 512 + end)")
        try expectRefused(huge, "big: size too large")
        let octal = try craftRaw("out.write(raw(b'big', size=b'77777777777\\0') + b'x' * 512 + end)")
        try expectRefused(octal, "big: the archive is truncated")
    }

    @Test func emptyAndAllZeroInputIsRefused() throws {
        let dir = makeDirectory("zero")
        try shell("head -c 0 /dev/zero > '\(dir)/empty.tar'; head -c 10240 /dev/zero > '\(dir)/zeros.tar'")
        try expectRefused(dir + "/empty.tar", "empty archive")
        try expectRefused(dir + "/zeros.tar", "empty archive")
        try expectRefused("/dev/zero", "empty archive")
        try shell("head -c 10240 /dev/zero | gzip > '\(dir)/zeros.tar.gz'")
        try expectRefused(dir + "/zeros.tar.gz", "empty archive")
    }

    @Test func garbageAndCorruptCompressionAreRefused() throws {
        let dir = makeDirectory("garbage")
        try shell("seq 1 10000 > '\(dir)/text'; printf '\\037\\213\\010\\000garbage-garbage-garbage' > '\(dir)/bad.gz'")
        try expectRefused(dir + "/text", "not a tar archive")
        // Shorter than one header: no archive that was cut.
        try shell("printf 'Not Found\\n' > '\(dir)/short'; gzip -k '\(dir)/short'")
        try expectRefused(dir + "/short", "not a tar archive")
        try expectRefused(dir + "/short.gz", "not a tar archive")
        try expectRefused(dir + "/bad.gz", "corrupt gzip data")
        let archive = try craft("import os\nadd('hello', data=os.urandom(200000))")
        try shell("xz -c '\(archive)' | head -c 50000 > '\(dir)/cut.tar.xz'")
        try expectRefused(dir + "/cut.tar.xz", "hello: the xz data is truncated")
    }

    @Test func aTruncatedArchiveIsRefusedButOneWithoutEndBlocksIsRead() throws {
        let truncated = try craftRaw("out.write(raw(b'ok', data=b'x' * 2000)[:1024])")
        try expectRefused(truncated, "ok: the archive is truncated")
        // umoci 0.4.7 writes layers without the two zero blocks at the end.
        let unterminated = try craftRaw("out.write(raw(b'dir/', kind=b'5') + raw(b'dir/file', data=b'hello'))")
        let store = TestStore()
        #expect(try store.id(["import-tar", unterminated]) == "1")
        #expect(try String(contentsOfFile: store.data + "/layer/0/1/_data/dir/file", encoding: .utf8) == "hello")
    }

    @Test func aPaxPathOverrideThatLeavesTheRootIsRefused() throws {
        let archive = try craft("""
            info = tarfile.TarInfo('innocent'); info.size = 1
            info.pax_headers = {'path': '../../escape'}
            out.addfile(info, io.BytesIO(b'x'))
            """)
        try expectRefused(archive, "../../escape: the name leaves the root (..)")
    }

    @Test func aHardLinkThroughAPlantedSymlinkIsRefused() throws {
        let archive = try craft("add('link', tarfile.SYMTYPE, link='/etc')\nadd('hard', tarfile.LNKTYPE, link='link/passwd')")
        try expectRefused(archive, "hard: the hard link target link/passwd goes through a symlink")
        let directory = try craft("add('link', tarfile.SYMTYPE, link='/tmp')\nadd('link/sub', tarfile.DIRTYPE, mode=0o755)")
        try expectRefused(directory, "link/sub/: the name goes through a symlink")
    }

    @Test func aFileAfterASymlinkOfTheSameNameReplacesTheLinkNotItsTarget() throws {
        let victim = makeDirectory("victim") + "/file"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        let archive = try craft("add('x', tarfile.SYMTYPE, link='\(victim)')\nadd('x', data=b'new')")
        let store = TestStore()
        #expect(try store.id(["import-tar", archive]) == "1")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
        #expect(try String(contentsOfFile: store.data + "/layer/0/1/_data/x", encoding: .utf8) == "new")
    }

    @Test func globalPaxHeadersDoNotRenameEntries() throws {
        let archive = try craft("add('plain', data=b'x')", options: "format=tarfile.PAX_FORMAT, pax_headers={'path': '../../global-escape'}")
        let store = TestStore()
        #expect(try store.id(["import-tar", archive]) == "1")
        #expect(FileManager.default.fileExists(atPath: store.data + "/layer/0/1/_data/plain"))
    }

    @Test func sparseEntriesAreRefused() throws {
        let dir = makeDirectory("sparse")
        try shell("cd '\(dir)' && truncate -s 1M hole && printf x >> hole && tar --sparse -cf sparse.tar hole")
        try expectRefused(dir + "/sparse.tar", "hole: sparse files are not supported")
        try shell("cd '\(dir)' && tar --sparse --format=pax -cf pax.tar hole")
        try expectRefused(dir + "/pax.tar", "")
    }

    @Test func namesThatAreNotUTF8AreKeptAsTheirBytes() throws {
        let archive = try craftRaw("out.write(raw(b'caf\\xe9', kind=b'5') + raw(b'caf\\xe9/x', data=b'x') + end)")
        let store = TestStore()
        let id = try store.id(["import-tar", archive])
        let listed = try shell("cd '\(store.data)/layer/0/\(id)/_data' && ls -b caf*/x")
        #expect(listed.stdout == "caf\\351/x\n", "\(listed)")
        let out = makeDirectory("latin1") + "/out.tar"
        #expect(try store.plash(["export-tar", id, out]).status == 0)
        let names = try shell("tar -tf '\(out)'").stdout
        #expect(names.contains("./caf\\351/x\n"), "\(names)")
    }

    @Test func noiseFromABadArchiveIsOneLineOnStdinToo() throws {
        try expectRefused("-", "not a tar archive", stdin: String(repeating: "not a tar\n", count: 1000))
    }
}

extension TarTests {
    @Test func concatenatedCompressedStreamsAreReadWhole() throws {
        // pigz, pbzip2 and zstd -T write archives as several members or frames: each
        // half of the tar compressed on its own, then joined.
        let plain = try craft("import os\nfor i in range(8): add('f%d' % i, data=os.urandom(3000))")
        let store = TestStore()
        var ids: [String] = []
        for tool in ["gzip", "bzip2", "xz", "zstd -q"] {
            let joined = plain + "." + tool.prefix(4)
            try shell("cd '\(splitLast(plain))' && head -c 10240 '\(plain)' | \(tool) -c > '\(joined)'"
                      + " && tail -c +10241 '\(plain)' | \(tool) -c >> '\(joined)'")
            ids.append(try store.id(["import-tar", joined]))
        }
        #expect(ids == ["1", "2", "3", "4"])
        let sums = try shell("cd '\(store.data)/layer/0' && for i in 1 2 3 4; do (cd $i/_data && cat f*) | sha256sum; done | uniq | wc -l")
        #expect(sums.stdout == "1\n")
        #expect(try shell("cat '\(store.data)'/layer/0/1/_data/f* | wc -c").stdout == "24000\n")
    }

    func splitLast(_ path: String) -> String { (path as NSString).deletingLastPathComponent }
}

/// Links that lead out of the root: whatever plash answers, the host side is untouched.
extension TarTests {
    /// The names of `dir`'s entries, and each one's link count and contents.
    func hostState(_ dir: String) throws -> String {
        try shell("cd '\(dir)' && for f in $(ls -A); do echo \"$f $(stat -c %h \"$f\") $(cat \"$f\" 2>/dev/null)\"; done").stdout
    }

    @Test func entriesAreNeverWrittenThroughASymlinkPlantedInTheRoot() throws {
        let host = makeDirectory("host")
        try "precious".write(toFile: host + "/kept", atomically: false, encoding: .utf8)
        let before = try hostState(host)
        for entry in ["add('a/x', data=b'new')", "add('a/sub', tarfile.DIRTYPE, mode=0o755)",
                      "add('a/sub/y', data=b'new')", "add('a/kept', data=b'changed')",
                      "add('hard', tarfile.LNKTYPE, link='a/kept')"] {
            let archive = try craft("add('a', tarfile.SYMTYPE, link='\(host)')\n" + entry)
            let store = TestStore()
            let result = try store.plash(["import-tar", archive])
            #expect(result.status == 1, "\(entry): \(result)")
            #expect(try hostState(host) == before, "\(entry)")
            #expect(store.indexedIDs == [] && store.stagingDirectories == [], "\(entry)")
        }
    }

    /// GNU tar links the symlink itself; following it would give the image a second
    /// name of the host's file (on the store's file system), writable from inside.
    @Test func aHardLinkToAnAbsoluteSymlinkNeverLinksTheHostFile() throws {
        let host = makeDirectory("host")
        try "precious".write(toFile: host + "/file", atomically: false, encoding: .utf8)
        let before = try hostState(host)
        let archive = try craft("add('sym', tarfile.SYMTYPE, link='\(host)/file')\nadd('hard', tarfile.LNKTYPE, link='sym')")
        let store = TestStore()
        let id = try store.id(["import-tar", archive])
        #expect(try hostState(host) == before)
        let data = store.data + "/layer/0/\(id)/_data"
        #expect(try shell("stat -c '%F %h' '\(data)/hard'; readlink '\(data)/hard'").stdout == "symbolic link 2\n\(host)/file\n")
    }

    /// The names of `path`'s extended attributes (trusted.* too, as root).
    func xattrs(_ path: String) throws -> String {
        try run("/usr/bin/python3", ["-c", "import os, sys; print(sorted(os.listxattr(sys.argv[1])))", path]).stdout
    }

    /// An OCI layout at a fresh DIR/layout, tag t, of one layer: the tar `archive`.
    func layoutOfLayer(_ archive: String) throws -> String {
        let layout = makeDirectory("oci") + "/layout"
        let script = """
            import hashlib, json, os, sys
            d, layer = sys.argv[1], open(sys.argv[2], 'rb').read()
            os.makedirs(d + '/blobs/sha256')
            def blob(data):
                h = hashlib.sha256(data).hexdigest(); open(d + '/blobs/sha256/' + h, 'wb').write(data)
                return {'digest': 'sha256:' + h, 'size': len(data)}
            l = blob(layer)
            c = blob(json.dumps({'architecture': 'amd64', 'os': 'linux', 'rootfs': {'type': 'layers', 'diff_ids': [l['digest']]}}).encode())
            m = blob(json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                                 'config': dict(c, mediaType='application/vnd.oci.image.config.v1+json'),
                                 'layers': [dict(l, mediaType='application/vnd.oci.image.layer.v1.tar')]}).encode())
            json.dump({'schemaVersion': 2, 'manifests': [dict(m, mediaType='application/vnd.oci.image.manifest.v1+json',
                       annotations={'org.opencontainers.image.ref.name': 't'})]}, open(d + '/index.json', 'w'))
            open(d + '/oci-layout', 'w').write('{"imageLayoutVersion": "1.0.0"}')
            """
        let made = try run("/usr/bin/env", ["python3", "-c", script, layout, archive],
                           environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin", "HOME": "/root"])
        guard made.status == 0 else { throw StoreTestError("python: \(made)") }
        return layout
    }

    /// A layer's OCI whiteouts become overlay's after its entries are in place: a
    /// whiteout or an opaque marker below a planted symlink must not reach the host.
    @Test func anOCILayersWhiteoutsAreNeverMadeThroughASymlinkPlantedInTheRoot() throws {
        let host = makeDirectory("host")
        try "precious".write(toFile: host + "/kept", atomically: false, encoding: .utf8)
        let before = try hostState(host) + xattrs(host)
        for entry in ["add('a/.wh.gone')", "add('a/.wh..wh..opq')", "add('a/x', data=b'new')",
                      "add('hard', tarfile.LNKTYPE, link='a/kept')"] {
            let archive = try craft("add('a', tarfile.SYMTYPE, link='\(host)')\n" + entry)
            let store = TestStore()
            let result = try store.plash(["import-oci", try layoutOfLayer(archive) + ":t"])
            #expect(result.status == 1, "\(entry): \(result)")
            #expect(try hostState(host) + xattrs(host) == before, "\(entry)")
            #expect(store.indexedIDs == [] && store.stagingDirectories == [], "\(entry)")
        }
    }
}
