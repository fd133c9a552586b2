import Foundation

/// Reading knowledge items out of JSON, field by field, so that every problem is reported with the
/// item's position and id and the words the vocabulary allows.
extension KnowledgeBase {
    static let itemFields: Set<String> = [
        "id", "concept", "family", "subdomain", "split", "implicit", "explicit", "superficial",
        "expect", "superficialExpect",
    ]
    static let topLevelFields: Set<String> = ["format", "version", "description", "items"]
    static let attributeFields: Set<String> = ["shape", "color", "background", "size", "position"]

    /// The items of a knowledge-base JSON text (an object with `items`, or a bare array), each field
    /// checked for type and vocabulary. Rules between fields and items are `KnowledgeBase.init`'s.
    public static func decodeItems(_ data: Data, source: String) throws -> [KnowledgeItem] {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw KnowledgeBaseError.malformed(source: source, reason: "invalid JSON (\(error.localizedDescription))")
        }
        let list: [Any]
        if let array = root as? [Any] {
            list = array
        } else if let object = root as? [String: Any] {
            if let extra = object.keys.filter({ !topLevelFields.contains($0) }).sorted().first {
                throw KnowledgeBaseError.malformed(source: source, reason: "unknown top-level field \"\(extra)\"")
            }
            if let format = object["format"], (format as? String) != "erudiff-knowledge" {
                throw KnowledgeBaseError.malformed(source: source,
                                                   reason: "format is \(format), not \"erudiff-knowledge\"")
            }
            if let version = object["version"], (version as? Int) != 1 {
                throw KnowledgeBaseError.malformed(source: source, reason: "version \(version) is not 1")
            }
            guard let array = object["items"] as? [Any] else {
                throw KnowledgeBaseError.malformed(source: source, reason: "no \"items\" array")
            }
            list = array
        } else {
            throw KnowledgeBaseError.malformed(source: source, reason: "top level is neither an object nor an array")
        }
        return try list.enumerated().map { index, value in
            try decodeItem(value, index: index, source: source)
        }
    }

    static func decodeItem(_ value: Any, index: Int, source: String) throws -> KnowledgeItem {
        guard let object = value as? [String: Any] else {
            throw KnowledgeBaseError.invalidItem(source: source, index: index, id: nil, reason: "not an object")
        }
        let id = object["id"] as? String
        func fail(_ reason: String) -> KnowledgeBaseError {
            .invalidItem(source: source, index: index, id: id, reason: reason)
        }
        if let extra = object.keys.filter({ !itemFields.contains($0) }).sorted().first {
            throw fail("unknown field \"\(extra)\"")
        }
        func string(_ key: String) throws -> String {
            guard let v = object[key] else { throw fail("missing field \"\(key)\"") }
            guard let s = v as? String else { throw fail("field \"\(key)\" is not a string") }
            return s
        }
        func word<T: RawRepresentable & CaseIterable>(_ raw: String, _ field: String, _: T.Type) throws -> T
            where T.RawValue == String {
            guard let v = T(rawValue: raw) else {
                let allowed = T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw fail("\(field) \"\(raw)\" is not one of \(allowed)")
            }
            return v
        }
        func attributes(_ key: String) throws -> Attributes {
            guard let v = object[key] else { throw fail("missing field \"\(key)\"") }
            guard let dict = v as? [String: Any] else { throw fail("field \"\(key)\" is not an object") }
            if let extra = dict.keys.filter({ !attributeFields.contains($0) }).sorted().first {
                throw fail("\(key) has unknown attribute \"\(extra)\" (known: shape, color, background, "
                           + "size, position)")
            }
            func raw(_ name: String) throws -> String? {
                guard let v = dict[name] else { return nil }
                guard let s = v as? String else { throw fail("\(key).\(name) is not a string") }
                return s
            }
            var a = Attributes()
            if let s = try raw("shape") { a.shape = try word(s, "\(key).shape", Shape.self) }
            if let s = try raw("color") { a.color = try word(s, "\(key).color", PaletteColor.self) }
            if let s = try raw("background") {
                a.background = try word(s, "\(key).background", PaletteColor.self)
            }
            if let s = try raw("size") { a.size = try word(s, "\(key).size", Size.self) }
            if let s = try raw("position") { a.position = try word(s, "\(key).position", Position.self) }
            return a
        }
        return KnowledgeItem(
            id: try string("id"),
            concept: try string("concept"),
            family: try word(try string("family"), "family", KnowledgeItem.Family.self),
            subdomain: try string("subdomain"),
            split: try word(try string("split"), "split", KnowledgeItem.Split.self),
            implicit: try string("implicit"),
            explicit: try string("explicit"),
            superficial: try string("superficial"),
            expect: try attributes("expect"),
            superficialExpect: try attributes("superficialExpect"))
    }
}
