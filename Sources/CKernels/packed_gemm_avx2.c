// The packed GEMM of packed_gemm.c for CPUs with AVX2 + FMA but not AVX-512. With 16 vector registers
// of 8 floats a 32-column strip is taken as two halves of 16 columns, each in blocks of up to 6 rows:
// 12 accumulators, 2 weight vectors and a broadcast stay in registers while k runs, and each half reads
// one 64-byte run of the strip per k.
#include "CKernels.h"
#include "kernels_avx2.h"
#include <immintrin.h>

#define MAX_ROWS 6
#ifndef PREFETCH
#define PREFETCH 24
#endif

// One block of ROWS rows of A against one half strip (16 columns, the first `cols` of them kept).
__attribute__((target("avx2,fma"), always_inline))
static inline void block(const int ROWS, int k, const float *a, int lda, const float *half, float beta,
                         float *c, int ldc, __m256i m0, __m256i m1, int full) {
    __m256 acc0[MAX_ROWS], acc1[MAX_ROWS];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) { acc0[r] = _mm256_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    for (int p = 0; p < k; p++) {
        const float *w = half + (size_t)p * ERUDIFF_STRIP;
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        _mm_prefetch((const char *)(w + (size_t)PREFETCH * ERUDIFF_STRIP), _MM_HINT_T0);
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) {
            const __m256 x = _mm256_broadcast_ss(a + (size_t)r * lda + p);
            acc0[r] = _mm256_fmadd_ps(x, w0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(x, w1, acc1[r]);
        }
    }
    const __m256 b = _mm256_set1_ps(beta);
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) {
        float *row = c + (size_t)r * ldc;
        if (full) {
            if (beta != 0.0f) {
                acc0[r] = _mm256_fmadd_ps(b, _mm256_loadu_ps(row), acc0[r]);
                acc1[r] = _mm256_fmadd_ps(b, _mm256_loadu_ps(row + 8), acc1[r]);
            }
            _mm256_storeu_ps(row, acc0[r]);
            _mm256_storeu_ps(row + 8, acc1[r]);
        } else {
            if (beta != 0.0f) {
                acc0[r] = _mm256_fmadd_ps(b, _mm256_maskload_ps(row, m0), acc0[r]);
                acc1[r] = _mm256_fmadd_ps(b, _mm256_maskload_ps(row + 8, m1), acc1[r]);
            }
            _mm256_maskstore_ps(row, m0, acc0[r]);
            _mm256_maskstore_ps(row + 8, m1, acc1[r]);
        }
    }
}

#define CASE(R) case R: block(R, k, a + (size_t)i * lda, lda, half, beta, out + (size_t)i * ldc, ldc, m0, m1, full); break;

__attribute__((target("avx2,fma")))
void erudiff_sgemm_packed_avx2(int m, int n, int k, const float *a, int lda, const float *packed, int s0, int s1,
                               float beta, float *c, int ldc) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int s = s0; s < s1; s++) {
        const float *strip = packed + (size_t)s * k * ERUDIFF_STRIP;
        for (int h = 0; h < 2; h++) {
            const int cols = n - s * ERUDIFF_STRIP - 16 * h;  // columns left from this half on
            if (cols <= 0) break;
            const int full = cols >= 16;
            // Lane i of m0 (m1) is on when column i (8 + i) of the half exists.
            const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lane);
            const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols - 8), lane);
            const float *half = strip + 16 * h;
            float *out = c + (size_t)s * ERUDIFF_STRIP + 16 * h;
            // Row blocks of at most 6, as even as possible (7 rows: 4 + 3, not 6 + 1).
            const int blocks = (m + MAX_ROWS - 1) / MAX_ROWS;
            for (int q = 0, i = 0; q < blocks; q++) {
                const int rows = (m - i + (blocks - q) - 1) / (blocks - q);
                switch (rows) {
                    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
                }
                i += rows;
            }
        }
    }
}
