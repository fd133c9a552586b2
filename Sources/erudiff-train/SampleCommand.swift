import EruDiff
import Foundation
import Tensors
import World

/// `erudiff-train sample`: a labelled grid of what a model draws for some prompts, without a daemon.
enum SampleCommand: TrainCommand {
    static let name = "sample"
    static let summary = "draw a labelled PNG grid of a model's samples for some prompts"

    static let usage = """
    usage: erudiff-train sample --out FILE.png [--model DIR] [--prompt TEXT]... [--random N] [--count N]
                                [--steps N] [--guidance W] [--seed N] [--minilm DIR] [--adapter FILE]
                                [--verbose] [--strays FILE.png]
      One row per prompt (--prompt, repeatable; --random N adds N random explicit captions), --count
      images per row drawn from seeds seed, seed+1, …; each row is labelled with its prompt and, for
      explicit captions, whether the verifier reads the caption's attributes back (✓ count).
      --adapter applies a PEFT LoRA file. --verbose prints what the verifier read from every image that it
      judged wrong; --strays FILE.png writes the 64 images with the most stray pixels (the clean limit's
      neighbourhood) as a grid. Every image's outline and stray pixels are summarised, any prompt's.
      For explicit captions the summary also counts the right images by the size the caption states
      (small, large, unsaid) and by the shape it names.
    """

    static func run(arguments: [String]) throws {
        if arguments.contains("--help") || arguments.contains("-h") { print(usage); return }
        // --prompt may repeat: collect those first, parse the rest as flags.
        var prompts: [String] = [], rest: [String] = []
        var i = 0
        while i < arguments.count {
            if arguments[i] == "--prompt", i + 1 < arguments.count { prompts.append(arguments[i + 1]); i += 2 }
            else { rest.append(arguments[i]); i += 1 }
        }
        let f = try Flags(rest, valued: ["out", "model", "random", "count", "steps", "guidance", "seed", "minilm", "strays", "adapter"],
                          boolean: ["verbose"])
        let verbose = f.has("verbose")
        guard let out = f.string("out") else { throw CommandError(description: "--out FILE.png is required") }
        let model = try FlowModel.load(directory: URL(fileURLWithPath: f.string("model") ?? "models/mini"),
                                       minilm: f.string("minilm"))
        if let adapter = f.string("adapter") { try model.loadAdapter(from: URL(fileURLWithPath: adapter)) }
        var rng = RNG(seed: UInt64(try f.int("seed") ?? 1) &+ 77)
        for _ in 0..<(try f.int("random") ?? 0) { prompts.append(Caption.random(&rng).text) }
        guard !prompts.isEmpty else { throw CommandError(description: "give at least one --prompt or --random N") }
        let count = try f.int("count") ?? 6
        let seed = UInt64(try f.int("seed") ?? 1)
        let settings = SamplingSettings(steps: try f.int("steps") ?? 20, guidance: try f.float("guidance") ?? 4)
        let all = prompts.flatMap { p in Array(repeating: p, count: count) }
        let seeds = (0..<all.count).map { seed &+ UInt64($0 % count) }
        let images = try model.sample(prompts: all, seeds: seeds, settings: settings)
        let verifier = Verifier()
        var rows: [[RGBImage]] = [], labels: [String] = []
        // Every explicit caption's readings, for the summary's counts (KnowledgeMetrics.stats).
        var readings: [(found: Attributes?, expected: Attributes)] = []
        var verifications: [Verification] = []
        for (r, p) in prompts.enumerated() {
            var row: [RGBImage] = [], ok = 0
            let want = Caption.parse(p)
            for c in 0..<count {
                let k = r * count + c
                row.append(model.rgbImage(images, index: k))
                let v = try verifier.verify(signedUnit: images.data + k * model.packing.pixelCount)
                verifications.append(v)
                guard let want else { continue }
                readings.append((v.attributes, want))
                if KnowledgeMetrics.isCorrect(found: v.attributes, expected: want) { ok += 1 }
                else if verbose { print("  \(p) [seed \(seeds[k])]: read \(describe(v))") }
            }
            rows.append(row)
            labels.append(want == nil ? p : "\(p) (\(ok)/\(count) ok)")
        }
        try ImageGrid(rows: rows, rowLabels: labels, scale: 3).write(to: out)
        if let strayOut = f.string("strays") {
            // The images with the most stray pixels, most first, eight to a row labelled with their range.
            let ranked = verifications.indices.sorted { verifications[$0].stray > verifications[$1].stray }.prefix(64)
            var strayRows: [[RGBImage]] = [], strayLabels: [String] = []
            for start in stride(from: 0, to: ranked.count, by: 8) {
                let part = Array(ranked.dropFirst(start).prefix(8))
                strayRows.append(part.map { model.rgbImage(images, index: $0) })
                strayLabels.append(String(format: "stray %.1f%% to %.1f%%", 100 * verifications[part.first!].stray,
                                          100 * verifications[part.last!].stray))
            }
            try ImageGrid(rows: strayRows, rowLabels: strayLabels, scale: 3).write(to: strayOut)
            print("wrote \(strayOut): the \(ranked.count) images with the most stray pixels")
        }
        let overall = KnowledgeMetrics.stats(readings: readings)
        print("wrote \(out)" + (overall.map { "; explicit captions verified right: " + rightOf($0, format: "%.0f") } ?? ""))
        if prompts.count > 1 { for label in labels { print("  " + label) } }  // per prompt, as on the PNG
        if let overall {
            print("  wrong, by attribute (of \(overall.images)): " + KnowledgeMetrics.errorNames.map { "\($0) \(overall.wrong?[$0] ?? 0)" }.joined(separator: ", "))
            print("  right, by stated size: " + groups(readings, order: Size.allCases.map(\.rawValue) + ["unsaid"]) {
                $0.size?.rawValue ?? "unsaid"
            })
            print("  right, by shape: " + groups(readings, order: Shape.allCases.map(\.rawValue)) { $0.shape?.rawValue })
        }
        print("  " + outlineSummary(verifications))
    }

    /// Outline fidelity and cleanliness of a set of readings: the median outline IoU of the images with
    /// an object, and how many pixels the readings leave unexplained.
    static func outlineSummary(_ v: [Verification]) -> String {
        func median(_ a: [Float]) -> Float {
            let s = a.sorted()
            return s.isEmpty ? .nan : s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let iou = v.compactMap(\.outlineIoU), unexplained = v.map(\.unexplained), stray = v.map(\.stray).sorted()
        let clean = v.filter(\.isClean).count
        func over(_ limit: Float) -> Int { stray.filter { $0 > limit }.count }
        func percentile(_ q: Double) -> Float { stray.isEmpty ? .nan : stray[min(stray.count - 1, Int(q * Double(stray.count)))] }
        return String(format: "outline IoU median %.3f over %d objects (25th percentile %.3f); unexplained pixels median %.2f%%; "
                      + "stray pixels median %.2f%%, 90th / 95th / 99th percentile %.2f / %.2f / %.2f%%, max %.2f%%; clean %d of %d images"
                      + " (over 2%% / 5%% / 10%% stray: %d / %d / %d)",
                      median(iou), iou.count, iou.isEmpty ? Float.nan : iou.sorted()[iou.count / 4], 100 * median(unexplained),
                      100 * median(stray), 100 * percentile(0.9), 100 * percentile(0.95), 100 * percentile(0.99),
                      100 * (stray.last ?? .nan), clean, v.count, over(0.02), over(0.05), over(0.10))
    }

    /// "right/images (percent%)" of one set of readings.
    static func rightOf(_ s: PromptStats, format: String = "%.1f") -> String {
        let right = Int((s.accuracy * Double(s.images)).rounded())
        return "\(right)/\(s.images) (" + String(format: format, 100 * s.accuracy) + "%)"
    }

    /// "small 63/122 (51.6%), …": the readings grouped by what their captions state (`key`; nil leaves a
    /// reading out), in `order`, groups never seen left out.
    static func groups(_ readings: [(found: Attributes?, expected: Attributes)], order: [String],
                       key: (Attributes) -> String?) -> String {
        let grouped = Dictionary(grouping: readings, by: { key($0.expected) })
        return order.compactMap { k in
            grouped[k].flatMap { KnowledgeMetrics.stats(readings: $0) }.map { k + " " + rightOf($0) }
        }.joined(separator: ", ")
    }

    /// One line of what the verifier read: attributes, fitted box, confidence and the runner-up shape.
    static func describe(_ v: Verification) -> String {
        let a = v.attributes
        let words = [a.size?.rawValue, a.color?.rawValue, a.shape?.rawValue, a.position?.rawValue,
                     a.background.map { "on " + $0.rawValue }].compactMap { $0 }.joined(separator: " ")
        return String(format: "%@ (extent %.1f at %.1f,%.1f; confidence %.2f; runner-up %@ by %.2f)",
                      v.foundObject ? words : "no object, " + words, v.extent, v.centerX, v.centerY, v.confidence,
                      v.runnerUp?.rawValue ?? "-", v.shapeMargin)
    }
}
