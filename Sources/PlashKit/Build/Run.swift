import PlashSystem
import PlashExec

/// plash run's words after its name (PlashExec's parseRun), its macros checked against plash's.
public func parseRun(_ arguments: [String]) throws -> RunRequest {
    try parseRun(arguments, isMacro: { macro(named: $0) != nil })
}

/// `plash run busybox`, `plash run alpine -- ls`: docker's `run IMAGE` names what plash
/// builds from a source first. For a name that is no image here (and no id), the same
/// command with `--from` (the built-in busybox) or `--image` (the image server's).
public func storedImageHint(_ request: RunRequest, found: (String) -> Bool) -> String? {
    guard case .stored(let name) = request.image, !name.allSatisfy(\.isASCIIDigit),
          StoreLayout.invalidReference(name) == nil, !found(name) else { return nil }
    let macro = name == "busybox" ? "--from" : "--image"
    let words = ["plash", "run"] + request.execOptions + [macro, name] + (request.command.isEmpty ? [] : ["--"] + request.command)
    let source = name == "busybox" ? "the built-in busybox" : "the image server's \(name)"
    return "no image \(name); to start from \(source): \(words.map(shellQuote).joined(separator: " "))"
}

/// The images `plash shrink` removes: the oldest half, oldest first, leaves only (an
/// image that others build on stays while they do), so recent builds keep their bases.
/// Images in `keep` (named, in use) stay, and so does every image below them.
public func shrinkOrder(_ images: [(id: Int, parent: Int)], keep: Set<Int> = []) -> [Int] {
    var remaining = images
    var chosen: [Int] = []
    let target = (images.count + 1) / 2   // rounded up, as the original: one image goes
    while chosen.count < target {
        let parents = Set(remaining.map(\.parent))
        guard let leaf = remaining.filter({ !parents.contains($0.id) && !keep.contains($0.id) })
            .min(by: { $0.id < $1.id }) else { break }
        chosen.append(leaf.id)
        remaining.removeAll { $0.id == leaf.id }
    }
    return chosen
}

