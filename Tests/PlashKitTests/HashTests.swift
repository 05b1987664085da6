import Foundation
import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// SHA-256 digests: the build cache's keys must stay what they were, so existing
/// caches stay valid.
@Suite struct HashTests {
    func sha256sum(_ path: String) throws -> String {
        let result = try run("/usr/bin/sha256sum", [path])
        return String(result.stdout.prefix(64))
    }

    @Test func digestsAreSha256sumsForEverySizeAndEveryWayOfFeedingThem() throws {
        let dir = makeDirectory("sha")
        var generator = SystemRandomNumberGenerator()
        for size in [0, 1, 55, 56, 63, 64, 65, 119, 128, 1000, 65536, 1_048_583] {
            let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let path = "\(dir)/\(size)"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            var whole = SHA256()
            whole.update(bytes)
            var pieces = SHA256()
            var start = 0, piece = 1
            while start < size {
                pieces.update(bytes[start..<min(size, start + piece)])
                start += piece
                piece = piece * 3 + 1
            }
            let expected = try sha256sum(path)
            #expect(whole.hexDigest() == expected, "\(size) bytes")
            #expect(pieces.hexDigest() == expected, "\(size) bytes in pieces")
        }
    }

    @Test func cacheKeysAreTheDigestsTheyWere() throws {
        let dir = makeDirectory("key")
        let file = dir + "/input"
        try "hello".write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o644)
        var layer = LayerSpec(steps: ["touch /a"])
        layer.environment = ["X"]
        layer.hashPaths = [file]
        let key = try Builder(store: Store(path: "/nonexistent")).cacheKey(layer, parent: 7, directory: "/srv", home: "/root")
        // What the key hashes, spelled out, through sha256sum.
        let stream = "plash layer 1\0parent 7\0cwd /srv\0home /root\0env X\0step 8 touch /a\0path \(file)\0mode 33188\0size 5\0hello"
        try stream.write(toFile: dir + "/stream", atomically: false, encoding: .utf8)
        #expect(key == (try sha256sum(dir + "/stream")))
        // And as it was computed since the working directory and home joined the key.
        #expect(try Builder(store: Store(path: "/nonexistent")).cacheKey(LayerSpec(steps: ["touch /a"]), parent: 1,
                                                                         directory: "/srv", home: "/root")
                == "d6f8ab4e4b370bd072a9086c94122c494b7b1ed78f83a6fa3ed97eb37c76e847")
    }
}
