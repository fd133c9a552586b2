/// One knowledge item of DESIGN §5: an implicit prompt that needs world knowledge, the explicit anchor
/// caption that states its answer, the superficial (literal but wrong) caption, and the attributes of the
/// right and of the wrong image. The bundled items live in `Resources/knowledge.json`; callers may supply
/// their own in the same format (see `KnowledgeBase`).
public struct KnowledgeItem: Hashable, Codable, Sendable {
    /// The WISE-style family an item belongs to.
    public enum Family: String, CaseIterable, Codable, Sendable {
        case cultural
        case spatioTemporal = "spatio-temporal"
        case naturalScience = "natural-science"
    }

    /// Which evaluation split an item is in: `train` items feed DK-DM, `testParaphrase` rewords the
    /// implicit prompt of a train concept, `testConcept` holds out whole concepts never seen in train.
    public enum Split: String, CaseIterable, Codable, Sendable {
        case train
        case testParaphrase = "test-paraphrase"
        case testConcept = "test-concept"
    }

    /// The three prompts of an item; images are generated from each and scored against `expect`.
    public enum PromptKind: String, CaseIterable, Codable, Sendable {
        case implicit, explicit, superficial
    }

    /// Unique within a knowledge base, e.g. "flags/japan" or "flags/japan/paraphrase".
    public var id: String
    /// A stable key for the piece of knowledge; a paraphrase shares its train item's concept.
    public var concept: String
    public var family: Family
    /// A finer topic ("flags", "flame-tests", …); each subdomain lies in one family.
    public var subdomain: String
    public var split: Split
    /// The prompt that needs knowledge ("the flag of Japan").
    public var implicit: String
    /// The anchor caption that states the answer ("a red circle on a white background").
    public var explicit: String
    /// The caption of the literal but wrong reading.
    public var superficial: String
    /// Attributes of a right image: the ones the knowledge fixes, the rest left nil.
    public var expect: Attributes
    /// Attributes of the superficial image; they differ from `expect` in at least one attribute that
    /// `expect` names.
    public var superficialExpect: Attributes

    public init(id: String, concept: String, family: Family, subdomain: String, split: Split,
                implicit: String, explicit: String, superficial: String,
                expect: Attributes, superficialExpect: Attributes) {
        self.id = id; self.concept = concept; self.family = family; self.subdomain = subdomain
        self.split = split; self.implicit = implicit; self.explicit = explicit
        self.superficial = superficial; self.expect = expect; self.superficialExpect = superficialExpect
    }

    /// The text of one of the item's three prompts.
    public func prompt(_ kind: PromptKind) -> String {
        switch kind {
        case .implicit: return implicit
        case .explicit: return explicit
        case .superficial: return superficial
        }
    }

    /// The attributes an image from prompt `kind` is meant to show: `superficialExpect` for the
    /// superficial prompt, `expect` for the other two. (Scores are always taken against `expect`.)
    public func intended(_ kind: PromptKind) -> Attributes {
        kind == .superficial ? superficialExpect : expect
    }
}

extension Attributes {
    /// How many attributes this value names.
    public var namedCount: Int {
        (shape == nil ? 0 : 1) + (color == nil ? 0 : 1) + (background == nil ? 0 : 1)
            + (size == nil ? 0 : 1) + (position == nil ? 0 : 1)
    }
}
