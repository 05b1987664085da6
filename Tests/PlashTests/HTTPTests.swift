import Foundation
import PlashTestSupport
import Testing

/// plash's own HTTP client (docs/http.md), driven through --eval-github, whose base URL
/// $PLASH_GITHUB_URL points at the tests' server: the macros it fetches are what
/// `plash eval` prints.
@Suite struct HTTPTests {
    /// A server whose someone/project/HEAD/more holds 20 macro lines (chunks of 7 bytes
    /// cut them anywhere), and what `plash eval` prints for them.
    static func served(tls: TestCertificate? = nil) throws -> (WebServer, expected: String, root: String) {
        let root = makeDirectory("web")
        let dir = root + "/someone/project/HEAD"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lines = (1...20).map { "echo line \($0)" }
        try ("--run\n" + lines.joined(separator: "\n") + "\n").write(toFile: dir + "/more", atomically: false, encoding: .utf8)
        return (try WebServer(root: root, tls: tls), lines.joined(separator: "\n") + "\n", root)
    }

    func fetch(_ store: TestStore, _ base: String, _ environment: [String: String] = [:]) throws -> Finished {
        try store.plash(["eval", "--eval-github", "someone/project", "more"],
                        environment: ["PLASH_GITHUB_URL": base].merging(environment) { $1 })
    }

    @Test func contentLengthChunkedAndRedirectedBodiesArriveWhole() throws {
        let store = TestStore()
        let (server, expected, _) = try Self.served()
        defer { server.stop() }
        for prefix in ["", "/chunked", "/redirect", "/redirect/chunked"] {
            let result = try fetch(store, "http://127.0.0.1:\(server.port)\(prefix)")
            #expect(result.status == 0 && result.stdout == expected, "\(prefix): \(result)")
        }
    }

    @Test func aFailedDownloadIsOneLineNamingTheURL() throws {
        let store = TestStore()
        let (server, _, _) = try Self.served()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let url = "someone/project/HEAD/more"
        let cases = [
            ("/status/404", "HTTP 404 Not Found"),
            ("/truncate", "127.0.0.1:\(server.port): closed after 128 of 257 bytes, truncated"),
            ("/chunked-cut", "127.0.0.1:\(server.port): closed after 257 bytes of a chunked body, truncated"),
        ]
        for (prefix, message) in cases {
            let result = try fetch(store, base + prefix)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr == "plash: --eval-github \(base)\(prefix)/\(url): \(message)\n", "\(result)")
        }
        let loop = try store.plash(["eval", "--eval-github", "a/b"], environment: ["PLASH_GITHUB_URL": base + "/redirect-loop#"])
        #expect(loop.stderr.hasSuffix(": more than 10 redirects\n"), "\(loop)")
    }

    @Test func aServerThatStallsTimesOut() throws {
        let store = TestStore()
        let (server, _, _) = try Self.served()
        defer { server.stop() }
        let result = try store.plash(["eval", "--eval-github", "a/b"],
                                     environment: ["PLASH_GITHUB_URL": "http://127.0.0.1:\(server.port)/stall#",
                                                   "PLASH_HTTP_TIMEOUT": "1"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.hasSuffix("127.0.0.1:\(server.port): no data for 1 s, timed out\n"), "\(result)")
    }

    @Test func httpProxyIsUsedUnlessNoProxyNamesTheHost() throws {
        let store = TestStore()
        let (server, expected, _) = try Self.served()
        defer { server.stop() }
        // proxied.invalid resolves nowhere: only the proxy can answer for it.
        let proxy = ["http_proxy": "http://127.0.0.1:\(server.port)"]
        let proxied = try fetch(store, "http://proxied.invalid", proxy)
        #expect(proxied.status == 0 && proxied.stdout == expected, "\(proxied)")
        let bypassed = try fetch(store, "http://proxied.invalid", proxy.merging(["NO_PROXY": "localhost, .invalid"]) { $1 })
        #expect(bypassed.status == 1 && bypassed.stderr.contains("resolve proxied.invalid: "), "\(bypassed)")
    }

    /// A proxy that does not resolve or answer is named as the proxy, not taken for the
    /// URL's own host failing.
    @Test func aProxyThatCannotBeReachedIsNamedAsTheProxy() throws {
        let store = TestStore()
        let closed = try ReservedPort()
        for (variable, url) in [("http_proxy", "http://proxied.invalid"), ("https_proxy", "https://proxied.invalid")] {
            let refused = try fetch(store, url, [variable: "127.0.0.1:\(closed.port)"])
            #expect(refused.status == 1 && refused.stderr.hasSuffix(": proxy: connect 127.0.0.1:\(closed.port): Connection refused\n"),
                    "\(refused)")
        }
        let unresolved = try fetch(store, "http://proxied.invalid", ["http_proxy": "garbage.invalid"])
        #expect(unresolved.status == 1 && unresolved.stderr.contains(": proxy: resolve garbage.invalid: "), "\(unresolved)")
    }

    @Test func httpsVerifiesTheCertificateAndTheHostName() throws {
        let store = TestStore()
        let certificate = try TestCertificate()
        let (tls, expected, _) = try Self.served(tls: certificate)
        defer { tls.stop() }
        let (plain, _, _) = try Self.served()
        defer { plain.stop() }
        let trusted = ["SSL_CERT_FILE": certificate.certificate]
        let good = try fetch(store, "https://localhost:\(tls.port)", trusted)
        #expect(good.status == 0 && good.stdout == expected, "\(good)")
        let unknownCA = try fetch(store, "https://localhost:\(tls.port)")
        #expect(unknownCA.stderr.hasSuffix(": TLS handshake with localhost:\(tls.port): certificate verify failed: self-signed certificate\n"),
                "\(unknownCA)")
        let wrongName = try fetch(store, "https://127.0.0.1:\(tls.port)", trusted)
        #expect(wrongName.stderr.hasSuffix(": certificate verify failed: IP address mismatch\n"), "\(wrongName)")
        let tunnelled = try fetch(store, "https://proxied.invalid:\(tls.port)",
                                  trusted.merging(["HTTPS_PROXY": "127.0.0.1:\(plain.port)"]) { $1 })
        #expect(tunnelled.status == 0 && tunnelled.stdout == expected, "\(tunnelled)")
    }

    /// A certificate that a trusted authority signed, but for another name, is refused:
    /// straight, and through a CONNECT proxy, where the name checked is the server's,
    /// not the proxy's. The server is asked nothing.
    @Test func aCertificateForAnotherHostNameIsRefusedStraightAndThroughAProxy() throws {
        let store = TestStore()
        let authority = try TestAuthority()
        let (elsewhere, expected, _) = try Self.served(tls: try authority.sign(["elsewhere.invalid"]))
        defer { elsewhere.stop() }
        let (local, _, _) = try Self.served(tls: try authority.sign(["localhost"]))
        defer { local.stop() }
        let (proxy, _, _) = try Self.served()
        defer { proxy.stop() }
        let trusted = ["SSL_CERT_FILE": authority.certificate]
        let proxied = trusted.merging(["HTTPS_PROXY": "localhost:\(proxy.port)"]) { $1 }
        for (base, environment) in [("https://localhost:\(elsewhere.port)", trusted),
                                    ("https://proxied.invalid:\(local.port)", proxied)] {
            let refused = try fetch(store, base, environment)
            #expect(refused.status == 1 && refused.stdout == "" && refused.stderr.split(separator: "\n").count == 1,
                    "\(base): \(refused)")
        }
        #expect(elsewhere.requests.isEmpty && local.requests.isEmpty, "\(elsewhere.requests) \(local.requests)")
        // The same authority, each server by the name its certificate carries.
        let straight = try fetch(store, "https://localhost:\(local.port)", trusted)
        #expect(straight.status == 0 && straight.stdout == expected, "\(straight)")
        let tunnelled = try fetch(store, "https://elsewhere.invalid:\(elsewhere.port)", proxied)
        #expect(tunnelled.status == 0 && tunnelled.stdout == expected, "\(tunnelled)")
    }
}
