import FoundationEssentials
import PlashKit

// `plash ls --json` and `plash ps --json`: one JSON array, objects with the fields that
// docs/plash.md lists. Scripts depend on them: add fields, never rename or drop one.

struct ImageObject: Encodable {
    let id: Int
    let parent: Int
    let names: [String]
    let size: Int64      // bytes of its own layer
    let age: Int         // seconds since it was built
    let script: String   // the first line of its build script
}

struct ProcessObject: Encodable {
    let pid: Int32
    let image: String    // an image id, or the --root directory
    let store: String?   // the store of that id: null for --root
    let name: String?    // a name of the image in this store, or null
    let command: String

    func encode(to encoder: Encoder) throws {
        // Every field always present: null rather than missing.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pid, forKey: .pid)
        try container.encode(image, forKey: .image)
        try container.encode(store, forKey: .store)
        try container.encode(name, forKey: .name)
        try container.encode(command, forKey: .command)
    }

    enum CodingKeys: String, CodingKey { case pid, image, store, name, command }
}

func imagesJSON(_ rows: [ImageRow]) throws -> String {
    try encodeJSON(rows.map {
        ImageObject(id: $0.id, parent: $0.parent, names: $0.names, size: $0.size, age: $0.age, script: $0.script)
    })
}

func processesJSON(_ processes: [ContainerProcess], store: Store, names: [String: String]) throws -> String {
    try encodeJSON(processes.map { process in
        let imageStore = process.store ?? (Int(process.image) != nil ? store.path : nil)
        let ours = imageStore == store.path
        return ProcessObject(pid: process.pid, image: process.image, store: imageStore,
                             name: ours ? names[process.image] : nil, command: process.command)
    })
}

func encodeJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
