// Kernels built on a 16-lane e^x: the tanh GELU and its derivative, and a softmax row. tanh(u) = 1 - 2 / (e^{2u} + 1) with e^x from
// the same range reduction and polynomial as the portable Swift version (VectorMath.exp8), 2^n applied
// with scalef; absolute error of tanh below 1e-7.
#include "CKernels.h"
#include <immintrin.h>

#define K0 0.7978845608028654f
#define K1 0.044715f

__attribute__((target("avx512f")))
static __m512 exp16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f), hi = _mm512_set1_ps(88.72283f);
    const __m512 xc = _mm512_max_ps(_mm512_min_ps(x, hi), lo);
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.442695040888963f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
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
static __m512 forward16(__m512 v) {
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(K1), v),
                                                                      _mm512_mul_ps(v, v), v));
    const __m512 half = _mm512_mul_ps(_mm512_set1_ps(0.5f), v);
    return _mm512_fmadd_ps(half, tanh16(u), half);
}

__attribute__((target("avx512f")))
static __m512 derivative16(__m512 v) {
    const __m512 v2 = _mm512_mul_ps(v, v), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(K1), v2), v, v));
    const __m512 t = tanh16(u);
    const __m512 du = _mm512_mul_ps(_mm512_set1_ps(K0), _mm512_fmadd_ps(_mm512_set1_ps(3.0f * K1), v2, one));
    const __m512 a = _mm512_mul_ps(half, _mm512_add_ps(one, t));
    const __m512 b = _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_fnmadd_ps(t, t, one));
    return _mm512_fmadd_ps(b, du, a);
}

__attribute__((target("avx512f")))
static void forward512(const float *x, float *y, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, forward16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, forward16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f")))
static void backward512(const float *dy, const float *x, float *dx, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = _mm512_mul_ps(_mm512_loadu_ps(dy + i), derivative16(_mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(dx + i, _mm512_add_ps(_mm512_loadu_ps(dx + i), g));
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dy + i), derivative16(_mm512_maskz_loadu_ps(m, x + i)));
        _mm512_mask_storeu_ps(dx + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, dx + i), g));
    }
}

int erudiff_gelu_tanh(const float *x, float *y, long n) {
    if (!erudiff_packed_available()) return 0;
    forward512(x, y, n);
    return 1;
}

int erudiff_gelu_tanh_backward(const float *dy, const float *x, float *dx, long n) {
    if (!erudiff_packed_available()) return 0;
    backward512(dy, x, dx, n);
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
    if (!erudiff_packed_available()) return 0;
    softmax512(x, y, n);
    return 1;
}
