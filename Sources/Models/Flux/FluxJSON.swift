import Foundation
import Tensors

/// Reading and writing the small JSON files beside a checkpoint (config, adapter description).
enum FluxJSON {
    /// Writes `object` as pretty, key-sorted JSON, atomically.
    static func write(_ object: [String: Any], to url: URL) throws {
        let data: Data
        do {
            data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        } catch {
            throw FluxError.io(path: url.path, problem: "cannot encode JSON: \(error)")
        }
        try AtomicFile.write(data + Data("\n".utf8), to: url)
    }

    /// Reads a JSON object.
    static func read(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw FluxError.io(path: url.path, problem: "cannot read: \(error.localizedDescription)")
        }
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FluxError.invalidConfig(source: url.path, problem: "not a JSON object")
        }
        return obj
    }
}
