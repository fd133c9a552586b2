import Foundation
import Tensors
import XCTest

/// The packed few-row GEMM (CKernels through `PackedWeight`) and the vectorised erf GELU, against
/// double-precision references computed here.
final class PackedWeightTests: XCTestCase {
    /// Shapes around every edge of the kernel: rows 1…70 (row blocks of up to 12, uneven splits, the
    /// threaded path from 64 rows), output widths that are and are not multiples of the 32-column strip
    /// (and below 16), odd input widths; with and without bias.
    func testMatchesDoublePrecisionProduct() {
        var rng = RNG(seed: 71)
        let shapes: [(rows: Int, out: Int, inF: Int)] = [
            (1, 384, 384), (7, 1536, 384), (12, 384, 1536), (13, 1152, 384), (25, 48, 128), (3, 5, 7),
            (64, 130, 33), (70, 100, 17), (2, 16, 1), (11, 31, 64), (37, 17, 200),
        ]
        for s in shapes {
            let w = Tensor(zeros: [s.out, s.inF]), x = Tensor(zeros: [s.rows, s.inF]), b = Tensor(zeros: [s.out])
            rng.fillNormal(w.data, count: w.count)
            rng.fillNormal(x.data, count: x.count)
            rng.fillNormal(b.data, count: b.count)
            let packed = PackedWeight(w)
            for withBias in [false, true] {
                let y = Tensor(zeros: [s.rows, s.out])
                y.data.update(repeating: .nan, count: y.count)  // must be overwritten, never read
                packed.forward(x: x.data, bias: withBias ? b.data : nil, y: y.data, rows: s.rows)
                var worst = 0.0
                for r in 0..<s.rows {
                    for o in 0..<s.out {
                        var want = withBias ? Double(b[o]) : 0, magnitude = abs(want)
                        for i in 0..<s.inF {
                            let t = Double(x[r * s.inF + i]) * Double(w[o * s.inF + i])
                            want += t; magnitude += abs(t)
                        }
                        // Float accumulation error scales with Σ|terms|, not with the (cancelling) sum.
                        let err = abs(Double(y[r * s.out + o]) - want) / max(1, magnitude)
                        worst = max(worst, err.isNaN ? .infinity : err)
                    }
                }
                XCTAssertLessThan(worst, 2e-6, "rows \(s.rows), out \(s.out), in \(s.inF), bias \(withBias)")
            }
        }
    }

    /// Rows that are not touched by a call keep their contents (the kernel writes only `rows` rows).
    func testWritesOnlyItsRows() {
        var rng = RNG(seed: 72)
        let w = Tensor(zeros: [40, 24]), x = Tensor(zeros: [5, 24])
        rng.fillNormal(w.data, count: w.count)
        rng.fillNormal(x.data, count: x.count)
        let y = Tensor(zeros: [6, 40])
        y.data.update(repeating: 7, count: y.count)
        PackedWeight(w).forward(x: x.data, bias: nil, y: y.data, rows: 5)
        for o in 0..<40 { XCTAssertEqual(y[5 * 40 + o], 7) }
    }

    /// The erf GELU on a dense grid (vector body and masked tail) against double precision.
    func testGELUErfDenseGrid() {
        let n = 200_003
        let x = Tensor(zeros: [n]), y = Tensor(zeros: [n])
        for i in 0..<n { x[i] = Float(-12 + 24 * Double(i) / Double(n - 1)) }
        GELU.forward(x: x.data, y: y.data, count: n, approximation: .erf)
        var worst = 0.0
        for i in 0..<n {
            let v = Double(x[i])
            worst = max(worst, abs(Double(y[i]) - 0.5 * v * (1 + erf(v / 2.0.squareRoot()))))
        }
        XCTAssertLessThan(worst, 4e-6, "GELU erf worst absolute error \(worst)")
    }
}
