import Foundation

/// A store of its own for one test: every plash run through it sees PLASH_DATA set to
/// a fresh directory, so tests can run in parallel.
public struct TestStore: Sendable {
    public let data: String
    public let home: String

    public init() {
        self.init(data: makeDirectory("store") + "/plash")
    }

    /// A store at `data` (made on first use), for paths that matter: a space, a symlink.
    public init(data: String) {
        self.data = data
        home = makeDirectory("home")
    }

    /// An image server that refuses at once: a test that resolves a name reaches no
    /// network unless it names a server of its own.
    public var environment: [String: String] { ["PLASH_DATA": data, "HOME": home, "PLASH_LXC_SERVER": "http://127.0.0.1:9"] }

    /// Runs plash with this store, in `directory` (default: a fresh scratch directory).
    @discardableResult
    public func plash(_ arguments: [String], stdin: String? = nil, directory: String? = nil,
                      environment extra: [String: String] = [:], deadline: Double = defaultDeadline) throws -> Finished {
        try run(PlashTestSupport.plash, arguments, stdin: stdin,
                environment: environment.merging(extra) { $1 }, directory: directory, deadline: deadline)
    }

    /// Runs plash and returns its stdout without the newline, failing the caller's
    /// expectation (through a thrown error) unless it exits 0.
    public func id(_ arguments: [String], directory: String? = nil) throws -> String {
        let result = try plash(arguments, directory: directory)
        guard result.status == 0 else { throw StoreTestError("plash \(arguments) failed: \(result)") }
        return result.stdout.trimmingCharacters(in: .newlines)
    }

    /// Image ids in index/, sorted (index/0, the empty root, is no image).
    public var indexedIDs: [Int] {
        ((try? FileManager.default.contentsOfDirectory(atPath: data + "/index")) ?? []).compactMap { Int($0) }.filter { $0 > 0 }.sorted()
    }

    /// Entries in tmp/ that are directories (staging that a build or import left).
    public var stagingDirectories: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: data + "/tmp")) ?? []).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: data + "/tmp/" + $0, isDirectory: &isDirectory) && isDirectory.boolValue
        }
    }

    /// Every node directory below layer/0 (the images' nodes).
    public var nodes: [String] {
        get throws {
            let result = try shell("cd '\(data)/layer/0' && find . -type d ! -path '*/_data*' ! -name . | sort")
            return result.stdout.split(separator: "\n").map(String.init)
        }
    }
}

/// An OCI layout at `dir`, tag t, of `layers` plain-tar layers: layer N holds the empty
/// file /lN, layer 1 also the host's busybox as /bin/busybox, sh, ls and cat.
public func writeDeepLayout(_ dir: String, layers: Int) throws {
    let written = try run("/usr/bin/python3", ["-", dir, String(layers)], stdin: deepLayoutScript)
    guard written.status == 0 else { throw SetupError("cannot write the layout \(dir): \(written.stderr)") }
}

private let deepLayoutScript = #"""
import hashlib, io, json, os, sys, tarfile
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d + "/blobs/sha256")
def blob(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
layers = []
for i in range(1, n + 1):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        if i == 1:
            t.add("/bin/busybox", "bin/busybox")
            for name in ["sh", "ls", "cat"]:
                link = tarfile.TarInfo("bin/" + name); link.type = tarfile.SYMTYPE; link.linkname = "busybox"
                t.addfile(link)
        info = tarfile.TarInfo(f"l{i}")
        t.addfile(info, io.BytesIO(b""))
    layers.append(blob(b.getvalue()))
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}}).encode())
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                            "layers": [dict(l, mediaType="application/vnd.oci.image.layer.v1.tar") for l in layers]}).encode())
json.dump({"schemaVersion": 2, "manifests": [dict(manifest, mediaType="application/vnd.oci.image.manifest.v1+json",
                                                  annotations={"org.opencontainers.image.ref.name": "t"})]},
          open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
"""#

public struct StoreTestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs every invocation at the same time (one thread each) and returns their results
/// in order.
public func runConcurrently(_ invocations: [@Sendable () throws -> Finished]) -> [Finished] {
    let results = invocations.map { _ in Locked(Finished(status: -2, signal: nil, stdout: "", stderr: "")) }
    let threads = zip(invocations, results).map { invocation, result in
        Thread {
            let finished = (try? invocation()) ?? Finished(status: -3, signal: nil, stdout: "", stderr: "spawn failed")
            result.set(finished)
        }
    }
    threads.forEach { $0.start() }
    while !results.allSatisfy(\.done) { usleep(2000) }
    return results.map(\.value)
}

/// Writes an executable file.
public func writeExecutable(_ path: String, _ text: String) throws {
    // Written by a child: see copyExecutable.
    let written = try run("/bin/sh", ["-c", "cat > \"$0\" && chmod 755 \"$0\"", path], stdin: text)
    guard written.status == 0 else { throw SetupError("cannot write \(path): \(written.stderr)") }
}

/// The session of the quick start (issue 3), and what it prints on stdout.
public let quickStartSession: [[String]] = [
    ["init"],
    ["build", "--from", "busybox", "--run", "touch /file"],
    ["build", "--from", "busybox", "--run", "touch /file"],
    ["build", "--from", "busybox", "--run", "touch /file", "--layer", "--run", "touch /file2"],
    ["rm", "3"],
    ["run", "--from", "busybox", "--run", "touch /file", "--", "ls", "/file"],
]
public let quickStartTranscript = "2\n2\n3\n/file\n"
