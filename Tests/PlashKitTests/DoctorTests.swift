import PlashKit
import Testing

@Test func kernelVersionsParse() {
    #expect(kernelVersion("6.1.0-13-amd64")! == (6, 1))
    #expect(kernelVersion("5.10.0")! == (5, 10))
    #expect(kernelVersion("garbage") == nil)
}
