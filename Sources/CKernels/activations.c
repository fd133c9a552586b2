// Elementwise activations, 16 lanes at a time with AVX-512 (portable fallbacks where the header says):
// - exact GELU: erf(x) on [-4, 4] (±1 in float beyond) as x·P(x²)/Q(x²), the rational form Eigen and XLA
//   use for float; checked against double-precision erf by the GELU tests;
// - tanh GELU and its derivative: tanh(u) = 1 - 2 / (e^{2u} + 1), with e^x from the same range reduction
//   and polynomial as the portable Swift version (VectorMath.exp8), 2^n applied with scalef; absolute
//   error of tanh below 1e-7;
// - softmax rows, on the same e^x.
// CPUs with AVX2 but not AVX-512 run activations_avx2.c (the same formulas, 8 lanes).
#include "CKernels.h"
#include "kernels_avx2.h"
#include "activation_constants.h"
#include <immintrin.h>

typedef __m512 (*Map16)(__m512);

// y[i] = f(x[i]) over n floats, the last partial vector masked. Inlined with a constant f.
__attribute__((target("avx512f"), always_inline))
static inline void map512(const float *x, float *y, long n, Map16 f) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
    }
}


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
static __m512 geluErf16(__m512 v) {
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
static void geluErf512(const float *x, float *y, long n) { map512(x, y, n, geluErf16); }

void erudiff_gelu_erf(const float *x, float *y, long n) {
    const int level = erudiff_kernel_level();
    if (level >= ERUDIFF_KERNELS_AVX512) { geluErf512(x, y, n); return; }
    if (level == ERUDIFF_KERNELS_AVX2) { erudiff_gelu_erf_avx2(x, y, n); return; }
    for (long i = 0; i < n; i++) y[i] = gelu1(x[i]);
}


__attribute__((target("avx512f")))
static __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(EXP_LO), hi = _mm512_set1_ps(EXP_HI);
    const __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(LOG2E)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P5);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P0));
    p = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    const __m512 e = _mm512_scalef_ps(p, n);
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), e);
}

__attribute__((target("avx512f")))
static __m512 tanh16(__m512 u) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = exp16(_mm512_add_ps(u, u));
    return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
}

__attribute__((target("avx512f")))
static __m512 geluTanh16(__m512 v) {
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(K1), v),
                                                                      _mm512_mul_ps(v, v), v));
    const __m512 half = _mm512_mul_ps(_mm512_set1_ps(0.5f), v);
    return _mm512_fmadd_ps(half, tanh16(u), half);
}

__attribute__((target("avx512f")))
static __m512 geluTanhDerivative16(__m512 v) {
    const __m512 v2 = _mm512_mul_ps(v, v), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(K1), v2), v, v));
    const __m512 t = tanh16(u);
    const __m512 du = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_set1_ps(3.0f * K1), v2, one));
    const __m512 a = _mm512_mul_ps(half, _mm512_add_ps(one, t));
    const __m512 b = _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_fnmadd_ps(t, t, one));
    return _mm512_fmadd_ps(b, du, a);
}

__attribute__((target("avx512f")))
static void geluTanh512(const float *x, float *y, long n) { map512(x, y, n, geluTanh16); }

__attribute__((target("avx512f")))
static void geluTanhBackward512(const float *dy, const float *x, float *dx, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_mul_ps(_mm512_loadu_ps(dy + i), geluTanhDerivative16(_mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_loadu_ps(dx + i), g));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), geluTanhDerivative16(_mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(dx + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), g));
    }
}

int erudiff_gelu_tanh(const float *x, float *y, long n) {
    const int level = erudiff_kernel_level();
    if (level >= ERUDIFF_KERNELS_AVX512) geluTanh512(x, y, n);
    else if (level == ERUDIFF_KERNELS_AVX2) erudiff_gelu_tanh_avx2(x, y, n);
    else return 0;
    return 1;
}

int erudiff_gelu_tanh_backward(const float *dy, const float *x, float *dx, long n) {
    const int level = erudiff_kernel_level();
    if (level >= ERUDIFF_KERNELS_AVX512) geluTanhBackward512(dy, x, dx, n);
    else if (level == ERUDIFF_KERNELS_AVX2) erudiff_gelu_tanh_backward_avx2(dy, x, dx, n);
    else return 0;
    return 1;
}

__attribute__((target("avx512f")))
static void softmax512(const float *x, float *y, long n) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    __m512 mv = ninf;
    long i = 0;
    for (; i + 16 <= n; i += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(x + i));
    const __mmask16 tail = (__mmask16)((1u << (n - i)) - 1u);
    if (i < n) mv = _mm512_max_ps(mv, _mm512_mask_loadu_ps(ninf, tail, x + i));
    const float m = _mm512_reduce_max_ps(mv);
    if (m == -__builtin_inff()) {
        for (long j = 0; j < n; j++) y[j] = 0.0f;
        return;
    }
    const __m512 mm = _mm512_set1_ps(m);
    __m512 sv = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), mm));
        _mm512_storeu_ps(y + i, e);
        sv = _mm512_add_ps(sv, e);
    }
    if (i < n) {
        const __m512 e = _mm512_maskz_mov_ps(tail, exp16(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, tail, x + i), mm)));
        _mm512_mask_storeu_ps(y + i, tail, e);
        sv = _mm512_add_ps(sv, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sv));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), inv));
    if (i < n) _mm512_mask_storeu_ps(y + i, tail, _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, y + i), inv));
}

int erudiff_softmax_row(const float *x, float *y, long n) {
    const int level = erudiff_kernel_level();
    if (level >= ERUDIFF_KERNELS_AVX512) softmax512(x, y, n);
    else if (level == ERUDIFF_KERNELS_AVX2) erudiff_softmax_row_avx2(x, y, n);
    else return 0;
    return 1;
}
