#if canImport(Glibc)
import Glibc
#endif

// The one reader of passwd and group files (passwd(5), group(5)): the host's, for its
// users' names, homes and shells, and an image's, for --user and root's shell. Files
// are read directly: getpwuid in a static executable loads the NSS modules of the glibc
// it was built with, which the host may not have, and an image's are no NSS's at all.

/// A line of a passwd file: NAME:PASSWORD:UID:GID:GECOS:HOME:SHELL.
public struct PasswdEntry: Equatable, Sendable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    /// "" when the line ends before them.
    public var home: String
    public var shell: String

    /// The entries of a passwd file's text. A line without NAME, UID and GID, or whose
    /// ids are not numbers, is no entry (glibc skips it too).
    public static func parse(_ text: String) -> [PasswdEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { return nil }
            return PasswdEntry(name: String(fields[0]), uid: uid, gid: gid,
                               home: fields.count > 5 ? String(fields[5]) : "", shell: fields.count > 6 ? String(fields[6]) : "")
        }
    }

    /// The host's /etc/passwd; none when it cannot be read.
    public static func host() -> [PasswdEntry] {
        parse((try? readFile("/etc/passwd", what: "read", limit: 64 << 20)).map { String(decoding: $0, as: UTF8.self) } ?? "")
    }
}

/// A line of a group file: NAME:PASSWORD:GID:MEMBER,MEMBER...
public struct GroupEntry: Equatable, Sendable {
    public var name: String
    public var gid: UInt32
    public var members: [String]

    public static func parse(_ text: String) -> [GroupEntry] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 3, let gid = UInt32(fields[2]) else { return nil }
            return GroupEntry(name: String(fields[0]), gid: gid,
                              members: fields.count > 3 ? fields[3].split(separator: ",").map(String.init) : [])
        }
    }
}
