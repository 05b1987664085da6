@testable import PlashKit
import Testing

/// A pull picks the index entry for this machine, in the image-spec's names (uname's
/// x86_64 is amd64, aarch64 arm64, armv7l arm/v7), not always linux/amd64; an entry
/// without a variant fits any variant of its architecture.
@Test func theMachinesPlatformIsNamedAsTheImageSpecNamesIt() {
    let expected = ["x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7l": "linux/arm/v7", "ppc64le": "linux/ppc64le",
                    "s390x": "linux/s390x", "riscv64": "linux/riscv64"][machineName()]
    #expect(expected == nil || OCIPlatform.machine.description == expected, "\(machineName()): \(OCIPlatform.machine.description)")

    let arm7 = OCIPlatform(architecture: "arm", os: "linux", variant: "v7")
    #expect(arm7.runs(OCIPlatform(architecture: "arm", os: "linux", variant: "v7")))
    #expect(arm7.runs(OCIPlatform(architecture: "arm", os: "linux")))
    #expect(!arm7.runs(OCIPlatform(architecture: "arm", os: "linux", variant: "v6")))
    #expect(!arm7.runs(OCIPlatform(architecture: "arm64", os: "linux")))
    #expect(!arm7.runs(OCIPlatform(architecture: "arm", os: "windows", variant: "v7")))
    #expect(!arm7.runs(nil))
}
