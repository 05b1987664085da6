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
}
