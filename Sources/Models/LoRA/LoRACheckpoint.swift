import Foundation
import Tensors

extension LoRAAdapter {
    /// Writes the adapter as safetensors with PEFT's names (`<module>.lora_A.weight`,
    /// `<module>.lora_B.weight`) and `__metadata__` `{format: peft, rank, alpha, target_modules}`,
    /// atomically.
    public func save(to url: URL) throws {
        let meta = ["format": "peft", "rank": String(rank), "alpha": String(alpha),
                    "target_modules": modules.joined(separator: ",")]
        try SafeTensors.write(tensors, metadata: meta, to: url)
    }

    /// Reads a PEFT LoRA safetensors file for a model of `config`. Keys may carry PEFT's
    /// `base_model.model.` or diffusers' `transformer.` prefix. The rank comes from the shapes; alpha
    /// from `alpha` if given, else the file's `alpha` metadata, else `lora_alpha` of an
    /// `adapter_config.json` beside it. Any key that is not an A/B pair of a linear layer of the model,
    /// a half pair, a wrong shape or mixed ranks is an error listing the offending tensors; so is a
    /// non-finite value (NaN or ±inf: a model with it draws NaN images) or alpha.
    public static func load(from url: URL, config: FluxConfig, alpha: Float? = nil) throws -> LoRAAdapter {
        let file: SafeTensors
        do { file = try SafeTensors(contentsOf: url) } catch {
            throw FluxError.io(path: url.path, problem: "\(error)")
        }
        let layout = FluxWeights.linearLayout(config)
        let byName = Dictionary(layout.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var pairs: [String: (a: String?, b: String?)] = [:]
        var unexpected: [String] = []
        for key in file.names {
            var k = key
            for prefix in ["base_model.model.", "transformer."] where k.hasPrefix(prefix) { k.removeFirst(prefix.count) }
            if k.hasSuffix(".lora_A.weight"), byName[String(k.dropLast(14))] != nil {
                pairs[String(k.dropLast(14)), default: (nil, nil)].a = key
            } else if k.hasSuffix(".lora_B.weight"), byName[String(k.dropLast(14))] != nil {
                pairs[String(k.dropLast(14)), default: (nil, nil)].b = key
            } else {
                unexpected.append(key)
            }
        }
        var missing: [String] = [], misshaped: [String] = []
        var ranks = Set<Int>()
        for (module, p) in pairs {
            if p.a == nil { missing.append(module + ".lora_A.weight") }
            if p.b == nil { missing.append(module + ".lora_B.weight") }
            guard let ka = p.a, let kb = p.b, let l = byName[module] else { continue }
            let sa = file.entries[ka]!.shape, sb = file.entries[kb]!.shape
            if sa.count != 2 || sa[1] != l.inFeatures { misshaped.append("\(ka) \(sa) (expected [rank, \(l.inFeatures)])") }
            if sb.count != 2 || sb[0] != l.outFeatures { misshaped.append("\(kb) \(sb) (expected [\(l.outFeatures), rank])") }
            if sa.count == 2 { ranks.insert(sa[0]) }
            if sb.count == 2 { ranks.insert(sb[1]) }
        }
        if pairs.isEmpty && unexpected.isEmpty { missing.append("(no lora_A / lora_B tensors at all)") }
        if ranks.count > 1 { misshaped.append("mixed ranks \(ranks.sorted())") }
        if !missing.isEmpty || !unexpected.isEmpty || !misshaped.isEmpty {
            throw FluxError.checkpointMismatch(path: url.path, missing: missing.sorted(), unexpected: unexpected.sorted(),
                                               misshaped: misshaped.sorted())
        }
        let rank = ranks.first!
        let resolvedAlpha: Float
        if let alpha {
            resolvedAlpha = alpha
        } else if let s = file.metadata["alpha"], let v = Float(s) {
            resolvedAlpha = v
        } else {
            let side = url.deletingLastPathComponent().appendingPathComponent("adapter_config.json")
            var st = stat()
            guard stat(side.path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,   // never a FIFO: it would block
                  let v = (try FluxJSON.read(side))["lora_alpha"] as? NSNumber else {
                throw FluxError.invalidConfig(source: url.path, problem: "LoRA alpha unknown: no 'alpha' metadata and no adapter_config.json with lora_alpha")
            }
            resolvedAlpha = v.floatValue
        }
        guard resolvedAlpha.isFinite, resolvedAlpha > 0 else {
            throw FluxError.invalidConfig(source: url.path, problem: "LoRA alpha must be a positive finite number, got \(resolvedAlpha)")
        }
        let adapter = try LoRAAdapter(config: config, rank: rank, alpha: resolvedAlpha, targets: Array(pairs.keys))
        for (module, p) in pairs {
            let id = layout.firstIndex { $0.name == module }!
            let (ta, tb) = adapter.pair(forLinear: id)!
            do {
                ta.copy(from: try file.tensor(named: p.a!))
                tb.copy(from: try file.tensor(named: p.b!))
            } catch {
                throw FluxError.io(path: url.path, problem: "\(error)")
            }
        }
        if let bad = adapter.nonFinite() {
            throw FluxError.io(path: url.path, problem: "refusing the adapter: \(bad)")
        }
        return adapter
    }

    /// Where the adapter holds NaN or infinite values ("tensor X holds 12 non-finite values, the first
    /// nan at index 3"), or nil when every value is finite.
    public func nonFinite() -> String? {
        for (name, t) in tensors {
            var count = 0, first = -1
            for i in 0..<t.count where !t.data[i].isFinite {
                if first < 0 { first = i }
                count += 1
            }
            if count > 0 {
                return "tensor \(name) holds \(count) non-finite value\(count == 1 ? "" : "s") (NaN or infinite), "
                    + "the first \(t.data[first]) at index \(first)"
            }
        }
        return nil
    }
}
