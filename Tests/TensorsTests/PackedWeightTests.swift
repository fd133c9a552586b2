import Foundation
import Tensors
import XCTest

/// The packed few-row GEMM (CKernels through `PackedWeight`) and the vectorised erf GELU, against
/// double-precision references computed here.
final class PackedWeightTests: XCTestCase {
    /// The kernel level can be lowered and restored, and the CPU's own level is among those tests run.
    func testKernelLevels() {
        let hardware = CPUKernels.hardware, before = CPUKernels.current
        XCTAssertEqual(CPUKernels.available.last, hardware)
        XCTAssertEqual(CPUKernels.available.first, .portable)
        for level in CPUKernels.available {
            CPUKernels.withLevel(level) { XCTAssertEqual(CPUKernels.current, level) }
            XCTAssertEqual(CPUKernels.current, before)
        }
        CPUKernels.withLevel(.avx512) { XCTAssertEqual(CPUKernels.current, hardware, "capped at what the CPU has") }
    }

    /// Shapes around every edge of the kernel: rows 1…70 (row blocks of up to 12 with AVX-512 and 6 with
    /// AVX2, uneven splits, the threaded path from 64 rows), output widths that are and are not multiples
    /// of the 32-column strip and of its 16-column halves, odd input widths; with and without bias; at
    /// every kernel level this CPU runs (the portable level checks the BLAS fallback).
    func testMatchesDoublePrecisionProduct() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
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
                    XCTAssertLessThan(worst, 2e-6, "rows \(s.rows), out \(s.out), in \(s.inF), bias \(withBias), \(level)")
                }
            }
        } }
    }

    /// A weight over a concatenation `[x1 | x2]` packed as two column pieces, the second accumulated,
    /// equals the product with the whole weight.
    func testColumnPiecesAccumulateToTheWholeProduct() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 74)
            let rows = 70, k1 = 20, k2 = 33, n = 45
            let w = Tensor(zeros: [n, k1 + k2]), b = Tensor(zeros: [n])
            let x1 = Tensor(zeros: [rows, k1]), x2 = Tensor(zeros: [rows, k2]), x = Tensor(zeros: [rows, k1 + k2])
            for t in [w, b, x1, x2] { rng.fillNormal(t.data, count: t.count) }
            for r in 0..<rows {
                for i in 0..<k1 { x[r * (k1 + k2) + i] = x1[r * k1 + i] }
                for i in 0..<k2 { x[r * (k1 + k2) + k1 + i] = x2[r * k2 + i] }
            }
            let whole = Tensor(zeros: [rows, n]), pieces = Tensor(zeros: [rows, n])
            PackedWeight(w).forward(x: x.data, bias: b.data, y: whole.data, rows: rows)
            PackedWeight(w, columns: 0..<k1).forward(x: x1.data, bias: b.data, y: pieces.data, rows: rows)
            PackedWeight(w, columns: k1..<(k1 + k2)).forward(x: x2.data, bias: nil, y: pieces.data, rows: rows,
                                                             accumulate: true)
            for i in 0..<whole.count { XCTAssertEqual(pieces[i], whole[i], accuracy: 1e-4 * max(1, abs(whole[i])), "\(level)") }
        } }
    }

    /// Rows that are not touched by a call keep their contents (the kernel writes only `rows` rows).
    func testWritesOnlyItsRows() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            var rng = RNG(seed: 72)
            let w = Tensor(zeros: [40, 24]), x = Tensor(zeros: [5, 24])
            rng.fillNormal(w.data, count: w.count)
            rng.fillNormal(x.data, count: x.count)
            let y = Tensor(zeros: [6, 40])
            y.data.update(repeating: 7, count: y.count)
            PackedWeight(w).forward(x: x.data, bias: nil, y: y.data, rows: 5)
            for o in 0..<40 { XCTAssertEqual(y[5 * 40 + o], 7, "\(level)") }
        } }
    }

    /// The erf GELU on a dense grid (vector body and masked tail) against double precision.
    func testGELUErfDenseGrid() {
        for level in CPUKernels.available { CPUKernels.withLevel(level) {
            let n = 200_003
            let x = Tensor(zeros: [n]), y = Tensor(zeros: [n])
            for i in 0..<n { x[i] = Float(-12 + 24 * Double(i) / Double(n - 1)) }
            GELU.forward(x: x.data, y: y.data, count: n, approximation: .erf)
            var worst = 0.0
            for i in 0..<n {
                let v = Double(x[i])
                worst = max(worst, abs(Double(y[i]) - 0.5 * v * (1 + erf(v / 2.0.squareRoot()))))
            }
            XCTAssertLessThan(worst, 4e-6, "GELU erf worst absolute error \(worst), \(level)")
        } }
    }
}
