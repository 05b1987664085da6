import Foundation
import Testing

// What the tests need from the host beyond plash itself: programs (scripts/test installs
// their Debian packages through scripts/install-deps), a VM's kernel, /dev/fuse. A test
// that lacks one fails (or, for the VM and fuse, is skipped outside CI) with one line
// that names what is missing and how to get it.

/// A program the tests run from the host, and the Debian package that has it.
public struct Tool: Sendable, Hashable {
    public let command: String
    public let package: String
    public init(_ command: String, package: String) {
        self.command = command
        self.package = package
    }

    public static let skopeo = Tool("skopeo", package: "skopeo")
    public static let umoci = Tool("umoci", package: "umoci")
    public static let ociImageTool = Tool("oci-image-tool", package: "oci-image-tool")
    public static let dockerRegistry = Tool("docker-registry", package: "docker-registry")
    public static let htpasswd = Tool("htpasswd", package: "apache2-utils")
    public static let podman = Tool("podman", package: "podman")
    public static let runsv = Tool("runsv", package: "runit")
    public static let supervisord = Tool("supervisord", package: "supervisor")
    public static let s6 = Tool("s6-svscan", package: "s6")
    public static let python3 = Tool("python3", package: "python3")
    public static let openssl = Tool("openssl", package: "openssl")
    public static let xz = Tool("xz", package: "xz-utils")
    public static let zstd = Tool("zstd", package: "zstd")
    public static let bzip2 = Tool("bzip2", package: "bzip2")
    public static let mmdebstrap = Tool("mmdebstrap", package: "mmdebstrap")
    public static let bwrap = Tool("bwrap", package: "bubblewrap")
    public static let lintian = Tool("lintian", package: "lintian")
    public static let pandoc = Tool("pandoc", package: "pandoc")
    public static let zsh = Tool("zsh", package: "zsh")
    public static let fish = Tool("fish", package: "fish")
    public static let cc = Tool("cc", package: "gcc")
    public static let busybox = Tool("busybox", package: "busybox-static")
    public static let qemu = Tool("qemu-system-x86_64", package: "qemu-system-x86")
    public static let fuseOverlayfs = Tool("fuse-overlayfs", package: "fuse-overlayfs")
    public static let socketActivate = Tool("systemd-socket-activate", package: "systemd")
}

/// The PATH the tests look for programs on: the test process's own.
public var testPath: String { ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin" }

/// nil when every one of `tools` is on `path`, else one line naming the missing ones
/// and the command that installs them.
public func missing(_ tools: [Tool], path: String = testPath) -> String? {
    let directories = path.split(separator: ":").map(String.init)
    let absent = tools.filter { tool in !directories.contains { isProgram($0 + "/" + tool.command) } }
    guard !absent.isEmpty else { return nil }
    let packages = absent.map(\.package).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    return "missing \(absent.map(\.command).joined(separator: ", ")): run scripts/install-deps "
        + packages.joined(separator: " ") + " (as root; scripts/test installs what every test needs)"
}

/// A regular file that may be executed (as root, access(X_OK) holds for any directory).
func isProgram(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && access(path, X_OK) == 0
}

/// Throws (failing the test that needs them) unless every one of `tools` is on PATH.
public func require(_ tools: Tool...) throws {
    if let line = missing(tools) { throw SetupError(line) }
}

/// A suite or test that runs `tools`: each of its tests fails with the one line of
/// `missing` when one is not installed, before it starts.
public struct NeedsTools: TestTrait, SuiteTrait, TestScoping {
    public let tools: [Tool]
    public var isRecursive: Bool { true }
    public func provideScope(for test: Test, testCase: Test.Case?,
                             performing function: @Sendable () async throws -> Void) async throws {
        if let line = missing(tools) { throw SetupError(line) }
        try await function()
    }
}

extension Trait where Self == NeedsTools {
    public static func needs(_ tools: Tool...) -> Self { NeedsTools(tools: tools) }
}

/// ../shared/tools/vm-run beside the checkout: boots a throw-away VM for a test script.
public let vmRun = URL(fileURLWithPath: repositoryDirectory).deletingLastPathComponent()
    .appendingPathComponent("shared/tools/vm-run/run-in-vm.sh").path

/// The kernel vm-run boots: $VM_KERNEL, else the newest /boot/vmlinuz-* (as it chooses).
var vmKernel: String? {
    if let named = ProcessInfo.processInfo.environment["VM_KERNEL"] { return named }
    let kernels = ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }
    return kernels.max { $0.compare($1, options: .numeric) == .orderedAscending }.map { "/boot/" + $0 }
}

/// nil when the VM tests can run here, else one line of what they lack.
public func vmMissing(path: String = testPath) -> String? {
    var lacks: [String] = []
    if let tools = missing([.qemu], path: path) { lacks.append(tools) }
    if let kernel = vmKernel {
        if access(kernel, R_OK) != 0 { lacks.append("the kernel \(kernel) is not readable") }
    } else {
        lacks.append("no kernel image /boot/vmlinuz-* (scripts/install-deps linux-image-cloud-amd64, or VM_KERNEL=FILE)")
    }
    if !FileManager.default.isExecutableFile(atPath: vmRun) { lacks.append("\(vmRun) is missing (../shared beside the checkout)") }
    return lacks.isEmpty ? nil : "the VM tests need: " + lacks.joined(separator: "; ")
}

/// nil when fuse-overlayfs can serve a root here, for root or for ordinary users, else
/// one line of what is missing: the program, or a /dev/fuse they may open read-write.
public func fuseMissing(forOrdinaryUsers: Bool = false, path: String = testPath) -> String? {
    var lacks: [String] = []
    if let tools = missing([.fuseOverlayfs], path: path) { lacks.append(tools) }
    var device = stat()
    let isDevice = stat("/dev/fuse", &device) == 0 && device.st_mode & S_IFMT == S_IFCHR
    if !isDevice || (forOrdinaryUsers ? device.st_mode & 0o006 != 0o006 : access("/dev/fuse", R_OK | W_OK) != 0) {
        lacks.append("/dev/fuse, readable and writable by \(forOrdinaryUsers ? "every user" : "root")"
                     + " (modprobe fuse; in a container, pass /dev/fuse in)")
    }
    return lacks.isEmpty ? nil : "the fuse-overlayfs tests need: " + lacks.joined(separator: "; ")
}

/// Throws (failing the test) with the line of `missing`, when it names something.
public func requirePresent(_ missing: String?) throws {
    if let missing { throw SetupError(missing) }
}

extension Trait where Self == ConditionTrait {
    /// Skips the test, saying what is missing, when `missing` names something; except in
    /// CI (PLASH_TESTS_MUST_RUN=1), where it runs and fails (see `requirePresent`).
    public static func skippedWhenMissing(_ missing: String?) -> Self {
        .enabled(if: mustRun || missing == nil, Comment(rawValue: missing ?? ""))
    }
}
