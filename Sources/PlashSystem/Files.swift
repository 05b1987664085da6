#if canImport(Glibc)
import Glibc
#endif
import CPlashShims

/// Opens a directory as a handle only (plash_O_PATH): enough to mount on, to chdir to and to
/// name in overlay options as /proc/self/fd/N, without needing read permission.
public func openDirectory(_ path: String, what: Step) throws -> Int32 {
    try check(open(path, plash_O_PATH | O_DIRECTORY | O_CLOEXEC), what, path)
}

/// The path that names an open file descriptor to the kernel: what overlayfs options
/// and mount targets use, short and immune to symlinks in the path it was opened by.
public func procPath(_ fd: Int32) -> String { "/proc/self/fd/\(fd)" }

/// Opens `path` inside the tree at `root`, creating it (and its parents, as
/// directories) when missing: a directory, or an empty file when `directory` is false.
/// Symlinks are followed but resolved inside `root`, so an image can never make us
/// mount anything outside of it. What exists may lie in something already mounted
/// inside (a host directory shared there: mounting on it changes only this mount
/// namespace); what is created is created in `root`'s own file system only, never in
/// a shared host directory that a symlink of the image or a --bind destination leads to.
public func openOrCreate(_ path: String, in root: Int32, directory: Bool) throws -> Int32 {
    let fd = plash_open_in_root(root, path, plash_O_PATH | O_CLOEXEC, 0)
    if fd >= 0 { return fd }
    guard errno == ENOENT else { throw PlashError.system("open mount point", path) }
    return try create(path, in: root, directory: directory)
}

func create(_ path: String, in root: Int32, directory: Bool) throws -> Int32 {
    let (parentPath, name) = splitLast(path)
    var parent = plash_open_in_mount(root, parentPath, plash_O_PATH | O_DIRECTORY | O_CLOEXEC)
    if parent == -1 && errno == ENOENT {
        close(try create(parentPath, in: root, directory: true))
        parent = plash_open_in_mount(root, parentPath, plash_O_PATH | O_DIRECTORY | O_CLOEXEC)
    }
    if parent == -1 && errno == EXDEV {
        throw PlashError(kind: .failure, step: "create mount point", path: path,
                         reason: "\(parentPath) leads out of the image into a directory shared with the host")
    }
    try check(parent, "open mount point", parentPath)
    defer { close(parent) }
    // What is left at `name` is nothing or a dangling symlink (an image's
    // resolv.conf -> /run/...): replace it in the writable layer.
    if unlinkat(parent, name, 0) == -1 && errno != ENOENT {
        throw PlashError.system("replace dangling symlink", path)
    }
    if directory {
        try check(mkdirat(parent, name, 0o755), "create mount point", path)
    } else {
        close(try check(openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644),
                        "create mount point", path))
    }
    return try check(openat(parent, name, plash_O_PATH | O_NOFOLLOW | O_CLOEXEC), "open mount point", path)
}

/// True when `path` exists inside the tree at `root`.
public func exists(_ path: String, in root: Int32) -> Bool {
    let fd = plash_open_in_root(root, path, plash_O_PATH | O_CLOEXEC, 0)
    if fd < 0 { return false }
    close(fd)
    return true
}

public func isDirectory(_ path: String, what: Step) throws -> Bool {
    var info = stat()
    try check(stat(path, &info), what, path)
    return (info.st_mode & S_IFMT) == S_IFDIR
}

/// "/a/b/c" -> ("/a/b", "c"); "/a" -> ("/", "a").
public func splitLast(_ path: String) -> (String, String) {
    let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
    guard let slash = trimmed.lastIndex(of: "/") else { return (".", trimmed) }
    let parent = trimmed[..<slash]
    return (parent.isEmpty ? "/" : String(parent), String(trimmed[trimmed.index(after: slash)...]))
}

/// True when `path` is `directory` or lies below it (by path components, not by prefix).
public func isPath(_ path: String, within directory: String) -> Bool {
    if directory == "/" { return true }
    let dir = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    return path == dir || path.hasPrefix(dir + "/")
}

/// The current working directory as the kernel knows it, or nil when it was deleted
/// or cannot be named.
public func currentDirectory() -> String? {
    guard let buffer = getcwd(nil, 0) else { return nil }
    defer { free(buffer) }
    let path = String(cString: buffer)
    return path.hasPrefix("/") ? path : nil
}

public func writeFile(_ path: String, _ contents: String) throws {
    let fd = try check(open(path, O_WRONLY | O_CLOEXEC), "open", path)
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if written != bytes.count { throw PlashError.system("write", path) }
}

/// Writes one line to stderr, unbuffered: the process may exec or exit right after.
public func printLine(toStandardError line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

/// The whole contents of a file.
/// `limit` (bytes) bounds what is read of a file that may not end: a profile or a
/// counter that is /dev/zero, or a link to it, fails instead of filling the memory.
public func readFile(_ path: String, what: Step, limit: Int = Int.max) throws -> [UInt8] {
    let fd = try check(open(path, O_RDONLY | O_CLOEXEC), what, path)
    defer { close(fd) }
    return try readAll(fd, path: path, what: what, limit: limit)
}

/// The rest of an open file, `path` naming it in errors; `limit` as for readFile.
public func readAll(_ fd: Int32, path: String, what: Step, limit: Int = Int.max) throws -> [UInt8] {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16384)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count == 0 { return data }
        if count < 0 {
            if errno == EINTR { continue }
            throw PlashError.system(what, path)
        }
        data += buffer[0..<count]
        if data.count > limit {
            let size = limit % (1 << 20) == 0 ? "\(limit >> 20) MiB" : "\(limit) bytes"
            throw PlashError.failure("\(what) \(path): larger than \(size)")
        }
    }
}

/// Where a symlink points, or nil.
public func readLink(_ path: String) -> String? {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
    let count = buffer.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count - 1) }
    guard count > 0 else { return nil }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}

/// The names in a directory (without . and ..); `directoriesOnly` keeps subdirectories.
public func directoryEntries(_ path: String, directoriesOnly: Bool = false) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        if directoriesOnly && entry.pointee.d_type != UInt8(DT_DIR) { continue }
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
