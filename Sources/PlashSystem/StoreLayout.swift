#if canImport(Glibc)
import Glibc
#endif

/// Where things are in a store (docs/architecture.md), and how an id or a name resolves to an
/// image, for plash and plash-exec alike:
///
///     layer/0/1/2/        image 2's node, on top of image 1: the nesting of the nodes
///                         is the images' layers, as in the original plash
///     layer/0/1/2/_data -> ../../../../files/2
///     files/2/            image 2's files. Flat, so that every layer lies at the same
///                         depth: opening layer N of a nested node walks N directories,
///                         and overlayfs checks each layer's ancestry at mount, both
///                         growing with the square of the depth
///     files/32.flat/     image 32's files merged with all below it (FlatLayer.swift):
///                         every 32nd layer has one, and an overlay stacks the layers
///                         above the nearest one and it, never more than 32
///     layer/0/1/2/_blob   the blob it leaves the store as (PlashKit's LayerBlob.swift;
///                         plash-exec never reads it)
///     layer/0/1/2/_config.exec  what image 2's config says of how it runs (RunConfig),
///                         beside _config.json, which plash-exec never reads
///     index/2 -> ../layer/0/1/2
///     map/NAME -> ../index/2
///
/// A store of an older plash has its files in the node (`_data` a directory, no
/// files/ID); both are read. An image's layers are found from the text of its index
/// link, its files with one path each: with readlink and string work only, and a link
/// is trusted only when it has exactly that shape: a link that leads anywhere else
/// names no image.
public struct StoreLayout: Sendable, Equatable {
    public let path: String

    public init(path: String) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public var layer: String { path + "/layer" }
    public var rootNode: String { layer + "/0" }
    public var files: String { path + "/files" }
    public func files(of id: Int) -> String { files + "/\(id)" }
    /// files/ID.flat: image ID's files merged with those of every image below it.
    public func flat(of id: Int) -> String { files + "/\(id).flat" }
    /// How often an image's layers have a flat copy: the most layers an overlay stacks.
    public static let flatEvery = 32
    public var index: String { path + "/index" }
    public var map: String { path + "/map" }
    /// cache/KEY -> ../index/ID: a build's or an import's cache key.
    public var cache: String { path + "/cache" }
    public func cacheLink(_ key: String) -> String { cache + "/" + key }
    /// Staging of builds, imports and removals, each with its lock; plash-exec lets a
    /// --persist directory lie only here.
    public var tmp: String { path + "/tmp" }
    public var config: String { path + "/config" }
    /// Compiled seccomp filters, by the key of their profile (seccompIndexPath).
    public var seccomp: String { path + "/seccomp" }
    /// Where pushed blobs came from, for cross-repository mounts (Push.swift).
    public var blobSources: String { path + "/blob-sources" }
    /// The store's lock (Store.locked) and its id counter.
    public var lock: String { path + "/lock" }
    public var counter: String { path + "/counter" }
    /// What makes a directory a store (Store.checkIsStore): written first when a store
    /// is made; nothing is deleted in a directory without it.
    public var marker: String { path + "/" + StoreLayout.markerName }
    public static let markerName = "plash-store"
    /// cgroups/NAME: the cgroup plash/NAME was made for a container of this store
    /// (recordCgroup); `plash clean` removes only those.
    public var cgroups: String { path + "/cgroups" }
    /// Everything plash puts at the top of a store.
    public var entries: [String] {
        [marker, layer, files, index, map, cache, tmp, config, counter, lock, blobSources, cgroups, seccomp]
    }
    public func indexLink(_ id: Int) -> String { index + "/\(id)" }
    public func mapLink(_ name: String) -> String { map + "/" + name }

    /// `../index/ID`: what a name's link and a cache key's link hold.
    public static func indexTarget(_ id: Int) -> String { "../index/\(id)" }

    /// The id in a link's text of exactly the shape indexTarget writes, or nil.
    public static func id(ofIndexTarget target: String) -> Int? {
        target.hasPrefix("../index/") ? id(String(target.dropFirst("../index/".count))) : nil
    }

    /// What index/ID holds for image ID's `node`: `../layer/0/1/2`.
    public func indexTarget(ofNode node: String) -> String { "../" + node.dropFirst(path.count + 1) }

    /// What the `_data` link of image `id`'s `node` holds: files/ID from the node,
    /// `../../../../files/2` for layer/0/1/2.
    public func dataTarget(ofNode node: String, id: Int) -> String {
        String(repeating: "../", count: node.dropFirst(path.count + 1).split(separator: "/").count) + "files/\(id)"
    }

    /// In a node: `_data`, its files (a link to files/ID, or themselves in a store of an
    /// older plash), and `_script`, the build script `plash ls` shows.
    public static func data(ofNode node: String) -> String { node + "/_data" }
    public static func script(ofNode node: String) -> String { node + "/_script" }
    /// `_config.json` (the image's OCI config) and `_config.exec` (what plash-exec reads of
    /// it), written before the node is published; `_blob` and `_blob.json`, the layer's
    /// blob and its descriptor, when it has one (PlashKit's LayerBlob.swift).
    public static func config(ofNode node: String) -> String { node + "/_config.json" }
    public static func execConfig(ofNode node: String) -> String { node + "/_config.exec" }
    public static func blob(ofNode node: String) -> String { node + "/_blob" }
    public static func blobDescriptor(ofNode node: String) -> String { node + "/_blob.json" }

    /// The most layers an image may have: overlayfs stacks at most 500 lower layers.
    public static let maximumDepth = 500

    /// Why an image of `depth` layers cannot be made, or nil: refused before a build or
    /// an import writes anything.
    public static func tooDeep(_ depth: Int) -> String? {
        depth <= maximumDepth ? nil : "\(depth) layers: an image has at most \(maximumDepth) (overlayfs stacks no more)"
    }

    /// An id as plash writes it: decimal digits without a leading zero ("2", never
    /// "02"), so that every spelling of an image is the same file in index/.
    public static func id(_ text: String) -> Int? {
        guard let first = text.utf8.first, text.utf8.count <= 18,
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              first != UInt8(ascii: "0") || text == "0" else { return nil }
        return Int(text)
    }

    /// Why `text` cannot name an image, or nil when it can: an id, or a name that
    /// `plash map` could have given.
    public static func invalidReference(_ text: String) -> String? {
        if text.isEmpty || text.contains("/") || text == "." || text == ".." {
            return "\(text): not an image id or name"
        }
        if text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) && id(text) == nil {
            if text.utf8.count > 1 && text.utf8.first == UInt8(ascii: "0") {
                return "\(text): not an image id (ids are written without leading zeros)"
            }
            return "\(text): not an image id (ids have at most 18 digits)"
        }
        return nil
    }

    /// The id and node an id or a name names, or nil.
    public func resolve(_ reference: String) -> (id: Int, node: String)? {
        guard StoreLayout.invalidReference(reference) == nil else { return nil }
        if let id = StoreLayout.id(reference) { return node(id: id).map { (id, $0) } }
        guard let target = readLink(mapLink(reference)), let id = StoreLayout.id(ofIndexTarget: target) else { return nil }
        return node(id: id).map { (id, $0) }
    }

    /// `layer/0/1/2` for image 2, when index/2 names a node whose last component is
    /// its id, through nothing but ids, and the node has its files.
    public func node(id: Int) -> String? {
        guard id > 0, let target = readLink(indexLink(id)), target.hasPrefix("../layer/0/") else { return nil }
        let components = target.dropFirst("../layer/0/".count).split(separator: "/", omittingEmptySubsequences: false)
        guard !components.isEmpty, components.count <= StoreLayout.maximumDepth,
              components.allSatisfy({ StoreLayout.id(String($0)) != nil }),
              StoreLayout.id(String(components.last!)) == id else { return nil }
        // The link's own text, checked above, made a String first: joined(), or String +
        // Substring (append of a generic Sequence), costs a runtime conformance lookup,
        // a scan of every conformance in the binary, at every start.
        let node = rootNode + "/" + String(target.dropFirst("../layer/0/".count))
        // Its files: files/ID, which its _data link names, or _data itself in a store of
        // an older plash. The link is not followed: its text climbs the node's whole depth
        // back (`../` 500 times), a second walk as long as the node's own.
        var info = stat()
        guard lstat(StoreLayout.data(ofNode: node), &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFLNK { guard stat(files(of: id), &info) == 0 else { return nil } }
        return (info.st_mode & S_IFMT) == S_IFDIR ? node : nil
    }

    /// layer/0/1/2 -> [files/2, files/1]: an image's layers, top first, are the
    /// components of its node. layer/0 is the empty root and has none. A layer of an
    /// older plash keeps its files in its node (layer/0/1/_data); only images on such
    /// a layer have one, so when the bottom layer has files/ID, all of them do.
    public func layers(of node: String) -> [String] {
        let ids = self.ids(ofNode: node)
        guard let bottom = ids.last else { return [] }
        if access(files(of: bottom), F_OK) == 0 { return ids.map(files(of:)) }
        return stack(of: node).map { data(id: $0.id, node: $0.node) }
    }

    /// What an overlay of the image stacks, top first: its layers down to the nearest
    /// one with a flat copy (the one at a multiple of flatEvery), then that copy for the
    /// rest; all its layers when none below has one (an image made before flat copies
    /// were, or one whose copy could not be made). An image of fewer than flatEvery
    /// layers looks for none.
    public func mountedLayers(of node: String) -> [String] {
        let ids = self.ids(ofNode: node)
        guard let bottom = ids.last else { return [] }
        guard access(files(of: bottom), F_OK) == 0 else { return stack(of: node).map { data(id: $0.id, node: $0.node) } }
        // ids[ids.count - depth] is the image of `depth` layers.
        var depth = ids.count / StoreLayout.flatEvery * StoreLayout.flatEvery
        while depth > 0 {
            let flat = self.flat(of: ids[ids.count - depth])
            if access(flat, F_OK) == 0 { return ids[..<(ids.count - depth)].map(files(of:)) + [flat] }
            depth -= StoreLayout.flatEvery
        }
        return ids.map(files(of:))
    }

    /// The staging place of a flat copy (FlatLayer.swift) in a node not yet published.
    public static func flat(ofNode node: String) -> String { node + "/_flat" }

    /// layer/0/1/2 -> [(2, layer/0/1/2), (1, layer/0/1)]: the image and those below it.
    public func stack(of node: String) -> [(id: Int, node: String)] {
        var current = node
        return ids(ofNode: node).map { id in
            defer { current = splitLast(current).0 }
            return (id, current)
        }
    }

    /// layer/0/1/2 -> [2, 1], or [] when a component is no id. Each component is read
    /// once: a 500-layer node is about 2000 characters, and its start must not count them
    /// once for each layer.
    func ids(ofNode node: String) -> [Int] {
        guard node.hasPrefix(rootNode + "/") else { return [] }
        var ids: [Int] = []
        for component in node.utf8.dropFirst(rootNode.utf8.count + 1).split(separator: UInt8(ascii: "/"),
                                                                            omittingEmptySubsequences: false) {
            guard let id = StoreLayout.id(String(decoding: component, as: UTF8.self)) else { return [] }
            ids.append(id)
        }
        return ids.reversed()
    }

    /// How many layers the image of `node` has: the components of its node.
    public func depth(ofNode node: String) -> Int {
        node.dropFirst(rootNode.count).split(separator: "/").count
    }

    /// Image `id`'s files: files/ID, or in its node in a store of an older plash.
    public func data(id: Int, node: String) -> String {
        access(files(of: id), F_OK) == 0 ? files(of: id) : StoreLayout.data(ofNode: node)
    }

    /// `…/files/2` (or `…/layer/0/1/2/_data` in a store of an older plash): the root of
    /// plash mount's bind of a one-layer image.
    public static func isLayerDirectory(_ path: String) -> Bool {
        var parts = path.split(separator: "/")
        if parts.count >= 2, parts[parts.count - 2] == "files", let last = parts.last, id(String(last)) != nil {
            return true
        }
        guard parts.popLast() == "_data" else { return false }
        var ids = 0
        while let last = parts.last, last != "0", last.allSatisfy(\.isNumber) {
            parts.removeLast()
            ids += 1
        }
        return ids > 0 && parts.suffix(2) == ["layer", "0"]
    }

    /// The id of files/ID.flat's name, `ID.flat`, or nil.
    public static func id(ofFlat name: String) -> Int? {
        name.hasSuffix(".flat") ? id(String(name.dropLast(".flat".count))) : nil
    }

    /// The id of a node: its last component.
    public static func id(ofNode node: String) -> Int? { id(splitLast(node).1) }
}
