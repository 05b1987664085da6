import Foundation
@testable import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// The store's one "make once" sequence (Store.makeOnce): cached, lock, cached, staging,
/// publish, the staging removed.
@Suite struct MakeOnceTests {
    struct Failed: Error {}

    func newStore() throws -> Store {
        let store = Store(path: makeDirectory("once") + "/store")
        try store.create()
        return store
    }

    func publish(_ staging: Staging, _ store: Store, key: String) throws -> Store.Image {
        #expect(mkdir(staging.data, 0o755) == 0)
        return try store.publish(staging, parentNode: store.rootNode, script: "test", key: key)
    }

    @Test func aFailedMakeLeavesNoStagingNoImageAndNoCacheEntry() throws {
        let store = try newStore()
        #expect(throws: Failed.self) {
            try store.makeOnce("k") { staging in
                #expect(mkdir(staging.data, 0o755) == 0)
                throw Failed()
            }
        }
        #expect(store.cached("k") == nil && store.images().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }

    @Test func aKeyIsMadeOnceAndAgainOnlyWhenRefreshed() throws {
        let store = try newStore()
        var made = 0
        let make = { (staging: Staging) throws -> Store.Image in
            made += 1
            return try publish(staging, store, key: "k")
        }
        let first = try store.makeOnce("k", make)
        #expect(try store.makeOnce("k", make) == first && made == 1)
        let again = try store.makeOnce("k", refresh: true, make)
        #expect(made == 2 && again != first && store.cached("k") == again)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }

    /// A download area (a pull's) is made in the staging too, and goes with it.
    @Test func whatAMakeLeavesInItsStagingIsRemoved() throws {
        let store = try newStore()
        let other = try store.makeOnce("base") { try publish($0, store, key: "base") }
        _ = try store.makeOnce("k") { staging in
            #expect(mkdir(staging.path + "/downloads", 0o700) == 0)
            return other
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.tmp) == [])
    }

    /// Two identical builds started at once build once: the second, which missed the
    /// cache before the first took the key's lock, looks again once it holds the lock and
    /// finds what the first made. The test is the first builder: it holds the lock, waits
    /// until the kernel shows the second one blocked on it (/proc/locks), publishes, and
    /// releases.
    @Test func aMakeThatWaitedForTheKeysLockFindsWhatTheHolderMade() throws {
        let store = try newStore()
        let lock = try store.lockKey("k")
        let lockFile = try #require(try? FileManager.default.attributesOfItem(atPath: store.tmp + "/key-k.lock"))
        let inode = (lockFile[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0

        final class Outcome: @unchecked Sendable { var made = 0, image: Store.Image?, error: (any Error)? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do {
                outcome.image = try store.makeOnce("k") { staging in
                    outcome.made += 1
                    return try self.publish(staging, store, key: "k")
                }
            } catch { outcome.error = error }
            done.signal()
        }
        // The waiter shows in /proc/locks as a "->" line on the lock file's inode.
        let start = Date()
        func waiting() -> Bool {
            let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
            return locks.split(separator: "\n").contains { $0.contains("->") && $0.contains(":\(inode) ") }
        }
        while !waiting() {
            try #require(Date().timeIntervalSince(start) < defaultDeadline, "makeOnce never waited on the key's lock")
            usleep(1000)
        }
        let holders = try store.withStaging("import") { try publish($0, store, key: "k") }
        lock.releaseAndRemove()
        try #require(done.wait(timeout: .now() + defaultDeadline) == .success, "makeOnce did not return")
        #expect(outcome.error == nil)
        #expect(outcome.made == 0 && outcome.image == holders && store.images().count == 1)
    }
}
