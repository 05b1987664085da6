import PlashKit
import Testing

@Test func imageUsageCountsSharedLayersAndChildren() {
    // 1 <- 2 <- 3, 1 <- 4
    let usage = imageUsage([1: (0, 100), 2: (1, 10), 3: (2, 1), 4: (1, 1000)])
    #expect(usage.map { [Int64($0.id), $0.layer, $0.total, $0.unique, $0.shared, $0.removal] } == [
        [1, 100, 100, 0, 100, 1111],
        [2, 10, 110, 0, 110, 11],
        [3, 1, 111, 1, 110, 1],
        [4, 1000, 1100, 1000, 100, 1000],
    ])
}
