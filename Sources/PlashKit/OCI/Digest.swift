#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

// Content addressing: a blob is named by its digest, and every blob plash reads (a
// manifest, a config, a layer; from a registry, a layout or its own store) is checked
// against the digest and size that named it, by VerifiedBlob, as umoci's verified reader.

func isHexDigest(_ hex: String) -> Bool { hex.count == 64 && hex.allSatisfy { "0123456789abcdef".contains($0) } }

/// `sha256:` and 64 hex digits: the only digests plash reads or writes.
func isSHA256Digest(_ digest: String) -> Bool { digest.hasPrefix("sha256:") && isHexDigest(String(digest.dropFirst(7))) }

/// blobs/ALG/HEX of a digest; only sha256, and only hex: a digest never names a path.
func blobPath(_ digest: String) throws -> String {
    guard isSHA256Digest(digest) else { throw PlashError.failure("\(digest): not a sha256 digest") }
    return "blobs/sha256/" + digest.dropFirst(7)
}

/// A blob checked while it is read: its bytes are counted against the size its
/// descriptor announces (a sender of more is stopped at once, not when the disk is
/// full) and hashed; `finish` fails unless both match. `what` names it in the error.
struct VerifiedBlob {
    let what: String
    let digest: String
    let size: Int?
    private var hash = SHA256()
    private var received = 0

    init(_ what: String, digest: String, size: Int? = nil) {
        self.what = what
        self.digest = digest
        self.size = size
    }

    mutating func update(_ piece: UnsafeRawBufferPointer) throws {
        received += piece.count
        if let size, received > size { throw PlashError.failure("\(what): more than the \(size) bytes its descriptor announces") }
        hash.update(piece)
    }

    mutating func finish() throws {
        if let size, received != size { throw PlashError.failure("\(what): \(received) bytes, not the \(size) its descriptor announces") }
        try VerifiedBlob.compare("sha256:" + hash.hexDigest(), digest, what)
    }

    /// Bytes read whole (a manifest, a config) against their digest, and their size
    /// where it is known.
    static func check(_ bytes: [UInt8], digest: String, size: Int? = nil, _ what: String) throws {
        var blob = VerifiedBlob(what, digest: digest, size: size)
        try bytes.withUnsafeBytes { try blob.update($0) }
        try blob.finish()
    }

    /// The file open on `fd`, from its start whatever its offset, read through a
    /// VerifiedBlob; `path` names it when a read fails.
    static func checkFile(_ fd: Int32, path: String, digest: String, size: Int?, _ what: String) throws {
        var blob = VerifiedBlob(what, digest: digest, size: size)
        try readChunks(fd, path: path) { try blob.update($0) }
        try blob.finish()
    }

    /// The one comparison of a digest found with the one expected; `kind` names what
    /// kind of digest it is (a blob's digest, a layer's diff_id).
    static func compare(_ actual: String, _ expected: String, _ what: String, kind: String = "digest") throws {
        if actual != expected { throw PlashError.failure("\(what): its \(kind) is \(actual), not \(expected)") }
    }
}

/// The SHA-256 (hex) of the file open on `fd`, from its start, whatever its offset.
func hashFile(_ fd: Int32, path: String) throws -> String {
    var hash = SHA256()
    try readChunks(fd, path: path) { hash.update($0) }
    return hash.hexDigest()
}

/// The file open on `fd` from its start, in chunks of a MiB, whatever its offset.
private func readChunks(_ fd: Int32, path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var offset = 0
    while true {
        let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        if n < 0 { if errno == EINTR { continue }; throw PlashError.system("read", path) }
        if n == 0 { return }
        try chunk.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        offset += n
    }
}
