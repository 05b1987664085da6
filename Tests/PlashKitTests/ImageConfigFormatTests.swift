import FoundationEssentials
@testable import PlashKit
import PlashSystem
import Testing

/// An image's config as plash reads a source's and hands it to plash-exec.
@Suite struct ImageConfigFormatTests {
    @Test func dockersEmptyUserAndWorkingDirSayNothingToPlashExec() throws {
        let source = #"{"config":{"User":"","WorkingDir":"","Env":["PATH=/bin"],"Entrypoint":null,"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#
        let config = try ImageConfig.decodeSource(Array(source.utf8), "config")
        // Kept as the source wrote them, for a push back...
        #expect(config.config?.User == "" && config.config?.WorkingDir == "")
        // ...but no user or directory for plash-exec: plash's defaults stay.
        #expect(config.runConfig == RunConfig(environment: ["PATH=/bin"], command: ["sh"]))
    }

    @Test func aSourceWithAnEmptyConfigObjectSaysNothing() throws {
        let config = try ImageConfig.decodeSource(Array(#"{"config":{},"created":"2024-01-02T03:04:05Z"}"#.utf8), "config")
        #expect(config.config == nil)
        #expect(config.runConfig == RunConfig())
        #expect(config.created == "2024-01-02T03:04:05Z")
    }

    @Test func configEnvExpandsTheValuesSoFar() {
        #expect(expandVariables("/app:$PATH", ["PATH=/bin"]) == "/app:/bin")
        #expect(expandVariables("${HOME}/x \\$HOME $UNSET.", ["HOME=/h"]) == "/h/x $HOME .")
        #expect(expandVariables("$PATH", []) == defaultPathForTests)
    }
}

private let defaultPathForTests = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
