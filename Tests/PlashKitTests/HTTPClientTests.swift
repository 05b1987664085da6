import Foundation
@testable import PlashKit
import PlashSystem
import PlashTestSupport
import Testing

/// plash's HTTP client (docs/http.md) called in-process: addresses, where credentials
/// may go, and requests to the tests' server (Tests/Servers/http-server.py).
@Suite struct HTTPClientTests {
    @Test func urlsParseAndRedirectsResolveAgainstThem() throws {
        let address = try WebAddress("HTTPS://[::1]:8443/a/b?c=d#frag")
        #expect(address.scheme == "https" && address.host == "::1" && address.port == 8443 && address.target == "/a/b?c=d")
        #expect(address.description == "https://[::1]:8443/a/b?c=d")
        #expect(try WebAddress("http://h?x").target == "/?x")
        #expect(try WebAddress("http://h:80").description == "http://h/")
        #expect(try address.resolving("e").description == "https://[::1]:8443/a/e")
        #expect(try address.resolving("/e?f").description == "https://[::1]:8443/e?f")
        #expect(try address.resolving("//other/x").description == "https://other/x")
        #expect(try address.resolving("http://other:81").description == "http://other:81/")
        for bad in ["ftp://h/", "http://", "http://h:0/", "http://h:x/", "http://u:p@h/", "h/x", "http://h /"] {
            #expect(throws: PlashError.self, "\(bad)") { try WebAddress(bad) }
        }
    }

    @Test func loopbackIsTheAddressesAndLocalhostNotANamePrefix() throws {
        for host in ["localhost", "LocalHost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
            #expect(isLoopback(host), "\(host)")
        }
        for host in ["127.evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "128.0.0.1", "10.0.0.1", "::2",
                     "::ffff:10.0.0.1", "127.1", "0x7f.0.0.1", "", "evil.example"] {
            #expect(!isLoopback(host), "\(host)")
        }
        #expect(try RegistryReference("127.evil.example:5000/o/n").base == "https://127.evil.example:5000/v2/o/n")
        #expect(try RegistryReference("127.0.0.1:5000/o/n").base == "http://127.0.0.1:5000/v2/o/n")
        #expect(try RegistryReference("[::1]:5000/o/n").base == "http://[::1]:5000/v2/o/n")
        #expect(try RegistryReference("localhost/o/n").base == "http://localhost/v2/o/n")
        let proxy = try WebAddress("http://127.0.0.1:3128")
        #expect(mayCarryCredentials(try WebAddress("https://example.org/"), proxy: nil))
        #expect(mayCarryCredentials(try WebAddress("https://example.org/"), proxy: proxy))
        #expect(mayCarryCredentials(try WebAddress("http://127.0.0.1:5000/"), proxy: nil))
        #expect(!mayCarryCredentials(try WebAddress("http://127.0.0.1:5000/"), proxy: proxy))
        #expect(!mayCarryCredentials(try WebAddress("http://127.evil.example:5000/"), proxy: nil))
    }

    /// A registry redirects blob downloads to storage elsewhere, with a signed URL: its
    /// token must not go along; within one host it does.
    @Test func authorizationGoesOnlyToTheHostItWasGivenFor() throws {
        let here = try WebServer(root: makeDirectory("web"))
        defer { here.stop() }
        let elsewhere = try WebServer(root: makeDirectory("web"))
        defer { elsewhere.stop() }
        func headers(_ url: String) throws -> String {
            var body: [UInt8] = []
            let answer = try httpRequest(url, headers: ["Authorization: Bearer secret", "Accept: application/x-test"]) { body += $0 }
            #expect(answer.status == 200)
            return String(decoding: body, as: UTF8.self)
        }
        let direct = try headers("http://127.0.0.1:\(here.port)/redirect/headers")
        #expect(direct.contains("Authorization: Bearer secret") && direct.contains("Accept: application/x-test"), "\(direct)")
        let away = try headers("http://127.0.0.1:\(here.port)/redirect-to/http://127.0.0.1:\(elsewhere.port)/headers")
        #expect(!away.contains("Authorization") && away.contains("Accept: application/x-test"), "\(away)")
        // Any status but 2xx comes back to the caller, its body unread.
        let missing = try httpRequest("http://127.0.0.1:\(here.port)/status/401") { _ in }
        #expect(missing.status == 401)
    }
}
