// The one reference grammar: distribution's (docker/reference, which docker, podman,
// containers/image and registries read), for pull, push, --from-docker and the tags of
// docker archives; and the image-spec's for the names in an OCI layout.

/// `[HOST[:PORT]/]NAME[:TAG][@sha256:HEX]` as distribution's grammar reads it, nothing
/// normalised: NAME is components of lowercase letters and digits joined by one `.`,
/// one or two `_` or any number of `-`, separated by `/`, and with HOST at most 255
/// bytes; TAG is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or
/// `-`. A first component with a `.` or a `:`, or `localhost`, is the HOST: labels of
/// letters, digits and inner `-` joined by `.` (or an IPv6 address in brackets), and a
/// port of digits.
struct ImageReference: Equatable {
    /// The name as written, its host included.
    var name: String
    var host: String?
    var components: [String]
    var tag: String?
    var digest: String?

    /// distribution's NameTotalLengthMax.
    static let nameLimit = 255

    init?(_ text: String) {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digest = String(rest[rest.index(after: at)...])
            guard isSHA256Digest(digest) else { return nil }
            self.digest = digest
            rest = rest[..<at]
        }
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let tag = rest[rest.index(after: colon)...]
            let word = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "_") }
            guard let first = tag.first, word(first), tag.count <= 128, tag.allSatisfy({ word($0) || $0 == "." || $0 == "-" }) else {
                return nil
            }
            self.tag = String(tag)
            rest = rest[..<colon]
        }
        name = String(rest)
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count > 1, parts[0].contains(".") || parts[0].contains(":") || parts[0] == "localhost" {
            guard isRegistryHost(parts[0]) else { return nil }
            host = String(parts.removeFirst())
        }
        guard name.utf8.count <= Self.nameLimit, parts.allSatisfy({ part in
            isJoined(part, parts: { $0.isASCII && ($0.isLowercase || $0.isNumber) }, separators: [".", "_", "__"], dashes: true)
        }) else { return nil }
        components = parts.map(String.init)
    }
}

/// HOST[:PORT] as docker names a registry: labels of letters, digits and inner `-`
/// joined by `.`, or an IPv6 address in brackets; a port of digits.
func isRegistryHost(_ text: Substring) -> Bool {
    var host = text, port: Substring? = nil
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        host = text[...close]
        let after = text[text.index(after: close)...]
        guard after.isEmpty || after.hasPrefix(":") else { return false }
        if !after.isEmpty { port = after.dropFirst() }
    } else if let colon = text.firstIndex(of: ":") {
        host = text[..<colon]
        port = text[text.index(after: colon)...]
    }
    if let port, port.isEmpty || !port.allSatisfy({ $0.isASCII && $0.isNumber }) { return false }
    if host.hasPrefix("[") {
        let address = host.dropFirst().dropLast()
        return !address.isEmpty && address.allSatisfy { $0.isHexDigit || $0 == ":" }
    }
    return host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
        isJoined(label, parts: { $0.isASCII && ($0.isLetter || $0.isNumber) }, separators: [], dashes: true)
    }
}

/// Whether `text` is runs of `parts` characters joined by one of `separators` (or by
/// any number of `-`, with `dashes`): the shape of docker's and OCI's reference grammars.
func isJoined(_ text: Substring, parts: (Character) -> Bool, separators: Set<String>, dashes: Bool) -> Bool {
    var rest = text[...]
    while true {
        let run = rest.prefix(while: parts)
        guard !run.isEmpty else { return false }
        rest = rest.dropFirst(run.count)
        if rest.isEmpty { return true }
        let separator = rest.prefix { !parts($0) }
        guard separators.contains(String(separator)) || (dashes && separator.allSatisfy { $0 == "-" }) else { return false }
        rest = rest.dropFirst(separator.count)
    }
}

/// A reference as `docker load` tags it: NAME[:TAG], `latest` when no tag. nil for a
/// reference docker would refuse, and for one pinned by a digest (a tag names no digest).
public func dockerReference(_ reference: String) -> (name: String, tag: String)? {
    guard let parsed = ImageReference(reference), parsed.digest == nil else { return nil }
    return (parsed.name, parsed.tag ?? "latest")
}

/// Whether `tag` may name an image in an OCI layout (image-spec's grammar of
/// `org.opencontainers.image.ref.name`): components of letters and digits joined by
/// one of `-._:@+` or `--`, separated by `/`; what skopeo's and umoci's `DIR:TAG` name.
public func isOCIRefName(_ tag: String) -> Bool {
    tag.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
        isJoined($0, parts: { $0.isASCII && ($0.isLetter || $0.isNumber) }, separators: ["-", ".", "_", ":", "@", "+", "--"], dashes: false)
    }
}
