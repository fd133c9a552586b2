// The AVX2 + FMA versions of the kernels (private to CKernels; the public entry points dispatch).
#ifndef ERUDIFF_KERNELS_AVX2_H
#define ERUDIFF_KERNELS_AVX2_H

void erudiff_sgemm_packed_avx2(int m, int n, int k, const float *a, int lda, const float *packed, int s0, int s1,
                               float beta, float *c, int ldc);
void erudiff_gelu_erf_avx2(const float *x, float *y, long n);
void erudiff_gelu_tanh_avx2(const float *x, float *y, long n);
void erudiff_gelu_tanh_backward_avx2(const float *dy, const float *x, float *dx, long n);
void erudiff_softmax_row_avx2(const float *x, float *y, long n);

#endif
