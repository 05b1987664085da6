import Foundation
import PlashTestSupport
import Testing

/// The build cache: same inputs, same id, nothing run.
@Suite struct CacheTests {
    @Test func unchangedInputsGiveTheSameIdWithoutRunningAnything() throws {
        let store = TestStore()
        let dir = makeDirectory()
        let build = ["build", "--from", "busybox", "--run", "echo ran >> /count"]
        let first = try store.plash(build, directory: dir)
        #expect(first.stderr.contains("--> echo ran >> /count\n"), "\(first)")
        let second = try store.plash(build, directory: dir)
        #expect(second.stdout == first.stdout)
        #expect(second.stderr == "")
        #expect(try store.plash(["run", "2", "--", "cat", "/count"]).stdout == "ran\n")
    }

    @Test func aChangedHashPathFileGivesANewId() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try "one".write(toFile: dir + "/input", atomically: true, encoding: .utf8)
        let build = ["build", "--from", "busybox", "--hash-path", "input", "--run", "cat input > /copy"]
        let first = try store.id(build, directory: dir)
        #expect(try store.id(build, directory: dir) == first)
        try "two".write(toFile: dir + "/input", atomically: true, encoding: .utf8)
        let second = try store.id(build, directory: dir)
        #expect(second != first)
        let copy = try store.plash(["run", second, "--", "cat", "/copy"])
        #expect(copy.stdout == "two")
    }

    @Test func aHashPathDirectoryCountsEveryFileBelowIt() throws {
        let store = TestStore()
        let dir = makeDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/src/sub", withIntermediateDirectories: true)
        try "a".write(toFile: dir + "/src/sub/file", atomically: true, encoding: .utf8)
        let build = ["build", "--from", "busybox", "--hash-path", dir + "/src", "--run", "true"]
        let first = try store.id(build)
        try "b".write(toFile: dir + "/src/sub/file", atomically: true, encoding: .utf8)
        #expect(try store.id(build) != first)
    }

    @Test func invalidateLayerGivesANewIdEveryTime() throws {
        let store = TestStore()
        let build = ["build", "--from", "busybox", "--invalidate-layer", "--run", "true"]
        let ids = try (0..<3).map { _ in try store.id(build) }
        #expect(Set(ids).count == 3)
    }

    @Test func aLayerAfterAnInvalidatedOneIsRebuiltToo() throws {
        let store = TestStore()
        let build = ["build", "--from", "busybox", "--run", "touch /a", "--invalidate-layer", "--layer", "--run", "touch /b"]
        #expect(try store.id(build) != store.id(build))
    }

    @Test func eachLayerIsCachedOnItsOwn() throws {
        let store = TestStore()
        let lower = try store.id(["build", "--from", "busybox", "--run", "touch /a"])
        let top = try store.id(["build", "--from", "busybox", "--run", "touch /a", "--layer", "--run", "touch /b"])
        #expect(try store.plash(["parent", top]).stdout == lower + "\n")
    }

    @Test func aHashPathThatDoesNotExistFailsTheBuild() throws {
        let store = TestStore()
        let result = try store.plash(["build", "--from", "busybox", "--hash-path", "/nonexistent", "--run", "true"])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").last?.hasPrefix("plash: --hash-path /nonexistent:") == true)
    }
}
