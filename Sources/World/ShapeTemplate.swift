/// One shape as the renderer draws it and the verifier matches it: exact pixel coverage (the share of
/// each pixel's area inside the shape) for any centre and size, with no per-pixel geometry.
///
/// The shape is rasterised once into a 256×256 coverage table over its normalised box (longer side
/// spanning [-1, 1], boundary cells supersampled 4×4) and kept as a summed-area table. A pixel's
/// coverage is then the integral of the table over the pixel's footprint: four bilinear look-ups of the
/// summed-area table, which is exact for the piecewise-constant table at any sub-pixel offset and scale.
public final class ShapeTemplate: @unchecked Sendable {
    public let shape: Shape
    /// Width and height of the shape's bounding box as fractions of its extent (the longer is 1).
    public let width: Float
    public let height: Float
    /// Area of the shape as a fraction of extent² (1 for a square).
    public let area: Float

    /// Table cells per side.
    static let resolution = 256
    private let n: Int
    /// Summed-area table, (n + 1) × (n + 1), row 0 at the top of the shape.
    private let sat: UnsafeMutablePointer<Float>

    /// The templates of every shape, in `Shape.allCases` order (built once, on first use).
    public static let all: [ShapeTemplate] = Shape.allCases.map { ShapeTemplate(shape: $0) }

    /// The template of `shape`.
    public static func of(_ shape: Shape) -> ShapeTemplate { all[Shape.allCases.firstIndex(of: shape)!] }

    private init(shape: Shape) {
        self.shape = shape
        let geometry = ShapeGeometry.of(shape)
        let (lo, hi) = Self.tightBounds(geometry)
        let size = hi - lo
        let span = max(size.x, size.y)
        let mid = (lo + hi) / 2
        width = Float(size.x / span)
        height = Float(size.y / span)

        let n = Self.resolution
        self.n = n
        // Normalised (u right, v up, both in [-1, 1]) to the geometry's own coordinates.
        func inside(_ u: Double, _ v: Double) -> Bool {
            geometry.contains(SIMD2(mid.x + u * span / 2, mid.y + v * span / 2))
        }
        let cell = 2.0 / Double(n)
        // Point samples at cell centres, then 4×4 supersampling where a neighbour disagrees.
        var hit = [Bool](repeating: false, count: n * n)
        for r in 0..<n {
            let v = 1 - (Double(r) + 0.5) * cell
            for c in 0..<n { hit[r * n + c] = inside(-1 + (Double(c) + 0.5) * cell, v) }
        }
        var cover = [Double](repeating: 0, count: n * n)
        for r in 0..<n {
            for c in 0..<n {
                let h = hit[r * n + c]
                var boundary = false
                for dr in -1...1 where !boundary {
                    for dc in -1...1 {
                        let rr = r + dr, cc = c + dc
                        let other = rr >= 0 && rr < n && cc >= 0 && cc < n ? hit[rr * n + cc] : false
                        if other != h { boundary = true; break }
                    }
                }
                if !boundary { cover[r * n + c] = h ? 1 : 0; continue }
                var count = 0
                for sr in 0..<4 {
                    let v = 1 - (Double(r) + (Double(sr) + 0.5) / 4) * cell
                    for sc in 0..<4 where inside(-1 + (Double(c) + (Double(sc) + 0.5) / 4) * cell, v) {
                        count += 1
                    }
                }
                cover[r * n + c] = Double(count) / 16
            }
        }
        let m = n + 1
        sat = .allocate(capacity: m * m)
        var acc = [Double](repeating: 0, count: m * m)
        for r in 0..<n {
            var rowSum = 0.0
            for c in 0..<n {
                rowSum += cover[r * n + c]
                acc[(r + 1) * m + c + 1] = acc[r * m + c + 1] + rowSum
            }
        }
        for i in 0..<(m * m) { sat[i] = Float(acc[i]) }
        area = Float(acc[m * m - 1] / Double(n * n))
    }

    deinit { sat.deallocate() }

    /// The tight bounding box of the shape in its raw coordinates; shapes with holes (a crescent's
    /// horns) are measured by sampling.
    private static func tightBounds(_ g: ShapeGeometry) -> (SIMD2<Double>, SIMD2<Double>) {
        let (lo, hi) = g.looseBounds
        guard g.hasHoles else { return (lo, hi) }
        let k = 1024
        var tlo = hi, thi = lo
        let step = (hi - lo) / Double(k)
        for i in 0...k {
            let y = lo.y + Double(i) * step.y
            for j in 0...k {
                let p = SIMD2(lo.x + Double(j) * step.x, y)
                if g.contains(p) { tlo = pointwiseMin(tlo, p); thi = pointwiseMax(thi, p) }
            }
        }
        // Sampling can only shrink the box by under one step: keep the exact loose box edges that
        // the samples reach.
        if tlo.x - lo.x < step.x { tlo.x = lo.x }
        if tlo.y - lo.y < step.y { tlo.y = lo.y }
        if hi.x - thi.x < step.x { thi.x = hi.x }
        if hi.y - thi.y < step.y { thi.y = hi.y }
        return (tlo, thi)
    }

    /// Writes into `out` (row-major, `width` × `height`, one float per pixel) the coverage of the shape
    /// centred at (`centerX`, `centerY`) in pixel units (the canvas spans [0, width] × [0, height], y
    /// down), with its longer side `extent` pixels long. Coverage is in [0, 1].
    public func coverage(centerX cx: Float, centerY cy: Float, extent e: Float,
                         width w: Int, height h: Int, into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: w * h)
        _ = coverageWindow(centerX: cx, centerY: cy, extent: e, width: w, height: h, into: out)
    }

    /// Like `coverage`, but writes only the pixels of the returned window (x0..<x1, y0..<y1), the
    /// pixels the shape's box can touch, and leaves the rest of `out` as it was.
    func coverageWindow(centerX cx: Float, centerY cy: Float, extent e: Float,
                        width w: Int, height h: Int,
                        into out: UnsafeMutablePointer<Float>) -> (x0: Int, x1: Int, y0: Int, y1: Int) {
        guard e > 0 else { return (0, 0, 0, 0) }
        let k = Float(n) / e
        let half = e / 2
        // Pixels that the shape's box can touch.
        let x0 = max(0, Int((cx - half).rounded(.down))), x1 = min(w, Int((cx + half).rounded(.up)))
        let y0 = max(0, Int((cy - half).rounded(.down))), y1 = min(h, Int((cy + half).rounded(.up)))
        guard x1 > x0, y1 > y0 else { return (0, 0, 0, 0) }
        let cw = x1 - x0 + 1, ch = y1 - y0 + 1
        let m = n + 1
        let nf = Float(n)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: cw + ch) { idx in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: cw + ch + cw * 2) { buf in
                let fx = buf.baseAddress!, fy = fx + cw
                let ix = idx.baseAddress!, iy = ix + cw
                for j in 0..<cw {
                    let t = min(max((Float(x0 + j) - cx) * k + nf / 2, 0), nf)
                    let i = min(Int(t), n - 1)
                    ix[j] = i; fx[j] = t - Float(i)
                }
                for j in 0..<ch {
                    let t = min(max((Float(y0 + j) - cy) * k + nf / 2, 0), nf)
                    let i = min(Int(t), n - 1)
                    iy[j] = i; fy[j] = t - Float(i)
                }
                // Two rows of corner integrals, rolling down the canvas.
                var prev = fy + ch, cur = prev + cw
                func cornerRow(_ r: Int, _ row: UnsafeMutablePointer<Float>) {
                    let a = sat + iy[r] * m, b = a + m
                    let v = fy[r], v1 = 1 - v
                    for j in 0..<cw {
                        let i = ix[j], u = fx[j]
                        let top = a[i] + u * (a[i + 1] - a[i])
                        let bottom = b[i] + u * (b[i + 1] - b[i])
                        row[j] = v1 * top + v * bottom
                    }
                }
                cornerRow(0, prev)
                let inv = 1 / (k * k)
                for r in 1..<ch {
                    cornerRow(r, cur)
                    let o = out + (y0 + r - 1) * w + x0
                    for j in 0..<(cw - 1) {
                        let c = (cur[j + 1] - cur[j] - prev[j + 1] + prev[j]) * inv
                        o[j] = min(max(c, 0), 1)
                    }
                    swap(&prev, &cur)
                }
            }
        }
        return (x0, x1, y0, y1)
    }
}
