#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// One row of `plash du`, in bytes.
public struct ImageUsage: Equatable {
    public var id: Int
    public var layer: Int64      // its own layer
    public var total: Int64      // its layer and every layer below: what it uses
    public var unique: Int64     // what no other image uses: its layer when nothing is built on it
    public var shared: Int64     // total - unique: used by other images too
    public var removal: Int64    // what `plash rm ID` frees: its layer and every image built on it
}

/// Images share the layers below them: image 3 on 2 on 1 uses the layers of 1, 2 and 3,
/// and `plash rm 2` removes 3 too. `layers` maps id -> (parent id, own layer bytes).
public func imageUsage(_ layers: [Int: (parent: Int, size: Int64)]) -> [ImageUsage] {
    var children: [Int: [Int]] = [:]
    for (id, layer) in layers { children[layer.parent, default: []].append(id) }
    func total(_ id: Int) -> Int64 {
        guard let layer = layers[id] else { return 0 }
        return layer.size + total(layer.parent)
    }
    func removal(_ id: Int) -> Int64 {
        (layers[id]?.size ?? 0) + (children[id] ?? []).reduce(0) { $0 + removal($1) }
    }
    return layers.keys.sorted().map { id in
        let layer = layers[id]!.size, all = total(id)
        let unique = children[id] == nil ? layer : 0
        return ImageUsage(id: id, layer: layer, total: all, unique: unique, shared: all - unique, removal: removal(id))
    }
}

/// Per image of the store, from du (files hard-linked between layers count once). A
/// layer's size is its files and its kept blob (LayerBlob.swift), which go together.
public func storeUsage(_ store: Store) throws -> [ImageUsage] {
    let images = store.images()
    let sizes = try layerSizes(images, store: store)
    var layers: [Int: (parent: Int, size: Int64)] = [:]
    for image in images { layers[image.id] = (store.parent(of: image), sizes[image.id] ?? 0) }
    return imageUsage(layers)
}

/// Bytes of each image's own layer: its files, its kept blob (LayerBlob.swift) and its
/// flat copy (FlatLayer.swift), which go together; what `plash ls` and `plash du` both
/// show. The flat copies come last: their files are links to the layers' and count
/// there, their directories here.
func layerSizes(_ images: [Store.Image], store: Store) throws -> [Int: Int64] {
    let blobs = images.map { blobFile($0.node) }.filter { access($0, F_OK) == 0 }
    let flats = images.map { store.layout.flat(of: $0.id) }.filter { access($0, F_OK) == 0 }
    let sizes = try diskUsage(images.map(\.data) + blobs + flats, store: store)
    var layers: [Int: Int64] = [:]
    for image in images {
        layers[image.id] = (sizes[image.data] ?? 0) + (sizes[blobFile(image.node)] ?? 0) + (sizes[store.layout.flat(of: image.id)] ?? 0)
    }
    return layers
}

/// Bytes `plash clean` would free: staging directories in tmp/ that no process holds
/// (what killed builds and imports left).
public func leftoverUsage(_ store: Store) throws -> Int64 {
    var leftovers: [String] = []
    for entry in directoryEntries(store.tmp, directoriesOnly: true) ?? [] {
        let path = store.tmp + "/" + entry
        guard let lock = FileLock.tryDirectory(path) else { continue }
        lock.release()
        leftovers.append(path)
    }
    return try diskUsage(leftovers, store: store).values.reduce(0, +)
}
