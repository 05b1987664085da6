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
    guard errno == ENOENT else { throw PlashError.system("open mount point", path).needing(.openat2) }
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
    try check(parent, "open mount point", parentPath, needs: .openat2)
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
/// or cannot be named (as text: a name that is not UTF-8 would name another directory).
public func currentDirectory() -> String? {
    guard let buffer = getcwd(nil, 0) else { return nil }
    defer { free(buffer) }
    guard let path = String(validatingCString: buffer) else { return nil }
    return path.hasPrefix("/") ? path : nil
}

public func writeFile(_ path: String, _ contents: String) throws {
    let fd = try check(open(path, O_WRONLY | O_CLOEXEC), "open", path)
    defer { close(fd) }
    let bytes = Array(contents.utf8)
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if written != bytes.count { throw PlashError.system("write", path) }
}

public func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw PlashError.system("write", path)
        }
        offset += n
    }
}

/// A file in memory holding `bytes`, to be read from its start (close-on-exec): how
/// what is too long for an argument, or was read from a pipe that reads only once,
/// reaches a child as its stdin or as /proc/self/fd/N.
public func memoryFile(_ name: String, _ bytes: [UInt8]) throws -> Int32 {
    let fd = try check(plash_memfd(name), "create memory file for", name, needs: .memfdCreate)
    do {
        try writeAll(fd, bytes, path: name)
        if lseek(fd, 0, SEEK_SET) == -1 { throw PlashError.system("seek", name) }
    } catch {
        close(fd)
        throw error
    }
    return fd
}

/// The command line after the program's name, each argument checked to be UTF-8. A
/// Swift string would carry any other byte as U+FFFD: a file named so would be another
/// file (an export written beside the one named), a command another command. Refused,
/// naming the argument, rather than changed.
public func commandLineArguments() throws -> [String] {
    try (1..<Int(CommandLine.argc)).map { index in
        let pointer = CommandLine.unsafeArgv[index]!
        guard let argument = String(validatingCString: pointer) else {
            let shown = String(decoding: UnsafeRawBufferPointer(start: pointer, count: strlen(pointer)), as: UTF8.self)
            throw PlashError.usage("argument \(index) (\(shown)): not UTF-8 (names and commands are taken as UTF-8 text)")
        }
        return argument
    }
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
    let fd = try openToRead(path, what: what)
    defer { close(fd) }
    return try readAll(fd, path: path, what: what, limit: limit)
}

/// Opens a file to read without waiting: open(2) of a FIFO waits for a writer, forever
/// when there is none (a FIFO planted as the store's counter, a profile, a Plashfile).
/// A FIFO or a pipe then reads as usual, to its end, which comes at once when nobody
/// writes. `flags` are added to O_RDONLY (O_NOFOLLOW).
public func openToRead(_ path: String, what: Step, flags: Int32 = 0) throws -> Int32 {
    let fd = try check(open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | flags), what, path)
    // Reads wait for a writer's data again, as they would after a plain open.
    if fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1 {
        let code = errno
        close(fd)
        throw PlashError.system(what, path, errno: code)
    }
    return fd
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

/// The names in the open directory `fd` (without . and ..), as bytes, in byte order:
/// names need not be UTF-8, and decoded as text two names could become one.
public func directoryNames(_ fd: Int32, path: String) throws -> [[UInt8]] {
    let copy = try check(dup(fd), "read directory", path)
    guard let dir = fdopendir(copy) else {
        let code = errno
        close(copy)
        throw PlashError.system("read directory", path, errno: code)
    }
    defer { closedir(dir) }
    var names: [[UInt8]] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
        if name != [UInt8(ascii: ".")] && name != [UInt8(ascii: "."), UInt8(ascii: ".")] { names.append(name) }
    }
    return names.sorted { $0.lexicographicallyPrecedes($1) }
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
