import Tensors

/// Draws scenes: a flat, anti-aliased shape of one palette colour on a uniform background, 32×32.
/// Each pixel is the background blended with the object colour by the exact share of the pixel the
/// shape covers. Fast enough to render every training image on the fly (a few microseconds each).
public enum Renderer {
    /// Canvas width and height in pixels.
    public static let side = Scene.canvas
    /// Floats in one rendered image (32 × 32 × 3).
    public static let floatCount = side * side * 3

    /// Renders `scene` as floats in [-1, 1], HWC (the model's input scale), into `out`
    /// (`floatCount` floats).
    public static func render(_ scene: Scene, into out: UnsafeMutablePointer<Float>) {
        let n = side * side
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { cov in
            let c = cov.baseAddress!
            ShapeTemplate.of(scene.shape).coverage(centerX: scene.centerX, centerY: scene.centerY,
                                                   extent: scene.extent, width: side, height: side, into: c)
            let bg = scene.background.rgb * 2 - 1
            let delta = scene.color.rgb * 2 - 1 - bg
            for i in 0..<n {
                let p = bg + c[i] * delta
                out[3 * i] = p.x; out[3 * i + 1] = p.y; out[3 * i + 2] = p.z
            }
        }
    }

    /// Draws a scene that agrees with `attributes` (see `Scene.sample`), renders it into `out` as
    /// floats in [-1, 1] HWC, and returns the scene drawn.
    @discardableResult
    public static func render(_ attributes: Attributes, rng: inout RNG,
                              into out: UnsafeMutablePointer<Float>) -> Scene {
        let scene = Scene.sample(attributes, rng: &rng)
        render(scene, into: out)
        return scene
    }

    /// Renders `scene` as an 8-bit image (for PNG files and people).
    public static func image(_ scene: Scene) -> RGBImage {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: floatCount) { buf in
            render(scene, into: buf.baseAddress!)
            return RGBImage(signedUnit: buf.baseAddress!, width: side, height: side)
        }
    }

    /// Draws a scene that agrees with `attributes` and returns it with its 8-bit image.
    public static func image(_ attributes: Attributes, rng: inout RNG) -> (scene: Scene, image: RGBImage) {
        let scene = Scene.sample(attributes, rng: &rng)
        return (scene, image(scene))
    }
}
