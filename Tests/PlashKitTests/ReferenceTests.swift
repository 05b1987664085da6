import Foundation
@testable import PlashKit
import PlashSystem
import Testing

/// One reference grammar (OCI/Reference.swift) for pull, push, --from-docker and the
/// tags of docker archives; one maker of cache keys (CacheKey), whose keys stay the
/// bytes they were, so that existing stores keep their caches.
@Suite struct ReferenceTests {
    @Test func pullAndDockerArchiveTagsRefuseAndTakeTheSameReferences() throws {
        let refused = ["bad_host.x/a", "host:port/x", "host:/a", "[::1/a", "[zz]:5000/a", String(repeating: "a", count: 256),
                       "a/" + String(repeating: "b", count: 254), "Alpine", "a//b", "a:", "a:-x", "a:.x", "a___b"]
        for reference in refused {
            #expect(throws: PlashError.self, "\(reference)") { try RegistryReference(reference) }
            #expect(dockerReference(reference) == nil, "\(reference)")
        }
        let taken = ["[::1]:5000/a", "localhost:5000/a:_T.1-x", "my-host.example/a", String(repeating: "a", count: 255),
                     "a__b", "a---b/c", "x/a.b-c_d"]
        for reference in taken {
            #expect((try? RegistryReference(reference)) != nil, "\(reference)")
            #expect(dockerReference(reference) != nil, "\(reference)")
        }
        // A digest pins what is pulled; a tag of a docker archive names none.
        let pinned = "a@sha256:" + String(repeating: "ab", count: 32)
        #expect((try? RegistryReference(pinned)) != nil)
        #expect(dockerReference(pinned) == nil)
    }

    @Test func theSourcesCacheKeysAreTheBytesTheyWere() throws {
        func sha(_ text: String) -> String {
            var hash = SHA256()
            hash.update(text)
            return hash.hexDigest()
        }
        #expect(urlKey("http://h/r.tar") == sha("plash import-url 1\0http://h/r.tar\0"))
        #expect(debootstrapKey("bookworm", mirror: nil) == sha("plash import-debootstrap 1\0bookworm\0\0"))
        #expect(debootstrapKey("noble", mirror: "http://m/") == sha("plash import-debootstrap 1\0noble\0http://m/\0"))
        #expect(try RegistryReference("alpine:3.19").cacheKey == sha("plash import-docker reference 1\0docker.io\0library/alpine\0" + "3.19\0"))
        #expect(lxcReferenceKey("alpine:3.23") == sha("plash import-lxc reference 1\0\(lxcServer)\0alpine:3.23\0"))
        #expect(CacheKey.layerChain(parent: "", diffID: "sha256:ab") == sha("oci-layer\n\nsha256:ab"))
        #expect(seccompProgramName(profile: Array("p".utf8), program: Array("b".utf8)) == sha("plash seccomp 1\0" + "1\0pb") + ".bpf")
        #expect(seccompIndexPath(Array("p".utf8), store: "/s") == "/s/seccomp/" + sha("plash seccomp profile 2\0p"))
    }

    @Test func aCacheKeysFieldsCannotRunIntoEachOther() {
        #expect(CacheKey.of("k", "a", "bc") != CacheKey.of("k", "ab", "c"))
        #expect(CacheKey.of("k", "a") != CacheKey.of("k", version: 2, "a"))
        #expect(CacheKey.of("k", "a") != CacheKey.of("l", "a"))
    }

    @Test func referencesReadAsDockerReadsThem() throws {
        let alpine = try RegistryReference("alpine")
        #expect(alpine.registry == "docker.io" && alpine.repository == "library/alpine" && alpine.tag == "latest" && alpine.digest == nil)
        let tagged = try RegistryReference("alpine:3.19")
        #expect(tagged.repository == "library/alpine" && tagged.tag == "3.19")
        let local = try RegistryReference("127.0.0.1:5000/o/n:t")
        #expect(local.registry == "127.0.0.1:5000" && local.repository == "o/n" && local.tag == "t")
        let user = try RegistryReference("someone/tool")
        #expect(user.registry == "docker.io" && user.repository == "someone/tool")
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let pinned = try RegistryReference("ghcr.io/o/n@" + digest)
        #expect(pinned.registry == "ghcr.io" && pinned.repository == "o/n" && pinned.tag == nil && pinned.digest == digest)
        for bad in ["Alpine", "alpine:", "a//b", "alpine@sha256:12", "ghcr.io/", "", "o/n:-x", "o/n:.x", "o/a..b", "o/a-", "o/a_", "o/a___b"] {
            #expect(throws: (any Error).self, "\(bad)") { try RegistryReference(bad) }
        }
    }
}
