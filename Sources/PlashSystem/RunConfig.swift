#if canImport(Glibc)
import Glibc
#endif

/// What an image's config says about how its program starts (OCI image-spec config.md:
/// Env, Entrypoint, Cmd, User, WorkingDir), in the small file `_config.exec` beside the
/// node's `_config.json`. Both are written from one value by PlashKit (ImageConfig.swift);
/// plash-exec reads only this one, as it links no JSON parser and must start fast.
///
/// The format: fields ended by a NUL byte, a field's name, the count of its values,
/// then the values: `env\02\0PATH=/x\0A=1\0cmd\01\0/bin/echo\0`. A field the image does
/// not set is absent, so that plash's defaults stay where the image says nothing. A
/// NUL cannot occur in argv, the environment or a path, so nothing needs escaping.
public struct RunConfig: Equatable, Sendable {
    public var environment: [String]? = nil
    public var entrypoint: [String]? = nil
    public var command: [String]? = nil
    public var user: String? = nil
    public var workingDirectory: String? = nil

    public init(environment: [String]? = nil, entrypoint: [String]? = nil, command: [String]? = nil,
                user: String? = nil, workingDirectory: String? = nil) {
        self.environment = environment
        self.entrypoint = entrypoint
        self.command = command
        self.user = user
        self.workingDirectory = workingDirectory
    }

    public var encoded: [UInt8] {
        var fields: [(String, [String])] = []
        if let environment { fields.append(("env", environment)) }
        if let entrypoint { fields.append(("entrypoint", entrypoint)) }
        if let command { fields.append(("cmd", command)) }
        if let user { fields.append(("user", [user])) }
        if let workingDirectory { fields.append(("workdir", [workingDirectory])) }
        var bytes: [UInt8] = []
        for (name, values) in fields {
            for word in [name, "\(values.count)"] + values { bytes += Array(word.utf8) + [0] }
        }
        return bytes
    }

    /// The config of `bytes`, or nil when they are not in this format (a field of
    /// another name is skipped: a later plash may write more).
    public init?(decoding bytes: [UInt8]) {
        var words = bytes.split(separator: 0, omittingEmptySubsequences: false)
        guard words.last?.isEmpty ?? true else { return nil }
        words = words.dropLast()
        var rest = words[...]
        while let name = rest.popFirst() {
            guard let countWord = rest.popFirst(), let count = Int(String(decoding: countWord, as: UTF8.self)),
                  count >= 0, count <= rest.count else { return nil }
            let values = rest.prefix(count).map { String(decoding: $0, as: UTF8.self) }
            rest = rest.dropFirst(count)
            switch String(decoding: name, as: UTF8.self) {
            case "env": environment = values
            case "entrypoint": entrypoint = values
            case "cmd": command = values
            case "user": user = values.first
            case "workdir": workingDirectory = values.first
            default: break
            }
        }
    }

    /// The config in a node, nil when it has none (an image whose config says nothing,
    /// a layer built before plash kept configs). Only a regular file of the store is read,
    /// and no more than a config holds.
    public static func read(node: String) throws -> RunConfig? {
        let path = StoreLayout.execConfig(ofNode: node)
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw PlashError.system("read image config", path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw PlashError.failure("image config \(path): not a regular file")
        }
        guard let config = RunConfig(decoding: try readAll(fd, path: path, what: "read image config", limit: 16 << 20)) else {
            throw PlashError.failure("image config \(path): not in plash's format")
        }
        return config
    }
}
