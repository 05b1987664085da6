#if canImport(Glibc)
import Glibc
#endif
import CArchive
import PlashSystem

/// One entry of a tar archive, with what ustar, GNU and pax headers said about it.
public struct TarEntry: Equatable {
    public enum Kind: Equatable {
        case file, hardLink, symbolicLink, directory, characterDevice, blockDevice, fifo
    }
    /// The name and the link target as the archive has them: bytes, not always UTF-8.
    public var path: [UInt8]
    public var linkPath: [UInt8] = []
    public var kind: Kind
    public var mode: UInt32 = 0o644
    public var uid: UInt32 = 0
    public var gid: UInt32 = 0
    public var size = 0            // bytes of data that follow the header (files only)
    public var mtime = 0           // seconds since the epoch
    public var deviceMajor: UInt32 = 0
    public var deviceMinor: UInt32 = 0
    public var xattrs: [(name: String, value: [UInt8])] = []

    /// For messages (bytes that are not UTF-8 shown as U+FFFD), and to set.
    public var name: String {
        get { String(decoding: path, as: UTF8.self) }
        set { path = Array(newValue.utf8) }
    }
    public var linkName: String {
        get { String(decoding: linkPath, as: UTF8.self) }
        set { linkPath = Array(newValue.utf8) }
    }

    public init(name: String, kind: Kind, linkName: String = "") {
        self.init(path: Array(name.utf8), kind: kind, linkPath: Array(linkName.utf8))
    }

    public init(path: [UInt8], kind: Kind, linkPath: [UInt8] = []) {
        self.path = path
        self.kind = kind
        self.linkPath = linkPath
    }

    public static func == (a: TarEntry, b: TarEntry) -> Bool {
        a.path == b.path && a.kind == b.kind && a.linkPath == b.linkPath && a.mode == b.mode && a.uid == b.uid
            && a.gid == b.gid && a.size == b.size && a.mtime == b.mtime && a.deviceMajor == b.deviceMajor
            && a.deviceMinor == b.deviceMinor && a.xattrs.map(\.name) == b.xattrs.map(\.name)
            && a.xattrs.map(\.value) == b.xattrs.map(\.value)
    }
}

/// Bytes to read, from a file descriptor through the decompressor its magic bytes call
/// for (CArchive: zlib, liblzma, libzstd, libbz2).
public final class ArchiveInput {
    let decoder: OpaquePointer
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    var start = 0, end = 0
    var atEnd = false
    /// Decoded bytes handed out so far.
    public private(set) var offset = 0
    /// When set, the SHA-256 of every decoded byte handed out: an OCI layer's diff_id.
    public var digest: SHA256? = nil
    /// Decoded bytes so far, and how many times the compressed input read they may be.
    private var decoded = 0
    private let maximumExpansion: Int

    public init(fd: Int32) throws {
        guard let decoder = plash_decoder_new(fd) else { throw PlashError.system("read") }
        self.decoder = decoder
        maximumExpansion = String(cString: plash_decoder_format(decoder)) == "plain" ? 0 : ArchiveInput.maximumExpansion
    }

    /// Compressed data may decode to at most this many times its size, past the first
    /// 256 MiB: $PLASH_MAX_EXPANSION, else 100 (root filesystems expand 3 to 5 times; 1 MiB
    /// of gzip'd zeros, 1,000 times: a small download must not fill the disk). 0: no bound.
    static var maximumExpansion: Int { numberSetting("PLASH_MAX_EXPANSION").map { max($0, 0) } ?? 100 }

    deinit {
        plash_decoder_free(decoder)
        buffer.deallocate()
    }

    public var format: String { String(cString: plash_decoder_format(decoder)) }
    public var inputWasEmpty: Bool { plash_decoder_input_size(decoder) == 0 }

    /// Reads more when everything read was handed out; false at the end of the data.
    func fill() throws -> Bool {
        if start < end { return true }
        if atEnd { return false }
        let count = plash_decoder_read(decoder, buffer.baseAddress, buffer.count)
        if count < 0 {
            if let reason = plash_decoder_error(decoder) { throw PlashError.failure(String(cString: reason)) }
            throw PlashError.system("read")
        }
        if count == 0 { atEnd = true; return false }
        decoded += count
        if maximumExpansion > 0, decoded > 256 << 20,
           decoded / maximumExpansion > Int(plash_decoder_input_size(decoder)) {
            throw PlashError.failure("the \(format) data expands more than \(maximumExpansion) times")
                .advising("PLASH_MAX_EXPANSION=N raises the limit")
        }
        start = 0
        end = count
        return true
    }

    /// The next `count` bytes, in pieces as they come; fewer than `count` is a truncated
    /// archive, or what `short` says it is.
    func read(_ count: Int, short: String = "the archive is truncated", _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var left = count
        while left > 0 {
            guard try fill() else { throw PlashError.failure(short) }
            let piece = min(left, end - start)
            let bytes = UnsafeRawBufferPointer(rebasing: buffer[start..<(start + piece)])
            digest?.update(bytes)
            try body(bytes)
            start += piece
            offset += piece
            left -= piece
        }
    }

    /// The padding after an entry's data. A writer that ends the archive right after the
    /// last file's data may leave it out (Debian's umoci 0.4.7 does): the file is whole.
    func readPadding(_ count: Int) throws {
        var left = count
        while left > 0, try fill() {
            let piece = min(left, end - start)
            try read(piece) { _ in }
            left -= piece
        }
    }

    /// Reads what is left after the archive's end (its padding), so that `digest`
    /// covers the whole stream.
    public func drain() throws {
        while try fill() { try read(end - start) { _ in } }
    }

    /// One 512-byte block; nil at the end of the data, exactly between two blocks. A
    /// part of one is a truncated archive, or what `short` says it is.
    func block(short: String = "the archive is truncated") throws -> [UInt8]? {
        guard try fill() else { return nil }
        var block: [UInt8] = []
        block.reserveCapacity(512)
        try read(512, short: short) { block += $0 }
        return block
    }
}

/// A streaming tar reader: ustar and old v7 headers, GNU long names and links and
/// base-256 numbers, pax extended headers (path, linkpath, size, uid, gid, mtime,
/// SCHILY.xattr). Sizes are bounded, so no header can make it overflow or allocate
/// without end; what it cannot represent faithfully (sparse files, multi-volume
/// archives, unknown entry types) it refuses rather than guesses.
public struct TarReader {
    let input: ArchiveInput
    var dataLeft = 0      // of the current entry, not yet read
    var padding = 0       // after it, to the next 512-byte boundary
    public private(set) var entries = 0
    var previous: String? = nil
    /// The name in the header being read, for its errors.
    var current: String? = nil

    /// Larger sizes than this cannot be real: refused before any arithmetic on them.
    static let maximumSize = 1 << 52
    /// GNU long names and pax headers are read into memory: bounded.
    static let maximumHeaderData = 8 << 20

    public init(_ input: ArchiveInput) { self.input = input }

    /// The next entry, or nil at the end of the archive: two zero blocks, one, or the
    /// end of the data where a header would start (Debian's umoci 0.4.7 writes layers
    /// without the end blocks).
    public mutating func next() throws -> TarEntry? {
        try skipData()
        var longName: [UInt8]? = nil, longLink: [UInt8]? = nil
        var pax: [String: [UInt8]] = [:]
        var extended = false
        while true {
            // Input shorter than one header is no archive that was cut: a text, a web page.
            guard let block = try input.block(short: entries == 0 && !extended ? "not a tar archive" : "the archive is truncated") else {
                if extended { throw failure("the archive ends after an extended header") }
                if entries == 0 { throw PlashError.failure(input.inputWasEmpty ? "empty archive" : "not a tar archive") }
                return nil
            }
            if block.allSatisfy({ $0 == 0 }) {
                if extended { throw failure("the archive ends after an extended header") }
                if entries == 0 { throw PlashError.failure("empty archive (no entries)") }
                return nil
            }
            guard checksumMatches(block) else {
                throw entries == 0 && !extended ? PlashError.failure("not a tar archive") : failure("bad header checksum")
            }
            let type = block[156]
            let isExtended = [UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g")].contains(type)
            current = isExtended ? nil : String(decoding: longName ?? Array(field(block, 0, 100)), as: UTF8.self)
            defer { current = nil }
            let size = try number(block, 124, 12, "size")
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard size <= TarReader.maximumHeaderData else { throw failure("an extended header of \(size) bytes") }
                var data: [UInt8] = []
                try input.read(size) { data += $0 }
                try input.read(TarReader.padding(size)) { _ in }
                extended = true
                if type == UInt8(ascii: "L") { longName = Array(data.prefix { $0 != 0 }) }
                if type == UInt8(ascii: "K") { longLink = Array(data.prefix { $0 != 0 }) }
                // Global pax headers would change every entry after them; plash takes
                // each entry's own header as the truth and reads past them.
                if type == UInt8(ascii: "x") {
                    for (key, value) in try parsePax(data) { pax[key] = value }
                }
                continue
            case UInt8(ascii: "V"):   // a volume label: nothing to create
                try input.read(size + TarReader.padding(size)) { _ in }
                continue
            default:
                break
            }
            var entry = try header(block, type: type, size: size)
            if let longName { entry.path = longName }
            if let longLink { entry.linkPath = longLink }
            try apply(pax, to: &entry)
            // Old tars mark directories by a slash only: of the full name, not of a
            // ustar field that a long name overflowed.
            if type == 0 || type == UInt8(ascii: "0"), entry.path.last == UInt8(ascii: "/") { entry.kind = .directory }
            if entry.kind != .file { entry.size = 0 }
            dataLeft = entry.size
            padding = TarReader.padding(entry.size)
            entries += 1
            previous = entry.name
            return entry
        }
    }

    /// The current entry's data, in pieces; what the caller leaves unread is skipped.
    public mutating func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let count = dataLeft
        dataLeft = 0
        try input.read(count, body)
        try input.readPadding(padding)
        padding = 0
    }

    mutating func skipData() throws {
        try readData { _ in }
    }

    static func padding(_ size: Int) -> Int { (512 - size % 512) % 512 }

    func failure(_ reason: String) -> PlashError {
        if let current, !current.isEmpty { return PlashError.failure("\(current): \(reason)") }
        return PlashError.failure(previous.map { "after \($0): \(reason)" } ?? reason)
    }

    func header(_ block: [UInt8], type: UInt8, size: Int) throws -> TarEntry {
        var path = Array(field(block, 0, 100))
        // POSIX ustar has a prefix; GNU's "ustar  " keeps times there instead.
        if block[257..<263].elementsEqual("ustar\0".utf8) {
            let prefix = field(block, 345, 155)
            if !prefix.isEmpty { path = prefix + [UInt8(ascii: "/")] + path }
        }
        let name = String(decoding: path, as: UTF8.self)
        let kind: TarEntry.Kind
        switch type {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "S"): throw PlashError.failure("\(name): sparse files are not supported")
        default:
            let shown = type >= 0x20 && type < 0x7f ? String(UnicodeScalar(type)) : "\\(\(type))"
            throw PlashError.failure("\(name): unsupported entry type '\(shown)'")
        }
        var entry = TarEntry(path: path, kind: kind, linkPath: Array(field(block, 157, 100)))
        entry.mode = UInt32(try number(block, 100, 8, "mode") & 0o7777)
        entry.uid = try id(number(block, 108, 8, "uid"), "uid")
        entry.gid = try id(number(block, 116, 8, "gid"), "gid")
        entry.size = size
        entry.mtime = try number(block, 136, 12, "mtime")
        if kind == .characterDevice || kind == .blockDevice {
            entry.deviceMajor = try id(number(block, 329, 8, "device major"), "device major")
            entry.deviceMinor = try id(number(block, 337, 8, "device minor"), "device minor")
        }
        return entry
    }

    func apply(_ pax: [String: [UInt8]], to entry: inout TarEntry) throws {
        func decimal(_ key: String) throws -> Int? {
            guard let value = pax[key] else { return nil }
            let text = String(decoding: value, as: UTF8.self)
            // mtime may have a fraction; plash keeps whole seconds.
            let whole = key == "mtime" ? String(text.prefix { $0 != "." }) : text
            guard let number = Int(whole), number >= (key == "mtime" ? Int.min : 0),
                  number <= TarReader.maximumSize || key == "mtime" else {
                throw PlashError.failure("\(entry.name): bad pax \(key) \(text.debugDescription)")
            }
            return number
        }
        for (key, value) in pax where value.contains(0) && (key == "path" || key == "linkpath") {
            throw PlashError.failure("\(entry.name): pax \(key) holds a NUL byte")
        }
        if let path = pax["path"] { entry.path = path }
        if let link = pax["linkpath"] { entry.linkPath = link }
        if let size = try decimal("size") { entry.size = size }
        if let uid = try decimal("uid") { entry.uid = try id(uid, "uid") }
        if let gid = try decimal("gid") { entry.gid = try id(gid, "gid") }
        if let mtime = try decimal("mtime") { entry.mtime = mtime }
        for (key, value) in pax.sorted(by: { $0.key < $1.key }) {
            if key.hasPrefix("GNU.sparse.") { throw PlashError.failure("\(entry.name): sparse files are not supported") }
            if key.hasPrefix("SCHILY.xattr.") { entry.xattrs.append((String(key.dropFirst(13)), value)) }
        }
    }

    func id(_ value: Int, _ what: String) throws -> UInt32 {
        guard value >= 0, value < Int(UInt32.max) else { throw failure("\(what) \(value) out of range") }
        return UInt32(value)
    }

    /// A numeric field: octal digits (spaces and NULs around them), or GNU base-256
    /// when the first byte's high bit is set.
    func number(_ block: [UInt8], _ offset: Int, _ length: Int, _ what: String) throws -> Int {
        let field = block[offset..<(offset + length)]
        if field.first! & 0x80 != 0 {
            guard field.first! == 0x80 else { throw failure("a negative \(what)") }
            var value = 0
            for byte in field.dropFirst() {
                guard value <= TarReader.maximumSize >> 8 else { throw failure("\(what) too large") }
                value = value << 8 | Int(byte)
            }
            guard value <= TarReader.maximumSize else { throw failure("\(what) too large") }
            return value
        }
        var value = 0
        var digits = false, ended = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") { if digits { ended = true }; continue }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), !ended else {
                throw failure("bad \(what) field")
            }
            value = value << 3 | Int(byte - UInt8(ascii: "0"))   // at most 12 digits: no overflow
            digits = true
        }
        guard value <= TarReader.maximumSize else { throw failure("\(what) too large") }
        return value
    }

    /// The header's checksum: the sum of its bytes with the checksum field as spaces,
    /// unsigned (POSIX) or signed (some old tars).
    func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = try? number(block, 148, 8, "checksum") else { return false }
        var unsigned = 8 * 32, signed = 8 * 32
        for index in 0..<512 where index < 148 || index >= 156 {
            unsigned &+= Int(block[index])
            signed &+= Int(Int8(bitPattern: block[index]))
        }
        return stored == unsigned || stored == signed
    }

    func field(_ block: [UInt8], _ offset: Int, _ length: Int) -> ArraySlice<UInt8> {
        block[offset..<(offset + length)].prefix { $0 != 0 }
    }

    /// pax extended header records: "LENGTH key=value\n", the length counting the whole
    /// record. Values may be binary (xattrs); a malformed record fails the archive.
    func parsePax(_ data: [UInt8]) throws -> [(String, [UInt8])] {
        var records: [(String, [UInt8])] = []
        var index = 0
        while index < data.count {
            if data[index] == 0 { break }   // padding some writers leave
            guard let space = data[index...].prefix(21).firstIndex(of: UInt8(ascii: " ")),
                  let length = Int(String(decoding: data[index..<space], as: UTF8.self)),
                  length > space - index + 2, length <= data.count - index,
                  data[index + length - 1] == UInt8(ascii: "\n"),
                  let equals = data[(space + 1)..<(index + length - 1)].firstIndex(of: UInt8(ascii: "=")) else {
                throw failure("malformed pax header")
            }
            let key = String(decoding: data[(space + 1)..<equals], as: UTF8.self)
            let value = Array(data[(equals + 1)..<(index + length - 1)])
            records.append((key, value))
            index += length
        }
        return records
    }
}
