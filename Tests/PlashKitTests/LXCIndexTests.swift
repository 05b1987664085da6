@testable import PlashKit
import PlashSystem
import Testing

/// Index lines with a field missing or a path that climbs out of the server's tree (a
/// mirror's prefix) name no image: they are not picked, nor listed as names it has.
@Test func anIndexLineWithAnEmptyFieldOrAClimbingPathNamesNoImage() throws {
    let index = """
        good;1;amd64;default;20260101_00:00;/images/good/1/
        ;;amd64;default;;
        up;1;amd64;default;20260101_00:00;../../outside/
        encoded;1;amd64;default;20260101_00:00;/images/%2e%2e/%2E%2E/outside/
        """
    #expect(try pickLXCImage(index, name: "good", release: nil, architecture: "amd64", server: "http://s").path == "/images/good/1/")
    for name in ["up", "encoded"] {
        do {
            let picked = try pickLXCImage(index, name: name, release: nil, architecture: "amd64", server: "http://s")
            Issue.record("\(name) picked: \(picked.path)")
        } catch let error as PlashError {
            #expect(error.reason == "http://s has no image \(name) for amd64 (it has: good)")
        }
    }
}

/// An LXC server that lists thousands of images names 20 in its one line.
@Test func anLXCMissNamesAtMostTwentyImages() throws {
    let index = (0..<200_000).map { "d\($0);1;amd64;default;20260101_00:00;/images/d\($0)/" }.joined(separator: "\n")
    do {
        _ = try pickLXCImage(index, name: "nosuch", release: nil, architecture: "amd64", server: "http://s")
        Issue.record("picked an image")
    } catch let error as PlashError {
        let reason = error.reason ?? ""
        #expect(reason.hasPrefix("http://s has no image nosuch for amd64 (it has: d0, d1, d10, d100, d1000, d10000, d100000, d100001, ")
                && reason.hasSuffix(" and 199980 more)") && reason.count < 300, "\(reason.prefix(300))")
    }
}
