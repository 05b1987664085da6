import Foundation
import PlashTestSupport
import Testing

/// Containers in a shell pipeline behave like the programs they run.
@Suite struct PipeTests {
    @Test func aMillionNumbersFlowThroughTwoContainers() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        let result = try shell("seq 1 1000000 | \"$PLASH\" run \(id) -- sort -n | \"$PLASH\" run \(id) -- tail -1",
                               environment: store.environment.merging(["PLASH": plash]) { $1 })
        #expect(result.stdout == "1000000\n", "\(result)")
        #expect(result.status == 0)
    }

    @Test func aWriterWhoseReaderClosedEndsBySigpipeAsWithoutPlash() throws {
        let store = TestStore()
        let id = try store.id(["build", "--from", "busybox"])
        let result = try shell("""
            yes | head -1; echo "plain ${PIPESTATUS[0]}"
            "$PLASH" run \(id) -- yes | head -1; echo "plash ${PIPESTATUS[0]}"
            """, environment: store.environment.merging(["PLASH": plash]) { $1 })
        #expect(result.stdout == "y\nplain 141\ny\nplash 141\n", "\(result)")
    }
}
