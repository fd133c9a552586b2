import Diffusion
import EruDiff
import Foundation
import Models
import Tensors
import World
import XCTest

final class EvaluationTests: XCTestCase {
    static func options(seed: UInt64 = 3) -> Evaluation.Options {
        var o = Evaluation.Options()
        o.explicitCount = 6
        o.samplesPerItem = 2
        o.sampling = SamplingSettings(steps: 3, guidance: 3)
        o.seed = seed
        o.dislocation = DislocationMeasurement.Settings(samplesPerPair: 2, anchors: 1, seed: 5)
        o.chunk = 7
        return o
    }

    static func items() -> [KnowledgeItem] {
        let kb = TinyModel.knowledge
        return Array(kb.items(in: .train).prefix(4)) + Array(kb.items(in: .testParaphrase).prefix(2))
            + Array(kb.items(in: .testConcept).prefix(2))
    }

    /// Two runs with the same seed agree exactly (metrics, dislocation, image count); another seed
    /// samples other images.
    func testDeterministic() throws {
        let m = try TinyModel.trained()
        let bankSettings = AnchorBank.Settings(sampling: SamplingSettings(steps: 3), seed: 1)
        let a = try Evaluation(model: m, knowledge: TinyModel.knowledge, options: Self.options(), items: Self.items(),
                               bank: AnchorBank(settings: bankSettings, model: m)).run()
        let b = try Evaluation(model: m, knowledge: TinyModel.knowledge, options: Self.options(), items: Self.items(),
                               bank: AnchorBank(settings: bankSettings, model: m)).run()
        XCTAssertEqual(a.knowledge, b.knowledge)
        XCTAssertEqual(a.explicit, b.explicit)
        XCTAssertEqual(a.dislocation, b.dislocation)
        XCTAssertEqual(a.images, b.images)
        let k = try XCTUnwrap(a.knowledge)
        XCTAssertEqual(Set(k.bySplit.keys), ["train", "test-paraphrase", "test-concept"])
        XCTAssertEqual(k.byItem.count, 8)
        XCTAssertEqual(k.overall.implicit?.images, 16)
        XCTAssertEqual(a.explicit?.images, 12)
        // Every image is read for cleanliness too: each split and the explicit captions have a share.
        for split in k.bySplit.values { XCTAssertTrue((0...1).contains(try XCTUnwrap(split.implicit?.clean))) }
        XCTAssertTrue((0...1).contains(try XCTUnwrap(a.explicit?.clean)))
        XCTAssertEqual(Set(try XCTUnwrap(a.dislocation).perItem.keys), Set(Self.items().map(\.id)))
        // Shared prompts are sampled once: fewer images than prompts × samples.
        let prompts = Set(Self.items().flatMap { [$0.implicit, $0.explicit, $0.superficial] })
        XCTAssertLessThanOrEqual(a.images, (prompts.count + 6) * 2)
        // The same evaluation in one-image chunks gives the same readings.
        var o = Self.options()
        o.chunk = 1
        let c = try Evaluation(model: m, knowledge: TinyModel.knowledge, options: o, items: Self.items(),
                               bank: AnchorBank(settings: bankSettings, model: m)).run()
        XCTAssertEqual(c.knowledge, a.knowledge)
        XCTAssertEqual(c.explicit, a.explicit)
        print("tiny evaluation: implicit score \(a.score ?? -1), explicit captions \(a.explicit!.score), D \(a.dislocation!.mean)")
    }

    /// Built-in sets by name; unknown names are an error naming the known ones.
    func testSets() throws {
        let m = try TinyModel.model()
        var o = Self.options()
        o.sets = ["world:test"]
        let e = try Evaluation(model: m, knowledge: TinyModel.knowledge, options: o)
        XCTAssertEqual(e.items.count, TinyModel.knowledge.items.filter { $0.split != .train }.count)
        XCTAssertTrue(e.captions.isEmpty)
        o.sets = ["world:nope"]
        XCTAssertThrowsError(try Evaluation(model: m, knowledge: TinyModel.knowledge, options: o)) { e in
            XCTAssertTrue("\(e)".contains("world:train"), "\(e)")
        }
        o.sets = ["world:explicit"]
        o.dislocation = nil
        let r = try Evaluation(model: m, knowledge: TinyModel.knowledge, options: o).run()
        XCTAssertNil(r.knowledge)
        XCTAssertEqual(r.explicit?.images, 12)
        XCTAssertEqual(r.score, r.explicit?.score)
    }
}
