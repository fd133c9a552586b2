import Foundation
import RPCServer
import Tensors
import World

extension MethodTable {
    /// `images/grid`: a labelled sheet of images (World's `ImageGrid`) written as a PNG file — cells
    /// are sample ids that `sample` returned (`{"id": …}`), PNG files (a path string) or null (blank).
    /// The main job uses it for its before/after grids. The path is checked by `FileChecks`: a regular
/// file only, and a file erudiff did not write is replaced only with `overwrite: true`.
    func registerGrid(_ engine: Engine) {
        register("images/grid", .job { _, params in
            guard let rows = try params.array("rows"), !rows.isEmpty else {
                throw RPCError.invalidParams("\"rows\" is required: a non-empty array of rows of cells ({\"id\"}, a PNG path or null)")
            }
            var cells: [[GridCell]] = []
            for (r, row) in rows.enumerated() {
                guard case .array(let list) = row else { throw params.invalid("rows[\(r)]", "an array of cells", got: row) }
                cells.append(try list.enumerated().map { c, v in try GridCell(v, name: "rows[\(r)][\(c)]", store: engine.samples) })
            }
            let rowLabels = params.has("rowLabels") ? try params.stringArray("rowLabels", nonEmpty: false) : []
            let columnLabels = params.has("columnLabels") ? try params.stringArray("columnLabels", nonEmpty: false) : []
            let scale = try params.int("scale", default: 3, in: 1...16)
            let labelChars = try params.int("rowLabelChars", default: 28, in: 1...200)
            let path = try Engine.absolute(params.string("path"))
            let overwrite = try params.bool("overwrite", default: false)
            try FileChecks.writable(path, kind: .png, overwrite: overwrite)
            return ClosureJob(title: "images/grid: \(cells.count) rows") { _ in
                let images = try cells.map { try $0.map { try $0.image() } }
                let w = images.flatMap { $0 }.compactMap { $0?.width }.max() ?? 32
                let h = images.flatMap { $0 }.compactMap { $0?.height }.max() ?? 32
                let grid = ImageGrid(rows: images.map { $0.map { $0 ?? RGBImage(width: w, height: h) } }, rowLabels: rowLabels,
                                     columnLabels: columnLabels, scale: scale, rowLabelChars: labelChars)
                try FileChecks.writable(path, kind: .png, overwrite: overwrite)   // again: time passed in the queue
                do {
                    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                                            withIntermediateDirectories: true)
                    let sheet = try grid.render()
                    // Marked as erudiff's (a later grid may replace it without "overwrite"), written
                    // atomically: never through whatever is at the path.
                    let png = PNGText.adding(key: "Software", value: FileChecks.pngSoftware, to: try PNG.encode(sheet))
                    try AtomicFile.write(Data(png), to: URL(fileURLWithPath: path))
                    return .done(["path": .string(path), "width": .int(Int64(sheet.width)), "height": .int(Int64(sheet.height))])
                } catch {
                    throw RPCError.invalidParams("cannot write the grid to \"path\" \(path): \(error)")
                }
            }
        })
    }
}

/// One cell of `images/grid`.
enum GridCell {
    case blank
    case file(String, name: String)
    case sample(SampleStore.Record)

    init(_ v: JSON, name: String, store: SampleStore) throws {
        switch v {
        case .null: self = .blank
        case .string(let path):
            guard path.hasPrefix("/") else { throw RPCError.invalidParams("\"\(name)\" must be an absolute PNG path, got \"\(path)\"") }
            try FileChecks.readable(path, name: name)
            self = .file(path, name: name)
        case .object(let o):
            guard o.count == 1, let id = o["id"]?.stringValue else {
                throw RPCError.invalidParams("\"\(name)\" must be {\"id\": SAMPLE_ID}, a PNG path or null")
            }
            switch store.lookup(id) {
            case .found(let r): self = .sample(r)
            case .expired: throw RPCError.invalidParams("\"\(name)\": sample \"\(id)\" has expired (--sample-store, --sample-ttl)")
            case .unknown: throw RPCError.invalidParams("\"\(name)\": sample \"\(id)\" is unknown")
            }
        default:
            throw RPCError.invalidParams("\"\(name)\" must be {\"id\": SAMPLE_ID}, a PNG path or null, got \(v.kindDescription)")
        }
    }

    func image() throws -> RGBImage? {
        switch self {
        case .blank: return nil
        case .file(let path, let name):
            let bytes = try FileChecks.contents(path, name: name, limit: 256 << 20)
            do { return try PNG.decode(bytes, path: path) } catch { throw RPCError.invalidParams("cannot read the PNG \(path): \(error)") }
        case .sample(let r):
            let s = r.image.shape
            return RGBImage(signedUnit: r.image.data, width: s[1], height: s[0])
        }
    }
}
