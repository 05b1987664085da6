#if canImport(Glibc)
import Glibc
#endif

/// A failure of plash itself, printed once at the top as `plash: MESSAGE`, exit 1.
/// Outer layers add context in front: `import alpine.tar: etc/passwd: ...`.
public struct Failure: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }

    public func context(_ prefix: String) -> Failure { Failure("\(prefix): \(description)") }
}

/// A mistake in the command line: `plash: MESSAGE`, then the usage, exit 2.
public struct UsageFailure: Error, CustomStringConvertible {
    public let description: String
    public let usage: String
    public init(_ message: String, usage: String = "") {
        description = message
        self.usage = usage
    }
}

/// Throws a Failure naming the call, the path and the errno when a libc call returned -1.
@discardableResult
func checked(_ result: Int32, _ what: String, _ path: String) throws -> Int32 {
    if result == -1 { throw Failure("\(what) \(path): \(String(cString: strerror(errno)))") }
    return result
}

func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
