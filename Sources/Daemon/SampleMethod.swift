import EruDiff
import Foundation
import RPCServer
import Tensors
import World

extension MethodTable {
    /// `sample`: images from a resident model, one unit per sampler step (chunks of 32 images), as
    /// base64 PNG or PNG files in `output.dir`. Each image gets an id; the daemon keeps the sample
    /// (`SampleStore`) so that `rlStep` can take the caller's rewards for it.
    func registerSample(_ engine: Engine) {
        register("sample", .job { _, params in
            let model = try engine.model(params)
            let prompts: [String]
            switch (params.has("prompt"), params.has("prompts")) {
            case (true, false): prompts = [try params.string("prompt")]
            case (false, true): prompts = try params.stringArray("prompts")
            case (true, true): throw RPCError.invalidParams("give \"prompt\" or \"prompts\", not both")
            case (false, false): throw RPCError.invalidParams("\"prompt\" (a string) or \"prompts\" (an array of strings) is required")
            }
            var r = SampleParams()
            try SampleParams.specs.read(into: &r, params)
            let (count, settings) = (r.count, r.settings)
            guard prompts.count * count <= 1024 else {
                throw RPCError.invalidParams("\"count\" × the number of prompts must be at most 1024 images, got \(prompts.count * count)")
            }
            let seed = try params.seed() ?? UInt64.random(in: 0..<(1 << 32))
            var dir: URL?
            if let out = try params.nested("output") {
                let path = try out.string("dir")
                try out.finish()
                dir = try SampleJob.outputFolder(path)
            }
            let keep = r.keep
            var requests: [BatchedSampling.Request] = []
            for p in prompts {
                for _ in 0..<count { requests.append(.init(prompt: p, seed: seed &+ UInt64(requests.count))) }
            }
            return SampleJob(model: model, requests: requests, settings: settings, dir: dir,
                             store: keep ? engine.samples : nil, ids: engine.samples.reserveIDs(requests.count))
        })
    }
}

/// What `sample` reads with option tables.
struct SampleParams {
    var count = 1
    var settings = SamplingSettings()
    var keep = true

    static let specs: [OptionSpec<SampleParams>] = [
        .int("count", \.count, 1...1024, "Images per prompt (at most 1024 images in all)."),
    ] + SamplingSettings.specs().map { $0.lifted(\.settings) } + [
        .bool("keep", \.keep, "Keep the samples for rlStep's caller rewards."),
    ]
}

/// The job behind `sample`.
final class SampleJob: Job {
    let model: EngineModel
    let requests: [BatchedSampling.Request]
    let settings: SamplingSettings
    let dir: URL?
    let store: SampleStore?
    let ids: [String]
    private var sampling: BatchedSampling?
    private let admitted = Date()
    /// Images per sampler run: 16 (32 rows with guidance) keeps the shared inference workspace small.
    static let chunk = 16

    init(model: EngineModel, requests: [BatchedSampling.Request], settings: SamplingSettings, dir: URL?,
         store: SampleStore?, ids: [String]) {
        self.model = model
        self.requests = requests
        self.settings = settings
        self.dir = dir
        self.store = store
        self.ids = ids
    }

    var title: String { "sample: \(requests.count) image(s), \(settings.steps) steps" }

    /// Checks (and creates) the folder of `output.dir`.
    static func outputFolder(_ path: String) throws -> URL {
        _ = try Engine.absolute(path, "output.dir")
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw RPCError.invalidParams("\"output.dir\" \(path) cannot be created: \(error.localizedDescription)")
        }
        guard access(path, W_OK) == 0 else { throw RPCError.invalidParams("\"output.dir\" \(path) is not writable") }
        return URL(fileURLWithPath: path, isDirectory: true)
    }

    func step(_ context: JobContext) throws -> JobStep {
        if sampling == nil {
            sampling = try BatchedSampling(model: model.flow, requests: requests, settings: settings, chunk: SampleJob.chunk)
        }
        let s = sampling!
        let p = try s.next()
        guard s.isFinished, let images = s.images() else {
            return .progress(fraction: p?.fraction ?? 0, message: "step \(p?.done ?? 0) of \(p?.total ?? 0)")
        }
        return .done(try finish(images))
    }

    private func finish(_ images: Tensor) throws -> JSON {
        let flow = model.flow, pk = flow.packing
        let pngs = try flow.pngs(images)
        let used = settings.useAdapter && flow.adapterEnabled
        var out: [JSON] = []
        for (i, r) in requests.enumerated() {
            var o: [String: JSON] = [
                "id": .string(ids[i]), "prompt": .string(r.prompt), "seed": .int(Int64(bitPattern: r.seed)),
                "width": .int(Int64(pk.width)), "height": .int(Int64(pk.height)), "adapter": .bool(used),
            ]
            if let dir {
                let url = dir.appendingPathComponent(ids[i] + ".png")
                do { try AtomicFile.write(Data(pngs[i]), to: url) } catch {
                    throw RPCError.internalError("cannot write \(url.path): \(error)")
                }
                o["path"] = .string(url.path)
            } else {
                o["png"] = .string(Data(pngs[i]).base64EncodedString())
            }
            out.append(.object(o))
            if let store {
                let one = Tensor(zeros: [pk.height, pk.width, pk.channels])
                one.data.update(from: images.data + i * pk.pixelCount, count: pk.pixelCount)
                store.add(.init(id: ids[i], model: model.name, prompt: r.prompt, seed: r.seed, settings: settings,
                                image: one, created: Date()))
            }
        }
        return ["images": .array(out), "elapsedMs": .int(Int64(Date().timeIntervalSince(admitted) * 1000))]
    }
}
