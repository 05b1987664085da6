#if canImport(Glibc)
import Glibc
#endif
import PlashKit
import PlashSystem

/// `plash doctor`: one line per check, each miss with its fix; exit 0 unless plash
/// cannot build or run containers for this user (warnings name features that fail).
@Sendable func doctor(_ arguments: [String]) throws -> Int32 {
    if arguments.count == 2 && arguments[0] == "--probe-overlay" {
        try probeOverlay(in: arguments[1])
        return 0
    }
    try expect(arguments, "doctor")
    let store = Store()
    let findings = doctorFindings(store: store, probe: { overlayProbeError(store: store) })
    print("plash \(plashVersionLine)")
    for finding in findings {
        let mark = switch finding.level { case .ok: "ok  "; case .warning: "warn"; case .failure: "FAIL" }
        print("\(mark)  \(finding.subject): \(finding.detail)" + (finding.fix.map { "\n      fix: \($0)" } ?? ""))
    }
    let user = userName(geteuid()) ?? String(geteuid())
    let failures = findings.filter { $0.level == .failure }.count
    let warnings = findings.filter { $0.level == .warning }.count
    if failures > 0 {
        print("plash cannot run containers for \(user): \(failures) problem\(failures == 1 ? "" : "s") above")
        return 1
    }
    print("plash works for \(user)" + (warnings > 0 ? "; \(warnings) feature\(warnings == 1 ? "" : "s") above will not" : ""))
    return 0
}
