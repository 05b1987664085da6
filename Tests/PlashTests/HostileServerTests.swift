import Foundation
import PlashTestSupport
import Testing

/// Servers that misbehave on purpose (Tests/Servers/http-server.py): what plash reads
/// from them is bounded in bytes and time, each bound met with one line, and
/// credentials go only where they may.
@Suite(.needs(.python3, .xz, .zstd, .bzip2)) struct HostileServerTests {
    // MARK: credentials

    /// An auth file with user:password for `host`.
    func authFile(for host: String) throws -> String {
        let file = makeDirectory("auth") + "/auth.json"
        let auth = Data("user:password".utf8).base64EncodedString()
        try #"{"auths": {"\#(host)": {"auth": "\#(auth)"}}}"#.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// A registry named `127.evil.example` is no registry on this machine: asked over
    /// https (here through a CONNECT proxy that cannot speak TLS), never over plain http
    /// with the credentials, which the proxy would see.
    @Test func aRegistryNamedLikeALoopbackAddressGetsNoCredentialsOverPlainHTTP() throws {
        let store = TestStore()
        let proxy = try WebServer(root: makeDirectory("web"), challenge: true)
        defer { proxy.stop() }
        let reference = "127.evil.example:\(proxy.port)/plash/x:1"
        let pulled = try store.plash(["pull", reference],
                                     environment: ["REGISTRY_AUTH_FILE": try authFile(for: "127.evil.example:\(proxy.port)"),
                                                   "http_proxy": "http://127.0.0.1:\(proxy.port)",
                                                   "https_proxy": "http://127.0.0.1:\(proxy.port)"])
        #expect(pulled.status == 1 && pulled.stderr.hasPrefix("plash: pull \(reference): ")
                && pulled.stderr.split(separator: "\n").count == 1, "\(pulled)")
        #expect(!proxy.requests.isEmpty && proxy.requests.allSatisfy { $0.hasSuffix(" no") }, "\(proxy.requests)")
        #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty)
    }

    /// A registry on 127.0.0.1 is asked over plain http, but through a proxy the
    /// credentials would pass the proxy: they stay behind.
    @Test func aLoopbackRegistryReachedThroughAProxyGetsNoCredentials() throws {
        let store = TestStore()
        let proxy = try WebServer(root: makeDirectory("web"), challenge: true)
        defer { proxy.stop() }
        let reference = "127.0.0.1:\(proxy.port)/plash/x:1"
        let pulled = try store.plash(["pull", reference],
                                     environment: ["REGISTRY_AUTH_FILE": try authFile(for: "127.0.0.1:\(proxy.port)"),
                                                   "http_proxy": "http://127.0.0.1:\(proxy.port)"])
        #expect(pulled.status == 1 && pulled.stderr.split(separator: "\n").count == 1, "\(pulled)")
        #expect(proxy.requests.contains { $0.hasPrefix("GET /v2/plash/x/manifests/1 ") }, "\(proxy.requests)")
        #expect(proxy.requests.allSatisfy { $0.hasSuffix(" no") }, "\(proxy.requests)")
    }

    /// A token realm over plain http on another host would see the credentials: the
    /// pull stops before it asks there.
    @Test func aTokenRealmOverPlainHTTPElsewhereIsNotAskedWithCredentials() throws {
        let store = TestStore()
        let registry = try RegistryServer()
        defer { registry.stop() }
        let realm = try WebServer(root: makeDirectory("web"))
        defer { realm.stop() }
        let proxy = try RegistryProxy(to: registry, rules: ["GET:1:realm=http://127.evil.example:\(realm.port)/token"])
        defer { proxy.stop() }
        let reference = proxy.host + "/plash/x:1"
        let pulled = try store.plash(["pull", reference],
                                     environment: ["REGISTRY_AUTH_FILE": try authFile(for: proxy.host),
                                                   "http_proxy": "http://127.0.0.1:\(realm.port)", "NO_PROXY": "127.0.0.1"])
        #expect(pulled.status == 1 && pulled.stderr.hasPrefix("plash: pull \(reference): token http://127.evil.example:")
                && pulled.stderr.split(separator: "\n").count == 1, "\(pulled)")
        #expect(realm.requests.isEmpty, "\(realm.requests)")
    }

    /// A redirect from https to plain http on the same host and port is another origin:
    /// the credentials given for the https one stay behind.
    @Test func aRedirectFromHTTPSToHTTPOnTheSameHostDropsTheCredentials() throws {
        let store = TestStore()
        let certificate = try TestCertificate()
        let realm = try WebServer(root: makeDirectory("web"), tls: certificate, downgrade: true)
        defer { realm.stop() }
        let registry = try RegistryServer()
        defer { registry.stop() }
        let proxy = try RegistryProxy(to: registry, rules: ["GET:1:realm=https://localhost:\(realm.port)/token"])
        defer { proxy.stop() }
        let pulled = try store.plash(["pull", proxy.host + "/plash/x:1"],
                                     environment: ["REGISTRY_AUTH_FILE": try authFile(for: proxy.host),
                                                   "SSL_CERT_FILE": certificate.certificate])
        #expect(pulled.status == 1 && pulled.stderr.split(separator: "\n").count == 1, "\(pulled)")
        // The first over https, with the credentials; the second, redirected, without.
        let tokens = realm.requests.filter { $0.hasPrefix("GET /token?") }
        #expect(tokens.count == 2 && tokens[0].hasSuffix(" yes") && tokens[1].hasSuffix(" no"), "\(realm.requests)")
    }

    // MARK: bounds

    /// Runs plash against a hostile server with PLASH_HTTP_TIMEOUT=1: it must end within
    /// `seconds`, exit 1 with one line, and leave the store as it was.
    func refused(_ store: TestStore, _ arguments: [String], _ extra: [String: String] = [:], seconds: Double = 20,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let environment = store.environment.merging(["PLASH_HTTP_TIMEOUT": "1"]) { $1 }.merging(extra) { $1 }
        let (result, ended) = try runWithDeadline(plash, arguments, environment: environment, seconds: seconds)
        #expect(ended, "\(arguments) did not end within \(seconds) s", sourceLocation: sourceLocation)
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("plash") }
        #expect(result.status == 1 && lines.count == 1, "\(arguments): \(result)", sourceLocation: sourceLocation)
        #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty, sourceLocation: sourceLocation)
        return lines.first.map(String.init) ?? ""
    }

    @Test func anLXCIndexWithoutEndIsReadUpToItsLimit() throws {
        let store = TestStore()
        let server = try WebServer(root: makeDirectory("web"))
        defer { server.stop() }
        let line = try refused(store, ["import-lxc", "alpine"], ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)/endless#"])
        #expect(line.hasSuffix(": larger than 16.0 MiB (PLASH_HTTP_MAX_MEMORY=BYTES raises the limit)"), "\(line)")
        let lower = try refused(store, ["import-lxc", "alpine"], ["PLASH_LXC_SERVER": "http://127.0.0.1:\(server.port)/endless#",
                                                                   "PLASH_HTTP_MAX_MEMORY": "100000"])
        #expect(lower.hasSuffix(": larger than 97.7 KiB (PLASH_HTTP_MAX_MEMORY=BYTES raises the limit)"), "\(lower)")
    }

    @Test func aResponseHeadIsBoundedInSizeAndInFields() throws {
        let store = TestStore()
        let server = try WebServer(root: makeDirectory("web"))
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let huge = try refused(store, ["build", "--eval-url", base + "/huge-head"])
        #expect(huge.hasSuffix(": a response head larger than 256.0 KiB (PLASH_HTTP_MAX_HEAD=BYTES raises the limit)"), "\(huge)")
        let fields = try refused(store, ["build", "--eval-url", base + "/many-fields"])
        #expect(fields.hasSuffix(": a response head of more than 1000 header fields"), "\(fields)")
        let interim = try refused(store, ["build", "--eval-url", base + "/endless-interim"])
        #expect(interim.contains("a response head"), "\(interim)")
        let trailers = try refused(store, ["build", "--eval-url", base + "/endless-trailers"])
        #expect(trailers.contains("a response head"), "\(trailers)")
    }

    /// A byte every 0.2 s never leaves a read waiting PLASH_HTTP_TIMEOUT seconds, yet is
    /// far below the least rate: the download ends within twice the timeout.
    @Test func aTricklingServerTimesOut() throws {
        let store = TestStore()
        let server = try WebServer(root: makeDirectory("web"))
        defer { server.stop() }
        for path in ["/trickle", "/trickle-head"] {
            let line = try refused(store, ["import-url", "http://127.0.0.1:\(server.port)\(path)"], seconds: 10)
            #expect(line.hasSuffix(" s, slower than 1.0 KiB/s (PLASH_HTTP_MIN_RATE=BYTES lowers the limit)"), "\(line)")
        }
    }

    /// A TLS handshake a byte every 0.2 s passes each read's timeout: the handshake as
    /// a whole has one.
    @Test func aTricklingTLSHandshakeTimesOut() throws {
        let store = TestStore()
        let server = try WebServer(root: makeDirectory("web"), trickleTLS: true)
        defer { server.stop() }
        let line = try refused(store, ["build", "--eval-url", "https://127.0.0.1:\(server.port)/x"], seconds: 10)
        #expect(line.hasSuffix(": TLS handshake with 127.0.0.1:\(server.port): not done within 1 s, timed out"), "\(line)")
    }

    /// busybox as a registry's repository plash/x under a web root: its blobs, and its
    /// manifest (to be written under a tag by the test).
    func busyboxRepository() throws -> (root: String, repository: String, manifest: Data) {
        let source = TestStore()
        let id = try source.id(["import", "busybox"])
        let layout = makeDirectory("oci") + "/layout"
        #expect(try source.plash(["export-oci", id, layout, "--tag", "t"]).status == 0)
        let root = makeDirectory("web")
        let repository = root + "/v2/plash/x"
        try FileManager.default.createDirectory(atPath: repository + "/manifests", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: repository + "/blobs", withIntermediateDirectories: true)
        for blob in try FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256") {
            try FileManager.default.copyItem(atPath: layout + "/blobs/sha256/" + blob, toPath: repository + "/blobs/sha256:" + blob)
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as! [String: Any]
        let digest = ((index["manifests"] as! [[String: Any]])[0]["digest"] as! String).dropFirst(7)
        return (root, repository, try Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + digest)))
    }

    /// The registry's layer is what the manifest says, but its descriptor's size is one
    /// byte short, or one over: the pull is refused either way, nothing stored.
    @Test func aLayerLargerOrSmallerThanItsDescriptorIsRefused() throws {
        let (root, repository, manifestData) = try busyboxRepository()
        let server = try WebServer(root: root)
        defer { server.stop() }
        for change in [-1, 1] {
            var manifest = try JSONSerialization.jsonObject(with: manifestData) as! [String: Any]
            var layers = manifest["layers"] as! [[String: Any]]
            layers[0]["size"] = (layers[0]["size"] as! Int) + change
            manifest["layers"] = layers
            let store = TestStore()
            let tag = change < 0 ? "short" : "long"
            try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: repository + "/manifests/" + tag))
            let line = try refused(store, ["pull", "127.0.0.1:\(server.port)/plash/x:" + tag])
            let size = layers[0]["size"] as! Int
            let why = change < 0 ? "more than the \(size) bytes its descriptor announces" : "\(size - 1) bytes, not the \(size) its descriptor announces"
            #expect(line.contains(": blob sha256:") && line.hasSuffix(why), "\(line)")
        }
    }

    /// A layer that goes on past its descriptor's size (its bytes, then zeros without end)
    /// is cut off there: the server gets to send little more than the layer (what the
    /// sockets' buffers hold), not what the store's file system would take. The store is
    /// a 64 MiB tmpfs of the test's own, so that a download without that bound would end
    /// at the store's free-space guard, 60 MiB later.
    @Test func aLayerThatGoesOnPastItsSizeIsCutOffThere() throws {
        let (root, repository, manifestData) = try busyboxRepository()
        let manifest = try JSONSerialization.jsonObject(with: manifestData) as! [String: Any]
        let layer = (manifest["layers"] as! [[String: Any]])[0]
        let blob = repository + "/blobs/" + (layer["digest"] as! String), size = layer["size"] as! Int
        try FileManager.default.moveItem(atPath: blob, toPath: blob + ".endless")
        try manifestData.write(to: URL(fileURLWithPath: repository + "/manifests/endless"))
        let server = try WebServer(root: root)
        defer { server.stop() }
        let dir = makeDirectory("small")
        let (result, ended) = try runWithDeadline("/usr/bin/unshare", [
            "-m", "--propagation", "private", "/bin/sh", "-c", "mount -t tmpfs -o size=64m tmpfs \"$0\" && exec \"$@\"",
            dir, plash, "pull", "127.0.0.1:\(server.port)/plash/x:endless",
        ], environment: ["PLASH_DATA": dir + "/plash", "HOME": dir, "PLASH_HTTP_TIMEOUT": "5"], seconds: 60)
        #expect(ended && result.status == 1 && result.stderr.split(separator: "\n").filter { $0.hasPrefix("plash") }.count == 1, "\(result)")
        let start = Date()
        var sent: Int? = nil
        while sent == nil && Date().timeIntervalSince(start) < 30 {
            sent = server.requests.first { $0.hasPrefix("SENT ") }.flatMap { Int($0.split(separator: " ").last ?? "") }
            if sent == nil { usleep(50_000) }
        }
        let bytes = try #require(sent, "the server never saw the client leave: \(server.requests)")
        #expect(bytes < size + 16 << 20, "the server sent \(bytes) bytes for a layer of \(size)")
    }

    /// A gzip stream without end fills a 64 MiB store only up to what a download leaves
    /// free (5 % of it here): one line, nothing left behind.
    @Test func anEndlessDownloadStopsBeforeTheStoresFileSystemIsFull() throws {
        let server = try WebServer(root: makeDirectory("web"))
        defer { server.stop() }
        let dir = makeDirectory("small")
        // A tmpfs of the test's own mount namespace: gone with it.
        let (result, ended) = try runWithDeadline("/usr/bin/unshare", [
            "-m", "--propagation", "private", "/bin/sh", "-c", "mount -t tmpfs -o size=64m tmpfs \"$0\" && exec \"$@\"",
            dir, plash, "import-url", "http://127.0.0.1:\(server.port)/endless-gzip",
        ], environment: ["PLASH_DATA": dir + "/plash", "HOME": dir])
        #expect(ended && result.status == 1 && result.stderr.contains(
            "plash: import-url http://127.0.0.1:\(server.port)/endless-gzip: the store's file system has ")
            && result.stderr.hasSuffix(" free, less than the 3.2 MiB a download leaves it\n"), "\(result)")
        #expect(result.stderr.split(separator: "\n").filter { $0.hasPrefix("plash") }.count == 1, "\(result)")
    }

    /// 1.4 MiB of gzip that would be 300 MiB of zeros, from a server: refused after
    /// 256 MiB, a hundred times its size.
    @Test func aDownloadThatExpandsBeyondAHundredTimesIsRefused() throws {
        let root = makeDirectory("web")
        let made = try shell("""
            cd '\(root)' && mkdir r && truncate -s 300M r/zeros && tar -C r -cf - . | gzip -9 > bomb.tar.gz && rm -r r
            """)
        #expect(made.status == 0, "\(made)")
        let server = try WebServer(root: root)
        defer { server.stop() }
        let store = TestStore()
        let line = try refused(store, ["import-url", "http://127.0.0.1:\(server.port)/bomb.tar.gz"])
        #expect(line.hasSuffix(": the gzip data expands more than 100 times (PLASH_MAX_EXPANSION=N raises the limit)"), "\(line)")
    }

    /// The end of a compressed stream (gzip's length and CRC, xz's index and footer,
    /// bzip2's end mark, zstd's last block) is part of it: cut off, the import fails.
    @Test func aCompressedArchiveWithoutItsEndIsRefused() throws {
        let dir = makeDirectory("cut")
        let made = try shell("""
            cd '\(dir)' && mkdir r && echo hi > r/a && tar -C r -cf t.tar . &&
            for c in gzip xz bzip2 zstd; do $c -c t.tar > whole.$c && head -c $(($(stat -c %s whole.$c) - 4)) whole.$c > cut.$c; done
            """)
        #expect(made.status == 0, "\(made)")
        for format in ["gzip", "xz", "bzip2", "zstd"] {
            let store = TestStore()
            let cut = try store.plash(["import-tar", dir + "/cut." + format])
            #expect(cut.status == 1 && cut.stderr.hasSuffix("plash: import-tar \(dir)/cut.\(format): the \(format) data is truncated\n"),
                    "\(cut)")
            #expect(store.indexedIDs.isEmpty && store.stagingDirectories.isEmpty, "\(format)")
            #expect(try store.plash(["import-tar", dir + "/whole." + format]).status == 0, "\(format)")
        }
    }

    // MARK: macros over HTTP

    /// A Plashfile at a URL that includes itself would be fetched for ever: refused once
    /// seen again; a chain without end at 32 deep; a tree without end at 1000 fetched.
    @Test func evalURLThatIncludesItselfOrNeverEndsIsRefused() throws {
        let root = makeDirectory("web")
        let server = try WebServer(root: root)
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        try "--eval-url \(base)/other\n".write(toFile: root + "/self", atomically: true, encoding: .utf8)
        try "--eval-url \(base)/self\n".write(toFile: root + "/other", atomically: true, encoding: .utf8)
        let store = TestStore()
        let (looped, ended) = try runWithDeadline(plash, ["eval", "--eval-url", base + "/self"], environment: store.environment)
        #expect(ended && looped.status == 2 && looped.stderr.hasPrefix("plash: --eval-url \(base)/self: it includes itself "
                                                               + "(\(base)/self -> \(base)/other -> \(base)/self)\n"), "\(looped)")
        #expect(server.requests.count == 2, "\(server.requests)")
        let chain = try runWithDeadline(plash, ["eval", "--eval-url", base + "/include/1/0/100000"], environment: store.environment)
        #expect(chain.ended && chain.result.status == 2 && chain.result.stderr.contains(": files nested more than 32 deep\n"),
                "\(chain.result)")
        let tree = try runWithDeadline(plash, ["eval", "--eval-url", base + "/include/2/0/12"], environment: store.environment)
        #expect(tree.ended && tree.result.status == 2 && tree.result.stderr.contains(": more than 1000 files read in all\n"),
                "\(tree.result)")
        // A fetched Plashfile that starts from itself is the same loop.
        let github = makeDirectory("github")
        try FileManager.default.createDirectory(atPath: github + "/a/b/HEAD", withIntermediateDirectories: true)
        try "--from-github a/b\n".write(toFile: github + "/a/b/HEAD/plashfile", atomically: true, encoding: .utf8)
        let githubServer = try WebServer(root: github)
        defer { githubServer.stop() }
        let from = try runWithDeadline(plash, ["eval", "--from-github", "a/b"],
                                       environment: store.environment.merging(["PLASH_GITHUB_URL": "http://127.0.0.1:\(githubServer.port)"]) { $1 })
        #expect(from.ended && from.result.status == 2 && from.result.stderr.contains(": it includes itself"), "\(from.result)")
    }
}
