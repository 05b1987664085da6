#if canImport(Glibc)
import Glibc
#endif
import CArchive
import PlashSystem

/// Flat layers, so that an overlay of an image stacks at most StoreLayout.flatEvery
/// layers however deep the image is. Overlayfs works for every lower layer at each
/// mount (a private clone of its mount, a trap inode, a check of its ancestry), and each
/// name a start looks up in the overlay's root is looked up in every layer: a 500-layer
/// image started 3.7 times slower than a 1-layer one. So every flatEvery-th layer of an
/// image has, beside files/ID, files/ID.flat: the image's files as an overlay of all
/// its layers shows them, made of hard links to the layers' own files and of
/// directories made anew with their owners, modes, xattrs and times. An image mounts
/// its layers down to the nearest one with a flat copy, and that copy for the rest
/// (StoreLayout.mountedLayers).
///
/// It is made before the layer is published, in its staging directory, from the new
/// layer and the layers its parent mounts: it appears with the image, in the same
/// commit, or not at all. When it cannot be made as the kernel would merge the layers
/// (a redirect or a metacopy file, which plash's overlays never write; a file whose
/// owner this user namespace does not map; a file at the file system's most links),
/// the image has none and mounts every layer, as before; plash says so in one line.
func makeFlatLayer(_ staging: Staging, parentNode: String, layout: StoreLayout) {
    let depth = layout.depth(ofNode: parentNode) + 1
    guard depth % StoreLayout.flatEvery == 0 else { return }
    let below = layout.mountedLayers(of: parentNode)
    // Images of an older plash's store keep their files in their nodes: only layers in files/.
    guard below.allSatisfy({ $0.hasPrefix(layout.files + "/") }) else { return }
    let flat = StoreLayout.flat(ofNode: staging.path)
    do {
        if geteuid() == 0 {
            try flatten([staging.data] + below, into: flat, userxattr: !inFirstUserNamespace())
        } else {
            // The layers' owners are the user's subordinate ids: only root of the user's
            // own user namespace may link their files and give the directories their owners.
            try asRootOfOwnUserNamespace { try flatten([staging.data] + below, into: flat, userxattr: true) }
        }
    } catch {
        try? removeTree(flat)
        printLine(toStandardError: "plash: layer \(depth) has no flat copy, its image mounts all its layers: \(error)")
    }
}

/// Merges the directories `layers` (top first) into a new directory `target`, as an
/// overlay of them shows them: the topmost entry of each name; none for a whiteout; a
/// directory's entries from it and from the directories of its name below it, down to
/// an opaque one, a whiteout or anything else of its name. `userxattr`: the overlay
/// reads user.overlay.* (an ordinary user's, in a user namespace), else trusted.overlay.*.
func flatten(_ layers: [String], into target: String, userxattr: Bool) throws {
    // One descriptor per merged directory on the way down: raised for deep trees of many layers.
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    let previous = limit
    limit.rlim_cur = limit.rlim_max
    setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    defer { var restored = previous; setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &restored) }

    let merge = LayerMerge(overlay: userxattr ? "user.overlay." : "trusted.overlay.")
    var sources: [LayerMerge.Directory] = []
    defer { sources.forEach { close($0.fd) } }
    for layer in layers {
        sources.append(LayerMerge.Directory(fd: try check(open(layer, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", layer),
                                            path: Array(layer.utf8)))
    }
    try check(mkdir(target, 0o700), "create", target)
    let root = try check(open(target, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open", target)
    defer { close(root) }
    // Every layer's root is merged: overlayfs stacks the roots whatever marks they carry.
    try merge.merge(sources, into: root)
    try merge.copyAttributes(of: sources[0], to: root)
}

struct LayerMerge {
    /// `trusted.overlay.` or `user.overlay.`: the xattrs the image's overlay reads.
    let overlay: String

    /// An open directory of a layer, and its path for messages and for xattrs of the
    /// files in it (no *at call reads those).
    struct Directory {
        let fd: Int32
        let path: [UInt8]
        var shown: String { String(decoding: path, as: UTF8.self) }
        func child(_ name: [UInt8]) -> [UInt8] { path + [UInt8(ascii: "/")] + name }
    }

    func merge(_ sources: [Directory], into target: Int32) throws {
        var seen = Set<[UInt8]>()
        for (index, source) in sources.enumerated() {
            for name in try directoryNames(source.fd, path: source.shown) where seen.insert(name).inserted {
                let cName = cString(name)
                let shown = String(decoding: source.child(name), as: UTF8.self)
                var info = stat()
                try check(fstatat(source.fd, cName, &info, AT_SYMLINK_NOFOLLOW), "stat", shown)
                switch info.st_mode & S_IFMT {
                case S_IFCHR where info.st_rdev == 0:
                    continue   // a whiteout: the name is gone from here down
                case S_IFDIR:
                    var merged = [try openDirectory(in: source, name)]
                    defer { merged.forEach { close($0.fd) } }
                    var lower = index + 1
                    while lower < sources.count, try !isOpaque(merged[merged.count - 1]) {
                        var below = stat()
                        if fstatat(sources[lower].fd, cName, &below, AT_SYMLINK_NOFOLLOW) == 0 {
                            // A whiteout or anything but a directory hides the rest below.
                            guard below.st_mode & S_IFMT == S_IFDIR else { break }
                            merged.append(try openDirectory(in: sources[lower], name))
                        } else if errno != ENOENT {
                            throw PlashError.system("stat", String(decoding: sources[lower].child(name), as: UTF8.self))
                        }
                        lower += 1
                    }
                    try check(mkdirat(target, cName, 0o700), "create", shown)
                    let made = try check(openat(target, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), "open", shown)
                    defer { close(made) }
                    try merge(merged, into: made)
                    try copyAttributes(of: merged[0], to: made)
                case S_IFREG:
                    try refuseOverlayMarks(source.child(name))
                    fallthrough
                default:
                    try check(linkat(source.fd, cName, target, cName, 0), "link", shown)
                }
            }
        }
    }

    func openDirectory(in parent: Directory, _ name: [UInt8]) throws -> Directory {
        let path = parent.child(name)
        let fd = try check(openat(parent.fd, cString(name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                           "open", String(decoding: path, as: UTF8.self))
        return Directory(fd: fd, path: path)
    }

    /// Whether the directory hides those of its name below it. A redirect (a directory
    /// renamed by an overlay with redirect_dir=on) is refused: its entries come from a
    /// path elsewhere in the layers below.
    func isOpaque(_ directory: Directory) throws -> Bool {
        var opaque = false
        for name in xattrNames(fd: directory.fd) where name.hasPrefix(overlay) {
            switch name.dropFirst(overlay.count) {
            case "opaque":
                var value = [UInt8](repeating: 0, count: 8)
                let size = fgetxattr(directory.fd, name, &value, value.count)
                // "x" (Linux 6.7): a directory that holds whiteouts in xattrs, which this merge does not read.
                guard size == 1 && value[0] == UInt8(ascii: "y") else {
                    throw PlashError.failure("\(directory.shown): an overlay mark (\(name)) this merge does not read")
                }
                opaque = true
            case "redirect":
                throw PlashError.failure("\(directory.shown): an overlay mark (\(name)) this merge does not read")
            default:
                break   // origin, impure, uuid: nothing of what the overlay shows
            }
        }
        return opaque
    }

    /// A metacopy file (its data in a lower layer) or a whiteout in an xattr: their
    /// contents are not what a link to them shows.
    func refuseOverlayMarks(_ path: [UInt8]) throws {
        for name in xattrNames(path: path) where name.hasPrefix(overlay) {
            let mark = name.dropFirst(overlay.count)
            if mark == "metacopy" || mark == "whiteout" || mark == "redirect" {
                throw PlashError.failure("\(String(decoding: path, as: UTF8.self)): an overlay mark (\(name)) this merge does not read")
            }
        }
    }

    /// Owner, then mode (a chown clears set-id bits), then xattrs but the overlay's
    /// own, then times (made last: every entry made in the directory changed them).
    func copyAttributes(of source: Directory, to target: Int32) throws {
        var info = stat()
        try check(fstat(source.fd, &info), "stat", source.shown)
        try check(fchown(target, info.st_uid, info.st_gid), "chown", source.shown)
        try check(fchmod(target, info.st_mode & 0o7777), "chmod", source.shown)
        for name in xattrNames(fd: source.fd) where !name.hasPrefix("trusted.overlay.") && !name.hasPrefix("user.overlay.") {
            var value = [UInt8](repeating: 0, count: 65536)
            let size = fgetxattr(source.fd, name, &value, value.count)
            guard size >= 0 else { throw PlashError.system("read xattr \(name) of", source.shown) }
            try check(fsetxattr(target, name, value, size, 0), "set xattr \(name) on", source.shown)
        }
        let times = [info.st_atim, info.st_mtim]
        try check(futimens(target, times), "set times of", source.shown)
    }

    func xattrNames(fd: Int32) -> [String] {
        names { flistxattr(fd, $0, $1) }
    }

    func xattrNames(path: [UInt8]) -> [String] {
        let cPath = cString(path)
        return names { llistxattr(cPath, $0, $1) }
    }

    /// Asked for the size first: most files have no xattrs, and that is one call.
    private func names(_ list: (UnsafeMutablePointer<CChar>?, Int) -> Int) -> [String] {
        let size = list(nil, 0)
        guard size > 0 else { return [] }
        var buffer = [CChar](repeating: 0, count: size + 256)
        let length = buffer.withUnsafeMutableBufferPointer { list($0.baseAddress, $0.count) }
        guard length > 0 else { return [] }
        return buffer[0..<length].split(separator: 0).map { String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
    }

    func cString(_ bytes: [UInt8]) -> [CChar] { bytes.map { CChar(bitPattern: $0) } + [0] }
}
