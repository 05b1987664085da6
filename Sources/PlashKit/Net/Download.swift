#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

// Downloads to disk: each bounded by the store's free space (DiskRoom), refused at their
// first bytes when they are no archive (DownloadStart), and shown as they come
// (DownloadProgress). Answers read into memory are bounded by BoundedBody (HTTP.swift).

/// What a download's start tells before the rest goes to disk: a length announced that
/// the store's file system has no room for, or first bytes that are no compressed stream
/// and no tar header (a web page, an endless stream of something else), fail at once,
/// instead of after the disk was filled with it.
struct DownloadStart {
    let directory: String
    var total: Int64?
    private var head: [UInt8] = []
    private var checked = false

    init(directory: String) { self.directory = directory }

    mutating func check(_ piece: UnsafeRawBufferPointer) throws {
        guard !checked else { return }
        if let total, head.isEmpty {
            var info = statvfs()
            if statvfs(directory, &info) == 0, total > Int64(info.f_bavail) * Int64(info.f_frsize) {
                throw PlashError.failure("\(byteCount(total)) announced, but the store's file system has only "
                                         + "\(byteCount(Int64(info.f_bavail) * Int64(info.f_frsize))) free")
            }
        }
        head += piece.prefix(512 - head.count)
        guard head.count == 512 else { return }
        checked = true
        let magics: [[UInt8]] = [[0x1f, 0x8b], [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], [0x28, 0xb5, 0x2f, 0xfd], Array("BZh".utf8)]
        guard !magics.contains(where: { head.starts(with: $0) }), !tarChecksumMatches(head) else { return }
        throw PlashError.failure("not a tar archive")
    }
}

/// A download to disk stops while the store's file system still has min(1 GiB, 5 %) of
/// its size free: an answer without end (or without an announced length) fails with one
/// line before the disk is full, for plash and for everything else on it.
struct DiskRoom {
    let directory: String
    private var unchecked = 0

    init(directory: String) { self.directory = directory }

    /// `count` more bytes are about to be written; checked each MiB.
    mutating func take(_ count: Int) throws {
        unchecked += count
        guard unchecked >= 1 << 20 else { return }
        unchecked = 0
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return }
        let free = Int64(info.f_bavail) * Int64(info.f_frsize)
        let reserve = min(1 << 30, Int64(info.f_blocks) * Int64(info.f_frsize) / 20)
        if free < reserve {
            throw PlashError.failure("the store's file system has \(byteCount(free)) free, less than the \(byteCount(reserve)) "
                                     + "a download leaves it")
        }
    }
}

/// A download's (or an upload's) progress on stderr: on a terminal one line redrawn in
/// place (bytes, percent, rate), cleared at the end for the one line that stays.
final class DownloadProgress {
    private let verb: String
    private let terminal = isatty(2) == 1
    private let start = monotonicSeconds()
    private var lastDrawn = -1.0
    private var received: Int64 = 0
    private var total: Int64?

    init(_ verb: String = "downloaded") { self.verb = verb }

    /// A download that failed leaves its line drawn: cleared, so that the one error line
    /// starts a line of its own.
    deinit { if terminal && lastDrawn >= 0 { writeStandardError("\r\u{1b}[K") } }

    func update(_ received: Int64, _ total: Int64?) {
        self.received = received
        self.total = total
        guard terminal else { return }
        let now = monotonicSeconds()
        if now - lastDrawn >= 0.1 || received == total {
            lastDrawn = now
            writeStandardError("\r\u{1b}[K" + line(now))
        }
    }

    /// The line for the log: what was downloaded (or uploaded), how fast.
    func finish() -> String {
        if terminal && lastDrawn >= 0 { writeStandardError("\r\u{1b}[K") }
        lastDrawn = -1
        return line(monotonicSeconds())
    }

    private func line(_ now: Double) -> String {
        let rate = Double(received) / max(now - start, 0.001)
        var text = verb + " " + byteCount(received)
        if let total, total > 0 {
            text += " of \(byteCount(total)) (\(received * 100 / total)%)"
        }
        return text + ", \(byteCount(Int64(rate)))/s"
    }
}

func byteCount(_ bytes: Int64) -> String {
    if bytes < 1024 { return "\(bytes) B" }
    let units = ["KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    let tenths = Int((value * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[unit])"
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}
