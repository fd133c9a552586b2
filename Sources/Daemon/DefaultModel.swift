import Foundation

/// Where the daemon finds the bundled model `mini` when no `--model mini=PATH` is given:
/// `$ERUDIFF_MODELS/mini`, else `models/mini` in the folder of the executable or any folder above it
/// (a release build lives in `.build/release/` of the checkout that ships the model), else
/// `models/mini` in the current directory. A candidate counts when it holds `config.json`.
enum DefaultModel {
    static let name = "mini"

    /// The first candidate that exists, and every place looked at (for the log line when none does).
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment,
                       executable: String? = executablePath(),
                       currentDirectory: String = FileManager.default.currentDirectoryPath) -> (path: String?, searched: [String]) {
        var candidates: [String] = []
        if let dir = environment["ERUDIFF_MODELS"], !dir.isEmpty { candidates.append(dir + "/" + name) }
        if let exe = executable {
            var dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            while true {
                candidates.append(dir.appendingPathComponent("models/" + name).path)
                let up = dir.deletingLastPathComponent()
                if up.path == dir.path || dir.path == "/" { break }
                dir = up
            }
        }
        candidates.append(URL(fileURLWithPath: currentDirectory).appendingPathComponent("models/" + name).path)
        var seen = Set<String>()
        candidates = candidates.filter { seen.insert($0).inserted }
        let found = candidates.first { FileManager.default.fileExists(atPath: $0 + "/config.json") }
        return (found, candidates)
    }

    static func executablePath() -> String? {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return Bundle.main.executablePath
    }
}
