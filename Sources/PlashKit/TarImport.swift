#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// `plash import-tar FILE|-`: a root filesystem from a tar archive (plain, gzip, xz,
/// zstd or bzip2). The archive is decompressed into staging, every entry checked, and
/// only then extracted by GNU tar, keeping owners, modes, links and device nodes.
public func importTar(_ file: String, store: Store, log: (String) -> Void) throws -> Store.Image {
    let shown = file == "-" ? "stdin" : file
    let staging = try store.makeStaging("import")
    do {
        let raw = staging.path + "/archive"
        if file == "-" {
            try copyFile("/dev/stdin", to: raw, mode: 0o600)
        } else if access(file, R_OK) != 0 {
            throw PlashError.system("read", file)
        }
        let source = file == "-" ? raw : file
        var archive = source
        if let decompressor = try decompressor(for: source) {
            archive = staging.path + "/archive.tar"
            try runHelper(decompressor, streams: Streams(stdin: .file(source, write: false), stdout: .file(archive, write: true)),
                          context: "decompress")
        }
        log("--> import-tar \(shown)")
        let count = try checkTarEntries(archive)
        try check(mkdir(staging.data, 0o755), "create", staging.data)
        try runHelper(["tar", "-x", "-f", archive, "-C", staging.data, "--numeric-owner", "--same-owner",
                       "--same-permissions", "--xattrs", "--xattrs-include=security.capability", "--xattrs-include=user.*"],
                      streams: Streams(stdin: .null, stdout: .descriptor(2)), context: "extract")
        for leftover in [raw, staging.path + "/archive.tar"] { unlink(leftover) }
        log("\(count) entries")
        log("--:")
        return try store.publish(staging, parentNode: store.rootNode, script: "import-tar \(shown)", key: nil)
    } catch {
        try? removeTree(staging.path)
        throw error.context("import-tar \(shown)")
    }
}

/// The command that decompresses `path`, told by its first bytes; nil for a plain tar.
func decompressor(for path: String) throws -> [String]? {
    let fd = try check(open(path, O_RDONLY | O_CLOEXEC), "open", path)
    defer { close(fd) }
    var magic = [UInt8](repeating: 0, count: 6)
    let n = read(fd, &magic, 6)
    let head = Array(magic[0..<max(n, 0)])
    if head.starts(with: [0x1f, 0x8b]) { return ["gzip", "-dc"] }
    if head.starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return ["xz", "-dc"] }
    if head.starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return ["zstd", "-dc"] }
    if head.starts(with: [0x42, 0x5a, 0x68]) { return ["bzip2", "-dc"] }
    return nil
}

/// One entry of a tar archive, as far as the path checks need it.
public struct TarEntry: Equatable {
    public enum Kind: Equatable { case file, hardLink, symbolicLink, directory, other }
    public var name: String
    public var kind: Kind
    public var linkName: String

    public init(name: String, kind: Kind, linkName: String = "") {
        self.name = name
        self.kind = kind
        self.linkName = linkName
    }
}

/// Reads every entry of the tar at `path` and rejects the archive, naming the entry,
/// if any would land outside the root: an absolute name, a `..` component, a path
/// through a symlink the archive made, or a hard link to such a place.
public func checkTarEntries(_ path: String) throws -> Int {
    let entries = try readTarEntries(path)
    try checkTarEntries(entries)
    return entries.count
}

public func checkTarEntries(_ entries: [TarEntry]) throws {
    var symlinks = Set<String>()
    func inside(_ name: String, _ what: String, entry: String) throws -> String {
        if name.hasPrefix("/") { throw PlashError.failure("\(entry): \(what) is an absolute path") }
        let parts = name.split(separator: "/").filter { $0 != "." }
        if parts.contains("..") { throw PlashError.failure("\(entry): \(what) leaves the root (..)") }
        var prefix = ""
        for part in parts.dropLast() {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if symlinks.contains(prefix) { throw PlashError.failure("\(entry): \(what) goes through the symlink \(prefix)") }
        }
        return parts.joined(separator: "/")
    }
    for entry in entries {
        let name = try inside(entry.name, "the name", entry: entry.name)
        if entry.kind == .hardLink {
            if entry.linkName.isEmpty { throw PlashError.failure("\(entry.name): a hard link to nothing") }
            _ = try inside(entry.linkName, "the hard link target \(entry.linkName)", entry: entry.name)
        }
        if entry.kind == .symbolicLink {
            if name.isEmpty { throw PlashError.failure("\(entry.name): the root cannot be a symlink") }
            symlinks.insert(name)
        }
    }
}

/// A tar reader for the headers only (ustar, GNU long names, pax path and linkpath).
public func readTarEntries(_ path: String) throws -> [TarEntry] {
    let fd = try check(open(path, O_RDONLY | O_CLOEXEC), "open", path)
    defer { close(fd) }
    var entries: [TarEntry] = []
    var longName: String? = nil, longLink: String? = nil
    var paxPath: String? = nil, paxLink: String? = nil
    var block = [UInt8](repeating: 0, count: 512)

    func readBlock() throws -> Bool {
        var got = 0
        while got < 512 {
            let n = block[got...].withUnsafeMutableBytes { read(fd, $0.baseAddress, 512 - got) }
            if n < 0 { if errno == EINTR { continue }; throw PlashError.system("read") }
            if n == 0 { if got == 0 { return false }; throw PlashError.failure("the archive is truncated") }
            got += n
        }
        return true
    }
    func readData(_ size: Int) throws -> [UInt8] {
        var data: [UInt8] = []
        var left = size
        while left > 0 {
            guard try readBlock() else { throw PlashError.failure("the archive is truncated") }
            data += block[0..<min(512, left)]
            left -= 512
        }
        return data
    }
    func string(_ range: Range<Int>) -> String {
        let bytes = block[range]
        let end = bytes.firstIndex(of: 0) ?? range.upperBound
        return String(decoding: block[range.lowerBound..<end], as: UTF8.self)
    }
    func number(_ range: Range<Int>) throws -> Int {
        if block[range.lowerBound] & 0x80 != 0 {
            // GNU base-256: big-endian, first byte's high bit is the marker.
            var value = Int(block[range.lowerBound] & 0x7f)
            for byte in block[(range.lowerBound + 1)..<range.upperBound] {
                guard value < Int.max >> 8 else { throw PlashError.failure("a size too large") }
                value = value << 8 | Int(byte)
            }
            return value
        }
        let text = String(string(range).filter { $0 != " " && $0 != "\0" })
        if text.isEmpty { return 0 }
        guard let value = Int(text, radix: 8) else { throw PlashError.failure("not a tar archive (bad number \(text.debugDescription))") }
        return value
    }
    func cString(_ data: [UInt8]) -> String {
        String(decoding: data.prefix { $0 != 0 }, as: UTF8.self)
    }

    while try readBlock() {
        if block.allSatisfy({ $0 == 0 }) { break }
        let checksum = try number(148..<156)
        let sum = block.enumerated().reduce(0) { $0 + (148..<156 ~= $1.offset ? 32 : Int($1.element)) }
        guard checksum == sum else { throw PlashError.failure("not a tar archive (bad header checksum)") }
        let size = try number(124..<136)
        let type = block[156]
        var name = string(0..<100)
        if string(257..<263) == "ustar" && block[262] == 0 {
            let prefix = string(345..<500)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        var linkName = string(157..<257)

        switch type {
        case UInt8(ascii: "L"): longName = cString(try readData(size)); continue
        case UInt8(ascii: "K"): longLink = cString(try readData(size)); continue
        case UInt8(ascii: "x"):
            for (key, value) in parsePax(try readData(size)) {
                if key == "path" { paxPath = value }
                if key == "linkpath" { paxLink = value }
            }
            continue
        case UInt8(ascii: "g"), UInt8(ascii: "V"): _ = try readData(size); continue
        default: break
        }
        name = paxPath ?? longName ?? name
        linkName = paxLink ?? longLink ?? linkName
        paxPath = nil; paxLink = nil; longName = nil; longLink = nil

        let kind: TarEntry.Kind
        switch type {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"), UInt8(ascii: "S"): kind = .file
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "5"): kind = .directory
        default: kind = .other
        }
        entries.append(TarEntry(name: name, kind: kind, linkName: linkName))
        // Data follows files only; links, directories and devices have none to skip.
        let dataSize = (kind == .file || kind == .other && type != UInt8(ascii: "3") && type != UInt8(ascii: "4")
                        && type != UInt8(ascii: "6")) ? size : 0
        let skip = (dataSize + 511) / 512 * 512
        if skip > 0, lseek(fd, off_t(skip), SEEK_CUR) == -1 { throw PlashError.system("seek") }
    }
    return entries
}

/// pax extended header records: "LEN key=value\n"...
func parsePax(_ data: [UInt8]) -> [(String, String)] {
    var records: [(String, String)] = []
    var index = 0
    while index < data.count {
        guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
              let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
              index + length <= data.count else { break }
        let record = data[(space + 1)..<(index + length - 1)]
        if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
            records.append((String(decoding: record[record.startIndex..<equals], as: UTF8.self),
                            String(decoding: record[(equals + 1)...], as: UTF8.self)))
        }
        index += length
    }
    return records
}
