#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was being done, to which path, and the errno.
/// Printed once, at the top, as one line: `mount overlay on /x: Permission denied`.
public struct SyscallError: Error, CustomStringConvertible {
    public let what: String
    public let path: String
    public let errno: Int32

    public init(_ what: String, _ path: String, errno: Int32 = Glibc.errno) {
        self.what = what
        self.path = path
        self.errno = errno
    }

    public var description: String {
        let subject = path.isEmpty ? what : "\(what) \(path)"
        let reason = String(cString: strerror(errno))
        if let hint = hint { return "\(subject): \(reason) (\(hint))" }
        return "\(subject): \(reason)"
    }

    /// Where a bare errno misleads, the likely cause.
    var hint: String? {
        switch (what, errno) {
        case ("unshare", EPERM), ("unshare", ENOSPC):
            return "user namespaces disabled? see sysctl kernel.unprivileged_userns_clone and user.max_user_namespaces"
        case ("cgroup", EACCES):
            return "limits need root, or a cgroup v2 subtree delegated to this user"
        case ("mount overlay on", EINVAL), ("mount overlay on", EPERM):
            return geteuid() == 0 ? "overlayfs refused the layers; see dmesg"
                : "overlayfs for ordinary users needs Linux 5.11; or install fuse-overlayfs"
        default:
            return nil
        }
    }
}

/// A mistake in the command line, reported as `plash-exec: MESSAGE`.
public struct UsageError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

/// Throws a SyscallError when a libc call returned -1.
@discardableResult
public func check(_ result: Int32, _ what: String, _ path: String = "") throws -> Int32 {
    if result == -1 { throw SyscallError(what, path) }
    return result
}
