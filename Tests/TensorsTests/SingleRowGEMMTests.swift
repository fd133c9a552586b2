import Tensors
import XCTest

/// `BLAS.sgemm` with a single row of A (routed to a matrix-vector product): both layouts of B, strided
/// B, beta 0 over a NaN-filled C (must not be read) and beta ≠ 0, against double precision.
final class SingleRowGEMMTests: XCTestCase {
    func testSingleRowMatchesDoublePrecision() {
        var rng = RNG(seed: 73)
        let k = 37, n = 53, ld = 61
        let a = Tensor(zeros: [k]), b = Tensor(zeros: [max(n, k) * ld])
        rng.fillNormal(a.data, count: a.count)
        rng.fillNormal(b.data, count: b.count)
        for transB in [false, true] {
            for beta: Float in [0, 0.5] {
                let c = Tensor(zeros: [n]), c0 = Tensor(zeros: [n])
                rng.fillNormal(c0.data, count: n)
                for j in 0..<n { c[j] = beta == 0 ? .nan : c0[j] }
                BLAS.sgemm(transA: false, transB: transB, m: 1, n: n, k: k, alpha: 1.5, a: a.data, lda: k,
                           b: b.data, ldb: ld, beta: beta, c: c.data, ldc: n)
                for j in 0..<n {
                    var want = beta == 0 ? 0 : Double(beta) * Double(c0[j])
                    for p in 0..<k {
                        let bv = transB ? b[j * ld + p] : b[p * ld + j]
                        want += 1.5 * Double(a[p]) * Double(bv)
                    }
                    XCTAssertEqual(Double(c[j]), want, accuracy: 1e-4, "transB \(transB), beta \(beta), column \(j)")
                }
            }
        }
    }
}
