/// The variables of the environment that hold a whole number (docs/plash.md,
/// "Environment"). plash checks them all as it starts (checkNumberSettings): a value that
/// is no number (`PLASH_HTTP_TIMEOUT=60s`) is said at once rather than taken silently
/// for the default.
public let numberSettings = ["PLASH_HTTP_TIMEOUT", "PLASH_HTTP_MIN_RATE", "PLASH_HTTP_MAX_HEAD",
                             "PLASH_HTTP_MAX_MEMORY", "PLASH_MAX_EXPANSION", "PLASH_PUSH_CHUNK_MIB"]

/// The whole number $NAME holds; nil when it is unset or empty (the default applies).
public func numberSetting(_ name: String) -> Int? {
    environment(name).flatMap { Int($0) }
}

public func checkNumberSettings() throws {
    for name in numberSettings {
        if let value = environment(name), !value.isEmpty, numberSetting(name) == nil {
            throw PlashError.usage("\(name)=\(value): not a whole number (unset it for the default)")
        }
    }
}
