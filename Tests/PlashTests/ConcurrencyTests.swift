import Foundation
import PlashTestSupport
import Testing

/// Builds running at the same time share one store safely.
@Suite struct ConcurrencyTests {
    @Test func twoIdenticalBuildsAtOncePrintTheSameIdAndMakeOneLayer() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let build = ["build", "--from", "busybox", "--run", "sleep 0.3; touch /file"]
        let results = runConcurrently([{ try store.plash(build) }, { try store.plash(build) }])
        #expect(results.allSatisfy { $0.status == 0 }, "\(results)")
        #expect(results[0].stdout == "2\n")
        #expect(results[1].stdout == "2\n")
        #expect(store.indexedIDs == [1, 2])
        #expect(try store.nodes == ["./1", "./1/2"])
    }

    /// The first commands of a store that does not exist yet, at once: each creates it or
    /// waits for it, none finds it half made (index/ there, tmp/ for the locks not yet).
    @Test func importsAtOnceIntoAStoreThatDoesNotExistYetAllSucceed() throws {
        for _ in 0..<5 {
            let store = TestStore()
            let results = runConcurrently((0..<8).map { _ in { try store.plash(["import", "busybox"]) } })
            #expect(results.allSatisfy { $0.status == 0 && $0.stdout == "1\n" }, "\(results.filter { $0.status != 0 })")
            #expect(store.indexedIDs == [1])
        }
    }

    /// The tests' own Child: finished twice (a server stopped by a test and by its
    /// defer), it leaves alone the descriptor that now has its stdout's number.
    @Test func aChildFinishedTwiceClosesNoOtherDescriptor() throws {
        let child = try Child("/bin/true", [])
        _ = child.finish()
        var opened: [Int32] = []
        defer { opened.forEach { close($0) } }
        while opened.count < 100, !opened.contains(child.stdout) { opened.append(open("/dev/null", O_RDONLY | O_CLOEXEC)) }
        guard opened.contains(child.stdout) else { return }   // another thread took the number: nothing to see
        _ = child.finish()
        #expect(fcntl(child.stdout, F_GETFD) != -1, "the second finish closed descriptor \(child.stdout)")
    }

    @Test func twentyDifferentBuildsInParallelGetTwentyIdsAndAConsistentStore() throws {
        let store = TestStore()
        _ = try store.id(["import", "busybox"])
        let results = runConcurrently((0..<20).map { n in
            { try store.plash(["build", "--from", "busybox", "--run", "echo \(n) > /n"]) }
        })
        #expect(results.allSatisfy { $0.status == 0 }, "\(results.filter { $0.status != 0 })")
        let ids = results.compactMap { Int($0.stdout.trimmingCharacters(in: .newlines)) }
        #expect(Set(ids) == Set(2...21))
        #expect(store.indexedIDs == Array(1...21))
        #expect(try store.nodes.count == 21)
        #expect(store.stagingDirectories == [])
        for (n, id) in ids.enumerated() {
            #expect(try store.plash(["run", "\(id)", "--", "cat", "/n"]).stdout == "\(n)\n")
        }
    }
}
