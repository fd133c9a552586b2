/// A labelled sheet of images for people to look at: rows × columns of images, each upscaled by an
/// integer factor with nearest-neighbour (so 32×32 pixels stay crisp), row labels on the left and
/// column labels on top in a built-in 5×7 font, word-wrapped to fit.
public struct ImageGrid {
    /// Images by row, then column; rows may be shorter than others (empty cells stay white).
    public var rows: [[RGBImage]]
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// Upscaling factor of the images.
    public var scale: Int
    /// Upscaling factor of the label font (1: 6×9-pixel character cells).
    public var textScale: Int
    /// Widest row label, in characters, before wrapping.
    public var rowLabelChars: Int
    /// Most lines a column label may wrap to.
    public var columnLabelLines: Int

    public init(rows: [[RGBImage]], rowLabels: [String] = [], columnLabels: [String] = [], scale: Int = 4,
                textScale: Int = 1, rowLabelChars: Int = 24, columnLabelLines: Int = 4) {
        self.rows = rows; self.rowLabels = rowLabels; self.columnLabels = columnLabels
        self.scale = scale; self.textScale = textScale
        self.rowLabelChars = rowLabelChars; self.columnLabelLines = columnLabelLines
    }

    /// The sheet as one image.
    public func render() throws -> RGBImage {
        let columns = max(rows.map(\.count).max() ?? 0, columnLabels.count)
        guard !rows.isEmpty, columns > 0 else { throw WorldError.badImage("an image grid needs at least one image") }
        guard (1...64).contains(scale), (1...16).contains(textScale) else {
            throw WorldError.badImage("grid scale \(scale) / text scale \(textScale) out of range")
        }
        let cellW = (rows.flatMap { $0 }.map(\.width).max() ?? 32) * scale
        let cellH = (rows.flatMap { $0 }.map(\.height).max() ?? 32) * scale
        let pad = 4, gap = 4
        let charW = (BitmapFont.glyphWidth + 1) * textScale
        let lineH = (BitmapFont.glyphHeight + 2) * textScale

        let colLines = columnLabels.map { wrap($0, width: max(1, cellW / charW), lines: columnLabelLines) }
        let headerH = colLines.isEmpty ? 0 : (colLines.map(\.count).max() ?? 0) * lineH + pad
        let rowChars = min(rowLabelChars, rowLabels.map(\.count).max() ?? 0)
        let maxRowLines = max(1, cellH / lineH)
        let rowLines = rowLabels.map { wrap($0, width: max(1, rowChars), lines: maxRowLines) }
        let labelW = rowLabels.isEmpty ? 0 : rowChars * charW + pad

        let width = pad + labelW + columns * cellW + (columns - 1) * gap + pad
        let height = pad + headerH + rows.count * cellH + (rows.count - 1) * gap + pad
        guard width * height <= PNG.maxPixels else { throw WorldError.badImage("grid of \(width)×\(height) is too large") }
        var sheet = RGBImage(width: width, height: height)
        let ink = SIMD3<UInt8>(20, 20, 20)

        for (c, lines) in colLines.enumerated() {
            let x = pad + labelW + c * (cellW + gap)
            for (l, line) in lines.enumerated() {
                BitmapFont.draw(line, into: &sheet, x: x, y: pad + l * lineH, scale: textScale, color: ink)
            }
        }
        for (r, row) in rows.enumerated() {
            let y = pad + headerH + r * (cellH + gap)
            if r < rowLines.count {
                for (l, line) in rowLines[r].enumerated() {
                    BitmapFont.draw(line, into: &sheet, x: pad, y: y + l * lineH, scale: textScale, color: ink)
                }
            }
            for (c, image) in row.enumerated() {
                let x = pad + labelW + c * (cellW + gap)
                for py in 0..<(image.height * scale) {
                    for px in 0..<(image.width * scale) {
                        sheet[x + px, y + py] = image[px / scale, py / scale]
                    }
                }
            }
        }
        return sheet
    }

    /// Writes the sheet as a PNG file.
    public func write(to path: String) throws {
        try PNG.write(render(), to: path)
    }

    /// Greedy word wrap to `width` characters; words longer than a line are broken; text beyond
    /// `lines` lines is cut and marked with "..".
    private func wrap(_ text: String, width: Int, lines: Int) -> [String] {
        var out: [String] = []
        var line = ""
        for word in text.split(separator: " ").map(String.init) {
            var w = word
            while w.count > width {
                if !line.isEmpty { out.append(line); line = "" }
                out.append(String(w.prefix(width)))
                w = String(w.dropFirst(width))
            }
            if line.isEmpty { line = w } else if line.count + 1 + w.count <= width { line += " " + w } else {
                out.append(line); line = w
            }
        }
        if !line.isEmpty { out.append(line) }
        if out.count > lines {
            out = Array(out.prefix(lines))
            var last = out[lines - 1]
            if last.count + 2 > width { last = String(last.prefix(max(0, width - 2))) }
            out[lines - 1] = last + ".."
        }
        return out
    }
}
