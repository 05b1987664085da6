#if canImport(Glibc)
import Glibc
#endif
import CArchive
import PlashSystem

/// Writes a tree as a tar archive: ustar headers, with a pax header in front where
/// ustar cannot hold a value (long names and link targets, large ids and sizes, xattrs).
/// Entries are sorted by name, owners numeric, no user or group names, no access or
/// change times: the same tree gives the same bytes.
public final class TarWriter {
    let out: Int32
    let shownOut: String
    var buffer: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var written = 0
    /// The first name of every inode with more than one link: later ones become hard links.
    var linked: [String: [UInt8]] = [:]
    /// Where the bytes go instead of `out`: export-oci hashes and compresses them.
    var sink: (([UInt8]) throws -> Void)? = nil
    /// A layer of an image, not a merged tree: overlayfs's whiteouts (character devices
    /// 0/0) and opaque directories become OCI's `.wh.NAME` files and `.wh..wh..opq` markers.
    var ociWhiteouts = false

    public init(fd: Int32, name: String) {
        out = fd
        shownOut = name
        buffer.reserveCapacity(1 << 20)
    }

    /// Every entry below the directory `root` (an open descriptor), names starting `./`;
    /// or, `bare`, without the root's entry and names as `docker save` writes them
    /// (`manifest.json`), which `tar xf FILE manifest.json` finds.
    public func writeTree(_ root: Int32, bare: Bool = false) throws {
        var info = stat()
        try check(fstat(root, &info), "stat", ".")
        if bare {
            for name in try directoryNames(root, path: ".") { try writeEntry(root, name, path: name) }
        } else {
            try writeDirectory(root, path: Array("./".utf8), info: info)
        }
        try append([UInt8](repeating: 0, count: 1024))
        // GNU tar pads the archive to a record of 20 blocks; so do we.
        try append([UInt8](repeating: 0, count: (10240 - (written + buffer.count) % 10240) % 10240))
        try flush()
    }

    func writeDirectory(_ fd: Int32, path: [UInt8], info: stat) throws {
        try writeHeader(path, info: info, xattrs: xattrs(fd))
        if ociWhiteouts && isOpaque(fd) {
            try writeHeader(path + Array(".wh..wh..opq".utf8), info: info, type: "0")
        }
        for name in try directoryNames(fd, path: shown(path)) {
            try writeEntry(fd, name, path: path + name)
        }
    }

    /// A name for messages: without the leading "./".
    func shown(_ path: [UInt8]) -> String {
        String(decoding: path.starts(with: "./".utf8) ? path.dropFirst(2) : path[...], as: UTF8.self)
    }

    func writeEntry(_ parent: Int32, _ nameBytes: [UInt8], path: [UInt8]) throws {
        let name = TarExtractor.cString(nameBytes)
        var info = stat()
        try check(fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW), "stat", shown(path))
        switch info.st_mode & S_IFMT {
        case S_IFDIR:
            let fd = try check(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open", shown(path))
            defer { close(fd) }
            try writeDirectory(fd, path: path + [UInt8(ascii: "/")], info: info)
        case S_IFREG:
            if info.st_nlink > 1 {
                let key = "\(info.st_dev):\(info.st_ino)"
                if let first = linked[key] {
                    try writeHeader(path, info: info, type: "1", linkName: first)
                    return
                }
                linked[key] = path
            }
            let fd = try check(openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), "open", shown(path))
            defer { close(fd) }
            try writeHeader(path, info: info, type: "0", size: Int(info.st_size), xattrs: xattrs(fd))
            try copyData(fd, size: Int(info.st_size), path: path)
        case S_IFLNK:
            var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = buffer.withUnsafeMutableBytes {
                readlinkat(parent, name, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
            }
            if count < 0 { throw PlashError.system("readlink", shown(path)) }
            let target = Array(buffer[0..<count])
            try writeHeader(path, info: info, type: "2", linkName: target)
        case S_IFCHR where ociWhiteouts && info.st_rdev == 0:
            try writeHeader(Array(path.dropLast(nameBytes.count)) + Array(".wh.".utf8) + nameBytes, info: info, type: "0")
        case S_IFCHR, S_IFBLK, S_IFIFO:
            let type: Character = info.st_mode & S_IFMT == S_IFCHR ? "3" : info.st_mode & S_IFMT == S_IFBLK ? "4" : "6"
            try writeHeader(path, info: info, type: type)
        default:
            break   // sockets: tar archives cannot hold them
        }
    }

    /// The file's bytes and the padding to the next block. A file that shrank while read
    /// fails the export rather than shift every entry after it.
    func copyData(_ fd: Int32, size: Int, path: [UInt8]) throws {
        var left = size
        while left > 0 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, min($0.count, left)) }
            if n < 0 { if errno == EINTR { continue }; throw PlashError.system("read", shown(path)) }
            if n == 0 { throw PlashError.failure("\(shown(path)): the file shrank while it was read") }
            try append(chunk[0..<n])
            left -= n
        }
        try append([UInt8](repeating: 0, count: (512 - size % 512) % 512))
    }

    /// security.capability and user.* xattrs, as GNU tar's --xattrs-include in plash
    /// did; overlayfs's own are left out.
    func xattrs(_ fd: Int32) -> [(String, [UInt8])] {
        var names = [CChar](repeating: 0, count: 65536)
        let length = flistxattr(fd, &names, names.count)
        guard length > 0 else { return [] }
        var result: [(String, [UInt8])] = []
        for raw in names[0..<length].split(separator: 0) {
            let name = String(decoding: raw.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard name == "security.capability" || (name.hasPrefix("user.") && !name.hasPrefix("user.overlay.")) else { continue }
            var value = [UInt8](repeating: 0, count: 65536)
            let size = fgetxattr(fd, name, &value, value.count)
            if size >= 0 { result.append((name, Array(value[0..<size]))) }
        }
        return result.sorted { $0.0 < $1.0 }
    }

    /// overlayfs's mark of a directory that hides the lower layers' one: trusted.* as
    /// root, user.* in a user namespace (userxattr).
    func isOpaque(_ fd: Int32) -> Bool {
        ["trusted.overlay.opaque", "user.overlay.opaque"].contains { name in
            var value: UInt8 = 0
            return fgetxattr(fd, name, &value, 1) == 1 && value == UInt8(ascii: "y")
        }
    }

    func writeHeader(_ path: [UInt8], info: stat, type: Character = "5", linkName: [UInt8] = [], size: Int = 0,
                              xattrs: [(String, [UInt8])] = []) throws {
        var pax: [(String, [UInt8])] = []
        let name = path
        let link = linkName
        var (prefix, short) = ([UInt8](), name)
        if name.count > 100 {
            // ustar's prefix/name split at a slash, when one fits; else a pax path.
            if let slash = name.indices.last(where: { name[$0] == UInt8(ascii: "/") && $0 < 156 && name.count - $0 - 1 <= 100 && $0 < name.count - 1 }) {
                prefix = Array(name[..<slash]); short = Array(name[(slash + 1)...])
            } else {
                pax.append(("path", name)); short = Array(name.prefix(100))
            }
        }
        if link.count > 100 { pax.append(("linkpath", link)) }
        let limit7 = 0o7777777, limit11 = 0o77777777777
        if Int(info.st_uid) > limit7 { pax.append(("uid", Array(String(info.st_uid).utf8))) }
        if Int(info.st_gid) > limit7 { pax.append(("gid", Array(String(info.st_gid).utf8))) }
        if size > limit11 { pax.append(("size", Array(String(size).utf8))) }
        let mtime = Int(info.st_mtim.tv_sec)
        if mtime < 0 || mtime > limit11 { pax.append(("mtime", Array(String(mtime).utf8))) }
        for (key, value) in xattrs { pax.append(("SCHILY.xattr." + key, value)) }
        if !pax.isEmpty {
            let data = paxRecords(pax)
            var header = ustarHeader(name: Array("./PaxHeaders/".utf8) + short.suffix(87), prefix: [], type: "x",
                                     mode: 0o644, uid: 0, gid: 0, size: data.count, mtime: max(0, min(mtime, limit11)))
            header = withChecksum(header)
            try append(header)
            try append(data)
            try append([UInt8](repeating: 0, count: (512 - data.count % 512) % 512))
        }
        var header = ustarHeader(name: short, prefix: prefix, type: type, mode: Int(info.st_mode & 0o7777),
                                 uid: min(Int(info.st_uid), limit7), gid: min(Int(info.st_gid), limit7),
                                 size: min(size, limit11), mtime: max(0, min(mtime, limit11)), linkName: Array(link.prefix(100)))
        if type == "3" || type == "4" {
            let device = UInt64(info.st_rdev)
            let major = Int((device >> 8) & 0xfff | (device >> 32) & ~UInt64(0xfff))
            let minor = Int(device & 0xff | (device >> 12) & ~UInt64(0xff))
            put(&header, 329, 8, octal(major, 7))
            put(&header, 337, 8, octal(minor, 7))
        }
        try append(withChecksum(header))
    }

    func ustarHeader(name: [UInt8], prefix: [UInt8], type: Character, mode: Int, uid: Int, gid: Int, size: Int,
                     mtime: Int, linkName: [UInt8] = []) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        put(&header, 0, 100, name)
        put(&header, 100, 8, octal(mode, 7))
        put(&header, 108, 8, octal(uid, 7))
        put(&header, 116, 8, octal(gid, 7))
        put(&header, 124, 12, octal(size, 11))
        put(&header, 136, 12, octal(mtime, 11))
        header[156] = type.asciiValue!
        put(&header, 157, 100, linkName)
        put(&header, 257, 8, Array("ustar\u{0}00".utf8))
        put(&header, 329, 8, octal(0, 7))
        put(&header, 337, 8, octal(0, 7))
        put(&header, 345, 155, prefix)
        return header
    }

    func withChecksum(_ header: [UInt8]) -> [UInt8] {
        var header = header
        put(&header, 148, 8, Array("        ".utf8))
        let sum = header.reduce(0) { $0 + Int($1) }
        put(&header, 148, 8, octal(sum, 6) + [0, UInt8(ascii: " ")])
        return header
    }

    func octal(_ value: Int, _ digits: Int) -> [UInt8] {
        let text = String(value, radix: 8)
        return Array((String(repeating: "0", count: max(0, digits - text.count)) + text).utf8) + [0]
    }

    func put(_ header: inout [UInt8], _ offset: Int, _ length: Int, _ bytes: [UInt8]) {
        for (index, byte) in bytes.prefix(length).enumerated() { header[offset + index] = byte }
    }

    /// "LENGTH key=value\n", where LENGTH counts the whole record, itself included.
    func paxRecords(_ records: [(String, [UInt8])]) -> [UInt8] {
        var data: [UInt8] = []
        for (key, value) in records {
            let body = 1 + key.utf8.count + 1 + value.count + 1
            var length = body + String(body).count
            if String(length).count != String(body).count { length = body + String(length).count }
            data += Array("\(length) \(key)=".utf8) + value + [UInt8(ascii: "\n")]
        }
        return data
    }

    func append<Bytes: Collection>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        buffer += bytes
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws {
        if let sink {
            try sink(buffer)
            written += buffer.count
            buffer.removeAll(keepingCapacity: true)
            return
        }
        var offset = 0
        while offset < buffer.count {
            let n = buffer[offset...].withUnsafeBytes { write(out, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw PlashError.system("write", shownOut) }
            offset += n
        }
        written += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }
}
