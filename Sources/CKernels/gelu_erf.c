// Exact (erf) GELU, vectorised. erf(x) on [-4, 4] (±1 in float beyond) as x·P(x²)/Q(x²), the rational
// form Eigen and XLA use for float; checked against double-precision erf by the GELU tests.
#include "CKernels.h"
#include <immintrin.h>

#define A13 -2.72614225801306e-10f
#define A11 2.77068142495902e-08f
#define A9 -2.10102402082508e-06f
#define A7 -5.69250639462346e-05f
#define A5 -7.34990630326855e-04f
#define A3 -2.95459980854025e-03f
#define A1 -1.60960333262415e-02f
#define B8 -1.45660718464996e-05f
#define B6 -2.13374055278905e-04f
#define B4 -1.68282697438203e-03f
#define B2 -7.37332916720468e-03f
#define B0 -1.42647390514189e-02f
#define INV_SQRT2 0.7071067811865476f

static float gelu1(float v) {
    float x = v * INV_SQRT2;
    x = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
    const float x2 = x * x;
    float p = x2 * A13 + A11;
    p = x2 * p + A9; p = x2 * p + A7; p = x2 * p + A5; p = x2 * p + A3; p = x2 * p + A1;
    float q = x2 * B8 + B6;
    q = x2 * q + B4; q = x2 * q + B2; q = x2 * q + B0;
    return 0.5f * v * (1.0f + x * p / q);
}

__attribute__((target("avx512f")))
static __m512 gelu16(__m512 v) {
    const __m512 x = _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(v, _mm512_set1_ps(INV_SQRT2)), _mm512_set1_ps(4.0f)),
                                   _mm512_set1_ps(-4.0f));
    const __m512 x2 = _mm512_mul_ps(x, x);
    __m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(A13), _mm512_set1_ps(A11));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(A9));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(A7));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(A5));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(A3));
    p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(A1));
    __m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(B8), _mm512_set1_ps(B6));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(B4));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(B2));
    q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(B0));
    const __m512 erf = _mm512_div_ps(_mm512_mul_ps(x, p), q);
    const __m512 half = _mm512_mul_ps(_mm512_set1_ps(0.5f), v);
    return _mm512_fmadd_ps(half, erf, half);
}

__attribute__((target("avx512f")))
static void gelu512(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, gelu16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void erudiff_gelu_erf(const float *x, float *y, long n) {
    if (erudiff_packed_available()) { gelu512(x, y, n); return; }
    for (long i = 0; i < n; i++) y[i] = gelu1(x[i]);
}
