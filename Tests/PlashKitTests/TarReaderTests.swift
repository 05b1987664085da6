import Foundation
import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// The tar reader on bytes made here: headers, numbers, pax records, the end.
@Suite struct TarReaderTests {
    /// A ustar header: `fields` are (offset, bytes) written over a zeroed block, then
    /// the checksum.
    func header(_ name: String, type: Character = "0", size: [UInt8]? = nil, dataSize: Int = 0,
                fields: [(Int, [UInt8])] = []) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ offset: Int, _ bytes: [UInt8]) { for (i, b) in bytes.enumerated() { block[offset + i] = b } }
        put(0, Array(name.utf8))
        put(100, Array("0000644\0".utf8)); put(108, Array("0001750\0".utf8)); put(116, Array("0000144\0".utf8))
        put(124, size ?? Array(String(format: "%011o\0", dataSize).utf8))
        put(136, Array("14707426340\0".utf8))
        block[156] = type.asciiValue!
        put(257, Array("ustar\u{0}00".utf8))
        for (offset, bytes) in fields { put(offset, bytes) }
        put(148, Array("        ".utf8))
        put(148, Array(String(format: "%06o\0 ", block.reduce(0) { $0 + Int($1) }).utf8))
        return block
    }

    func data(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512) }

    func pax(_ records: [(String, String)]) -> [UInt8] {
        var body: [UInt8] = []
        for (key, value) in records {
            let record = " \(key)=\(value)\n"
            var length = record.utf8.count + String(record.utf8.count).count
            if String(length).count != String(record.utf8.count).count { length += 1 }
            body += Array("\(length)\(record)".utf8)
        }
        return header("PaxHeader", type: "x", dataSize: body.count) + data(body)
    }

    /// Every entry of `bytes`, read through a file as import-tar reads one.
    func entries(_ bytes: [UInt8]) throws -> [TarEntry] {
        let path = makeDirectory("reader") + "/archive.tar"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var reader = TarReader(try ArchiveInput(fd: fd))
        var result: [TarEntry] = []
        while let entry = try reader.next() { result.append(entry) }
        return result
    }

    @Test func ustarFieldsAndThePrefixAreRead() throws {
        let prefix = Array(String(repeating: "p", count: 120).utf8)
        let read = try entries(header("name", dataSize: 3, fields: [(345, prefix)]) + data(Array("abc".utf8)) + [UInt8](repeating: 0, count: 1024))
        #expect(read.count == 1)
        #expect(read[0].name == String(repeating: "p", count: 120) + "/name")
        #expect(read[0].mode == 0o644 && read[0].uid == 1000 && read[0].gid == 100 && read[0].size == 3)
        #expect(read[0].mtime == 0o14707426340)
    }

    @Test func paxRecordsOverrideTheHeader() throws {
        let long = String(repeating: "x", count: 300)
        let bytes = pax([("path", long), ("uid", "4000000"), ("mtime", "1700000000.5"), ("SCHILY.xattr.user.a", "b")])
            + header("short", dataSize: 0) + [UInt8](repeating: 0, count: 1024)
        let read = try entries(bytes)
        #expect(read.map(\.name) == [long])
        #expect(read[0].uid == 4_000_000 && read[0].mtime == 1_700_000_000)
        #expect(read[0].xattrs.map(\.name) == ["user.a"] && read[0].xattrs[0].value == Array("b".utf8))
    }

    @Test func baseTwoFiftySixSizesAreReadAndBounded() throws {
        let size: [UInt8] = [0x80] + [UInt8](repeating: 0, count: 9) + [0x02, 0x00]
        let read = try entries(header("big", size: size) + data([UInt8](repeating: 7, count: 512)) + [UInt8](repeating: 0, count: 1024))
        #expect(read[0].size == 512)
        let negative: [UInt8] = [0xff] + [UInt8](repeating: 0xff, count: 11)
        #expect(throws: PlashError.self) { try entries(header("neg", size: negative)) }
    }

    @Test func malformedPaxAndBadChecksumsAreRefused() throws {
        var broken = pax([("path", "x")])
        broken[512] = UInt8(ascii: "7")   // "7 path=x\n": the record no longer ends at its newline
        #expect(throws: PlashError.self) { try entries(broken + header("a") + [UInt8](repeating: 0, count: 1024)) }
        var bad = header("a")
        bad[0] = UInt8(ascii: "b")
        #expect(throws: PlashError.self) { try entries(bad) }
    }

    @Test func theArchiveEndsAtZeroBlocksOrAtTheEndOfTheData() throws {
        #expect(try entries(header("a") + header("b")).map(\.name) == ["a", "b"])
        #expect(try entries(header("a") + [UInt8](repeating: 0, count: 512) + header("b")).map(\.name) == ["a"])
        #expect(throws: PlashError.self) { try entries(header("a") + Array(header("b")[0..<100])) }
    }
}
