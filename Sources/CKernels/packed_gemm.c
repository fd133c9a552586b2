// GEMM against a weight packed once (see CKernels.h). BLAS packs its B operand on every call, which for
// a few rows of A (a batch-1 text encoding: about ten tokens) costs more than the product: the weight
// is read, rearranged and written before any arithmetic. Here the rearrangement happens at load time
// and each call is a plain broadcast-FMA loop: for a strip of 32 output columns and up to 12 rows,
// 24 AVX-512 accumulators stay in registers while k runs, and the strip is read contiguously. CPUs with
// AVX2 but not AVX-512 run packed_gemm_avx2.c on the same packing.
#include "CKernels.h"
#include "kernels_avx2.h"
#include <immintrin.h>

#define MAX_ROWS 12
#ifndef PREFETCH
#define PREFETCH 24
#endif

size_t erudiff_packed_count(int n, int k) {
    return (size_t)((n + ERUDIFF_STRIP - 1) / ERUDIFF_STRIP) * (size_t)k * ERUDIFF_STRIP;
}

void erudiff_pack_weight(int n, int k, const float *w, int ldw, float *packed) {
    const int strips = (n + ERUDIFF_STRIP - 1) / ERUDIFF_STRIP;
    for (int s = 0; s < strips; s++) {
        float *dst = packed + (size_t)s * k * ERUDIFF_STRIP;
        for (int p = 0; p < k; p++) {
            for (int c = 0; c < ERUDIFF_STRIP; c++) {
                const int row = s * ERUDIFF_STRIP + c;
                dst[(size_t)p * ERUDIFF_STRIP + c] = row < n ? w[(size_t)row * ldw + p] : 0.0f;
            }
        }
    }
}

// One block of ROWS rows of A against one strip; ROWS is a constant at every call site, so the
// accumulators unroll into registers.
__attribute__((target("avx512f"), always_inline))
static inline void block(const int ROWS, int k, const float *a, int lda, const float *strip, float beta,
                         float *c, int ldc, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[MAX_ROWS], acc1[MAX_ROWS];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) { acc0[r] = _mm512_setzero_ps(); acc1[r] = _mm512_setzero_ps(); }
    for (int p = 0; p < k; p++) {
        const __m512 w0 = _mm512_loadu_ps(strip + (size_t)p * ERUDIFF_STRIP);
        const __m512 w1 = _mm512_loadu_ps(strip + (size_t)p * ERUDIFF_STRIP + 16);
        _mm_prefetch((const char *)(strip + (size_t)(p + PREFETCH) * ERUDIFF_STRIP), _MM_HINT_T0);
        _mm_prefetch((const char *)(strip + (size_t)(p + PREFETCH) * ERUDIFF_STRIP + 16), _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) {
            const __m512 x = _mm512_set1_ps(a[(size_t)r * lda + p]);
            acc0[r] = _mm512_fmadd_ps(x, w0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(x, w1, acc1[r]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) {
        float *row = c + (size_t)r * ldc;
        if (beta != 0.0f) {
            const __m512 b = _mm512_set1_ps(beta);
            acc0[r] = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m0, row), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(b, _mm512_maskz_loadu_ps(m1, row + 16), acc1[r]);
        }
        _mm512_mask_storeu_ps(row, m0, acc0[r]);
        _mm512_mask_storeu_ps(row + 16, m1, acc1[r]);
    }
}

#define CASE(R) case R: block(R, k, a + (size_t)i * lda, lda, strip, beta, out + (size_t)i * ldc, ldc, m0, m1); break;

__attribute__((target("avx512f")))
static void gemm(int m, int n, int k, const float *a, int lda, const float *packed, int s0, int s1, float beta,
                 float *c, int ldc) {
    for (int s = s0; s < s1; s++) {
        const float *strip = packed + (size_t)s * k * ERUDIFF_STRIP;
        const int cols = n - s * ERUDIFF_STRIP < ERUDIFF_STRIP ? n - s * ERUDIFF_STRIP : ERUDIFF_STRIP;
        const __mmask16 m0 = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1u);
        const __mmask16 m1 = cols >= 32 ? (__mmask16)0xFFFF : cols <= 16 ? (__mmask16)0 : (__mmask16)((1u << (cols - 16)) - 1u);
        float *out = c + (size_t)s * ERUDIFF_STRIP;
        // Row blocks of at most 12, as even as possible (13 rows: 7 + 6, not 12 + 1).
        const int blocks = (m + MAX_ROWS - 1) / MAX_ROWS;
        for (int q = 0, i = 0; q < blocks; q++) {
            const int rows = (m - i + (blocks - q) - 1) / (blocks - q);
            switch (rows) {
                CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
                CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
            }
            i += rows;
        }
    }
}

int erudiff_sgemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, int s0, int s1,
                         float beta, float *c, int ldc) {
    const int level = erudiff_kernel_level();
    if (level < ERUDIFF_KERNELS_AVX2) return 0;
    if (m <= 0 || n <= 0 || s1 <= s0) return 1;
    if (level >= ERUDIFF_KERNELS_AVX512) gemm(m, n, k, a, lda, packed, s0, s1, beta, c, ldc);
    else erudiff_sgemm_packed_avx2(m, n, k, a, lda, packed, s0, s1, beta, c, ldc);
    return 1;
}
