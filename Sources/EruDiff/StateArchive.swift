import Foundation
import Tensors

/// Named tensors and JSON metadata collected from several procedures and written as one safetensors
/// file, atomically (temporary file, fsync, rename) — the checkpoint format of long runs. Reading
/// checks every name and shape and throws `EruDiffError.badState` naming the file and the entry.
public final class StateArchive {
    public private(set) var tensors: [(name: String, tensor: Tensor)] = []
    public private(set) var metadata: [String: String] = [:]
    /// Where the archive was read from ("(memory)" for a new one), for messages.
    public let source: String
    private var byName: [String: Tensor] = [:]

    public init() { source = "(memory)" }

    /// Reads an archive written by `write(to:)`. Tensors are copied out of the mapping.
    public init(contentsOf url: URL) throws {
        source = url.path
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: url) } catch {
            throw EruDiffError.badState(path: url.path, problem: "\(error)")
        }
        metadata = file.metadata
        for name in file.names {
            do {
                let t = try file.tensor(named: name).copy()
                tensors.append((name, t)); byName[name] = t
            } catch {
                throw EruDiffError.badState(path: url.path, problem: "tensor \(name): \(error)")
            }
        }
    }

    /// Adds (or replaces) a tensor; the archive keeps a reference, so write before changing it.
    public func set(_ name: String, _ tensor: Tensor) {
        if byName[name] != nil { tensors.removeAll { $0.name == name } }
        tensors.append((name, tensor)); byName[name] = tensor
    }

    public func set(_ key: String, string: String) { metadata[key] = string }

    /// Stores `value` as JSON text under `key`.
    public func set<T: Encodable>(_ key: String, json value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        metadata[key] = String(decoding: try enc.encode(value), as: UTF8.self)
    }

    public func has(_ name: String) -> Bool { byName[name] != nil }

    /// The tensor called `name`, checked to hold `count` floats when given.
    public func tensor(_ name: String, count: Int? = nil) throws -> Tensor {
        guard let t = byName[name] else { throw EruDiffError.badState(path: source, problem: "no tensor '\(name)'") }
        if let count, t.count != count {
            throw EruDiffError.badState(path: source, problem: "tensor '\(name)' has \(t.count) values, expected \(count)")
        }
        return t
    }

    /// Copies tensor `name` into `into` (same element count).
    public func copy(_ name: String, into: Tensor) throws {
        into.copy(from: try tensor(name, count: into.count))
    }

    public func string(_ key: String) throws -> String {
        guard let s = metadata[key] else { throw EruDiffError.badState(path: source, problem: "no metadata '\(key)'") }
        return s
    }

    public func int(_ key: String) throws -> Int {
        guard let v = Int(try string(key)) else { throw EruDiffError.badState(path: source, problem: "metadata '\(key)' is not an integer") }
        return v
    }

    /// Decodes the JSON stored under `key`.
    public func json<T: Decodable>(_ key: String, as type: T.Type = T.self) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(try string(key).utf8)) } catch let e as EruDiffError {
            throw e
        } catch {
            throw EruDiffError.badState(path: source, problem: "metadata '\(key)': \(error)")
        }
    }

    /// Writes every tensor and the metadata, atomically.
    public func write(to url: URL) throws {
        try SafeTensors.write(tensors, metadata: metadata, to: url)
    }
}
