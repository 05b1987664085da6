#if canImport(Glibc)
import Glibc
#endif

/// What was being done when something failed, as `mount overlay on` in
/// `mount overlay on /x: Permission denied`. Code that falls back on a failure tells
/// steps apart by value (`error.step == .mountOverlay`), never by matching message text.
public struct Step: Hashable, Sendable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public let description: String
    public init(_ text: String) { description = text }
    public init(stringLiteral text: String) { description = text }
    public init(stringInterpolation: DefaultStringInterpolation) { description = String(stringInterpolation: stringInterpolation) }

    public static let unshare: Step = "unshare"
    public static let mountOverlay: Step = "mount overlay on"
    public static let cgroup: Step = "cgroup"
    public static let loadSeccompFilter: Step = "load seccomp filter"
    public static let exec: Step = "exec"
    /// A host command that plash runs for the user (sudo, with-mount, data): when it is
    /// not found, the top says so as a shell does, `CMD: command not found`.
    public static let hostCommand: Step = "run"
}

/// The one error of plash and plash-exec. Every layer throws it or wraps it with
/// context (`import alpine.tar: etc/passwd: ...`); only the top prints it, as one line,
/// and picks the exit status from its kind.
public struct PlashError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case usage     // a mistake in the command line: exit 2 (plash-exec: 125)
        case failure   // plash or plash-exec itself failed: exit 1 (plash-exec, plash run: 125)
        case command   // the program could not be executed: 126, or 127 when not found
    }

    public var kind: Kind
    public var step: Step?
    public var path: String
    public var errno: Int32?
    public var reason: String?          // why, when no errno tells it
    public var context: [String] = []   // outermost first
    public var usage: String = ""       // printed after a usage error's line
    public var advice: String? = nil    // what to do about it, in parentheses at the end

    /// A system call failed: `step path: strerror(errno) (hint)`.
    public static func system(_ step: Step, _ path: String = "", errno: Int32 = Glibc.errno) -> PlashError {
        PlashError(kind: .failure, step: step, path: path, errno: errno)
    }

    public static func usage(_ message: String, usage: String = "") -> PlashError {
        PlashError(kind: .usage, path: "", reason: message, usage: usage)
    }

    public static func failure(_ message: String) -> PlashError {
        PlashError(kind: .failure, path: "", reason: message)
    }

    /// execve failed: 127 when the command does not exist, else 126.
    public static func exec(_ command: String, errno: Int32) -> PlashError {
        PlashError(kind: .command, step: .exec, path: command, errno: errno)
    }

    /// A host command (`Step.hostCommand`) could not be executed: 127 or 126, as exec.
    public static func hostCommand(_ command: String, errno: Int32) -> PlashError {
        PlashError(kind: .command, step: .hostCommand, path: command, errno: errno)
    }

    /// This error with `prefix: ` in front of its line.
    public func context(_ prefix: String) -> PlashError {
        var wrapped = self
        wrapped.context.insert(prefix, at: 0)
        return wrapped
    }

    /// This error with what to do about it: `... (install busybox-static)`.
    public func advising(_ text: String) -> PlashError {
        var advised = self
        advised.advice = text
        return advised
    }

    /// The exit status of plash-exec and plash run: 125 when they failed themselves.
    public var execStatus: Int32 {
        guard kind == .command, let errno else { return 125 }
        return errno == ENOENT || errno == ENOTDIR ? 127 : 126
    }

    public var description: String {
        var parts = context
        var subject = step.map { path.isEmpty ? $0.description : "\($0) \(path)" } ?? path
        if let errno {
            var reason = String(cString: strerror(errno))
            if let extra = self.reason { reason = extra + ": " + reason }
            subject = subject.isEmpty ? reason : subject + ": " + reason
        } else if let reason {
            subject = subject.isEmpty ? reason : subject + ": " + reason
        }
        if let advice = advice ?? (errno == nil ? nil : hint) { subject += " (\(advice))" }
        if !subject.isEmpty { parts.append(subject) }
        return oneLine(parts.joined(separator: ": "))
    }

    /// Where a bare errno misleads, the likely cause.
    var hint: String? {
        switch (step, errno) {
        case (.unshare?, EPERM?), (.unshare?, ENOSPC?):
            return unshareRefusal(errno!)
        case (.cgroup?, EACCES?):
            return "limits need root, or a cgroup v2 subtree delegated to this user"
        case (.mountOverlay?, EACCES?) where geteuid() == 0 && !inFirstUserNamespace():
            // bwrap --unshare-user --uid 0 --cap-add CAP_SYS_ADMIN: overlayfs needs more
            // than that (CAP_DAC_OVERRIDE, for one), and no new user namespace may map 0 there.
            return "root of this user namespace lacks capabilities that overlayfs needs: give it all (bwrap --cap-add ALL), or run plash as the sandbox's own user"
        case (.mountOverlay?, EINVAL?), (.mountOverlay?, EPERM?):
            return geteuid() == 0 ? "overlayfs refused the layers; see dmesg"
                : "overlayfs for ordinary users needs Linux 5.11; or install fuse-overlayfs"
        default:
            return nil
        }
    }
}

/// The text with control characters written as escapes: a name from an archive, a
/// store or a command line may hold a newline, and the error must stay one line.
public func oneLine(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
    var result = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        case _ where scalar.value < 0x20 || scalar.value == 0x7f:
            result += "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result
}

extension Error {
    /// This error with `prefix: ` in front of its line; any error becomes a PlashError.
    public func context(_ prefix: String) -> PlashError {
        (self as? PlashError ?? PlashError.failure("\(self)")).context(prefix)
    }
}

/// Throws a PlashError naming the step, the path and the errno when a libc call
/// returned -1.
@discardableResult
public func check(_ result: Int32, _ step: Step, _ path: String = "") throws -> Int32 {
    if result == -1 { throw PlashError.system(step, path) }
    return result
}
