#if canImport(Glibc)
import Glibc
#endif

/// A system call that older kernels lack, with the first Linux release that has it.
/// Where plash has no other way, an ENOSYS from it ends in one line naming that
/// release; where it has one (the classic mount(2) for the new mount API), it takes it
/// without a word. docs/install.md, "Kernels", lists them all.
public struct KernelCall: Sendable {
    public let name: String
    public let since: String

    public static let fsopen = KernelCall(name: "fsopen", since: "5.2")
    public static let openat2 = KernelCall(name: "openat2", since: "5.6")
    public static let mountSetattr = KernelCall(name: "mount_setattr", since: "5.12")
    public static let memfdCreate = KernelCall(name: "memfd_create", since: "3.17")
    public static let statx = KernelCall(name: "statx", since: "4.11")
}

/// Throws as `check` does; an ENOSYS says which kernel the call needs:
/// `open mount point /proc: Function not implemented (openat2 needs Linux 5.6 or later)`.
@discardableResult
public func check(_ result: Int32, _ step: Step, _ path: String = "", needs call: KernelCall) throws -> Int32 {
    if result == -1 { throw PlashError.system(step, path).needing(call) }
    return result
}

extension PlashError {
    /// This error, when it is ENOSYS, with the kernel release `call` needs as its advice.
    public func needing(_ call: KernelCall) -> PlashError {
        errno == ENOSYS ? advising("\(call.name) needs Linux \(call.since) or later") : self
    }
}
