import EruDiff
import Foundation
import Models
import Tensors

/// `erudiff-train flux-export <fixture-dir> <out-dir>`: writes a checkpoint and a LoRA adapter with our
/// code for `scripts/make-flux-fixture.py --check-swift` to load into diffusers and PEFT.
///
/// It takes the config and the inputs of a golden fixture folder, makes random weights (every tensor
/// non-zero) and saves them as `config.json` + `diffusion_pytorch_model.safetensors`, reloads them, runs
/// the fixture inputs through them, then does the same with a random adapter (`lora.safetensors`, PEFT
/// names, rank and alpha in its metadata); both outputs go to `outputs.safetensors`
/// (`out.sample`, `lora.out.sample`).
enum FluxExportCommand: TrainCommand {
    static let name = "flux-export"
    static let summary = "save a random FLUX checkpoint + LoRA adapter and their outputs (diffusers interop check)"

    static func run(arguments: [String]) throws {
        guard arguments.count == 2 else {
            throw CommandError(description: "usage: erudiff-train flux-export <fixture-dir> <out-dir>")
        }
        let fixture = URL(fileURLWithPath: arguments[0]), out = URL(fileURLWithPath: arguments[1])
        let config = try FluxConfig(contentsOf: fixture.appendingPathComponent("config.json"))
        let weights = FluxWeights.random(config: config, seed: 7)
        var rng = RNG(seed: 8)
        for (_, t) in weights.tensors {
            for i in 0..<t.count { t[i] += 0.1 * rng.normal() }
        }
        try FluxCheckpoint.save(weights, directory: out)
        let model = try FluxTransformer.load(directory: out)

        let io = try SafeTensors(contentsOf: fixture.appendingPathComponent("io.safetensors"))
        func rows(_ t: Tensor) -> [[Float]] {
            (0..<t.shape[0]).map { i in (0..<t.shape[1]).map { t[i * t.shape[1] + $0] } }
        }
        let positions = FluxPositions(text: rows(try io.tensor(named: "in.txt_ids")),
                                      image: rows(try io.tensor(named: "in.img_ids")))
        let input = FluxInput(image: try io.tensor(named: "in.hidden_states"),
                              text: try io.tensor(named: "in.encoder_hidden_states"),
                              pooled: try io.tensor(named: "in.pooled_projections"),
                              timesteps: try io.tensor(named: "in.timestep").array,
                              guidance: io.contains("in.guidance") ? try io.tensor(named: "in.guidance").array : nil)
        let ws = try FluxWorkspace(config: config, batch: input.batch, positions: positions, training: false)
        let base = try model.forward(input, workspace: ws).copy()

        let lora = try LoRAAdapter.initialized(config: config, rank: 3, alpha: 5, seed: 9)
        for (name, t) in lora.tensors where name.hasSuffix("lora_B.weight") {
            rng.fillNormal(t.data, count: t.count, std: 0.3)
        }
        try lora.save(to: out.appendingPathComponent("lora.safetensors"))
        model.adapter = try LoRAAdapter.load(from: out.appendingPathComponent("lora.safetensors"), config: config)
        let withLoRA = try model.forward(input, workspace: ws).copy()
        try SafeTensors.write(["out.sample": base, "lora.out.sample": withLoRA],
                              to: out.appendingPathComponent("outputs.safetensors"))
        print("wrote \(out.path): checkpoint, lora.safetensors (\(lora.modules.count) modules), outputs.safetensors")
    }
}
