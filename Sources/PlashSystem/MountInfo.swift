#if canImport(Glibc)
import Glibc
#endif

/// One line of /proc/PID/mountinfo (proc(5)), its paths unescaped:
///
///     ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
///
/// The one parser of that file, for plash and plash-exec alike: the kernel writes a
/// space, tab, newline or backslash in a path as an octal escape (`\040`), and a store
/// under a directory whose name has a space must be found by every reader.
public struct MountEntry: Equatable, Sendable {
    public var id: Int
    public var parent: Int
    public var root: String
    public var mountPoint: String
    public var options: [String]
    public var fileSystem: String
    public var source: String
    public var superOptions: [String]

    /// Entries in the file's order: a later one is mounted on top of an earlier one.
    public static func parse(_ text: String) -> [MountEntry] {
        text.split(separator: "\n").compactMap(MountEntry.init(line:))
    }

    /// The mounts that process `pid` ("self" for this one) sees, or nil when its
    /// mountinfo cannot be read (it exited, or belongs to another user).
    public static func table(of pid: String = "self") -> [MountEntry]? {
        (try? readFile("/proc/\(pid)/mountinfo", what: "read", limit: 64 << 20))
            .map { parse(String(decoding: $0, as: UTF8.self)) }
    }

    init?(line: Substring) {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        // The separator is the first "-" after the options: a mount point may be named "-".
        guard fields.count >= 10, let dash = fields[6...].firstIndex(of: "-"), fields.count >= dash + 4,
              let id = Int(fields[0]), let parent = Int(fields[1]) else { return nil }
        self.id = id
        self.parent = parent
        root = unescapeMountField(fields[3])
        mountPoint = unescapeMountField(fields[4])
        options = fields[5].split(separator: ",").map(String.init)
        fileSystem = unescapeMountField(fields[dash + 1])
        source = unescapeMountField(fields[dash + 2])
        superOptions = fields[dash + 3].split(separator: ",").map(String.init)
    }
}

/// A field of mountinfo as it is: the kernel writes space, tab, newline and backslash
/// as three octal digits after a backslash (`\040`).
func unescapeMountField(_ field: Substring) -> String {
    var bytes: [UInt8] = []
    let utf8 = Array(field.utf8)
    var i = 0
    while i < utf8.count {
        if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
           let code = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
            bytes.append(code)
            i += 4
        } else {
            bytes.append(utf8[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}
