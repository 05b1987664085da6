#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// The image's layer directories, top first, and the label its overlay carries in
/// /proc/PID/mountinfo: `plash:ID@STORE` (several stores may have an image 2), or
/// `plash:DIR` for --root and --lower.
public struct Layers: Equatable {
    public var directories: [String]
    public var label: String
}

public func layers(of image: ExecPlan.Image, store: String) throws -> Layers {
    switch image {
    case .root(let dir):
        return Layers(directories: [dir], label: "plash:" + dir)
    case .lowers(let dirs):
        return Layers(directories: dirs, label: "plash:" + dirs[0])
    case .stored(let name):
        let node = try imageNode(name, store: store)
        return Layers(directories: layerDirectories(node: node, store: store),
                      label: "plash:" + (node.split(separator: "/").last.map(String.init) ?? name) + "@" + store)
    }
}

/// An id names `index/ID`, anything else `map/NAME`; both are symlinks that end at the
/// image's node, `layer/0/1/2`.
public func imageNode(_ name: String, store: String) throws -> String {
    guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
        throw PlashError.usage("\(name): not an image id or name")
    }
    let isID = name.allSatisfy { $0 >= "0" && $0 <= "9" }
    let link = store + (isID ? "/index/" : "/map/") + name
    guard let resolved = realpath(link, nil) else {
        if errno == ENOENT || errno == ENOTDIR { throw PlashError.usage("no image \(name) in \(store)") }
        throw PlashError.system("image", link)
    }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// layer/0/1/2 -> [layer/0/1/2/_data, layer/0/1/_data]: an image's lower layers are the
/// path components of its node. layer/0 is the empty root and has no data.
public func layerDirectories(node: String, store: String) -> [String] {
    var dirs: [String] = []
    var current = node
    while !current.hasSuffix("/layer/0"), current.count > 1, current.contains("/layer/0/") {
        dirs.append(current + "/_data")
        current = splitLast(current).0
    }
    return dirs
}
