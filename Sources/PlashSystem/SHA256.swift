import COpenSSL
import CPlashShims

/// SHA-256 through OpenSSL's libcrypto: the build cache's keys (build scripts and the
/// files named by --hash-path, at the speed of `sha256sum` or better) and the names of
/// compiled seccomp profiles, which plash-exec checks before it loads one.
public struct SHA256 {
    private var context = SHA256_CTX()

    public init() {
        plash_crypto_setup()
        SHA256_Init(&context)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        if let base = bytes.baseAddress { SHA256_Update(&context, base, bytes.count) }
    }

    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    public mutating func update(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { update($0) } }

    public mutating func update(_ string: String) {
        var string = string
        string.withUTF8 { update(UnsafeRawBufferPointer($0)) }
    }

    /// The digest as 64 lowercase hex digits.
    public mutating func hexDigest() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        SHA256_Final(&digest, &context)
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xf)]] }, as: UTF8.self)
    }
}
