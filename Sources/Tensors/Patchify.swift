/// Packing of a channel-last image into p×p patch tokens, in the order of diffusers' FLUX
/// `_pack_latents` (which views NCHW latents as (B, C, H/p, p, W/p, p) and permutes to
/// (B, H/p, W/p, C, p, p)):
///
///     image [B, H, W, C]  ↔  tokens [B, (H/p)·(W/p), C·p·p]
///     token index   = (y / p)·(W/p) + (x / p)          (row-major over the patch grid)
///     channel index = c·p·p + (y % p)·p + (x % p)        (channel outermost, then row, then column)
///
/// so a FLUX latent `[B, C, H, W]` transposed to channel-last packs to the same tokens as in diffusers.
/// H and W must be multiples of p. `Unpatchify` is the inverse.
public enum Patchify {
    /// tokens = pack(image).
    public static func forward(image: UnsafePointer<Float>, tokens: UnsafeMutablePointer<Float>,
                               batch: Int, height: Int, width: Int, channels: Int, patch: Int) {
        permute(image, tokens, batch: batch, height: height, width: width, channels: channels, patch: patch,
                toTokens: true, accumulate: false)
    }

    /// dImage += unpack(dTokens).
    public static func backward(dTokens: UnsafePointer<Float>, dImage: UnsafeMutablePointer<Float>?,
                                batch: Int, height: Int, width: Int, channels: Int, patch: Int) {
        guard let dImage else { return }
        permute(dTokens, dImage, batch: batch, height: height, width: width, channels: channels, patch: patch,
                toTokens: false, accumulate: true)
    }

    /// Moves every element between the two layouts (toTokens: image → tokens, else tokens → image).
    static func permute(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch: Int, height: Int,
                        width: Int, channels: Int, patch p: Int, toTokens: Bool, accumulate: Bool) {
        precondition(p > 0 && height % p == 0 && width % p == 0,
                     "image \(height)×\(width) is not a whole number of \(p)×\(p) patches")
        let gw = width / p, gh = height / p, c = channels, tokenLen = c * p * p
        for b in 0..<batch {
            for y in 0..<height {
                for x in 0..<width {
                    let pix = ((b * height + y) * width + x) * c
                    let tok = (b * gh * gw + (y / p) * gw + (x / p)) * tokenLen + (y % p) * p + (x % p)
                    for ch in 0..<c {
                        let i = pix + ch, t = tok + ch * p * p
                        if toTokens {
                            if accumulate { dst[t] += src[i] } else { dst[t] = src[i] }
                        } else {
                            if accumulate { dst[i] += src[t] } else { dst[i] = src[t] }
                        }
                    }
                }
            }
        }
    }
}

/// Unpacking of patch tokens back to a channel-last image: the exact inverse of `Patchify` (diffusers'
/// FLUX `_unpack_latents`, channel-last).
public enum Unpatchify {
    /// image = unpack(tokens).
    public static func forward(tokens: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>,
                               batch: Int, height: Int, width: Int, channels: Int, patch: Int) {
        Patchify.permute(tokens, image, batch: batch, height: height, width: width, channels: channels, patch: patch,
                         toTokens: false, accumulate: false)
    }

    /// dTokens += pack(dImage).
    public static func backward(dImage: UnsafePointer<Float>, dTokens: UnsafeMutablePointer<Float>?,
                                batch: Int, height: Int, width: Int, channels: Int, patch: Int) {
        guard let dTokens else { return }
        Patchify.permute(dImage, dTokens, batch: batch, height: height, width: width, channels: channels, patch: patch,
                         toTokens: true, accumulate: true)
    }
}
