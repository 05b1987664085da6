import PlashSystem
import PlashExec

/// `plash run [EXEC-OPTIONS] IMAGE [--] [CMD...]` and
/// `plash run [EXEC-OPTIONS] MACRO... [-- CMD...]`: plash-exec's runtime options come
/// first and pass through unchanged; then an image id or name, or macros to build one.
public struct RunRequest: Equatable {
    public enum Image: Equatable {
        case stored(String)
        case build([String])
    }
    public var execOptions: [String] = []
    public var image: Image
    public var command: [String] = []

    public init(execOptions: [String] = [], image: Image, command: [String] = []) {
        self.execOptions = execOptions
        self.image = image
        self.command = command
    }
}

public let runUsage = """
    Usage: plash run [EXEC-OPTIONS] IMAGE [--] [CMD [ARG...]]
           plash run [EXEC-OPTIONS] MACRO... [-- CMD [ARG...]]
    """

public func parseRun(_ arguments: [String]) throws -> RunRequest {
    var rest = arguments[...]
    var options: [String] = []
    while let word = rest.first, word.hasPrefix("-"), word != "--" {
        let name = word.split(separator: "=", maxSplits: 1).first.map(String.init) ?? word
        guard let option = execOption(name), option.passedByRun else { break }
        rest.removeFirst()
        options.append(word)
        if option.takesValue && !word.contains("=") {
            guard let value = rest.popFirst() else { throw PlashError.usage("\(word): needs a value", usage: runUsage) }
            options.append(value)
        }
    }
    guard let first = rest.first, first != "--" else {
        throw PlashError.usage("no image: give an id, a name or macros (--from ...)", usage: runUsage)
    }
    if first.hasPrefix("-") {
        let macroWords = Array(rest.prefix { $0 != "--" })
        let command = Array(rest.drop { $0 != "--" }.dropFirst())
        return RunRequest(execOptions: options, image: .build(macroWords), command: command)
    }
    rest.removeFirst()
    if rest.first == "--" { rest.removeFirst() }
    return RunRequest(execOptions: options, image: .stored(first), command: Array(rest))
}

/// The images `plash shrink` removes: the oldest half, oldest first, leaves only (an
/// image that others build on stays while they do), so recent builds keep their bases.
/// Images in `keep` (named, in use) stay, and so does every image below them.
public func shrinkOrder(_ images: [(id: Int, parent: Int)], keep: Set<Int> = []) -> [Int] {
    var remaining = images
    var chosen: [Int] = []
    let target = images.count / 2
    while chosen.count < target {
        let parents = Set(remaining.map(\.parent))
        guard let leaf = remaining.filter({ !parents.contains($0.id) && !keep.contains($0.id) })
            .min(by: { $0.id < $1.id }) else { break }
        chosen.append(leaf.id)
        remaining.removeAll { $0.id == leaf.id }
    }
    return chosen
}

public let plashVersion = "0.1.0"
