/// Reads a 32×32 image back into the world's attributes: shape, object colour, background colour,
/// size and position, or says that it finds no clear object. It is the reward and the judge of every
/// method, so it must hold up on what a generative model draws (noise, soft edges, colours a little
/// off), not only on clean renders.
///
/// 1. Background: the per-channel median of the border pixels; the noise level from their spread.
/// 2. Object: the largest connected region that differs from the background after a 3×3 blur; its
///    colour is the median of its most distinct pixels.
/// 3. Every pixel gets a soft coverage value, its position between background and object colour.
/// 4. Shape: every shape template is fitted to that coverage map by least squares over centre and
///    extent (a pattern search down to 1/20 pixel, starting from the region's box); the shape with the
///    smallest residual wins. Least squares on soft coverage is the likelihood of the image under
///    Gaussian pixel noise, so it weighs exactly the few edge pixels where, say, a pentagon and a
///    circle differ.
/// 5. Colours again, now from the pixels the fitted template says are fully inside or fully outside,
///    named by the nearest palette colour in CIELAB; size and position from the fitted box.
public struct Verifier: Sendable {
    public init() {}

    /// Verifies an image of floats in [-1, 1], HWC (the model's output scale), 32×32.
    public func verify(signedUnit p: UnsafePointer<Float>, width: Int = 32, height: Int = 32) throws -> Verification {
        try check(width, height)
        var unit = [Float](repeating: 0, count: Self.n * 3)
        for i in 0..<(Self.n * 3) { unit[i] = (p[i] + 1) / 2 }
        return unit.withUnsafeBufferPointer { analyse($0.baseAddress!) }
    }

    /// Verifies an image of floats in [0, 1], HWC, 32×32.
    public func verify(unit p: UnsafePointer<Float>, width: Int = 32, height: Int = 32) throws -> Verification {
        try check(width, height)
        return analyse(p)
    }

    /// Verifies an 8-bit image (32×32).
    public func verify(_ image: RGBImage) throws -> Verification {
        try check(image.width, image.height)
        let unit = image.pixels.map { Float($0) / 255 }
        return unit.withUnsafeBufferPointer { analyse($0.baseAddress!) }
    }

    private static let side = Scene.canvas
    private static let n = side * side

    private func check(_ w: Int, _ h: Int) throws {
        guard w == Self.side, h == Self.side else { throw WorldError.unsupportedSize(width: w, height: h) }
    }

    private func analyse(_ p: UnsafePointer<Float>) -> Verification {
        let side = Self.side, n = Self.n
        func pixel(_ i: Int) -> SIMD3<Float> { SIMD3(p[3 * i], p[3 * i + 1], p[3 * i + 2]) }

        // 1. Background and noise from the border.
        var border: [SIMD3<Float>] = []
        border.reserveCapacity(4 * side)
        for x in 0..<side { border.append(pixel(x)); border.append(pixel((side - 1) * side + x)) }
        for y in 1..<(side - 1) { border.append(pixel(y * side)); border.append(pixel(y * side + side - 1)) }
        let bg0 = Self.median(border)
        let sigma = max(0.004, Self.median(border.map { Self.absolute($0 - bg0) }).sum() / 3 * 1.4826)

        // 2. The most distinct region after a 3×3 box blur.
        var blurred = [SIMD3<Float>](repeating: .zero, count: n)
        for y in 0..<side {
            for x in 0..<side {
                var s = SIMD3<Float>.zero
                for dy in -1...1 {
                    for dx in -1...1 {
                        s += pixel(min(max(y + dy, 0), side - 1) * side + min(max(x + dx, 0), side - 1))
                    }
                }
                blurred[y * side + x] = s / 9
            }
        }
        let dist = blurred.map { Self.length($0 - bg0) }
        let threshold = max(0.06, 5 * sigma / 3)
        let region = Self.largestComponent(side: side) { dist[$0] > threshold }
        guard region.count >= 6 else { return noObject(p, background: bg0) }
        let ranked = region.sorted { dist[$0] > dist[$1] }
        let core = ranked.prefix(max(3, ranked.count / 2))
        let obj0 = Self.median(core.map { pixel($0) })
        let delta = obj0 - bg0
        let contrast2 = Self.dot(delta, delta)
        guard contrast2 > 0.06 * 0.06 else { return noObject(p, background: bg0) }

        // 3. Soft coverage of every pixel.
        var alpha = [Float](repeating: 0, count: n)
        for i in 0..<n { alpha[i] = Self.dot(pixel(i) - bg0, delta) / contrast2 }
        // Box of the region's pixels that are more object than background.
        var x0 = side, x1 = -1, y0 = side, y1 = -1
        for i in region {
            let blurAlpha = Self.dot(blurred[i] - bg0, delta) / contrast2
            guard blurAlpha >= 0.5 else { continue }
            let x = i % side, y = i / side
            x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
        }
        if x1 < x0 {
            for i in region { let x = i % side, y = i / side; x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y) }
        }
        let box = ShapeFitter.Box(centerX: Float(x0 + x1 + 1) / 2, centerY: Float(y0 + y1 + 1) / 2,
                                  width: Float(x1 - x0 + 1), height: Float(y1 - y0 + 1))

        // 4. Fit every shape.
        let (fits, cov, sharp) = alpha.withUnsafeBufferPointer { a -> ([ShapeFitter.Fit], [Float], [Float]) in
            let fitter = ShapeFitter(alpha: a.baseAddress!, side: side)
            var fits = fitter.fitAll(box: box).sorted { $0.residual < $1.residual }
            // Soft edges: refit the leading shapes with the edge blur that suits the best one, so that
            // blur is not mistaken for a different outline.
            let blur = fitter.bestBlur(for: fits[0])
            if blur > 0 {
                let k = 4
                fits = fits.prefix(k).map { fitter.refit($0, blur: blur) }.sorted { $0.residual < $1.residual }
                    + fits.dropFirst(k)
            }
            return (fits, fitter.canvas(of: fits[0]), fitter.sharpCanvas(of: fits[0]))
        }
        let best = fits[0], second = fits[1]

        // 5. Colours from the fitted template: the median of the pixels it fully covers, or, for thin
        //    or soft shapes with few such pixels, the least-squares colour over all it covers.
        let inside = (0..<n).filter { cov[$0] >= 0.98 }
        var objRGB = obj0
        if inside.count >= 8 {
            objRGB = Self.median(inside.map { pixel($0) })
        } else {
            var num = SIMD3<Float>.zero, den: Float = 0
            for i in 0..<n where cov[i] > 0 { num += cov[i] * (pixel(i) - bg0); den += cov[i] * cov[i] }
            if den > 0 { objRGB = bg0 + num / den }
        }
        let outside = (0..<n).filter { cov[$0] <= 0.001 }.map { pixel($0) }
        let bgRGB = outside.isEmpty ? bg0 : Self.median(outside)

        let noiseVar = sigma * sigma / contrast2
        let energy = cov.reduce(0) { $0 + $1 * $1 }
        func fit(_ residual: Float) -> Float {
            energy > 0 ? min(max(1 - max(0, residual - Float(n) * noiseVar) / energy, 0), 1) : 0
        }
        let confidence = fit(best.residual)
        let shapeFit = Dictionary(uniqueKeysWithValues: fits.map { ($0.shape, fit($0.residual)) })  // one fit per shape

        let dx = best.centerX - Float(side) / 2, dy = best.centerY - Float(side) / 2
        let position: Position
        if max(abs(dx), abs(dy)) < Scene.positionThreshold {
            position = .center
        } else if abs(dx) >= abs(dy) {
            position = dx < 0 ? .left : .right
        } else {
            position = dy < 0 ? .top : .bottom
        }
        let attributes = Attributes(shape: best.shape, color: Palette.nearest(srgb: objRGB).color,
                                    background: Palette.nearest(srgb: bgRGB).color,
                                    size: best.extent >= Scene.sizeThreshold ? .large : .small,
                                    position: position)
        let found = confidence >= 0.5
        var inter: Float = 0, union: Float = 0
        for i in 0..<n {
            let a = min(max(alpha[i], 0), 1)
            inter += min(a, sharp[i]); union += max(a, sharp[i])
        }
        let explained = found ? Self.unexplainedShare(p, background: bgRGB, object: objRGB, coverage: cov,
                                                      edgeBand: Self.edgeBand(sharp, side: side))
            : Self.unexplainedShare(p, background: bgRGB, object: bgRGB, coverage: nil)
        return Verification(attributes: found ? attributes : Attributes(background: attributes.background),
                            foundObject: found, confidence: confidence, runnerUp: second.shape,
                            shapeMargin: second.residual - best.residual, objectRGB: objRGB,
                            backgroundRGB: bgRGB, centerX: best.centerX, centerY: best.centerY,
                            extent: best.extent, shapeFit: shapeFit,
                            outlineIoU: found && union > 0 ? inter / union : nil, unexplained: explained.all,
                            stray: explained.stray)
    }

    private func noObject(_ p: UnsafePointer<Float>, background: SIMD3<Float>) -> Verification {
        let share = Self.unexplainedShare(p, background: background, object: background, coverage: nil)
        return Verification(attributes: Attributes(background: Palette.nearest(srgb: background).color),
                            foundObject: false, confidence: 0, runnerUp: nil, shapeMargin: 0, objectRGB: background,
                            backgroundRGB: background, centerX: 16, centerY: 16, extent: 0,
                            unexplained: share.all, stray: share.stray)
    }

    /// The share of pixels farther than `Verification.unexplainedTolerance` from background + coverage ·
    /// (object − background) (with no coverage, from the background alone): all of them, and the
    /// stray ones, outside `edgeBand`.
    private static func unexplainedShare(_ p: UnsafePointer<Float>, background: SIMD3<Float>, object: SIMD3<Float>,
                                         coverage: [Float]?, edgeBand: [Bool]? = nil) -> (all: Float, stray: Float) {
        let tol = Verification.unexplainedTolerance, delta = object - background
        var count = 0, stray = 0
        for i in 0..<n {
            let want = coverage.map { background + $0[i] * delta } ?? background
            let d = absolute(SIMD3(p[3 * i], p[3 * i + 1], p[3 * i + 2]) - want)
            if max(d.x, max(d.y, d.z)) > tol {
                count += 1
                if !(edgeBand?[i] ?? false) { stray += 1 }
            }
        }
        return (Float(count) / Float(n), Float(stray) / Float(n))
    }

    /// The pixels within one pixel (8-neighbourhood) of the template's outline: where the sharp
    /// template is neither empty nor full around them.
    private static func edgeBand(_ sharp: [Float], side: Int) -> [Bool] {
        (0..<side * side).map { i in
            let x = i % side, y = i / side
            var lo: Float = 1, hi: Float = 0
            for ny in max(0, y - 1)...min(side - 1, y + 1) {
                for nx in max(0, x - 1)...min(side - 1, x + 1) {
                    lo = min(lo, sharp[ny * side + nx]); hi = max(hi, sharp[ny * side + nx])
                }
            }
            return hi > 0.02 && lo < 0.98
        }
    }

    /// The largest 4-connected set of pixels where `inside` holds.
    private static func largestComponent(side: Int, _ inside: (Int) -> Bool) -> [Int] {
        let n = side * side
        var seen = [Bool](repeating: false, count: n)
        var best: [Int] = []
        var stack: [Int] = []
        for start in 0..<n where !seen[start] && inside(start) {
            var comp: [Int] = []
            seen[start] = true
            stack.append(start)
            while let i = stack.popLast() {
                comp.append(i)
                let x = i % side, y = i / side
                for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                where nx >= 0 && ny >= 0 && nx < side && ny < side {
                    let j = ny * side + nx
                    if !seen[j] && inside(j) { seen[j] = true; stack.append(j) }
                }
            }
            if comp.count > best.count { best = comp }
        }
        return best
    }

    private static func median(_ v: [SIMD3<Float>]) -> SIMD3<Float> {
        guard !v.isEmpty else { return .zero }
        func med(_ a: [Float]) -> Float {
            let s = a.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        return SIMD3(med(v.map(\.x)), med(v.map(\.y)), med(v.map(\.z)))
    }

    private static func absolute(_ v: SIMD3<Float>) -> SIMD3<Float> { SIMD3(abs(v.x), abs(v.y), abs(v.z)) }
    private static func dot(_ a: SIMD3<Float>, _ b: SIMD3<Float>) -> Float { (a * b).sum() }
    private static func length(_ v: SIMD3<Float>) -> Float { (v * v).sum().squareRoot() }
}
