import Foundation

/// Helpers for tests that run the built binaries for real, as CI does (as root).

/// The directory that holds the built products (plash, plash-exec, the test bundle).
public let productsDirectory: URL = {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
}()

public let plashExec = productsDirectory.appendingPathComponent("plash-exec").path
public let plash = productsDirectory.appendingPathComponent("plash").path

/// What a finished process left: exit status or the signal that killed it, and output.
public struct Finished: CustomStringConvertible {
    public var status: Int32
    public var signal: Int32?
    public var stdout: String
    public var stderr: String
    public var description: String {
        "status \(status) signal \(signal.map(String.init) ?? "-") stdout \(stdout.debugDescription) stderr \(stderr.debugDescription)"
    }
}

/// Runs `executable` to completion. The environment is exactly `environment` (plus a
/// PATH, if not given), so tests see what a caller's variables do.
@discardableResult
public func run(_ executable: String, _ arguments: [String], stdin: String? = nil,
                environment: [String: String] = [:], directory: String? = nil) throws -> Finished {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = environment
    if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
    process.environment = env
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let out = Pipe(), err = Pipe(), input = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try process.run()
    if let stdin {
        try input.fileHandleForWriting.write(contentsOf: Data(stdin.utf8))
        try input.fileHandleForWriting.close()
    }
    // Read both pipes concurrently so a chatty child cannot block on a full pipe.
    let errData = Locked(Data())
    let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !errData.done { usleep(1000) }
    let killed = process.terminationReason == .uncaughtSignal
    return Finished(status: killed ? -1 : process.terminationStatus,
                    signal: killed ? process.terminationStatus : nil,
                    stdout: String(decoding: outData, as: UTF8.self),
                    stderr: String(decoding: errData.value, as: UTF8.self))
}

/// Runs a shell command line on the host (bash -c).
@discardableResult
public func shell(_ command: String, environment: [String: String] = [:]) throws -> Finished {
    try run("/bin/bash", ["-c", command], environment: environment)
}

public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    private var isSet = false
    public init(_ value: Value) { stored = value }
    public func set(_ value: Value) { lock.lock(); stored = value; isSet = true; lock.unlock() }
    public var value: Value { lock.lock(); defer { lock.unlock() }; return stored }
    public var done: Bool { lock.lock(); defer { lock.unlock() }; return isSet }
}

/// One scratch directory per test process, under /var/tmp (not shared into
/// containers, unlike /tmp), removed at exit.
public let scratch: String = {
    let dir = "/var/tmp/plash-tests-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: "/var/tmp/plash-tests-\(getpid())") }
    return dir
}()

private let counter = Locked(0)

/// A new empty directory inside `scratch`.
public func makeDirectory(_ name: String = "dir") -> String {
    let n: Int = { let v = counter.value + 1; counter.set(v); return v }()
    let dir = "\(scratch)/\(name)-\(n)-\(UUID().uuidString.prefix(8))"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A root filesystem made of Debian's static busybox and a link for each applet,
/// created once per test process. Tests must not change it (containers cannot).
public let busyboxRoot: String = makeBusyboxRoot(at: "\(scratch)/busybox-root")

public func makeBusyboxRoot(at dir: String) -> String {
    let fm = FileManager.default
    let busybox = "/bin/busybox"
    precondition(fm.isExecutableFile(atPath: busybox), "install busybox-static: /bin/busybox is missing")
    try! fm.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
    try! fm.createDirectory(atPath: dir + "/etc", withIntermediateDirectories: true)
    try! fm.copyItem(atPath: busybox, toPath: dir + "/bin/busybox")
    let applets = try! run(busybox, ["--list"]).stdout.split(separator: "\n")
    for applet in applets where applet != "busybox" {
        try! fm.createSymbolicLink(atPath: "\(dir)/bin/\(applet)", withDestinationPath: "busybox")
    }
    try! "root:x:0:0:root:/root:/bin/sh\n".write(toFile: dir + "/etc/passwd", atomically: true, encoding: .utf8)
    try! "root:x:0:\n".write(toFile: dir + "/etc/group", atomically: true, encoding: .utf8)
    return dir
}

/// Kernel features missing here skip a test, except in CI (PLASH_TESTS_MUST_RUN=1),
/// where a skip would hide a regression.
public var mustRun: Bool { ProcessInfo.processInfo.environment["PLASH_TESTS_MUST_RUN"] == "1" }

public var isRoot: Bool { geteuid() == 0 }

/// Every file below `dir` with its type, size and mode: equal listings mean an
/// unchanged tree.
public func treeListing(_ dir: String) -> [String] {
    let result = try! shell("cd '\(dir)' && find . -printf '%p %y %s %m %l\\n' | sort")
    return result.stdout.split(separator: "\n").map(String.init)
}

/// The mount table of the test process, minus lines that mention the scratch
/// directory (other tests may legitimately mount there).
public func hostMounts() -> [String] {
    (try! String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))
        .split(separator: "\n").map(String.init).filter { !$0.contains(scratch) }
}
