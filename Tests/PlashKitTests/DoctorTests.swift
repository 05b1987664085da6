import PlashKit
import Testing

@Test func kernelVersionsParse() {
    #expect(kernelVersion("6.1.0-13-amd64")! == (6, 1))
    #expect(kernelVersion("5.10.0")! == (5, 10))
    #expect(kernelVersion("garbage") == nil)
}

@Test func theSuggestedSubordinateRangeIsOneNoOtherUserHolds() {
    #expect(freeSubordinateRange(taken: []) == 100_000)
    #expect(freeSubordinateRange(taken: subordinateRanges("alice:100000:65536\n")) == 165_536)
    // Overlapping the start, inside, in any order; a range below 100000 is no obstacle.
    #expect(freeSubordinateRange(taken: subordinateRanges("c:300000:10\nb:165536:65536\na:90000:20000\nd:1000:5\n")) == 231_072)
    #expect(freeSubordinateRange(taken: subordinateRanges("a:231071:1\nb:100000:65536\n")) == 231_072)
    #expect(freeSubordinateRange(taken: subordinateRanges("a:200000:65536\n")) == 100_000)
    #expect(subordinateRanges("bad\na:b:c\nz:5:0\nok:7:8") .map { "\($0.start):\($0.count)" } == ["7:8"])
}
