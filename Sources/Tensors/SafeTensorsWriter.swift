import CJansson
import Foundation

extension SafeTensors {
    /// Writes `tensors` as F32 with `metadata` to `url`, atomically (see `AtomicFile`).
    ///
    /// The file follows the format exactly and is the same bytes for the same input: tensors sorted by
    /// the UTF-8 bytes of their names and packed back to back from offset 0 (the format forbids holes),
    /// the header compact JSON (written with jansson, `__metadata__` first and left out when empty)
    /// padded with spaces so the data section starts 8-byte aligned, and thus every F32 tensor 4-byte
    /// aligned and readable without a copy. Throws `SafeTensorsError` (kind `invalidArgument`) for
    /// duplicate names, the reserved name `__metadata__` or NUL characters in names or metadata, and
    /// `AtomicFileError` when the file system fails.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             to url: URL, permissions: mode_t = 0o644) throws {
        func invalid(_ problem: String) -> SafeTensorsError {
            SafeTensorsError(path: url.path, kind: .invalidArgument, problem: problem)
        }
        let byBytes: (String, String) -> Bool = { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let sorted = tensors.sorted { byBytes($0.name, $1.name) }
        for (i, item) in sorted.enumerated() {
            if item.name == "__metadata__" { throw invalid("'__metadata__' is reserved and cannot name a tensor") }
            if item.name.utf8.contains(0) { throw invalid("tensor name \(item.name.debugDescription) contains NUL") }
            if i > 0 && sorted[i - 1].name == item.name { throw invalid("two tensors are named '\(item.name)'") }
        }
        for (k, v) in metadata where k.utf8.contains(0) || v.utf8.contains(0) {
            throw invalid("__metadata__ entry \(k.debugDescription) contains NUL")
        }

        let header = try headerJSON(sorted, metadata: metadata, sortedBy: byBytes, invalid: invalid)
        let padded = (8 + header.count + 7) / 8 * 8 - 8
        try AtomicFile.write(to: url, permissions: permissions) { out in
            var n = UInt64(padded).littleEndian
            try withUnsafeBytes(of: &n) { try out.write($0) }
            try header.withUnsafeBytes { try out.write($0) }
            try out.write(repeating: UInt8(ascii: " "), count: padded - header.count)
            for (_, t) in sorted {
                try out.write(UnsafeRawBufferPointer(start: t.data, count: t.byteCount))
            }
        }
    }

    /// Writes the tensors of a dictionary; the file is the same as for the equivalent list.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        try write(tensors.map { (name: $0.key, tensor: $0.value) }, metadata: metadata, to: url)
    }

    /// The unpadded header JSON for tensors already in file order.
    private static func headerJSON(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String],
                                   sortedBy byBytes: (String, String) -> Bool,
                                   invalid: (String) -> SafeTensorsError) throws -> [UInt8] {
        let root = json_object()!
        defer { json_decref(root) }
        func set(_ object: UnsafeMutablePointer<json_t>, _ key: String, _ value: UnsafeMutablePointer<json_t>?) throws {
            guard let value, json_object_setn_new(object, key, key.utf8.count, value) == 0 else {
                throw invalid("jansson refused header entry \(key.debugDescription)")
            }
        }
        if !metadata.isEmpty {
            let m = json_object()!
            try set(root, "__metadata__", m)
            for k in metadata.keys.sorted(by: byBytes) {
                let v = metadata[k]!
                try set(m, k, json_stringn(v, v.utf8.count))
            }
        }
        var offset = 0
        for (name, t) in tensors {
            let entry = json_object()!
            try set(root, name, entry)
            try set(entry, "dtype", json_string("F32"))
            let shape = json_array()!
            try set(entry, "shape", shape)
            for d in t.shape { json_array_append_new(shape, json_integer(json_int_t(d))) }
            let offsets = json_array()!
            try set(entry, "data_offsets", offsets)
            json_array_append_new(offsets, json_integer(json_int_t(offset)))
            offset += t.byteCount
            json_array_append_new(offsets, json_integer(json_int_t(offset)))
        }
        guard let text = json_dumps(root, Int(JSON_COMPACT)) else { throw invalid("jansson could not serialise the header") }
        defer { free(text) }
        return Array(UnsafeRawBufferPointer(start: text, count: strlen(text)))
    }
}
