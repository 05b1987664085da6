#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

/// `plash import-tar FILE|-`: a root filesystem from a tar archive (plain, gzip, xz,
/// zstd or bzip2, told by their magic bytes), read and extracted in one pass by plash
/// itself (TarReader, TarExtractor) into a staging directory, which becomes the image
/// only when every entry is in place. Owners, modes, links, device nodes (where the
/// process may make them) and capabilities are kept.
public func importTar(_ file: String, store: Store, log: (String) -> Void) throws -> Store.Image {
    let shown = file == "-" ? "stdin" : file
    let staging = try store.makeStaging("import")
    do {
        let fd = file == "-" ? 0 : try check(open(file, O_RDONLY | O_CLOEXEC), "open", file)
        defer { if fd != 0 { close(fd) } }
        log("--> import-tar \(shown)")
        try check(mkdir(staging.data, 0o755), "create", staging.data)
        let root = try check(open(staging.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC), "open", staging.data)
        defer { close(root) }
        var reader = TarReader(try ArchiveInput(fd: fd))
        var extractor = TarExtractor(root: root)
        try extractor.extractAll(&reader)
        log("\(reader.entries) entries")
        if extractor.skippedDevices > 0 {
            log("skipped \(extractor.skippedDevices) device nodes: only root may create them")
        }
        if extractor.unmappedOwners > 0 {
            log("\(extractor.unmappedOwners) entries are owned by you: their owners have no id here "
                + "(no subordinate ids in /etc/subuid, see docs/unprivileged.md)")
        }
        log("--:")
        return try store.publish(staging, parentNode: store.rootNode, script: "import-tar \(shown)", key: nil)
    } catch {
        try? removeTree(staging.path)
        throw error.context("import-tar \(shown)")
    }
}

