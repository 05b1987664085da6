// swift-tools-version:6.0
import PackageDescription

// The binaries are linked as static executables: no dynamic loader, no shared Swift
// runtime to map, so they start in about a millisecond (see docs/performance.md).
// Foundation needs its support libraries named explicitly for a static link, and lld,
// which unlike ld resolves them in any order (and lays out code in a given order, below).
// libcrypto's CPU probe waits for its first use rather than running before main
// (Sources/CPlashShims/shims.c).
// Release builds lay out the code that plash and plash-exec run before their execve
// together, in the order of Sources/startup.order (written by scripts/startup-order): the
// kernel maps the 64 KiB around each page fault on the binary, so code spread over the
// text costs memory (docs/performance.md). Names lld no longer finds are skipped: a stale
// order costs memory, never the build.
let packageDirectory = String(#filePath.dropLast("/Package.swift".count))
let startupOrder: LinkerSetting = .unsafeFlags([
    "-Xlinker", "--symbol-ordering-file=\(packageDirectory)/Sources/startup.order",
    "-Xlinker", "--no-warn-symbol-ordering",
], .when(configuration: .release))
// Release builds get each generic type's metadata (an array's storage, an optional) by
// calling its accessor, not by demangling its name at first use: the runtime's demangler
// cost plash-exec's start about a tenth of a millisecond.
let directMetadata: [SwiftSetting] = [.unsafeFlags([
    "-Xfrontend", "-disable-concrete-type-metadata-mangled-name-accessors",
], .when(configuration: .release))]
let staticExecutable: [LinkerSetting] = [
    .unsafeFlags(["-static-executable", "-use-ld=lld", "-Xlinker", "--wrap=OPENSSL_cpuid_setup"]), startupOrder,
]
let staticFoundation: [LinkerSetting] = [startupOrder, .unsafeFlags([
    "-static-executable", "-use-ld=lld", "-Xlinker", "--wrap=OPENSSL_cpuid_setup",
    "-lFoundation", "-lFoundationEssentials", "-lFoundationInternationalization",
    "-l_FoundationCShims", "-l_FoundationCollections", "-l_FoundationICU",
    "-lCoreFoundation", "-lswiftSynchronization", "-lswiftDispatch", "-lstdc++", "-lm",
])]

let package = Package(
    name: "plash",
    products: [
        .executable(name: "plash-exec", targets: ["plash-exec"]),
        .executable(name: "plash", targets: ["plash"]),
        .executable(name: "plash-builder", targets: ["plash-builder"]),
    ],
    targets: [
        .target(name: "CPlashShims"),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        // OpenSSL's SHA-256 (libcrypto.a): fast, maintained, and no package to fetch.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(name: "PlashSystem", dependencies: ["CPlashShims", "CSeccomp", "COpenSSL"], swiftSettings: directMetadata),
        .target(name: "PlashExec", dependencies: ["PlashSystem"], swiftSettings: directMetadata),
        // The tar reader's C side: decompressors, linked from the static libraries of Debian's
        // zlib1g-dev, liblzma-dev, libzstd-dev and libbz2-dev: no gzip or xz processes.
        .target(name: "CArchive", linkerSettings: [
            .linkedLibrary("z"), .linkedLibrary("lzma"), .linkedLibrary("zstd"), .linkedLibrary("bz2"),
        ]),
        .executableTarget(name: "plash-exec", dependencies: ["PlashExec"], swiftSettings: directMetadata,
                          linkerSettings: staticExecutable),
        // TLS for downloads (libssl.a): reached only by the commands that import images.
        .systemLibrary(name: "CTLS", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "PlashKit", dependencies: ["PlashSystem", "PlashExec", "CArchive", "CTLS"], swiftSettings: directMetadata),
        // plash: `plash run` of a stored image with plash-exec's code alone, so it starts
        // as fast; every other command it hands over to plash-builder (Sources/plash/main.swift).
        .executableTarget(name: "plash", dependencies: ["PlashExec"], swiftSettings: directMetadata,
                          linkerSettings: staticExecutable),
        // plash-builder parses its own arguments: the macro language is ordered words that
        // no option parser models.
        .executableTarget(name: "plash-builder", dependencies: ["PlashKit"], swiftSettings: directMetadata,
                          linkerSettings: staticFoundation),
        // What every test target shares (Tests/README.md): running processes with a deadline,
        // scratch directories, stores, the probe, test users, servers and registries.
        .target(name: "PlashTestSupport", path: "Tests/Support"),
        // Unit tests: the libraries' code called in-process (parsers, plans, cache keys,
        // tar headers, error text), and the test helpers' own guards (SupportTests); they
        // run no built binary.
        .testTarget(name: "PlashExecTests", dependencies: ["PlashExec", "PlashTestSupport"]),
        .testTarget(name: "PlashKitTests", dependencies: ["PlashKit", "PlashTestSupport"]),
        .testTarget(name: "SupportTests", dependencies: ["PlashTestSupport"]),
        // End-to-end tests: they run the built binaries as root and as test users (`swift
        // build` first, see scripts/test): ShimTests drive plash-exec, PlashTests plash,
        // SupervisorTests both under s6, runit and supervisord. They cannot depend
        // on the executable targets: their static link flags would apply to the test bundle too.
        .testTarget(name: "ShimTests", dependencies: ["PlashExec", "PlashTestSupport"]),
        .testTarget(name: "PlashTests", dependencies: ["PlashKit", "PlashTestSupport"]),
        .testTarget(name: "SupervisorTests", dependencies: ["PlashTestSupport"]),
    ]
)
