/// The values PLASH_OVERLAY takes (docs/plash.md, "Environment"): `fuse` mounts the root
/// with fuse-overlayfs, `lowerdir` with one mount(2) naming every layer; unset or empty,
/// what the kernel offers. Mount.swift and RootFilesystem.swift read it.
public let overlaySettings = ["fuse", "lowerdir"]

/// plash and plash-exec check it as they start: any other value (`PLASH_OVERLAY=fuse-overlayfs`)
/// is said at once rather than taken silently for the default.
public func checkOverlaySetting() throws {
    if let value = environment("PLASH_OVERLAY"), !value.isEmpty, !overlaySettings.contains(value) {
        let values = overlaySettings.joined(separator: " or ")
        throw PlashError.usage("PLASH_OVERLAY=\(value): not \(values) (unset it for the default)")
    }
}
