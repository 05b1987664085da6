import PlashKit
import Testing

/// plash doctor's kernel line names what an older kernel lacks, with the release that
/// has it, as plash's own failures there do (docs/install.md, "Kernels").
@Suite struct KernelFindingTests {
    @Test func beforeLinux5_6DoctorSaysPlashCannotRun() {
        let finding = kernelFinding(release: "5.4.0-42-generic", root: true)
        #expect(finding == Finding(.failure, "kernel", "Linux 5.4.0-42-generic has no openat2: plash needs Linux 5.6 or later",
                                   fix: "boot Linux 5.6 or later"))
    }

    @Test func beforeLinux5_12DoctorWarnsOfIsolateAndReadOnlyBinds() {
        let finding = kernelFinding(release: "5.10.0-30-amd64", root: true)
        #expect(finding.level == .warning && finding.detail.hasPrefix("Linux 5.10.0-30-amd64 has no mount_setattr: --isolate"), "\(finding)")
        #expect(finding.fix == "boot Linux 5.12 or later")
    }

    @Test func fromLinux5_12RootLacksNothing() {
        #expect(kernelFinding(release: "5.12.0", root: true) == Finding(.ok, "kernel", "Linux 5.12.0"))
        #expect(kernelFinding(release: "6.1.0-13-amd64", root: false) == Finding(.ok, "kernel", "Linux 6.1.0-13-amd64"))
    }
}
