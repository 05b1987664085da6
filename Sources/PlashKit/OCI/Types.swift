#if canImport(Glibc)
import Glibc
#endif
import FoundationEssentials
import PlashSystem

// The OCI image-spec's vocabulary (and Docker's manifest v2, which it grew from), as
// every importer, exporter and the registry client read and write it.

/// The media types plash reads and writes.
enum MediaType {
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let ociConfig = "application/vnd.oci.image.config.v1+json"
    static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let ociLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    /// The manifest types a registry may answer with: all four are always asked for, since
    /// without them registries downgrade a Docker manifest to schema1 or 404 an OCI one.
    static let manifests = [ociIndex, ociManifest, dockerManifestList, dockerManifest]

    /// An index of images for several platforms (OCI's index, Docker's manifest list).
    static func isIndex(_ type: String) -> Bool {
        type.hasSuffix("image.index.v1+json") || type.hasSuffix("manifest.list.v2+json")
    }

    /// One image's manifest (OCI's, Docker's v2).
    static func isImageManifest(_ type: String) -> Bool {
        type.hasSuffix("image.manifest.v1+json") || type.hasSuffix("manifest.v2+json")
    }
}

/// An OCI content descriptor (image-spec descriptor.md).
struct OCIDescriptor: Codable {
    var mediaType: String
    var digest: String
    var size: Int
    var platform: OCIPlatform? = nil
    var annotations: [String: String]? = nil
}

struct OCIIndex: Codable {
    var schemaVersion = 2
    var mediaType: String? = MediaType.ociIndex
    var manifests: [OCIDescriptor]
}

struct OCIManifest: Codable {
    var schemaVersion = 2
    var mediaType: String? = MediaType.ociManifest
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
}

struct OCIConfig: Codable {
    struct RootFS: Codable {
        var type = "layers"
        var diff_ids: [String]
    }
    /// What import needs of a config: its layers' diff_ids.
    struct RootFSOnly: Decodable {
        var rootfs: RootFS
    }
    var created: String
    var author: String?
    var architecture = OCIPlatform.machine.architecture
    var variant = OCIPlatform.machine.variant
    var os = "linux"
    var config: ImageConfig.Settings
    var rootfs: RootFS
    var history: [ImageConfig.History]
}

/// A manifest's own `mediaType`, for a registry that answers with a generic type.
struct MediaTypeOnly: Decodable { var mediaType: String? }

/// The annotation that names an image in an OCI layout's index (`DIR:TAG`).
let ociRefNameAnnotation = "org.opencontainers.image.ref.name"

/// JSON as plash writes it into blobs: keys sorted, so the same value is the same digest.
func ociJSON<T: Encodable>(_ value: T) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Array(try encoder.encode(value))
}

func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], _ what: String) throws -> T {
    do { return try JSONDecoder().decode(type, from: Data(bytes)) } catch {
        throw PlashError.failure("\(what): not the JSON an image has")
    }
}
