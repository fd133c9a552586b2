import Foundation

/// Fits shape templates to a soft coverage map by least squares over centre and extent, and, for the
/// soft edges a generative model draws, over a shared edge blur: the verifier's shape reader.
final class ShapeFitter {
    /// The measured box of the object, pixels.
    struct Box {
        var centerX: Float, centerY: Float, width: Float, height: Float
    }

    /// A fitted template and its residual Σ (coverage − template)².
    struct Fit {
        var shape: Shape
        var centerX: Float, centerY: Float, extent: Float
        var residual: Float
    }

    private let alpha: UnsafePointer<Float>
    private let side: Int
    /// Σ alpha², the residual of an empty template.
    private let base: Float
    private let cov: UnsafeMutablePointer<Float>
    private let tmp: UnsafeMutablePointer<Float>
    private let model: UnsafeMutablePointer<Float>
    /// Normalised Gaussian taps (centre first) of the edge blur in use; empty for none.
    private var taps: [Float] = []
    /// The edge blur in use (Gaussian σ, pixels).
    private(set) var blur: Float = 0

    /// Edge blurs tried (Gaussian σ in pixels) when the sharp templates leave edges unexplained.
    static let blurs: [Float] = [0, 0.35, 0.55, 0.75, 1.0, 1.3]

    init(alpha: UnsafePointer<Float>, side: Int) {
        self.alpha = alpha
        self.side = side
        var b: Float = 0
        for i in 0..<(side * side) { b += alpha[i] * alpha[i] }
        base = b
        cov = .allocate(capacity: side * side)
        tmp = .allocate(capacity: side * side)
        model = .allocate(capacity: side * side)
    }

    deinit { cov.deallocate(); tmp.deallocate(); model.deallocate() }

    /// Fits every shape with sharp edges, in `Shape.allCases` order.
    func fitAll(box: Box) -> [Fit] {
        setBlur(0)
        return ShapeTemplate.all.map { t in
            let e0 = max(2, (box.width / t.width + box.height / t.height) / 2)
            var p = SIMD3<Float>(box.centerX, box.centerY, e0)
            var best = residual(t, p)
            for f: Float in [0.85, 0.92, 1.08, 1.15] {
                let q = SIMD3(p.x, p.y, e0 * f)
                let r = residual(t, q)
                if r < best { best = r; p = q }
            }
            return refine(t, from: p, residual: best, step: 1)
        }
    }

    /// The edge blur (one of `blurs`) under which `fit` explains the image best; it stays in use.
    func bestBlur(for fit: Fit) -> Float {
        let t = ShapeTemplate.of(fit.shape)
        var bestB: Float = 0, bestR = fit.residual
        for b in Self.blurs.dropFirst() {
            setBlur(b)
            let r = residual(t, SIMD3(fit.centerX, fit.centerY, fit.extent))
            if r < bestR { bestR = r; bestB = b } else { break }
        }
        setBlur(bestB)
        return bestB
    }

    /// Refits `fit`'s shape from where it stands, with edges blurred by `blur`.
    func refit(_ fit: Fit, blur: Float) -> Fit {
        setBlur(blur)
        let t = ShapeTemplate.of(fit.shape)
        let p = SIMD3(fit.centerX, fit.centerY, fit.extent)
        return refine(t, from: p, residual: residual(t, p), step: 0.5)
    }

    /// Pattern search over (centre x, centre y, extent), halving the steps down to 1/20 pixel.
    private func refine(_ t: ShapeTemplate, from start: SIMD3<Float>, residual r0: Float, step s0: Float) -> Fit {
        var p = start, best = r0
        var step = SIMD3<Float>(repeating: s0)
        while step.x > 0.05 {
            var improved = false
            for k in 0..<3 {
                for sign: Float in [1, -1] {
                    var q = p
                    q[k] += sign * step[k]
                    if q.z < 4 || q.z > 40 { continue }
                    let r = residual(t, q)
                    if r < best { best = r; p = q; improved = true; break }
                }
            }
            if !improved { step *= 0.5 }
        }
        return Fit(shape: t.shape, centerX: p.x, centerY: p.y, extent: p.z, residual: best)
    }

    private func setBlur(_ sigma: Float) {
        blur = sigma
        guard sigma > 0 else { taps = []; return }
        let r = Int((2.5 * sigma).rounded(.up))
        let s2 = Double(2 * sigma * sigma)
        var k = (0...r).map { (j: Int) -> Float in Float(exp(-Double(j * j) / s2)) }
        let total = k[0] + 2 * k.dropFirst().reduce(0, +)
        k = k.map { $0 / total }
        taps = k
    }

    /// Σ (template − alpha)² for template `t` at p = (centre x, centre y, extent). Templates whose
    /// box leaves the canvas by more than a pixel are ruled out (a wide shape half off the canvas
    /// could otherwise pass for a narrow one).
    private func residual(_ t: ShapeTemplate, _ p: SIMD3<Float>) -> Float {
        let limit = Float(side) / 2 + 1
        if abs(p.x - Float(side) / 2) + t.width * p.z / 2 > limit
            || abs(p.y - Float(side) / 2) + t.height * p.z / 2 > limit {
            return .infinity
        }
        let (w, m) = draw(t, p)
        var s: Float = 0
        for y in w.y0..<w.y1 {
            let c = m + y * side, a = alpha + y * side
            for x in w.x0..<w.x1 { s += c[x] * (c[x] - 2 * a[x]) }
        }
        return base + s
    }

    /// Draws template `t` at p with the current edge blur; returns the window it wrote and the
    /// buffer (canvas layout) that holds it. Pixels outside the window are stale.
    private func draw(_ t: ShapeTemplate, _ p: SIMD3<Float>)
        -> (window: (x0: Int, x1: Int, y0: Int, y1: Int), buffer: UnsafeMutablePointer<Float>) {
        let side = self.side
        if taps.isEmpty {
            return (t.coverageWindow(centerX: p.x, centerY: p.y, extent: p.z, width: side, height: side, into: cov), cov)
        }
        // Blurred: the window grows by the kernel radius; zero it, draw, blur rows then columns.
        let r = taps.count - 1
        let half = p.z / 2
        let x0 = max(0, Int((p.x - half).rounded(.down)) - r), x1 = min(side, Int((p.x + half).rounded(.up)) + r)
        let y0 = max(0, Int((p.y - half).rounded(.down)) - r), y1 = min(side, Int((p.y + half).rounded(.up)) + r)
        guard x1 > x0, y1 > y0 else { return ((0, 0, 0, 0), cov) }
        for y in y0..<y1 { (cov + y * side + x0).update(repeating: 0, count: x1 - x0) }
        _ = t.coverageWindow(centerX: p.x, centerY: p.y, extent: p.z, width: side, height: side, into: cov)
        taps.withUnsafeBufferPointer { k in
            for y in y0..<y1 {
                let c = cov + y * side, o = tmp + y * side
                for x in x0..<x1 {
                    var acc = k[0] * c[x]
                    for j in 1...r {
                        let l = x - j >= x0 ? c[x - j] : 0, rr = x + j < x1 ? c[x + j] : 0
                        acc += k[j] * (l + rr)
                    }
                    o[x] = acc
                }
            }
            for y in y0..<y1 {
                let o = model + y * side
                for x in x0..<x1 {
                    var acc = k[0] * tmp[y * side + x]
                    for j in 1...r {
                        let u = y - j >= y0 ? tmp[(y - j) * side + x] : 0
                        let d = y + j < y1 ? tmp[(y + j) * side + x] : 0
                        acc += k[j] * (u + d)
                    }
                    o[x] = acc
                }
            }
        }
        return ((x0, x1, y0, y1), model)
    }

    /// The fitted template of `fit` with sharp edges (the renderer's own coverage), as a full canvas;
    /// the edge blur in use stays.
    func sharpCanvas(of fit: Fit) -> [Float] {
        let kept = blur
        setBlur(0)
        defer { setBlur(kept) }
        return canvas(of: fit)
    }

    /// The fitted template of `fit` with the current edge blur, as a full canvas of coverage.
    func canvas(of fit: Fit) -> [Float] {
        var out = [Float](repeating: 0, count: side * side)
        let (w, m) = draw(ShapeTemplate.of(fit.shape), SIMD3(fit.centerX, fit.centerY, fit.extent))
        for y in w.y0..<w.y1 { for x in w.x0..<w.x1 { out[y * side + x] = m[y * side + x] } }
        return out
    }
}
