// The activations of activations.c for CPUs with AVX2 + FMA but not AVX-512: the same formulas and
// constants, 8 lanes at a time. Partial vectors at the end of a row go through a small padded buffer
// (AVX2 has no masked arithmetic); 2^n is applied as two exponent-field powers so that n = 128 (e^x near
// the float limit) stays finite where the AVX-512 version's scalef does.
#include "CKernels.h"
#include "kernels_avx2.h"
#include "activation_constants.h"
#include <immintrin.h>

typedef __m256 (*Map8)(__m256);

// y[i] = f(x[i]) over n floats. Inlined with a constant f.
__attribute__((target("avx2,fma"), always_inline))
static inline void map256(const float *x, float *y, long n, Map8 f) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float buf[8] = {0};
        for (long j = i; j < n; j++) buf[j - i] = x[j];
        _mm256_storeu_ps(buf, f(_mm256_loadu_ps(buf)));
        for (long j = i; j < n; j++) y[j] = buf[j - i];
    }
}


__attribute__((target("avx2,fma")))
static __m256 geluErf8(__m256 v) {
    const __m256 x = _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(v, _mm256_set1_ps(INV_SQRT2)), _mm256_set1_ps(4.0f)),
                                   _mm256_set1_ps(-4.0f));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(A13), _mm256_set1_ps(A11));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(A9));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(A7));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(A5));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(A3));
    p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(A1));
    __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(B8), _mm256_set1_ps(B6));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(B4));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(B2));
    q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(B0));
    const __m256 erf = _mm256_div_ps(_mm256_mul_ps(x, p), q);
    const __m256 half = _mm256_mul_ps(_mm256_set1_ps(0.5f), v);
    return _mm256_fmadd_ps(half, erf, half);
}

// 2^n for integral n in [-126, 128], as 2^(n/2) * 2^(n - n/2) so each factor's exponent field is normal.
__attribute__((target("avx2,fma")))
static __m256 pow2i(__m256 n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i a = _mm256_srai_epi32(ni, 1), b = _mm256_sub_epi32(ni, a);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 pa = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(a, bias), 23));
    const __m256 pb = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(b, bias), 23));
    return _mm256_mul_ps(pa, pb);
}

__attribute__((target("avx2,fma")))
static __m256 exp8(__m256 x) {
    const __m256 lo = _mm256_set1_ps(EXP_LO), hi = _mm256_set1_ps(EXP_HI);
    const __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), xc);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P5);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P0));
    p = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256 e = _mm256_mul_ps(p, pow2i(n));
    return _mm256_and_ps(e, _mm256_cmp_ps(x, lo, _CMP_GE_OQ));
}

__attribute__((target("avx2,fma")))
static __m256 tanh8(__m256 u) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = exp8(_mm256_add_ps(u, u));
    return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}

__attribute__((target("avx2,fma")))
static __m256 geluTanh8(__m256 v) {
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(K0), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(K1), v),
                                                                      _mm256_mul_ps(v, v), v));
    const __m256 half = _mm256_mul_ps(_mm256_set1_ps(0.5f), v);
    return _mm256_fmadd_ps(half, tanh8(u), half);
}

__attribute__((target("avx2,fma")))
static __m256 geluTanhDerivative8(__m256 v) {
    const __m256 v2 = _mm256_mul_ps(v, v), one = _mm256_set1_ps(1.0f), half = _mm256_set1_ps(0.5f);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(K0), _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(K1), v2), v, v));
    const __m256 t = tanh8(u);
    const __m256 du = _mm256_mul_ps(_mm256_set1_ps(K0), _mm256_fmadd_ps(_mm256_set1_ps(3.0f * K1), v2, one));
    const __m256 a = _mm256_mul_ps(half, _mm256_add_ps(one, t));
    const __m256 b = _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_fnmadd_ps(t, t, one));
    return _mm256_fmadd_ps(b, du, a);
}

__attribute__((target("avx2,fma")))
void erudiff_gelu_erf_avx2(const float *x, float *y, long n) { map256(x, y, n, geluErf8); }

__attribute__((target("avx2,fma")))
void erudiff_gelu_tanh_avx2(const float *x, float *y, long n) { map256(x, y, n, geluTanh8); }

__attribute__((target("avx2,fma")))
void erudiff_gelu_tanh_backward_avx2(const float *dy, const float *x, float *dx, long n) {
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(dy + i), geluTanhDerivative8(_mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(dx + i, _mm256_add_ps(_mm256_loadu_ps(dx + i), g));
    }
    if (i < n) {
        float bx[8] = {0}, bdy[8] = {0}, g[8];
        for (long j = i; j < n; j++) { bx[j - i] = x[j]; bdy[j - i] = dy[j]; }
        _mm256_storeu_ps(g, _mm256_mul_ps(_mm256_loadu_ps(bdy), geluTanhDerivative8(_mm256_loadu_ps(bx))));
        for (long j = i; j < n; j++) dx[j] += g[j - i];
    }
}

__attribute__((target("avx2,fma")))
static float hmax8(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

__attribute__((target("avx2,fma")))
static float hsum8(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_shuffle_ps(a, a, 1));
    return _mm_cvtss_f32(a);
}

__attribute__((target("avx2,fma")))
void erudiff_softmax_row_avx2(const float *x, float *y, long n) {
    const float ninf = -__builtin_inff();
    const long body = n & ~7L;
    float tail[8];  // the last partial vector, padded with -inf (whose exp is 0)
    for (long j = 0; j < 8; j++) tail[j] = body + j < n ? x[body + j] : ninf;
    __m256 mv = _mm256_set1_ps(ninf);
    for (long i = 0; i < body; i += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + i));
    if (body < n) mv = _mm256_max_ps(mv, _mm256_loadu_ps(tail));
    const float m = hmax8(mv);
    if (m == ninf) {
        for (long j = 0; j < n; j++) y[j] = 0.0f;
        return;
    }
    const __m256 mm = _mm256_set1_ps(m);
    __m256 sv = _mm256_setzero_ps();
    for (long i = 0; i < body; i += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mm));
        _mm256_storeu_ps(y + i, e);
        sv = _mm256_add_ps(sv, e);
    }
    if (body < n) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(tail), mm));
        _mm256_storeu_ps(tail, e);
        sv = _mm256_add_ps(sv, e);
    }
    const float inv = 1.0f / hsum8(sv);
    const __m256 iv = _mm256_set1_ps(inv);
    for (long i = 0; i < body; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), iv));
    for (long j = body; j < n; j++) y[j] = tail[j - body] * inv;
}
