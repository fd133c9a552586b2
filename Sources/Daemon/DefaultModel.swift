import Foundation
import Models

/// Where the daemon finds the bundled model `mini` when no `--model mini=PATH` is given, and the
/// MiniLM text encoder an install put beside it, so that it runs from any working directory:
///
/// - `mini`: `$ERUDIFF_MODELS/mini`; else, under `$ERUDIFF_HOME` (an install prefix or a checkout),
///   `share/erudiff/models/mini` or `models/mini`; else the same two in the folder of the executable or
///   any folder above it (a release build in `.build/release/` finds the checkout's `models/mini`, an
///   installed `PREFIX/bin/erudiffd` finds `PREFIX/share/erudiff/models/mini`); else `models/mini` in
///   the current directory. A candidate counts when it holds `config.json`.
/// - MiniLM (when neither `--minilm` nor `ERUDIFF_MINILM` names it): `share/erudiff/minilm` under
///   `$ERUDIFF_HOME` or above the executable (what `scripts/install` copies); else `MiniLMLocator`
///   looks for the installed Python package.
enum DefaultModel {
    static let name = "mini"
    /// Below an install prefix: the models and the text encoder `scripts/install` copies.
    static let sharedModels = "share/erudiff/models"
    static let sharedMiniLM = "share/erudiff/minilm"

    /// The first candidate that exists, and every place looked at (for the log line when none does).
    static func locate(environment: [String: String] = ProcessInfo.processInfo.environment,
                       executable: String? = executablePath(),
                       currentDirectory: String = FileManager.default.currentDirectoryPath) -> (path: String?, searched: [String]) {
        var candidates: [String] = []
        if let dir = environment["ERUDIFF_MODELS"], !dir.isEmpty { candidates.append(dir + "/" + name) }
        for root in roots(environment: environment, executable: executable) {
            candidates.append(root.appendingPathComponent("models/" + name).path)
            candidates.append(root.appendingPathComponent(sharedModels + "/" + name).path)
        }
        candidates.append(URL(fileURLWithPath: currentDirectory).appendingPathComponent("models/" + name).path)
        let found = unique(candidates).first { FileManager.default.fileExists(atPath: $0 + "/config.json") }
        return (found, unique(candidates))
    }

    /// The MiniLM folder an install put under `$ERUDIFF_HOME` or above the executable, or nil (then
    /// `MiniLMLocator` decides). Nil too when `ERUDIFF_MINILM` is set: the variable comes first.
    static func installedMiniLM(environment: [String: String] = ProcessInfo.processInfo.environment,
                                executable: String? = executablePath()) -> String? {
        if let v = environment[MiniLMLocator.environmentVariable], !v.isEmpty { return nil }
        let candidates = roots(environment: environment, executable: executable).map { $0.appendingPathComponent(sharedMiniLM).path }
        return unique(candidates).first { dir in
            MiniLMLocator.requiredFiles.allSatisfy { FileManager.default.fileExists(atPath: dir + "/" + $0) }
        }
    }

    /// `$ERUDIFF_HOME`, then the folder of the executable (symbolic links resolved) and every folder above it.
    private static func roots(environment: [String: String], executable: String?) -> [URL] {
        var out: [URL] = []
        if let home = environment["ERUDIFF_HOME"], !home.isEmpty { out.append(URL(fileURLWithPath: home)) }
        if let exe = executable {
            var dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
            while true {
                out.append(dir)
                let up = dir.deletingLastPathComponent()
                if up.path == dir.path || dir.path == "/" { break }
                dir = up
            }
        }
        return out
    }

    private static func unique(_ paths: [String]) -> [String] {
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    static func executablePath() -> String? {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        return Bundle.main.executablePath
    }
}
