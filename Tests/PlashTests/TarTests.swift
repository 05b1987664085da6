import Foundation
import PlashTestSupport
import Testing

/// import-tar and export-tar, with archives crafted by Python's tarfile.
@Suite(.needs(.python3, .xz, .zstd, .bzip2)) struct TarTests {
    /// Runs a Python snippet with `tarfile` imported and `out` the archive's path.
    /// `options`: more arguments to tarfile.open (`pax_headers={...}`).
    func craft(_ body: String, compression: String = "", options: String = "") throws -> String {
        let path = makeDirectory("tar") + "/archive.tar" + (compression.isEmpty ? "" : "." + compression)
        let mode = compression.isEmpty ? "w" : "w:" + compression
        let script = """
            import tarfile, io
            out = tarfile.open(\(pythonString(path)), \(pythonString(mode))\(options.isEmpty ? "" : ", " + options))
            def add(name, kind=tarfile.REGTYPE, data=b"", link="", mode=0o644, uid=0, gid=0, major=0, minor=0):
                info = tarfile.TarInfo(name)
                info.type = kind; info.linkname = link; info.mode = mode; info.uid = uid; info.gid = gid
                info.devmajor = major; info.devminor = minor; info.size = len(data)
                out.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
            \(body)
            out.close()
            """
        let result = try run("/usr/bin/env", ["python3", "-c", script],
                             environment: ["PATH": "/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin",
                                           "HOME": "/root"])
        guard result.status == 0 else { throw StoreTestError("python: \(result)") }
        return path
    }

    func pythonString(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "\\'") + "'" }

    func expectRejected(_ body: String, naming entry: String) throws {
        let store = TestStore()
        let archive = try craft("add('ok', data=b'x')\n" + body)
        let result = try store.plash(["import-tar", archive])
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout == "")
        let message = result.stderr.split(separator: "\n").last.map(String.init) ?? ""
        #expect(message.hasPrefix("plash: import-tar \(archive): \(entry):"), "\(result.stderr)")
        #expect(result.stderr.filter { $0 == "\n" }.count <= 2)
        #expect(store.indexedIDs == [])
        #expect(store.stagingDirectories == [])
    }

    @Test func anEntryWithDotDotIsRejected() throws {
        try expectRejected("add('../escape', data=b'x')", naming: "../escape")
    }

    @Test func anAbsoluteNameIsRejected() throws {
        try expectRejected("add('/etc/escape', data=b'x')", naming: "/etc/escape")
    }


    @Test func aHardLinkOutsideTheRootIsRejected() throws {
        try expectRejected("add('hard', tarfile.LNKTYPE, link='../../etc/passwd')", naming: "hard")
    }

    @Test func aLongNameWithDotDotIsRejected() throws {
        let long = String(repeating: "d/", count: 60) + String(repeating: "../", count: 70) + "escape"
        try expectRejected("add('\(long)', data=b'x')", naming: long)
    }

    @Test func importKeepsOwnersModesLinksAndDevices() throws {
        let store = TestStore()
        let archive = try craft("""
            add('bin', tarfile.DIRTYPE, mode=0o755)
            add('bin/tool', data=b'#!/bin/sh\\n', mode=0o4750, uid=1000, gid=100)
            add('bin/alias', tarfile.LNKTYPE, link='bin/tool')
            add('bin/soft', tarfile.SYMTYPE, link='/bin/tool')
            add('dev', tarfile.DIRTYPE, mode=0o755)
            add('dev/null', tarfile.CHRTYPE, mode=0o666, major=1, minor=3)
            """)
        let id = try store.id(["import-tar", archive])
        #expect(id == "1")
        let data = store.data + "/layer/0/1/_data"
        let listing = try shell("cd '\(data)' && stat -c '%n %a %u %g %h %F %t:%T' bin/tool dev/null && readlink bin/soft").stdout
        #expect(listing == "bin/tool 4750 1000 100 2 regular file 0:0\ndev/null 666 0 0 1 character special file 1:3\n/bin/tool\n")
    }

    @Test func importReadsCompressedArchivesAndStdin() throws {
        let store = TestStore()
        for compression in ["gz", "xz"] {
            let archive = try craft("add('hello', data=b'hi')", compression: compression)
            #expect(try store.plash(["import-tar", archive]).status == 0)
        }
        let plain = try craft("add('hello', data=b'hi')")
        let zst = plain + ".zst"
        try shell("zstd -q '\(plain)' -o '\(zst)'")
        #expect(try store.plash(["import-tar", zst]).status == 0)
        let stdin = try store.plash(["import-tar", "-"], stdin: try String(contentsOfFile: plain, encoding: .isoLatin1))
        #expect(stdin.status == 0, "\(stdin)")
        #expect(store.indexedIDs == [1, 2, 3, 4])
        #expect(try shell("cat '\(store.data)/layer/0/4/_data/hello'").stdout == "hi")
    }

    @Test func exportWritesTheMergedFilesOfAllLayers() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox", "--run", "echo a > /a; rm /bin/ls", "--layer", "--run", "echo b > /b"])
        let out = makeDirectory() + "/out.tar"
        let result = try store.plash(["export-tar", id, out])
        #expect(result.status == 0, "\(result)")
        let names = try shell("tar -tf '\(out)'").stdout.split(separator: "\n")
        #expect(names.contains("./a"))
        #expect(names.contains("./b"))
        #expect(names.contains("./bin/busybox"))
        #expect(!names.contains("./bin/ls"))
        // And back in: the round trip gives the same files.
        let back = try store.id(["import-tar", out])
        #expect(try store.plash(["run", back, "cat", "/a", "/b"]).stdout == "a\nb\n")
    }
}
