#if canImport(Glibc)
import Glibc
#endif
import CArchive
import CPlashShims
import FoundationEssentials
import PlashSystem

/// The store on disk (see docs/architecture.md):
///
///     layer/0/1/2/        image 2's node, a layer on top of image 1 (StoreLayout)
///     layer/0/1/2/_data -> ../../../../files/2
///     files/2/            image 2's files
///     files/32.flat/      image 32's files merged with all below it (FlatLayer.swift)
///     layer/0/1/2/_script the script that built it (for `plash ls`)
///     layer/0/1/2/_blob   the blob it is exported as, and _blob.json (LayerBlob.swift)
///     layer/0/1/2/_config.json, _config.exec   the image's config (ImageConfig.swift)
///     index/2 -> ../layer/0/1/2
///     index/0 -> ../layer/0   the empty root, as the original's; no image
///     map/NAME -> ../index/2
///     cache/KEY -> ../index/2
///     tmp/                staging; each entry is flock'ed by the process using it
///     counter             the last id handed out (not reused until a purge)
///     lock                flock'ed while ids are handed out, layers renamed or removed
///     plash-store         what makes the directory a store (checkIsStore): nothing is
///                         deleted in a directory without it
///
/// Images are found with readlink only, like plash-exec does.
public struct Store: Sendable {
    public let path: String

    public init(path: String = dataDirectory()) {
        // Absolute, so node paths stay valid for builds that run in another directory.
        self.path = absolutePath(path)
    }

    public var rootNode: String { layout.rootNode }
    public var tmp: String { layout.tmp }

    public var exists: Bool { access(rootNode, F_OK) == 0 && access(layout.index, F_OK) == 0 }

    /// False when there is no store yet. Throws when there is one that this user cannot
    /// read: listing or cleaning it as if it were empty would be a wrong answer; and
    /// when the directory is not recognisably a store (checkIsStore).
    public func isReadable() throws -> Bool {
        try checkIsDirectory()
        for dir in [path, layout.index, layout.map, rootNode] where access(dir, R_OK | X_OK) == -1 {
            if errno == ENOENT { continue }
            throw PlashError.system("open store", dir)
        }
        // A directory that holds other files (PLASH_DATA=$HOME by mistake) is no empty
        // store: ls, clean or purge answering for it would say what is not so.
        if exists || !isStore { try checkIsStore() }
        return exists
    }

    /// The file that makes a directory a store, written first when plash creates one.
    /// PLASH_DATA may name any directory ($HOME by mistake, `/` in a chroot): plash
    /// creates a store only in a new or empty directory, and deletes nothing (rm, shrink,
    /// purge, clean, staging) in one without this file.
    public var marker: String { layout.marker }

    /// What plash puts at the top of a store: a store made before the marker existed
    /// (maybe half made, or purged) is recognised by holding nothing else.
    var storeEntries: Set<String> { Set(layout.entries.map { splitLast($0).1 }) }

    /// Whether the directory is recognisably a store: it has the marker, or holds
    /// nothing but what plash puts in a store (a store made before the marker, or an
    /// empty directory), or is not there yet. One that cannot be listed is none.
    public var isStore: Bool {
        if access(marker, F_OK) == 0 { return true }
        guard let entries = directoryEntries(path) else { return errno == ENOENT }
        let known = storeEntries
        return entries.allSatisfy(known.contains)
    }

    /// Throws unless the directory is recognisably a store; one made before the marker
    /// gets it now, when it can be written.
    public func checkIsStore() throws {
        if access(marker, F_OK) == 0 { return }
        guard isStore else {
            throw PlashError.failure("\(path): not a plash store (no \(StoreLayout.markerName) file, and it holds other files)")
                .advising("set PLASH_DATA to a new or empty directory")
        }
        // An empty directory is nobody's data yet; a read-only store stays recognised
        // by its shape.
        try? writeText(marker, "plash store\n")
    }

    /// A store path that names a file: access() would call it EACCES (no x bit) for root.
    func checkIsDirectory() throws {
        var info = stat()
        if stat(path, &info) == 0 && (info.st_mode & S_IFMT) != S_IFDIR {
            throw PlashError.system("open store", path, errno: ENOTDIR)
        }
    }

    /// Creates the store's directories; harmless when they exist. The store itself is
    /// private (0700): nobody else reaches another user's, or root's, images. The root
    /// node and index/, which `exists` looks for, come last: a command started meanwhile
    /// creates the store too rather than finding it without tmp/ for its locks.
    public func create() throws {
        try makeDirectories(splitLast(path).0, step: "create store")
        if mkdir(path, 0o700) == -1 && errno != EEXIST { throw PlashError.system("create store", path) }
        try checkIsStore()
        try writeText(marker, "plash store\n")
        for dir in [layout.layer, layout.files, layout.map, layout.cache, tmp, layout.config, rootNode, layout.index] {
            if mkdir(dir, 0o755) == -1 && errno != EEXIST {
                throw PlashError.system("create store", dir)
            }
        }
        // The original's root container: index/0 names the empty root node. It is no
        // image (StoreLayout.node refuses id 0); scripts that list index/ see it there.
        if symlink(layout.indexTarget(ofNode: rootNode), layout.indexLink(0)) == -1 && errno != EEXIST {
            throw PlashError.system("create store", layout.indexLink(0))
        }
    }

    // MARK: images

    /// An image: its id, its node (`layer/0/1/2`) and its files (`files/2`).
    public struct Image: Equatable, Sendable {
        public var id: Int
        public var node: String
        public var data: String
    }

    /// An id names `index/ID`, anything else `map/NAME` (StoreLayout: the same rules
    /// as plash-exec's).
    public func image(_ name: String) throws -> Image {
        if let invalid = StoreLayout.invalidReference(name) { throw PlashError.failure(invalid) }
        guard let image = lookup(name) else {
            // A store this user cannot read is not one without the image.
            try checkIsDirectory()
            for dir in [path, layout.index, layout.map] where access(dir, X_OK) == -1 && errno != ENOENT {
                throw PlashError.system("open store", dir)
            }
            throw PlashError.failure("no image \(name)")
        }
        return image
    }

    public var layout: StoreLayout { StoreLayout(path: path) }

    public func lookup(_ name: String) -> Image? {
        layout.resolve(name).map { Image(id: $0.id, node: $0.node, data: layout.data(id: $0.id, node: $0.node)) }
    }

    public func lookup(id: Int) -> Image? {
        // Only a node of layer/, ending in the image's own id (StoreLayout): a link that
        // leads anywhere else (`..`, another image's data) would make rm or clean remove
        // the wrong files.
        layout.node(id: id).map { Image(id: id, node: $0, data: layout.data(id: id, node: $0)) }
    }

    /// The image's layer directories, top first.
    public func layers(of image: Image) -> [String] { layout.layers(of: image.node) }

    /// The image and every image below it, top first: one for each of its layers.
    public func stack(of image: Image) -> [Image] {
        layout.stack(of: image.node).map { Image(id: $0.id, node: $0.node, data: layout.data(id: $0.id, node: $0.node)) }
    }

    /// How many layers the image has.
    public func depth(of image: Image) -> Int { layout.depth(ofNode: image.node) }

    /// The id of the image below, 0 for an image on the empty root.
    public func parent(of image: Image) -> Int {
        Int(splitLast(splitLast(image.node).0).1) ?? 0
    }

    public func parentNode(of image: Image) -> String { splitLast(image.node).0 }

    /// Every image, by id.
    public func images() -> [Image] {
        let ids = ((try? FileManager.default.contentsOfDirectory(atPath: layout.index)) ?? []).compactMap { StoreLayout.id($0) }
        return ids.sorted().compactMap { lookup(id: $0) }
    }

    /// NAME -> id for every name that points at an image.
    public func names() -> [(name: String, id: Int)] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: layout.map)) ?? []
        return entries.sorted().compactMap { name in lookup(name).map { (name, $0.id) } }
    }

    // MARK: names

    public func map(_ name: String, to image: Image) throws {
        try checkName(name)
        try replaceLink(layout.mapLink(name), target: StoreLayout.indexTarget(image.id))
    }

    public func unmap(_ name: String, missingIsFine: Bool = false) throws {
        try checkName(name)
        if unlink(layout.mapLink(name)) == -1 {
            if errno == ENOENT { if missingIsFine { return }; throw PlashError.failure("no name \(name)") }
            throw PlashError.system("remove name", name)
        }
    }

    public func checkName(_ name: String) throws {
        // Whitespace and control characters would break the lines and columns of ls and ps.
        let unprintable = name.unicodeScalars.contains {
            $0.properties.isWhitespace || $0.value < 0x20 || (0x7f...0x9f).contains($0.value)
        }
        guard !name.isEmpty, !name.contains("/"), name != ".", name != "..", !name.hasPrefix("-"),
              !name.hasPrefix("."), !name.allSatisfy(\.isASCIIDigit), !unprintable else {
            throw PlashError.failure("\(unprintable ? name.debugDescription : name): not a valid name "
                                     + "(no '/', whitespace or control characters, not only digits, not starting with '-' or '.')")
        }
    }

    // MARK: the build cache

    /// The image a cache key names, when it still exists.
    public func cached(_ key: String) -> Image? {
        guard let target = readLink(layout.cacheLink(key)), let id = StoreLayout.id(ofIndexTarget: target) else { return nil }
        return lookup(id: id)
    }

    /// Points `key` at an image that exists: a resolved reference (`alpine:3.23`) at
    /// the import it resolved to.
    public func remember(_ key: String, _ image: Image) throws {
        try replaceLink(layout.cacheLink(key), target: StoreLayout.indexTarget(image.id))
    }

    /// The lock that serialises building one cache key: two identical builds started at
    /// once build once and print the same id.
    public func lockKey(_ key: String) throws -> FileLock {
        try FileLock.acquire(tmp + "/key-" + key + ".lock")
    }

    /// The image of cache key `key`, made once. The one sequence every cached import and
    /// build step follows: cached? -> the key's lock (two identical builds started at once
    /// build once, the second waits) -> cached now? -> `make` in a fresh staging directory,
    /// which publishes it (or imports through it, a download area) -> the staging removed,
    /// whether `make` failed or left it. A failure or a kill leaves no image and no cache
    /// entry; what a kill left in tmp/ the next staging sweep removes. `refresh` makes it
    /// again though it is cached.
    public func makeOnce(_ key: String, refresh: Bool = false, staging kind: String = "import",
                         _ make: (Staging) throws -> Image) throws -> Image {
        if !refresh, let hit = cached(key) { return hit }
        let lock = try lockKey(key)
        defer { lock.releaseAndRemove() }
        if !refresh, let hit = cached(key) { return hit }
        return try withStaging(kind, make)
    }

    /// Runs `body` with a fresh staging directory, removed after it whatever happened: a
    /// publish has renamed it into layer/ by then, so what is removed is only what failed.
    public func withStaging<T>(_ kind: String, _ body: (Staging) throws -> T) throws -> T {
        let staging = try makeStaging(kind)
        defer { try? removeTree(staging.path) }
        return try body(staging)
    }

    // MARK: ids, staging, publishing

    /// Runs `body` holding the store lock: ids, renames into layer/ and removals.
    public func locked<T>(_ body: () throws -> T) throws -> T {
        let lock = try FileLock.acquire(layout.lock)
        defer { lock.release() }
        return try body()
    }

    /// The next id; call with the store lock held. The counter never goes below an id in
    /// index/, so removed ids are not reused (until purge starts the store over).
    func allocateID() throws -> Int {
        let id = try lastID() + 1
        try writeCounter(id)
        return id
    }

    /// The largest id handed out: the counter's, or a larger one in index/.
    func lastID() throws -> Int {
        let counter = layout.counter
        var last = 0
        if access(counter, F_OK) == 0 {
            let text = trimmed(String(decoding: try readFile(counter, what: "read the id counter", limit: 64), as: UTF8.self))
            // A counter that is not a number could hand out ids again: refuse it.
            guard let number = Int(text), number >= 0, text.allSatisfy(\.isASCIIDigit) else {
                throw PlashError.failure("id counter \(counter): not a number (\(text.prefix(40)))")
            }
            last = number
        }
        let indexed = (directoryEntries(layout.index) ?? []).compactMap { Int($0) }
        last = max(last, indexed.max() ?? 0)
        guard last < Int.max else { throw PlashError.failure("id counter \(counter): no ids left after \(last)") }
        return last
    }

    func writeCounter(_ id: Int) throws {
        let counter = layout.counter
        // Written beside and renamed, so a kill never leaves a truncated counter.
        let fresh = tmp + "/counter-\(getpid())"
        try writeText(fresh, "\(id)\n")
        try check(rename(fresh, counter), "rename", counter)
    }

    /// A fresh directory in tmp/, locked while this process uses it. With `sweep`, first
    /// removes the ones nobody holds (what killed builds and imports left), so they do
    /// not pile up until `plash clean`.
    public func makeStaging(_ kind: String, sweep: Bool = true) throws -> Staging {
        if sweep { _ = try removeStaleStaging() }
        while true {
            let dir = tmp + "/\(kind)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            if mkdir(dir, 0o755) == -1 {
                if errno == EEXIST { continue }
                if errno == ENOENT { try create(); continue }
                throw PlashError.system("create staging", dir)
            }
            // clean may lock and remove it between mkdir and here; then take another.
            guard let lock = FileLock.tryDirectory(dir), sameFile(lock: lock, path: dir) else { continue }
            return Staging(path: dir, lock: lock)
        }
    }

    /// Renames a staging directory into place as a child of `parentNode` (the new image's
    /// node), with its index link and, given a key, its cache link. Its files go to
    /// files/ID first, where nothing names them until the node's rename: that rename is
    /// the commit, and until then nothing outside tmp/ and files/ refers to the build
    /// (clean removes files/ID of no image).
    public func publish(_ staging: Staging, parentNode: String, script: String, key: String?) throws -> Image {
        try removeTree(staging.path + "/._data.plash-work")
        // What the build's overlay marked its upper layer's root with, which says nothing
        // of a lower layer: every overlay of the image reads the xattrs of each layer's
        // root at mount, and a root without any is the quicker to read (a tenth of the
        // kernel's mount of 500 layers). Its opaque marks, below, stay: they hide the
        // layers under it. A mark that will not go costs only that time.
        for prefix in ["trusted.", "user."] {
            for mark in ["overlay.uuid", "overlay.impure"] { removexattr(staging.data, prefix + mark) }
        }
        // An image built on another has its config, unless the build wrote its own; the
        // history and time are the source's, and this node is no import.
        if access(StoreLayout.config(ofNode: staging.path), F_OK) != 0, var inherited = try ImageConfig.read(node: parentNode) {
            inherited.history = nil
            inherited.created = nil
            try inherited.write(into: staging.path)
        }
        try writeText(StoreLayout.script(ofNode: staging.path), script)
        makeFlatLayer(staging, parentNode: parentNode, layout: layout)
        let flat = StoreLayout.flat(ofNode: staging.path)
        return try locked {
            guard access(StoreLayout.data(ofNode: parentNode), F_OK) == 0 || parentNode == rootNode else {
                throw PlashError.failure("the parent image was removed during the build")
            }
            let id = try allocateID()
            let node = parentNode + "/\(id)"
            let files = layout.files(of: id)
            // A store of an older plash has no files/.
            if mkdir(layout.files, 0o755) == -1 && errno != EEXIST { throw PlashError.system("create store", layout.files) }
            // The flat copy first: nothing names files/ID.flat before the node's rename either.
            if access(flat, F_OK) == 0 { try check(rename(flat, layout.flat(of: id)), "rename into place", layout.flat(of: id)) }
            do {
                try check(rename(staging.data, files), "rename into place", files)
            } catch {
                rename(layout.flat(of: id), flat)
                throw error
            }
            do {
                try check(symlink(layout.dataTarget(ofNode: node, id: id), staging.data), "symlink", staging.data)
                try check(rename(staging.path, node), "rename into place", node)
            } catch {
                unlink(staging.data)
                rename(files, staging.data)
                rename(layout.flat(of: id), flat)
                throw error
            }
            staging.lock.release()
            try replaceLink(layout.indexLink(id), target: layout.indexTarget(ofNode: node))
            if let key { try replaceLink(layout.cacheLink(key), target: StoreLayout.indexTarget(id)) }
            return Image(id: id, node: node, data: files)
        }
    }

    /// Removes images and every image built on them, and returns their ids. Their nodes
    /// leave layer/ at once (a rename into tmp/: no id of them resolves from then on),
    /// their files follow, then all is deleted.
    @discardableResult
    public func remove(_ images: [Image]) throws -> [Int] {
        try checkIsStore()
        var doomed: [Staging] = []
        var removed: [Int] = []
        try locked {
            for image in images where access(image.node, F_OK) == 0 {
                let staging = try makeStaging("rm", sweep: false)
                let ids = descendantIDs(image.node) + [image.id]
                try check(rename(image.node, staging.path + "/node"), "remove", image.node)
                for id in ids { unlink(layout.indexLink(id)) }
                for id in ids { try moveFiles(of: id, into: staging) }
                doomed.append(staging)
                removed += ids
            }
        }
        for staging in doomed { try removeTree(staging.path) }
        return removed.sorted()
    }

    /// files/ID into a staging directory being removed (a store of an older plash has none).
    func moveFiles(of id: Int, into staging: Staging) throws {
        let files = layout.files(of: id), flat = layout.flat(of: id)
        if rename(files, staging.path + "/files-\(id)") == -1 && errno != ENOENT { throw PlashError.system("remove", files) }
        if rename(flat, staging.path + "/flat-\(id)") == -1 && errno != ENOENT { throw PlashError.system("remove", flat) }
    }

    /// Ids of every node below `node` (its child nodes are the directories named by digits).
    func descendantIDs(_ node: String) -> [Int] {
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: node)) ?? []).filter {
            !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit)
        }
        return children.flatMap { child in descendantIDs(node + "/" + child) + (Int(child).map { [$0] } ?? []) }
    }

    // MARK: maintenance

    /// Removes the directories in tmp/ that no process holds a lock on. Returns how many
    /// went, and why others could not (a process may still write into one).
    func removeStaleStaging() throws -> (removed: Int, failures: [String]) {
        try checkIsStore()
        var removed = 0
        var failures: [String] = []
        for entry in directoryEntries(tmp) ?? [] {
            let full = tmp + "/" + entry
            var info = stat()
            guard lstat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR,
                  let lock = FileLock.tryDirectory(full) else { continue }
            defer { lock.release() }
            do {
                try removeTree(full)
                removed += 1
            } catch {
                failures.append("\(error)")
            }
        }
        return (removed, failures)
    }

    /// What `clean` removes; the original's `--clean-tmp`, `--clean-cache-keys` and
    /// `--clean-index` name one part each.
    public struct CleanParts: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        /// What killed processes left in tmp/.
        public static let tmp = CleanParts(rawValue: 1)
        /// Names and cache keys of removed images.
        public static let keys = CleanParts(rawValue: 2)
        /// Index links to nothing, and nodes no index link names.
        public static let index = CleanParts(rawValue: 4)
        public static let all: CleanParts = [.tmp, .keys, .index]
    }

    /// Removes what killed processes left in tmp/ (entries nobody holds a lock on),
    /// names and cache keys that point at removed images, index links to nothing, and
    /// nodes no index link names. Returns how many entries went. What it cannot remove
    /// does not stop it: it carries on, then fails naming all of it in one line.
    @discardableResult
    public func clean(_ parts: CleanParts = .all) throws -> Int {
        try checkIsStore()
        var (removed, failures) = parts.contains(.tmp) ? try removeStaleStaging() : (0, [])
        let fm = FileManager.default
        for entry in (try? fm.contentsOfDirectory(atPath: tmp)) ?? [] where parts.contains(.tmp) {
            let full = tmp + "/" + entry
            if entry.hasSuffix(".lock") {
                guard let lock = FileLock.tryFile(full) else { continue }
                unlink(full)
                lock.release()
            } else if entry.hasPrefix("counter-"), let pid = Int32(entry.dropFirst(8)), kill(pid, 0) == -1, errno == ESRCH {
                unlink(full)
                removed += 1
            }
        }
        for dir in [layout.map, layout.cache] where parts.contains(.keys) {
            for entry in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
                let link = dir + "/" + entry
                let alive = readLink(link).flatMap(StoreLayout.id(ofIndexTarget:)).flatMap { lookup(id: $0) } != nil
                if !alive, unlink(link) == 0 { removed += 1 }
            }
        }
        // Push hints (BlobSources in Push.swift) of blobs no layer keeps any more: they
        // went with their images, and a hint of them would only lead a push astray.
        if parts.contains(.keys) {
            let kept = Set(images().compactMap { try? readLayerBlob($0.node)?.digest })
            let sources = layout.blobSources
            for host in directoryEntries(sources, directoriesOnly: true) ?? [] {
                for digest in directoryEntries(sources + "/" + host) ?? [] where !kept.contains(digest) {
                    if unlink(sources + "/" + host + "/" + digest) == 0 { removed += 1 }
                }
                rmdir(sources + "/" + host)
            }
        }
        if parts.contains(.index) { try locked {
            let indexed = Set(images().map(\.node))
            for entry in (try? fm.contentsOfDirectory(atPath: layout.index)) ?? [] {
                if let id = Int(entry), id != 0, lookup(id: id) == nil, unlink(layout.index + "/" + entry) == 0 { removed += 1 }
            }
            var stray: [String] = []
            func walk(_ node: String) {
                for child in (try? fm.contentsOfDirectory(atPath: node)) ?? [] where child.allSatisfy(\.isASCIIDigit) {
                    let childNode = node + "/" + child
                    if indexed.contains(childNode) { walk(childNode) } else { stray.append(childNode) }
                }
            }
            walk(rootNode)
            // Files of no image: what a crash between a node's removal and its files' left.
            let ids = Set(indexed.compactMap { StoreLayout.id(ofNode: $0) })
            for entry in directoryEntries(layout.files) ?? []
                where !((StoreLayout.id(entry) ?? StoreLayout.id(ofFlat: entry)).map(ids.contains) ?? false) {
                stray.append(layout.files + "/" + entry)
            }
            for node in stray {
                do {
                    let staging = try makeStaging("rm", sweep: false)
                    try check(rename(node, staging.path + "/node"), "remove", node)
                    try removeTree(staging.path)
                    removed += 1
                } catch {
                    failures.append("\(error)")
                }
            }
        } }
        if !failures.isEmpty {
            throw PlashError.failure("clean: could not remove everything: " + failures.joined(separator: "; "))
        }
        return removed
    }

    /// Removes the cgroups that containers of this store made (recordCgroup) and no
    /// process uses any more, and their records.
    public func removeEmptyCgroups(_ hierarchy: CgroupHierarchy) throws {
        try checkIsStore()
        removeEmptyRecordedCgroups(store: layout, hierarchy: hierarchy)
    }

    /// Removes everything in the store's directory, as the original's purge did (the
    /// directory stays: it may be a mount point), and returns the ids of the images. Ids
    /// then start at 1 again, unless `keepingCounter`: while containers of the store
    /// still run, a new image must not take an id that ps and kill show for them.
    @discardableResult
    public func purge(keepingCounter: Bool = false) throws -> [Int] {
        try checkIsStore()
        return try locked {
            let ids = images().map(\.id)
            if keepingCounter { try writeCounter(try lastID()) }
            // Links first: from here on no id or name resolves, however far removal gets.
            for dir in [layout.index, layout.map, layout.cache] {
                for entry in directoryEntries(dir) ?? [] { unlink(dir + "/" + entry) }
            }
            var failures: [String] = []
            // While containers run, the store stays one: its marker, its counter and the
            // records of their cgroups, which clean removes once they are empty. Else the
            // directory ends empty, which any plash may make a store again.
            let kept = [layout.lock] + (keepingCounter ? [layout.counter, layout.marker, layout.cgroups] : [])
            for entry in directoryEntries(path) ?? [] where !kept.contains(path + "/" + entry) {
                do { try removeTree(path + "/" + entry) } catch { failures.append("\(error)") }
            }
            guard failures.isEmpty else {
                throw PlashError.failure("purge: could not remove everything: " + failures.joined(separator: "; "))
            }
            // Last, still held: whoever waits for it finds no store and makes a new one.
            unlink(layout.lock)
            return ids
        }
    }
}

/// A directory in tmp/ and the lock that marks it as in use.
public struct Staging {
    public let path: String
    let lock: FileLock
    public var data: String { StoreLayout.data(ofNode: path) }
}

// MARK: file helpers

extension Character {
    var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}


func sameFile(lock: FileLock, path: String) -> Bool {
    lock.withDescriptor { fd in
        var held = stat(), named = stat()
        return fstat(fd, &held) == 0 && stat(path, &named) == 0
            && held.st_dev == named.st_dev && held.st_ino == named.st_ino
    }
}

/// Points `link` at `target`, atomically: a symlink made beside it, renamed over it.
func replaceLink(_ link: String, target: String) throws {
    let (dir, name) = splitLast(link)
    let fresh = dir + "/.\(name).\(getpid()).new"
    unlink(fresh)
    try check(symlink(target, fresh), "symlink", fresh)
    if rename(fresh, link) == -1 {
        let code = errno
        unlink(fresh)
        throw PlashError.system("rename", link, errno: code)
    }
}

func writeText(_ path: String, _ text: String) throws {
    try writeBytes(path, Array(text.utf8))
}

func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try check(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644), "create", path)
    defer { close(fd) }
    try writeAll(fd, bytes, path: path)
}

/// mkdir -p: `path` and its missing parents, mode 0755.
func makeDirectories(_ path: String, step: Step) throws {
    if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
    guard errno == ENOENT, path != "/" else { throw PlashError.system(step, path) }
    try makeDirectories(splitLast(path).0, step: step)
    if mkdir(path, 0o755) == -1 && errno != EEXIST { throw PlashError.system(step, path) }
}

/// rm -rf that stays where it starts: it never follows a symlink and never enters
/// anything mounted below `path` (a bind of a home directory, /proc, another store),
/// which it leaves as it is and names in its error. Each directory is opened from its
/// parent's descriptor, so a directory swapped for a link meanwhile leads nowhere. For
/// trees that may hold root-owned mode-000 directories (overlayfs work dirs) and files
/// without write permission.
func removeTree(_ path: String) throws {
    let (parentPath, name) = splitLast(path)
    let parent = open(parentPath, plash_O_PATH | O_DIRECTORY | O_CLOEXEC)
    if parent == -1 {
        if errno == ENOENT { return }
        throw PlashError.system("remove", path)
    }
    defer { close(parent) }
    let mount = try mountOf(parent, path: parentPath)
    try removeEntry(Array(name.utf8CString), in: parent, path: path, mount: mount)
}

/// The mount and the device that the open directory `fd` lies on.
private func mountOf(_ fd: Int32, path: String) throws -> (id: UInt64, device: UInt64) {
    var id: UInt64 = 0, device: UInt64 = 0
    try check(plash_mount_of(fd, "", &id, &device), "stat", path, needs: .statx)
    return (id, device)
}

/// Removes `name` (its bytes, as the directory holds them: an image may have names
/// that are no UTF-8) in `parent`; `path` names it in errors.
private func removeEntry(_ name: [CChar], in parent: Int32, path: String, mount: (id: UInt64, device: UInt64)) throws {
    var info = stat()
    if fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == -1 {
        if errno == ENOENT { return }
        throw PlashError.system("remove", path)
    }
    guard (info.st_mode & S_IFMT) == S_IFDIR else {
        if unlinkat(parent, name, 0) == -1 && errno != ENOENT { throw PlashError.system("remove", path) }
        return
    }
    let handle = openat(parent, name, plash_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    if handle == -1 {
        if errno == ENOENT { return }
        throw PlashError.system("remove", path)
    }
    defer { close(handle) }
    // A bind mount of the same file system has the same device, but its own mount id
    // (0 where the kernel does not tell it, before Linux 5.8: then the device decides).
    let here = try mountOf(handle, path: path)
    guard here.device == mount.device && (here.id == mount.id || here.id == 0 || mount.id == 0) else {
        throw PlashError.failure("remove \(path): something is mounted there; it was left as it is (unmount it first)")
    }
    chmod(procPath(handle), 0o700)
    let fd = try check(openat(handle, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), "remove", path)
    guard let dir = fdopendir(fd) else {
        close(fd)
        throw PlashError.system("remove", path)
    }
    defer { closedir(dir) }
    // All names first: what readdir returns after an unlink in the same directory is
    // unspecified.
    var children: [[CChar]] = []
    while let entry = readdir(dir) {
        let child = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }).map { CChar(bitPattern: $0) } }
        if child != [46] && child != [46, 46] { children.append(child + [0]) }
    }
    for child in children {
        let childPath = path + "/" + String(decoding: child.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try removeEntry(child, in: dirfd(dir), path: childPath, mount: mount)
    }
    if unlinkat(parent, name, AT_REMOVEDIR) == -1 && errno != ENOENT { throw PlashError.system("remove", path) }
}
