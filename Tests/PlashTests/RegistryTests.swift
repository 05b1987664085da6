import Foundation
import PlashKit
import PlashTestSupport
import Testing

/// import-docker and --from-docker against Debian's docker-registry on 127.0.0.1, filled
/// by skopeo from OCI layouts that plash export-oci writes in another store.
@Suite struct RegistryTests {
    @Test func aStringThatIsNoReferenceIsAUsageErrorOfImportDockerAndPull() throws {
        let usage = try TestStore().plash(["import-docker", "Alpine"])
        #expect(usage.status == 2 && usage.stderr.hasPrefix("plash: import-docker: Alpine: not a registry reference"), "\(usage)")
        let pull = try TestStore().plash(["pull", "Alpine"])
        #expect(pull.status == 2 && pull.stderr.hasPrefix("plash: pull: Alpine: not a registry reference")
                && pull.stderr.hasSuffix("\nUsage: plash pull REF\n"), "\(pull)")
    }

    @Test func aPulledImageIsTheLayoutsTreeSharesItsLayersAndIsPulledOnce() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir) = try exportedLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/deletions:1")
        let pulled = try second.plash(["import-docker", registry.host + "/plash/deletions:1"])
        #expect(pulled.status == 0 && pulled.stderr.contains("download layer 3/3"), "\(pulled)")
        let imported = pulled.stdout.trimmingCharacters(in: .newlines)
        #expect(try rootListing(first, id) == rootListing(second, imported))
        // The layout imported directly lands on the same layers.
        #expect(try second.id(["import-oci", dir + "/layout:t"]) == imported)
        #expect(second.indexedIDs.count == 3)

        // Resolved once: with the registry gone, the reference and the macro still work.
        registry.stop()
        let again = try second.plash(["import-docker", registry.host + "/plash/deletions:1"])
        #expect(again.status == 0 && again.stdout == imported + "\n" && !again.stderr.contains("download"), "\(again)")
        let built = try second.plash(["build", "--from-docker", registry.host + "/plash/deletions:1", "--run", "cat /d/n"])
        #expect(built.status == 0 && built.stderr.contains("new"), "\(built)")
        // --refresh asks the registry again, which is gone: one line, exit 1.
        let refreshed = try second.plash(["import-docker", "--refresh", registry.host + "/plash/deletions:1"])
        #expect(refreshed.status == 1 && refreshed.stderr.hasPrefix("plash: import-docker \(registry.host)/plash/deletions:1: "),
                "\(refreshed)")
        #expect(refreshed.stderr.split(separator: "\n").count == 1, "\(refreshed)")
    }

    @Test func refreshDownloadsOnlyTheLayersThatChanged() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir) = try exportedLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/moving:latest")
        let old = try second.id(["import-docker", registry.host + "/plash/moving"])
        // The same tag now names one more layer on top.
        let newer = try first.id(["build", "--from", id, "--run", "echo three > /three"])
        #expect(try first.plash(["export-oci", newer, dir + "/newer", "--tag", "t"]).status == 0)
        try registry.push(dir + "/newer", tag: "t", as: "plash/moving:latest")
        #expect(try second.id(["import-docker", registry.host + "/plash/moving"]) == old)
        let refreshed = try second.plash(["import-docker", "--refresh", registry.host + "/plash/moving"])
        #expect(refreshed.status == 0, "\(refreshed)")
        #expect(refreshed.stderr.contains("download layer 4/4") && !refreshed.stderr.contains("download layer 3/4"), "\(refreshed)")
        let current = refreshed.stdout.trimmingCharacters(in: .newlines)
        #expect(current != old && second.indexedIDs.count == 4)
        #expect(try rootListing(first, newer) == rootListing(second, current))
        // And it is what the reference means from now on.
        #expect(try second.id(["import-docker", registry.host + "/plash/moving:latest"]) == current)
    }

    /// The digests of the layers (bottom first) and of the config of the layout's image.
    func blobDigests(_ layout: String) throws -> (layers: [String], config: String) {
        func json(_ path: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        }
        func blob(_ digest: String) -> String { layout + "/blobs/sha256/" + digest.dropFirst(7) }
        let index = try json(layout + "/index.json")
        let manifestDigest = ((index["manifests"] as? [[String: Any]])?.first?["digest"] as? String) ?? ""
        let manifest = try json(blob(manifestDigest))
        let layers = (manifest["layers"] as? [[String: Any]] ?? []).compactMap { $0["digest"] as? String }
        return (layers, (manifest["config"] as? [String: Any])?["digest"] as? String ?? "")
    }

    /// The requests the registry has answered, oldest first, as `METHOD PATH`. The access
    /// log is written after the answer: a marker request sent now is waited for in it
    /// (and left out), so what was asked before it is there too.
    func requests(_ registry: RegistryServer) -> [String] {
        let marker = "/v2/?plash-marker=\(UUID().uuidString)"
        _ = httpResponse(port: registry.port, path: marker)
        _ = waitUntil { registry.log.contains(marker) }
        return registry.log.split(separator: "\n").compactMap { line in
            guard let quote = line.firstIndex(of: "\"") else { return nil }
            let parts = line[line.index(after: quote)...].prefix { $0 != "\"" }.split(separator: " ")
            guard parts.count == 3, parts[2].hasPrefix("HTTP/"), !parts[1].contains("plash-marker") else { return nil }
            return parts[0] + " " + parts[1]
        }
    }

    /// What the registry answered since `start` (a count of its requests): the manifest
    /// and the blob GETs.
    func pulls(_ registry: RegistryServer, since start: Int) -> (manifests: [String], blobs: [String]) {
        let requests = requests(registry).dropFirst(start).filter { $0.hasPrefix("GET ") }
        return (requests.filter { $0.contains("/manifests/") }, requests.filter { $0.contains("/blobs/") })
    }

    /// Counted in the registry's own access log: a second --from-docker asks nothing; a
    /// pull of a tag that did not move downloads no blob; a pull after the tag moved to
    /// an image on the same base downloads the new layer and config only, and the new
    /// image stands on the base's plash layer.
    @Test func aReferenceIsAskedForOnceAndAPullDownloadsOnlyWhatChanged() throws {
        let first = TestStore(), second = TestStore()
        let (_, dir) = try exportedLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/cached:1")
        let reference = registry.host + "/plash/cached:1"
        var start = requests(registry).count
        let imported = try second.id(["build", "--from-docker", reference])
        let firstPull = pulls(registry, since: start)
        #expect(firstPull.manifests.count == 1 && firstPull.blobs.count == 4, "\(firstPull)")

        start = requests(registry).count
        #expect(try second.id(["build", "--from-docker", reference]) == imported)
        #expect(requests(registry).count == start, "\(requests(registry).dropFirst(start))")

        start = requests(registry).count
        #expect(try second.id(["pull", reference]) == imported)
        let unchanged = pulls(registry, since: start)
        #expect(unchanged.manifests.count == 1 && unchanged.blobs == [], "\(unchanged)")

        // The tag moves to another image on busybox, the base layer of the first.
        let other = try first.id(["build", "--from", "1", "--run", "echo other > /other"])
        #expect(try first.plash(["export-oci", other, dir + "/other", "--tag", "t"]).status == 0)
        try registry.push(dir + "/other", tag: "t", as: "plash/cached:1")
        let (layers, config) = try blobDigests(dir + "/other")
        start = requests(registry).count
        let pulled = try second.plash(["pull", reference])
        #expect(pulled.status == 0, "\(pulled)")
        let moved = pulls(registry, since: start)
        #expect(moved.blobs.sorted() == ["GET /v2/plash/cached/blobs/" + layers[1], "GET /v2/plash/cached/blobs/" + config].sorted(),
                "\(moved)")
        let current = pulled.stdout.trimmingCharacters(in: .newlines)
        let base = try second.id(["parent", try second.id(["parent", imported])])
        #expect(try second.id(["parent", current]) == base)
        #expect(try second.id(["nodepath", current]).hasPrefix(try second.id(["nodepath", base]) + "/"))
        let (expected, seen) = (try rootListing(first, other), try rootListing(second, current))
        #expect(expected == seen, "\(Set(expected.split(separator: "\n")).symmetricDifference(seen.split(separator: "\n")))")
        #expect(second.indexedIDs.count == 4)
        // From now on the reference means the new image, still without asking.
        start = requests(registry).count
        #expect(try second.id(["build", "--from-docker", reference]) == current)
        #expect(requests(registry).count == start)
    }

    /// Two processes pull one reference at once: the second waits for the first and
    /// prints its image; every blob is downloaded once and every layer stored once.
    @Test func twoPullsOfOneReferenceAtOnceImportItOnce() throws {
        let first = TestStore(), second = TestStore()
        let (_, dir) = try exportedLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/twice:1")
        let reference = registry.host + "/plash/twice:1"
        let start = requests(registry).count
        let results = runConcurrently([{ try second.plash(["import-docker", reference]) },
                                       { try second.plash(["build", "--from-docker", reference]) }])
        #expect(results.allSatisfy { $0.status == 0 }, "\(results)")
        #expect(results[0].stdout == results[1].stdout, "\(results)")
        #expect(second.indexedIDs.count == 3 && second.stagingDirectories == [], "\(second.indexedIDs)")
        #expect(pulls(registry, since: start).blobs.count == 4, "\(pulls(registry, since: start))")
    }

    /// Two images on one base pulled at once (two processes): the base's layers are
    /// stored once, and both images stand on them. The base image is their top node, or,
    /// when the upper image's pull stored them first, a node above them that holds only
    /// the base's config (docs/plash.md, "Image config").
    @Test func twoPullsAtOnceOfImagesOnOneBaseStoreTheBaseOnce() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir) = try exportedLayout(first)
        let upper = try first.id(["build", "--from", id, "--run", "echo upper > /upper"])
        #expect(try first.plash(["export-oci", upper, dir + "/upper", "--tag", "t"]).status == 0)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/base:1")
        try registry.push(dir + "/upper", tag: "t", as: "plash/upper:1")
        let results = runConcurrently([{ try second.plash(["import-docker", registry.host + "/plash/base:1"]) },
                                       { try second.plash(["import-docker", registry.host + "/plash/upper:1"]) }])
        #expect(results.allSatisfy { $0.status == 0 }, "\(results)")
        let base = results[0].stdout.trimmingCharacters(in: .newlines)
        let upperParent = try second.id(["parent", results[1].stdout.trimmingCharacters(in: .newlines)])
        let baseIsAConfigNode = try second.id(["parent", base]) == upperParent
            && (try FileManager.default.contentsOfDirectory(atPath: second.id(["nodepath", base]) + "/_data")).isEmpty
        #expect(upperParent == base || baseIsAConfigNode, "\(results)")
        #expect(second.indexedIDs.count == (baseIsAConfigNode ? 5 : 4) && second.stagingDirectories == [], "\(second.indexedIDs)")
    }

    @Test func aBlobThatIsNotItsDigestIsRefusedAndNothingIsStored() throws {
        let first = TestStore(), second = TestStore()
        let (_, dir) = try exportedLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/bad:1")
        // The registry's copy of the top layer (the smallest gzip) gets byte 20 changed (one
        // added: a fixed byte would be the one there in one run of 256); the manifest
        // still names the old digest.
        let changed = try shell("""
            cd '\(registry.storage)/docker/registry/v2/blobs/sha256' && f=$(for b in */*/data; do file -b "$b" | grep -q gzip && echo "$(stat -c %s "$b") $b"; done | sort -n | head -1 | cut -d' ' -f2)
            [ -n "$f" ] && dd if="$f" bs=1 skip=20 count=1 status=none | LC_ALL=C tr '\\000-\\377' '\\001-\\377\\000' | dd of="$f" bs=1 seek=20 conv=notrunc status=none && echo "$f"
            """)
        #expect(changed.status == 0, "\(changed)")
        let result = try second.plash(["import-docker", registry.host + "/plash/bad:1"])
        #expect(result.status == 1 && result.stderr.contains("plash: import-docker \(registry.host)/plash/bad:1: blob sha256:")
                && result.stderr.contains(": its digest is sha256:"), "\(result)")
        #expect(second.indexedIDs == [] && second.stagingDirectories == [])
        // A digest the registry does not have: refused, nothing stored.
        let missing = try second.plash(["import-docker", registry.host + "/plash/bad@sha256:" + String(repeating: "0", count: 64)])
        #expect(missing.status == 1 && missing.stderr.contains("HTTP 404"), "\(missing)")
        #expect(second.indexedIDs == [] && second.stagingDirectories == [])
    }

    /// Refused at its manifest: no layer is downloaded, nor at the next import.
    @Test func anImageOfMoreThan500LayersIsRefusedBeforeAnyDownload() throws {
        let store = TestStore()
        let layout = makeDirectory("deep") + "/layout"
        try writeDeepLayout(layout, layers: 501)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(layout, tag: "t", as: "plash/deep:1")
        let start = requests(registry).count
        for _ in 0..<2 {
            let refused = try store.plash(["import-docker", registry.host + "/plash/deep:1"])
            #expect(refused.status == 1 && refused.stderr == "plash: import-docker \(registry.host)/plash/deep:1: "
                    + "501 layers: an image has at most 500 (overlayfs stacks no more)\n", "\(refused)")
        }
        #expect(pulls(registry, since: start).blobs == [])
        #expect(store.indexedIDs == [] && store.stagingDirectories == [])
    }

    @Test func basicAuthUsesTheCredentialsOfTheAuthFileOrDockersConfig() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir) = try exportedLayout(first)
        let registry = try RegistryServer(auth: .basic)
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/private:1")
        let reference = registry.host + "/plash/private:1"
        let refused = try second.plash(["import-docker", reference])
        #expect(refused.status == 1 && refused.stderr.contains("no credentials"), "\(refused)")
        #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused)")
        let auth = Data("user:password".utf8).base64EncodedString()
        let file = makeDirectory("auth") + "/auth.json"
        try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let pulled = try second.plash(["import-docker", reference], environment: ["REGISTRY_AUTH_FILE": file])
        #expect(pulled.status == 0, "\(pulled)")
        #expect(try rootListing(first, id) == rootListing(second, pulled.stdout.trimmingCharacters(in: .newlines)))
        // docker's own file, in $HOME; wrong credentials are told apart from none.
        let third = TestStore()
        try FileManager.default.createDirectory(atPath: third.home + "/.docker", withIntermediateDirectories: true)
        try #"{"auths": {"http://\#(registry.host)": {"auth": "\#(auth)"}}}"#
            .write(toFile: third.home + "/.docker/config.json", atomically: true, encoding: .utf8)
        #expect(try third.plash(["import-docker", reference]).status == 0)
        let wrong = Data("user:nope".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry.host)": {"auth": "\#(wrong)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let fourth = TestStore()
        let denied = try fourth.plash(["import-docker", reference], environment: ["REGISTRY_AUTH_FILE": file])
        #expect(denied.status == 1 && denied.stderr.contains("credentials refused"), "\(denied)")
    }

    @Test func aBearerTokenIsFetchedFromTheRealmAnonymouslyOrWithCredentials() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir) = try exportedLayout(first)
        let anonymous = try RegistryServer(auth: .token)
        defer { anonymous.stop() }
        try anonymous.push(dir + "/layout", tag: "t", as: "plash/tokens:1")
        let pulled = try second.plash(["import-docker", anonymous.host + "/plash/tokens:1"])
        #expect(pulled.status == 0, "\(pulled)")
        #expect(try rootListing(first, id) == rootListing(second, pulled.stdout.trimmingCharacters(in: .newlines)))

        let guarded = try RegistryServer(auth: .tokenForUser)
        defer { guarded.stop() }
        try guarded.push(dir + "/layout", tag: "t", as: "plash/tokens:1")
        let third = TestStore()
        let refused = try third.plash(["import-docker", guarded.host + "/plash/tokens:1"])
        #expect(refused.status == 1 && refused.stderr.contains("token http://127.0.0.1:") && refused.stderr.contains("HTTP 401"),
                "\(refused)")
        let file = makeDirectory("auth") + "/auth.json"
        let auth = Data("user:password".utf8).base64EncodedString()
        try #"{"auths": {"\#(guarded.host)": {"auth": "\#(auth)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let allowed = try third.plash(["import-docker", guarded.host + "/plash/tokens:1"], environment: ["REGISTRY_AUTH_FILE": file])
        #expect(allowed.status == 0, "\(allowed)")
    }

    /// A layout DIR/layout whose tag multi is an index naming linux/arm64 (the bare
    /// busybox image) first and linux/amd64 (the image with deletions, `id`) second, and
    /// the digests of those two manifests.
    func multiPlatformLayout(_ first: TestStore) throws -> (id: String, dir: String, amd64: String, arm64: String) {
        let (id, dir) = try exportedLayout(first)
        #expect(try first.plash(["export-oci", "1", dir + "/other", "--tag", "t"]).status == 0)
        let made = try shell("""
            python3 - '\(dir)/layout' '\(dir)/other' <<'EOF'
            import hashlib, json, os, shutil, sys
            a, b = sys.argv[1:3]
            for f in os.listdir(b + "/blobs/sha256"):
                shutil.copy(b + "/blobs/sha256/" + f, a + "/blobs/sha256/" + f)
            ma = json.load(open(a + "/index.json"))["manifests"][0]
            mb = json.load(open(b + "/index.json"))["manifests"][0]
            for m in (ma, mb):
                m.pop("annotations", None)
            mb["platform"] = {"architecture": "arm64", "os": "linux"}
            ma["platform"] = {"architecture": "amd64", "os": "linux"}
            index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": [mb, ma]}).encode()
            digest = hashlib.sha256(index).hexdigest()
            open(a + "/blobs/sha256/" + digest, "wb").write(index)
            json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                       "digest": "sha256:" + digest, "size": len(index),
                       "annotations": {"org.opencontainers.image.ref.name": "multi"}}]}, open(a + "/index.json", "w"))
            print(ma["digest"], mb["digest"])
            EOF
            """)
        let digests = made.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard made.status == 0, digests.count == 2 else { throw StoreTestError("python: \(made)") }
        return (id, dir, digests[0], digests[1])
    }

    @Test func aManifestListIsResolvedToLinuxAmd64() throws {
        let first = TestStore(), second = TestStore()
        let (id, dir, _, _) = try multiPlatformLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "multi", as: "plash/multi:1", all: true)
        let pulled = try second.plash(["import-docker", registry.host + "/plash/multi:1"])
        #expect(pulled.status == 0, "\(pulled)")
        #expect(try rootListing(first, id) == rootListing(second, pulled.stdout.trimmingCharacters(in: .newlines)))
    }

    /// A mirror that answers for the amd64 manifest's digest with another manifest (the
    /// registry's stored copy swapped for the arm64 image's): a pinned index, or that
    /// digest pulled by name, must not give another image. Refused, nothing stored.
    @Test func aPlatformManifestThatIsNotTheDigestItsIndexNamesIsRefused() throws {
        let first = TestStore(), second = TestStore()
        let (_, dir, amd64, arm64) = try multiPlatformLayout(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "multi", as: "plash/multi:1", all: true)
        func blob(_ digest: String) -> String {
            let hex = digest.dropFirst(7)
            return registry.storage + "/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"
        }
        try FileManager.default.removeItem(atPath: blob(amd64))
        try FileManager.default.copyItem(atPath: blob(arm64), toPath: blob(amd64))
        for reference in ["plash/multi:1", "plash/multi@" + (try tagDigest(registry, "plash/multi", "1")), "plash/multi@" + amd64] {
            let refused = try second.plash(["import-docker", registry.host + "/" + reference])
            #expect(refused.status == 1 && refused.stdout == "" && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
            #expect(second.indexedIDs == [] && second.stagingDirectories == [])
        }
        // The swapped answer is what the registry sends for that digest: the mirror misbehaves, not the test.
        #expect(requests(registry).contains("GET /v2/plash/multi/manifests/\(amd64)"), "\(registry.log)")
    }

    @Test func pullErrorsNamePullNotImportDocker() throws {
        let store = TestStore()
        let failed = try store.plash(["pull", "127.0.0.1:9/plash/x:1"])
        #expect(failed.status == 1 && failed.stderr.hasPrefix("plash: pull 127.0.0.1:9/plash/x:1: ")
                && failed.stderr.split(separator: "\n").count == 1, "\(failed)")
        let imported = try store.plash(["import-docker", "127.0.0.1:9/plash/x:1"])
        #expect(imported.status == 1 && imported.stderr.hasPrefix("plash: import-docker 127.0.0.1:9/plash/x:1: "), "\(imported)")
    }

    /// The digest of the manifest (here the index) that `tag` of `repository` names on `registry`.
    func tagDigest(_ registry: RegistryServer, _ repository: String, _ tag: String) throws -> String {
        try String(contentsOfFile: registry.storage + "/docker/registry/v2/repositories/\(repository)/_manifests/tags/\(tag)/current/link",
                   encoding: .utf8)
    }

    /// plash push to a registry (anonymous, and with a token realm), seen by skopeo and
    /// pulled back into an empty store; a second image on the same base sends only what
    /// is new.
    @Test(arguments: [RegistryServer.Auth.anonymous, .token])
    func aPushedImageIsSeenBySkopeoAndPullsBackToTheSameTree(auth: RegistryServer.Auth) throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let registry = try RegistryServer(auth: auth)
        defer { registry.stop() }
        let pushed = try first.plash(["push", id, registry.host + "/plash/pushed:v1"])
        #expect(pushed.status == 0, "\(pushed)")
        // Three layers and the config.
        #expect(pushed.stderr.components(separatedBy: "--> upload ").count - 1 == 4, "\(pushed)")
        let inspected = try shell("skopeo inspect --tls-verify=false docker://\(registry.host)/plash/pushed:v1")
        #expect(inspected.status == 0 && inspected.stdout.contains("\"Layers\"") && inspected.stdout.contains("\"v1\""), "\(inspected)")
        // The digest it prints is the registry's name of the image, as skopeo's --digestfile records it.
        let digest = (try JSONSerialization.jsonObject(with: Data(inspected.stdout.utf8)) as? [String: Any])?["Digest"] as? String
        #expect(digest != nil && pushed.stdout == digest! + "\n", "\(pushed) \(inspected)")
        let copied = makeDirectory("copied")
        let copy = try run("/usr/bin/skopeo", ["copy", "-q", "--src-tls-verify=false", "--digestfile", copied + "/digest",
                                               "docker://\(registry.host)/plash/pushed@\(digest ?? "")", "oci:\(copied)/layout:t"])
        #expect(copy.status == 0 && (try? String(contentsOfFile: copied + "/digest", encoding: .utf8)) == digest, "\(copy)")
        let pulled = try second.id(["import-docker", registry.host + "/plash/pushed:v1"])
        #expect(try rootListing(first, id) == rootListing(second, pulled))
        #expect(try rootListing(second, pulled).contains("/d/n ") && !rootListing(second, pulled).contains("/gone"))

        let newer = try first.id(["build", "--from", id, "--run", "echo three > /three"])
        let again = try first.plash(["push", newer, registry.host + "/plash/pushed:v2"])
        #expect(again.status == 0, "\(again)")
        // The new layer and the new config; the three below are in the registry already.
        #expect(again.stderr.components(separatedBy: "--> upload ").count - 1 == 2, "\(again)")
        #expect(waitUntil { registry.requests("PUT", "/v2/plash/pushed/manifests/").count == 2 })
        #expect(registry.requests("PUT", "/v2/plash/pushed/blobs/uploads/").count == 6, "\(registry.log)")
        let back = try second.plash(["import-docker", registry.host + "/plash/pushed:v2"])
        #expect(back.status == 0 && back.stderr.contains("download layer 4/4") && !back.stderr.contains("download layer 3/4"), "\(back)")
        #expect(try rootListing(first, newer) == rootListing(second, back.stdout.trimmingCharacters(in: .newlines)))
    }

    /// Busybox and a layer of 3.5 MB of random bytes (which gzip does not shrink).
    func imageWithABigLayer(_ store: TestStore) throws -> String {
        let base = try store.id(["import", "busybox"])
        return try store.id(["build", "--from", base, "--run", "head -c 3500000 /dev/urandom > /big"])
    }

    /// The blob sizes of the manifest that REF names on the registry, as skopeo reads it.
    func blobSizes(_ registry: RegistryServer, _ name: String) throws -> [Int] {
        let raw = try shell("skopeo inspect --raw --tls-verify=false docker://\(registry.host)/\(name)")
        guard raw.status == 0, let manifest = try JSONSerialization.jsonObject(with: Data(raw.stdout.utf8)) as? [String: Any],
              let layers = manifest["layers"] as? [[String: Any]], let config = manifest["config"] as? [String: Any] else {
            throw StoreTestError("skopeo inspect --raw: \(raw)")
        }
        return (layers + [config]).compactMap { $0["size"] as? Int }
    }

    /// With chunks of 1 MiB, each blob above 1 MiB goes in PATCHes of 1 MiB and the rest,
    /// then a PUT; smaller ones in one PUT.
    @Test func aBlobLargerThanAChunkIsPushedInChunksAndPullsBack() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithABigLayer(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        let pushed = try first.plash(["push", id, registry.host + "/plash/chunked:1"], environment: ["PLASH_PUSH_CHUNK_MIB": "1"])
        #expect(pushed.status == 0, "\(pushed)")
        // Without a terminal a line per upload, the whole blob counted across its chunks.
        let lines = pushed.stderr.split(separator: "\n").filter { $0.hasPrefix("uploaded ") }
        #expect(lines.count == 3 && lines.allSatisfy { $0.contains("(100%), ") } && !pushed.stderr.contains("\r"), "\(pushed)")
        let sizes = try blobSizes(registry, "plash/chunked:1")
        let chunks = sizes.map { $0 > 1 << 20 ? ($0 + (1 << 20) - 1) >> 20 : 0 }.reduce(0, +)
        #expect(sizes.count == 3 && chunks >= 4, "\(sizes)")
        #expect(waitUntil { registry.requests("PATCH", "/v2/plash/chunked/blobs/uploads/").count >= chunks })
        #expect(registry.requests("PATCH", "/v2/plash/chunked/blobs/uploads/").count == chunks, "\(registry.log)")
        #expect(registry.requests("PUT", "/v2/plash/chunked/blobs/uploads/").count == 3, "\(registry.log)")
        let inspected = try shell("skopeo inspect --tls-verify=false docker://\(registry.host)/plash/chunked:1")
        #expect(inspected.status == 0 && inspected.stdout.contains("\"Layers\""), "\(inspected)")
        let pulled = try second.id(["import-docker", registry.host + "/plash/chunked:1"])
        #expect(try rootListing(first, id) == rootListing(second, pulled))
        #expect(try rootListing(second, pulled).contains("/big "))

        // A chunk size too large to mean anything is the largest one, not a wrapped-around number.
        let third = TestStore()
        let other = try imageWithABigLayer(third)
        let whole = try third.plash(["push", other, registry.host + "/plash/huge:1"], environment: ["PLASH_PUSH_CHUNK_MIB": "99999999999999"])
        #expect(whole.status == 0 && registry.requests("PATCH", "/v2/plash/huge/").isEmpty, "\(whole)")
    }

    /// On a terminal (script(1) gives one) the upload's line is redrawn in place,
    /// counting the chunks of a blob as one.
    @Test func onATerminalAPushShowsEachUploadsProgressOnOneLine() throws {
        let store = TestStore()
        let id = try imageWithABigLayer(store)
        let registry = try RegistryServer()
        defer { registry.stop() }
        let command = "\(plash) push \(id) \(registry.host)/plash/terminal:1"
        let result = try run("/usr/bin/script", ["-qec", command, "/dev/null"],
                             environment: store.environment.merging(["PLASH_PUSH_CHUNK_MIB": "1"]) { $1 })
        #expect(result.status == 0, "\(result)")
        // The layer of 3.5 MB drawn whole, though it went in four requests; the drawn
        // line is cleared (not ended) before the line that stays.
        let drawn = #"\r\x1b\[Kuploaded 3\.\d MiB of 3\.\d MiB \(100%\), [^\r\n]*\r\x1b\[K"#
        #expect(result.stdout.range(of: drawn, options: .regularExpression) != nil
                && !result.stdout.contains("downloaded"), "\(result)")
    }

    /// A registry that answers every PATCH 405, or the second one 416: the blob goes up
    /// in one piece, in a new upload session.
    @Test(arguments: ["PATCH:0:405", "PATCH:2:416"])
    func aRegistryThatRefusesChunksGetsTheBlobInOnePiece(rule: String) throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithABigLayer(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: [rule])
        defer { proxy.stop() }
        let pushed = try first.plash(["push", id, proxy.host + "/plash/whole:1"], environment: ["PLASH_PUSH_CHUNK_MIB": "1"])
        #expect(pushed.status == 0 && pushed.stderr.contains("the registry refused a chunk: uploading in one piece"), "\(pushed)")
        let pulled = try second.id(["import-docker", registry.host + "/plash/whole:1"])
        #expect(try rootListing(first, id) == rootListing(second, pulled))
    }

    /// The access log's mount requests for REPOSITORY, once its manifest was put.
    func mounts(_ registry: RegistryServer, _ repository: String) -> [String] {
        _ = waitUntil { !registry.requests("PUT", "/v2/\(repository)/manifests/").isEmpty }
        return registry.requests("POST", "/v2/\(repository)/blobs/uploads/?mount=")
    }

    /// The blob uploads to REPOSITORY in the access log: PATCHes and PUTs of data.
    func uploads(_ registry: RegistryServer, _ repository: String) -> [String] {
        registry.requests("PATCH", "/v2/\(repository)/blobs/uploads/") + registry.requests("PUT", "/v2/\(repository)/blobs/uploads/")
    }

    /// The same image pushed to plash/a, then to plash/b: every blob (three layers and the
    /// config) is mounted from plash/a, none uploaded; with a token realm, the token
    /// asked for may pull from plash/a.
    @Test(arguments: [RegistryServer.Auth.anonymous, .token])
    func aSecondRepositoryOfTheRegistryGetsTheBlobsMountedNotUploaded(auth: RegistryServer.Auth) throws {
        let store = TestStore()
        let id = try imageWithDeletions(store)
        let registry = try RegistryServer(auth: auth)
        defer { registry.stop() }
        #expect(try store.plash(["push", id, registry.host + "/plash/a:1"]).status == 0)
        let pushed = try store.plash(["push", id, registry.host + "/plash/b:1"])
        #expect(pushed.status == 0, "\(pushed)")
        #expect(pushed.stderr.components(separatedBy: "--> mount sha256:").count - 1 == 4 && !pushed.stderr.contains("upload"), "\(pushed)")
        let mounted = mounts(registry, "plash/b")
        #expect(mounted.count == 4 && mounted.allSatisfy { $0.contains("&from=plash/a HTTP/1.1\" 201 ") }, "\(registry.log)")
        #expect(uploads(registry, "plash/b") == [], "\(registry.log)")
        if auth == .token {
            #expect(registry.tokenLog.contains("&scope=repository:plash/b:pull%2Cpush&scope=repository:plash/a:pull"), "\(registry.tokenLog)")
        }
        let inspected = try shell("skopeo inspect --tls-verify=false docker://\(registry.host)/plash/b:1")
        #expect(inspected.status == 0 && inspected.stdout.contains("\"Layers\""), "\(inspected)")
    }

    /// Another store pulls plash/a, then pushes the image to plash/b: it knows where the
    /// blobs are from the pull, and mounts them.
    @Test func anImagePulledFromOneRepositoryIsPushedToAnotherByMounts() throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithDeletions(first)
        let registry = try RegistryServer(auth: .token)
        defer { registry.stop() }
        #expect(try first.plash(["push", id, registry.host + "/plash/a:1"]).status == 0)
        let pulled = try second.id(["import-docker", registry.host + "/plash/a:1"])
        let pushed = try second.plash(["push", pulled, registry.host + "/plash/b:1"])
        #expect(pushed.status == 0 && !pushed.stderr.contains("upload"), "\(pushed)")
        let mounted = mounts(registry, "plash/b")
        #expect(mounted.count == 4 && mounted.allSatisfy { $0.contains("&from=plash/a HTTP/1.1\" 201 ") }, "\(registry.log)")
        #expect(uploads(registry, "plash/b") == [], "\(registry.log)")
        let third = TestStore()
        #expect(try rootListing(first, id) == rootListing(third, try third.id(["import-docker", registry.host + "/plash/b:1"])))
    }

    /// Where a blob was seen is a hint: one that names a repository without the blob
    /// costs an upload in the session the mount request answered with; one lost, or
    /// that names no repository, costs a plain upload.
    @Test func aStaleOrLostHintOfWhereABlobIsCostsAnUploadOnly() throws {
        let store = TestStore(), other = TestStore()
        let id = try imageWithDeletions(store)
        let registry = try RegistryServer()
        defer { registry.stop() }
        #expect(try store.plash(["push", id, registry.host + "/plash/a:1"]).status == 0)
        let hints = store.data + "/blob-sources/" + registry.host
        let names = try FileManager.default.contentsOfDirectory(atPath: hints)
        #expect(names.count == 4 && names.allSatisfy { $0.hasPrefix("sha256:") }, "\(names)")
        for name in names {
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: hints + "/" + name) == "plash/a")
            try FileManager.default.removeItem(atPath: hints + "/" + name)
            try FileManager.default.createSymbolicLink(atPath: hints + "/" + name, withDestinationPath: "plash/none")
        }
        let stale = try store.plash(["push", id, registry.host + "/plash/b:1"])
        #expect(stale.status == 0 && stale.stderr.components(separatedBy: "not mounted: uploading").count - 1 == 4, "\(stale)")
        #expect(mounts(registry, "plash/b").filter { $0.contains("\" 202 ") }.count == 4, "\(registry.log)")
        #expect(registry.requests("PUT", "/v2/plash/b/blobs/uploads/").count == 4, "\(registry.log)")

        // Nonsense where a repository should be, and no hints at all: plain uploads.
        for name in names.prefix(2) {
            try FileManager.default.removeItem(atPath: hints + "/" + name)
            try FileManager.default.createSymbolicLink(atPath: hints + "/" + name, withDestinationPath: "../../Not A Name")
        }
        for name in names.dropFirst(2) { try FileManager.default.removeItem(atPath: hints + "/" + name) }
        let lost = try store.plash(["push", id, registry.host + "/plash/c:1"])
        #expect(lost.status == 0 && lost.stderr.components(separatedBy: "--> upload ").count - 1 == 4, "\(lost)")
        #expect(mounts(registry, "plash/c") == [], "\(registry.log)")
        #expect(try rootListing(store, id) == rootListing(other, try other.id(["import-docker", registry.host + "/plash/c:1"])))
    }

    /// An ordinary user's pushes: the hints live in their own store, owned by them, and
    /// the second push mounts what the first uploaded.
    @Test func anOrdinaryUsersSecondPushMountsTheBlobs() throws {
        let user = try userWithSubordinateIDs
        let cwd = makeDirectory("push", ownedBy: user)
        let data = cwd + "/store"
        let registry = try RegistryServer()
        defer { registry.stop() }
        let built = try plashAs(user, ["build", "--from", "busybox", "--run", "echo made > /made"], data: data, directory: cwd)
        #expect(built.status == 0, "\(built)")
        let id = built.stdout.trimmingCharacters(in: .newlines)
        let first = try plashAs(user, ["push", id, registry.host + "/plash/a:1"], data: data, directory: cwd)
        #expect(first.status == 0 && first.stderr.components(separatedBy: "--> upload ").count - 1 == 3, "\(first)")
        let second = try plashAs(user, ["push", id, registry.host + "/plash/b:1"], data: data, directory: cwd)
        #expect(second.status == 0 && !second.stderr.contains("upload"), "\(second)")
        let mounted = mounts(registry, "plash/b")
        #expect(mounted.count == 3 && mounted.allSatisfy { $0.contains("&from=plash/a HTTP/1.1\" 201 ") }, "\(registry.log)")
        #expect(try rootOwnedFiles([data, cwd]) == "")
    }

    /// A registry that fails a chunk (500) or a whole blob (503) in mid-push: one line,
    /// exit 1, the upload session cancelled, no manifest on the registry, nothing left
    /// in staging; the next push completes the image.
    @Test(arguments: ["PATCH:2:500", "PUT:1:503"])
    func aRegistryFailingInMidUploadGetsNoManifestAndTheNextPushCompletes(rule: String) throws {
        let first = TestStore(), second = TestStore()
        let id = try imageWithABigLayer(first)
        let registry = try RegistryServer()
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: [rule])
        defer { proxy.stop() }
        let reference = proxy.host + "/plash/failing:1"
        let failed = try first.plash(["push", id, reference], environment: ["PLASH_PUSH_CHUNK_MIB": "1"])
        // The log of what went before, then the error in one line.
        let errors = failed.stderr.split(separator: "\n").filter { $0.hasPrefix("plash:") }
        let error = errors.first ?? "no error line"
        #expect(failed.status == 1 && errors.count == 1 && failed.stderr.hasSuffix(error + "\n")
                && error.hasPrefix("plash: push \(reference): upload sha256:") && error.contains(": HTTP 50"), "\(failed)")
        #expect(first.stagingDirectories == [])
        #expect(waitUntil { registry.requests("DELETE", "/v2/plash/failing/blobs/uploads/").count == 1 }, "\(registry.log)")
        #expect(registry.requests("PUT", "/v2/plash/failing/manifests/") == [], "\(registry.log)")
        let missing = try shell("skopeo inspect --tls-verify=false docker://\(registry.host)/plash/failing:1")
        #expect(missing.status != 0, "\(missing)")

        let again = try first.plash(["push", id, reference], environment: ["PLASH_PUSH_CHUNK_MIB": "1"])
        #expect(again.status == 0, "\(again)")
        #expect(try rootListing(first, id) == rootListing(second, try second.id(["import-docker", registry.host + "/plash/failing:1"])))
    }

    /// A proxy before the registry that answers 413 to a big upload and closes, its body
    /// unread (more than the sockets' buffers hold): its answer is the error, not the
    /// connection reset that the rest of the upload met.
    @Test func anUploadRefusedBeforeItsBodyWasReadFailsWithTheAnswer() throws {
        let store = TestStore()
        let base = try store.id(["import", "busybox"])
        let id = try store.id(["build", "--from", base, "--run", "head -c 40000000 /dev/urandom > /big"])
        let registry = try RegistryServer()
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: ["PUT:2:413!"])
        defer { proxy.stop() }
        let refused = try store.plash(["push", id, proxy.host + "/plash/capped:1"], environment: ["PLASH_PUSH_CHUNK_MIB": "1024"])
        let error = refused.stderr.split(separator: "\n").last ?? ""
        #expect(refused.status == 1 && error.hasPrefix("plash: push \(proxy.host)/plash/capped:1: upload sha256:")
                && error.contains(": HTTP 413 "), "\(refused)")
    }

    /// A registry whose upload Location names another host (`localhost`: the same proxy,
    /// another name) gets the blob sent there without the credentials: they go to the
    /// registry's own host only. Its 401 there is the error, in one line.
    @Test func credentialsNeverGoToAnotherHostThatAnUploadLocationNames() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let registry = try RegistryServer(auth: .basic)
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: ["POST:0:host=localhost"])
        defer { proxy.stop() }
        let file = makeDirectory("auth") + "/auth.json"
        let auth = Data("user:password".utf8).base64EncodedString()
        try #"{"auths": {"\#(proxy.host)": {"auth": "\#(auth)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let reference = proxy.host + "/plash/elsewhere:1"
        let pushed = try store.plash(["push", id, reference], environment: ["REGISTRY_AUTH_FILE": file])
        let errors = pushed.stderr.split(separator: "\n").filter { $0.hasPrefix("plash:") }
        #expect(pushed.status == 1 && errors.count == 1 && errors[0].hasPrefix("plash: push \(reference): upload sha256:")
                && errors[0].contains("HTTP 401"), "\(pushed)")
        let elsewhere = proxy.requests.filter { $0.split(separator: " ").dropFirst().first?.hasPrefix("localhost:") == true }
        #expect(!elsewhere.isEmpty && elsewhere.allSatisfy { $0.hasSuffix(" no") }, "\(proxy.requests)")
        #expect(proxy.requests.contains { $0.hasPrefix("POST 127.0.0.1:") && $0.hasSuffix(" yes") }, "\(proxy.requests)")
    }

    /// A token realm whose answer has no end (here 80 MiB) is read up to 1 MiB: one line.
    @Test func aTokenAnswerLargerThanATokenIsRefusedInOneLine() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let root = makeDirectory("realm")
        #expect(try shell("head -c 83886080 /dev/zero | tr '\\0' x > '\(root)/token'").status == 0)
        let realm = try WebServer(root: root)
        defer { realm.stop() }
        let registry = try RegistryServer()
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: ["HEAD:1:realm=http://127.0.0.1:\(realm.port)/token"])
        defer { proxy.stop() }
        let pushed = try store.plash(["push", id, proxy.host + "/plash/token:1"])
        #expect(pushed.status == 1 && pushed.stderr == "plash: push \(proxy.host)/plash/token:1: token http://127.0.0.1:\(realm.port)/token: larger than 1.0 MiB (PLASH_HTTP_MAX_MEMORY=BYTES raises the limit)\n",
                "\(pushed)")
    }

    /// A registry nobody listens on, and credentials the registry or its token realm
    /// refuse: one line each, exit 1.
    @Test func aPushToAnUnreachableRegistryOrWithWrongCredentialsFailsInOneLine() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let nobody = try ReservedPort()
        let unreachable = try store.plash(["push", id, "127.0.0.1:\(nobody.port)/plash/x:1"])
        #expect(unreachable.status == 1 && unreachable.stderr == "plash: push 127.0.0.1:\(nobody.port)/plash/x:1: connect 127.0.0.1:\(nobody.port): Connection refused\n",
                "\(unreachable)")
        let file = makeDirectory("auth") + "/auth.json"
        let wrong = Data("user:nope".utf8).base64EncodedString()
        for auth in [RegistryServer.Auth.basic, .tokenForUser] {
            let registry = try RegistryServer(auth: auth)
            defer { registry.stop() }
            try #"{"auths": {"\#(registry.host)": {"auth": "\#(wrong)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
            let refused = try store.plash(["push", id, registry.host + "/plash/x:1"], environment: ["REGISTRY_AUTH_FILE": file])
            let why = auth == .basic ? "HTTP 401 Unauthorized: credentials refused" : "HTTP 401 Unauthorized"
            #expect(refused.status == 1 && refused.stderr.hasPrefix("plash: push \(registry.host)/plash/x:1: ") && refused.stderr.contains(why)
                    && refused.stderr.split(separator: "\n").count == 1, "\(refused)")
            #expect(registry.requests("PUT", "/v2/plash/x/") == [] && store.stagingDirectories == [], "\(registry.log)")
        }
    }

    @Test func aPushToADigestOrToARegistryThatRefusesFailsInOneLine() throws {
        let store = TestStore()
        let id = try store.id(["import", "busybox"])
        let registry = try RegistryServer(auth: .basic)
        defer { registry.stop() }
        let digest = try store.plash(["push", id, registry.host + "/plash/x@sha256:" + String(repeating: "0", count: 64)])
        #expect(digest.status == 1 && digest.stderr.contains("a push names a tag"), "\(digest)")
        let refused = try store.plash(["push", id, registry.host + "/plash/x:1"])
        #expect(refused.status == 1 && refused.stderr.hasPrefix("plash: push \(registry.host)/plash/x:1: ") && refused.stderr.contains("no credentials"),
                "\(refused)")
        #expect(refused.stderr.split(separator: "\n").count == 1 && store.stagingDirectories == [], "\(refused)")
        let usage = try store.plash(["push", id, "Bad"])
        #expect(usage.status == 2, "\(usage)")
    }

    /// A pull finds the base in the store and downloads only the layers above it; when
    /// `plash rm` removes that base before the layers are imported, the pull downloads
    /// it after all instead of failing (or building on a removed image).
    @Test func aPullWhoseBaseIsRemovedMeanwhileDownloadsTheBase() throws {
        let store = TestStore()
        let (_, dir) = try exportedLayout(store)
        let baseDir = makeDirectory("base")
        #expect(try store.plash(["export-oci", "1", baseDir + "/layout", "--tag", "t"]).status == 0)
        let registry = try RegistryServer()
        defer { registry.stop() }
        try registry.push(dir + "/layout", tag: "t", as: "plash/top:1")
        try registry.push(baseDir + "/layout", tag: "t", as: "plash/base:1")
        let puller = TestStore()
        #expect(try puller.id(["pull", registry.host + "/plash/base:1"]) == "1")
        // Layers are imported one pull at a time (tmp/key-oci-layers.lock): held here, the
        // pull waits with its downloads done.
        let lock = open(puller.data + "/tmp/key-oci-layers.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        #expect(lock >= 0 && flock(lock, LOCK_EX) == 0)
        var held = true
        defer { if held { close(lock) } }
        let pull = try Child(plash, ["pull", registry.host + "/plash/top:1"], environment: puller.environment)
        let downloaded = waitUntil {
            (try? shell("find '\(puller.data)/tmp' -path '*/blobs/sha256/*' -type f | wc -l").stdout) == "2\n"
        }
        #expect(downloaded, "the pull did not download the two layers above the base")
        #expect(try puller.plash(["rm", "1"]).status == 0)
        close(lock)
        held = false
        guard pull.wait(timeout: 60) != nil else {
            kill(pull.pid, SIGKILL)
            _ = pull.finish()
            Issue.record("the pull did not end")
            return
        }
        let pulled = pull.finish()
        #expect(pulled.status == 0 && pulled.stdout == "4\n", "\(pulled)")
        #expect(try puller.plash(["run", "4", "cat", "/d/n"]).stdout == "new\n")
        #expect(puller.stagingDirectories == [])
    }
}
