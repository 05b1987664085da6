#if canImport(Glibc)
import Glibc
#endif
import CPlashShims
import FoundationEssentials
import PlashExec
import PlashSystem

/// One row of `plash ls`.
public struct ImageRow {
    public var id: Int
    public var parent: Int
    public var names: [String]
    public var size: Int64
    public var age: Int
    public var script: String
}

public func listImages(_ store: Store) throws -> [ImageRow] {
    let images = store.images()
    let names = store.names()
    let sizes = try layerSizes(images, store: store)
    let now = time(nil)
    return images.map { image in
        let built = publishedTime(image.node)
        return ImageRow(id: image.id, parent: store.parent(of: image),
                        names: names.filter { $0.id == image.id }.map(\.name),
                        size: sizes[image.id] ?? 0, age: Int(now - built),
                        script: firstLine(StoreLayout.script(ofNode: image.node)))
    }
}

/// The first line of a build script, at most 1 KiB of it (then "..."): a script of
/// megabytes is not read whole, and a FIFO planted as `_script` is not waited on.
func firstLine(_ path: String) -> String {
    guard let fd = try? openToRead(path, what: "read") else { return "" }
    defer { close(fd) }
    let limit = 1024
    var buffer = [UInt8](repeating: 0, count: limit + 1)
    var count = 0
    while count < buffer.count {
        let n = buffer[count...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        count += n
    }
    let line = buffer[..<count].prefix { $0 != UInt8(ascii: "\n") }
    if line.count <= limit { return String(decoding: line, as: UTF8.self) }
    return String(decoding: line.prefix(limit), as: UTF8.self) + " ..."
}

/// Bytes used by each directory (du; files hard-linked between them count once). du
/// writes into a memory file, not into the store: `plash ls` works on a read-only store.
func diskUsage(_ dirs: [String], store: Store) throws -> [String: Int64] {
    guard !dirs.isEmpty else { return [:] }
    let output = try check(plash_memfd("du"), "create memory file for", "du", needs: .memfdCreate)
    defer { close(output) }
    _ = try spawnAndWait(["du", "-s", "-B1"] + dirs,
                         streams: Streams(stdin: .null, stdout: .descriptor(output), stderr: .null))
    var sizes: [String: Int64] = [:]
    for line in String(decoding: try readFile(procPath(output), what: "read du's output"), as: UTF8.self).split(separator: "\n") {
        guard let tab = line.firstIndex(of: "\t"), let size = Int64(line[..<tab]) else { continue }
        sizes[String(line[line.index(after: tab)...])] = size
    }
    return sizes
}

/// 1234567 -> "1.2M".
public func humanSize(_ bytes: Int64) -> String {
    let units = ["B", "K", "M", "G", "T"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    if unit == 0 { return "\(bytes)B" }
    if value >= 10 { return "\(Int(value))\(units[unit])" }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)\(units[unit])"
}

/// 75 -> "1m".
public func humanAge(_ seconds: Int) -> String {
    if seconds < 60 { return "\(max(seconds, 0))s" }
    if seconds < 3600 { return "\(seconds / 60)m" }
    if seconds < 86400 { return "\(seconds / 3600)h" }
    return "\(seconds / 86400)d"
}
