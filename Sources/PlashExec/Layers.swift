#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// The image's layer directories, top first, and the label its overlay carries in
/// /proc/PID/mountinfo: `plash:ID@STORE` (several stores may have an image 2), or
/// `plash:DIR` for --root and --lower. STORE is the store's canonical path when it has
/// one: plash finds the containers of its store by that label whether PLASH_DATA was
/// relative or reached through a symlink.
public struct Layers: Equatable {
    public var directories: [String]
    public var label: String
    /// A stored image's config, when its node keeps one.
    public var config: RunConfig? = nil
    /// The layers are a store's files/ID (and files/ID.flat), side by side in files/,
    /// which nothing of a start reaches by its path (RootFilesystem.swift).
    public var inStoreFiles = false
}

public func layers(of image: ExecPlan.Image, store: String, canonicalStore: String? = nil) throws -> Layers {
    let found: Layers
    switch image {
    case .root(let dir):
        found = Layers(directories: [dir], label: "plash:" + dir)
    case .lowers(let dirs):
        found = Layers(directories: dirs, label: "plash:" + dirs[0])
    case .stored(let name):
        let layout = StoreLayout(path: store)
        if let invalid = StoreLayout.invalidReference(name) { throw PlashError.usage(invalid) }
        guard let (id, node) = layout.resolve(name) else {
            // Another user's store (0700) says so rather than that it has no such image.
            let link = StoreLayout.id(name).map(layout.indexLink) ?? layout.mapLink(name)
            var info = stat()
            if lstat(link, &info) == -1 && errno == EACCES { throw PlashError.system("image", link) }
            throw PlashError.usage("no image \(name) in \(store)")
        }
        found = try storedLayers(id: id, node: node, layout: layout, canonicalStore: canonicalStore)
    case .resolved(let id, let node, let caller):
        found = try storedLayers(id: id, node: node, layout: StoreLayout(path: caller), canonicalStore: canonicalStore)
    }
    if let tooDeep = StoreLayout.tooDeep(found.directories.count) { throw PlashError.failure(tooDeep) }
    return found
}

func storedLayers(id: Int, node: String, layout: StoreLayout, canonicalStore: String?) throws -> Layers {
    let directories = layout.mountedLayers(of: node)
    return Layers(directories: directories, label: "plash:\(id)@" + (canonicalStore ?? layout.path),
                  config: try RunConfig.read(node: node),
                  inStoreFiles: directories.allSatisfy { splitLast($0).0 == layout.files })
}
