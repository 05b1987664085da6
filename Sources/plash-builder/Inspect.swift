import FoundationEssentials
import PlashKit
import PlashSystem

/// `plash inspect IMAGE [--json]`: the image's config as exports write it. `--json` is
/// shaped as `podman image inspect`'s array, with the fields podman users read: Id,
/// Created, Author, Architecture, Os, Config, Labels, History; plus plash's Parent and
/// Names. Add fields, never rename or drop one: scripts depend on them.
@Sendable func inspect(_ arguments: [String]) throws -> Int32 {
    let name = try expect(arguments, "inspect")[0]
    let store = Store()
    let image = try store.image(name)
    let config = try exportedConfig(image, store: store)
    let names = store.names().filter { $0.id == image.id }.map(\.name)
    let settings = config.config ?? ImageConfig.Settings()
    if hasFlag(arguments, "--json") {
        let object = InspectObject(Id: "\(image.id)", Parent: "\(store.parent(of: image))", Names: names,
                                   Created: config.created ?? "", Author: config.author ?? "",
                                   Architecture: imageArchitecture, Os: "linux", Config: settings,
                                   Labels: settings.Labels ?? [:], History: config.history ?? [])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode([object]), as: UTF8.self))
        return 0
    }
    func words(_ list: [String]?) -> String? { list.map { $0.map { $0.debugDescription }.joined(separator: " ") } }
    var rows: [(String, String?)] = [
        ("Id", "\(image.id)"), ("Parent", "\(store.parent(of: image))"), ("Names", names.isEmpty ? nil : names.joined(separator: " ")),
        ("Created", config.created), ("Author", config.author), ("User", settings.User), ("WorkingDir", settings.WorkingDir),
        ("Entrypoint", words(settings.Entrypoint)), ("Cmd", words(settings.Cmd)), ("StopSignal", settings.StopSignal),
        ("ExposedPorts", settings.ExposedPorts.map { $0.keys.sorted().joined(separator: " ") }),
        ("Volumes", settings.Volumes.map { $0.keys.sorted().joined(separator: " ") }),
    ]
    rows += (settings.Env ?? []).map { ("Env", $0) }
    rows += (settings.Labels ?? [:]).sorted { $0.key < $1.key }.map { ("Label", $0.key + "=" + $0.value) }
    rows += (config.history ?? []).map { entry in
        ("History", "\(entry.created ?? "-") \(entry.empty_layer == true ? "(no layer) " : "")"
            + (entry.created_by ?? "").split(separator: "\n").joined(separator: "; "))
    }
    for (name, value) in rows {
        if let value { print(name.padding(to: 12) + value.printable) }
    }
    return 0
}

struct InspectObject: Encodable {
    let Id: String
    let Parent: String
    let Names: [String]
    let Created: String
    let Author: String
    let Architecture: String
    let Os: String
    let Config: ImageConfig.Settings
    let Labels: [String: String]
    let History: [ImageConfig.History]
}
