#if canImport(Glibc)
import Glibc
#endif
import PlashSystem

/// uname's machine: x86_64, aarch64, ...
func machineName() -> String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: &names.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
}

/// What each uname machine is called by the image-spec (Go's GOARCH and variant) and by
/// Debian (dpkg's architecture, which LXC image servers use too). A machine not listed
/// keeps its own name in both.
let architectureNames: [String: (oci: String, variant: String?, debian: String)] = [
    "x86_64": ("amd64", nil, "amd64"), "aarch64": ("arm64", nil, "arm64"), "armv7l": ("arm", "v7", "armhf"),
    "armv6l": ("arm", "v6", "armel"), "i686": ("386", nil, "i386"), "i386": ("386", nil, "i386"),
    "ppc64le": ("ppc64le", nil, "ppc64el"), "s390x": ("s390x", nil, "s390x"), "riscv64": ("riscv64", nil, "riscv64"),
]

/// This machine's architecture as Debian and image servers name it.
func debianArchitecture() -> String {
    let machine = machineName()
    return architectureNames[machine]?.debian ?? machine
}

struct OCIPlatform: Codable {
    var architecture: String
    var os: String
    var variant: String? = nil

    /// This machine, in the image-spec's (Go's) names: what a pull picks from a
    /// multi-platform index, and what an export's config says it runs on.
    static let machine: OCIPlatform = {
        let machine = machineName()
        let names = architectureNames[machine]
        return OCIPlatform(architecture: names?.oci ?? machine, os: "linux", variant: names?.variant)
    }()

    /// Whether an index entry's platform runs here; an entry without a variant fits any.
    func runs(_ other: OCIPlatform?) -> Bool {
        guard let other, other.os == os, other.architecture == architecture else { return false }
        return other.variant == nil || variant == nil || other.variant == variant
    }

    var description: String { "\(os)/\(architecture)" + (variant.map { "/" + $0 } ?? "") }
}
