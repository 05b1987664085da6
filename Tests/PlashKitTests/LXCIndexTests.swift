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
