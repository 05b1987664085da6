#if canImport(Glibc)
import Glibc
#endif
import CArchive
import PlashSystem

/// Extracts tar entries into a directory, in one pass: what is checked is what is
/// written. Every path is opened beneath the root with openat2 (RESOLVE_BENEATH,
/// RESOLVE_NO_SYMLINKS), so no name, `..`, absolute path, or symlink made by an earlier
/// entry can lead outside it, and every entry is created with O_EXCL or its *at call
/// relative to the directory that holds it, never through a path that could change.
public struct TarExtractor {
    let root: Int32
    /// Device nodes not created: an ordinary user's namespace may not make them.
    public private(set) var skippedDevices = 0
    /// Entries left owned by the extracting user: their owner is not mapped in its
    /// user namespace (an ordinary user without subordinate ids).
    public private(set) var unmappedOwners = 0
    /// Directories get their mtime last: creating what they hold changes it.
    var directoryTimes: [(path: [UInt8], mtime: Int)] = []
    /// The directory of the last entry, open: archives list a directory's files together.
    var cachedParent: (path: [UInt8], fd: Int32)? = nil
    /// Set when an entry replaced a directory: the cached one may be gone.
    var removedDirectory = false

    /// `root`: an open directory (O_RDONLY), which the caller closes after `finish`.
    public init(root: Int32) { self.root = root }

    /// Extracts every entry `reader` yields; `filter` may change an entry or skip it
    /// (return false): the place for OCI whiteouts to become overlay whiteouts.
    public mutating func extractAll(_ reader: inout TarReader, filter: ((inout TarEntry) throws -> Bool)? = nil) throws {
        defer { closeCachedParent() }
        while var entry = try reader.next() {
            let shown = entry.name
            do {
                if let filter, try !filter(&entry) { continue }
                try extract(entry, from: &reader)
            } catch {
                throw error.context(shown)
            }
        }
        try finish()
    }

    /// The entry's path components below the root; empty for the root itself. Bytes:
    /// names need not be UTF-8, and are created as the archive has them.
    public static func relativePath(_ name: [UInt8], _ what: String) throws -> [UInt8] {
        let slash = UInt8(ascii: "/"), dot = UInt8(ascii: ".")
        if name.isEmpty { throw PlashError.failure("\(what) is empty") }
        if name.first == slash { throw PlashError.failure("\(what) is an absolute path") }
        let parts = name.split(separator: slash).filter { !$0.elementsEqual([dot]) }
        if parts.contains(where: { $0.elementsEqual([dot, dot]) }) { throw PlashError.failure("\(what) leaves the root (..)") }
        return Array(parts.joined(separator: [slash]))
    }

    public static func relativePath(_ name: String, _ what: String) throws -> String {
        String(decoding: try relativePath(Array(name.utf8), what), as: UTF8.self)
    }

    /// "a/b/c" -> ("a/b", "c"), "c" -> ("", "c").
    static func splitPath(_ path: [UInt8]) -> (parent: [UInt8], name: [UInt8]) {
        guard let slash = path.lastIndex(of: UInt8(ascii: "/")) else { return ([], path) }
        return (Array(path[..<slash]), Array(path[(slash + 1)...]))
    }

    /// A C string of bytes, for the *at calls.
    static func cString<Bytes: Collection>(_ bytes: Bytes) -> [CChar] where Bytes.Element == UInt8 {
        bytes.map { CChar(bitPattern: $0) } + [0]
    }

    mutating func extract(_ entry: TarEntry, from reader: inout TarReader) throws {
        let path = try TarExtractor.relativePath(entry.path, "the name")
        if path.isEmpty {
            guard entry.kind == .directory else { throw PlashError.failure("the root can only be a directory") }
            try setAttributes(of: root, entry)
            directoryTimes.append(([], entry.mtime))
            return
        }
        let (parentPath, nameBytes) = TarExtractor.splitPath(path)
        let name = TarExtractor.cString(nameBytes)
        let parent = try openParent(parentPath)
        switch entry.kind {
        case .directory:
            if mkdirat(parent, name, 0o700) == -1 {
                guard errno == EEXIST else { throw PlashError.system("create directory") }
                if !isDirectory(parent, name) {
                    try remove(parent, name)
                    try check(mkdirat(parent, name, 0o700), "create directory")
                }
            }
            let fd = try check(openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open directory")
            defer { close(fd) }
            try setAttributes(of: fd, entry)
            directoryTimes.append((path, entry.mtime))
        case .file:
            let fd = try create(parent, name) { openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600) }
            defer { close(fd) }
            try reader.readData { piece in
                var offset = 0
                while offset < piece.count {
                    let n = write(fd, piece.baseAddress! + offset, piece.count - offset)
                    if n < 0 { if errno == EINTR { continue }; throw PlashError.system("write") }
                    offset += n
                }
            }
            try setAttributes(of: fd, entry)
            var times = [timespec(tv_sec: entry.mtime, tv_nsec: 0), timespec(tv_sec: entry.mtime, tv_nsec: 0)]
            try check(futimens(fd, &times), "set times")
        case .symbolicLink:
            if entry.linkPath.isEmpty { throw PlashError.failure("a symlink to nothing") }
            let target = TarExtractor.cString(entry.linkPath)
            _ = try create(parent, name) { symlinkat(target, parent, name) }
            try chown(parent, name, entry)
            try setTime(parent, name, entry.mtime)
        case .hardLink:
            let target = try TarExtractor.relativePath(entry.linkPath, "the hard link target \(entry.linkName)")
            if target.isEmpty || target == path { throw PlashError.failure("a hard link to \(entry.linkPath.isEmpty ? "nothing" : "itself")") }
            let (targetParentPath, targetNameBytes) = TarExtractor.splitPath(target)
            let targetName = TarExtractor.cString(targetNameBytes)
            let targetParent = try openBeneath(targetParentPath, "the hard link target \(entry.linkName)")
            defer { if targetParent != root { close(targetParent) } }
            _ = try create(parent, name) { linkat(targetParent, targetName, parent, name, 0) }
        case .characterDevice, .blockDevice, .fifo:
            let type = entry.kind == .fifo ? S_IFIFO : entry.kind == .characterDevice ? S_IFCHR : S_IFBLK
            let device = entry.kind == .fifo ? 0 : makeDevice(entry.deviceMajor, entry.deviceMinor)
            let made = try create(parent, name, skipIfDenied: entry.kind != .fifo) {
                mknodat(parent, name, type | 0o600, device)
            }
            if made == -2 { skippedDevices += 1; return }
            try chown(parent, name, entry)
            try check(fchmodat(parent, name, entry.mode, 0), "chmod")
            try setTime(parent, name, entry.mtime)
        }
    }

    /// Runs `make` (an *at call that fails with EEXIST rather than follow or replace),
    /// replacing what an earlier entry left at the name. -2 when denied and `skipIfDenied`.
    mutating func create(_ parent: Int32, _ name: [CChar], skipIfDenied: Bool = false, _ make: () -> Int32) throws -> Int32 {
        var result = make()
        if result == -1 && errno == EEXIST {
            try remove(parent, name)
            result = make()
        }
        if result == -1 && skipIfDenied && errno == EPERM { return -2 }
        return try check(result, "create")
    }

    /// Removes what an earlier entry put at `name`, so this one replaces it as in GNU
    /// tar; a directory only when empty.
    mutating func remove(_ parent: Int32, _ name: [CChar]) throws {
        if unlinkat(parent, name, 0) == 0 { return }
        if errno == EISDIR || errno == EPERM {
            if unlinkat(parent, name, AT_REMOVEDIR) == 0 { removedDirectory = true; return }
            if errno == ENOTEMPTY || errno == EEXIST {
                throw PlashError.failure("would replace a directory that is not empty")
            }
        }
        throw PlashError.system("replace")
    }

    func isDirectory(_ parent: Int32, _ name: [CChar]) -> Bool {
        var info = stat()
        return fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The directory `path` beneath the root, created (0755, as GNU tar does) with any
    /// missing parents when the archive did not list it.
    mutating func openParent(_ path: [UInt8]) throws -> Int32 {
        if path.isEmpty { return root }
        if removedDirectory { closeCachedParent(); removedDirectory = false }
        if let cachedParent, cachedParent.path == path { return cachedParent.fd }
        closeCachedParent()
        let fd: Int32
        if let opened = try? openBeneath(path, "the name") {
            fd = opened
        } else {
            var current = root
            for part in path.split(separator: UInt8(ascii: "/")).map(TarExtractor.cString) {
                if mkdirat(current, part, 0o755) == -1 && errno != EEXIST {
                    throw PlashError.system("create directory \(String(cString: part))")
                }
                let next = plash_open_beneath(current, part, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
                let code = errno
                if current != root { close(current) }
                if next == -1 { throw parentError(code, "the name") }
                current = next
            }
            fd = current
        }
        cachedParent = (path, fd)
        return fd
    }

    mutating func closeCachedParent() {
        if let cachedParent { close(cachedParent.fd) }
        cachedParent = nil
    }

    func openBeneath(_ path: [UInt8], _ what: String) throws -> Int32 {
        if path.isEmpty { return root }
        let fd = plash_open_beneath(root, TarExtractor.cString(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        if fd == -1 { throw parentError(errno, what) }
        return fd
    }

    func parentError(_ code: Int32, _ what: String) -> PlashError {
        switch code {
        case ELOOP: return PlashError.failure("\(what) goes through a symlink")
        case ENOTDIR: return PlashError.failure("\(what) goes through something that is not a directory")
        case EXDEV: return PlashError.failure("\(what) leaves the root")
        default: return PlashError.system("open directory", errno: code)
        }
    }

    /// Owner, then mode (a chown clears setuid bits), then xattrs (a chown clears
    /// security.capability too). Not `user.overlay.*`: an ordinary user's overlay
    /// (userxattr) reads those as its own (opaque directories, redirects, metacopy),
    /// so a layer that carried them would steer the overlay of every image above it.
    mutating func setAttributes(of fd: Int32, _ entry: TarEntry) throws {
        if fchown(fd, entry.uid, entry.gid) == -1 {
            guard errno == EINVAL else { throw PlashError.system("chown") }
            unmappedOwners += 1
        }
        try check(fchmod(fd, entry.mode), "chmod")
        for xattr in entry.xattrs where xattr.name == "security.capability"
            || xattr.name.hasPrefix("user.") && !xattr.name.hasPrefix("user.overlay.") {
            if fsetxattr(fd, xattr.name, xattr.value, xattr.value.count, 0) == -1 {
                throw PlashError.system("set xattr \(xattr.name)")
            }
        }
    }

    mutating func chown(_ parent: Int32, _ name: [CChar], _ entry: TarEntry) throws {
        if fchownat(parent, name, entry.uid, entry.gid, AT_SYMLINK_NOFOLLOW) == -1 {
            guard errno == EINVAL else { throw PlashError.system("chown") }
            unmappedOwners += 1
        }
    }

    func setTime(_ parent: Int32, _ name: [CChar], _ mtime: Int) throws {
        var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
        try check(utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW), "set times")
    }

    /// Directory mtimes, deepest first, once nothing more is created in them.
    mutating func finish() throws {
        closeCachedParent()
        for (path, mtime) in directoryTimes.reversed() {
            if path.isEmpty {
                var times = [timespec(tv_sec: mtime, tv_nsec: 0), timespec(tv_sec: mtime, tv_nsec: 0)]
                try check(futimens(root, &times), "set times")
                continue
            }
            let (parentPath, nameBytes) = TarExtractor.splitPath(path)
            let name = TarExtractor.cString(nameBytes)
            // A later entry may have replaced the directory: then its time is moot.
            guard let parent = try? openBeneath(parentPath, "the name") else { continue }
            defer { if parent != root { close(parent) } }
            if isDirectory(parent, name) { try setTime(parent, name, mtime) }
        }
        directoryTimes = []
    }
}

/// glibc's makedev, which Swift does not import.
func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
    let major = dev_t(major), minor = dev_t(minor)
    return (major & 0xfff) << 8 | (major & ~0xfff) << 32 | (minor & 0xff) | (minor & ~0xff) << 12
}
