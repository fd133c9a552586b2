#ifndef ERUDIFF_CKERNELS_H
#define ERUDIFF_CKERNELS_H

#include <stddef.h>

/// The instruction sets the kernels below are written for. Each kernel has an AVX-512F and an AVX2 + FMA
/// version; on a CPU with neither, callers use BLAS or their portable loops.
#define ERUDIFF_KERNELS_PORTABLE 0
#define ERUDIFF_KERNELS_AVX2 1
#define ERUDIFF_KERNELS_AVX512 2

/// The best level this CPU runs, detected once. The environment variable ERUDIFF_KERNELS=avx2 or
/// =portable lowers the limit below (for side-by-side benchmarks).
int erudiff_kernel_hardware_level(void);

/// The level the kernels use now: the hardware's, capped by the limit.
int erudiff_kernel_level(void);

/// Caps the level (tests run each level the CPU has; not meant to change while kernels run on other
/// threads). Returns the level now in use.
int erudiff_kernel_level_limit(int level);

/// Output columns per strip of a packed weight.
#define ERUDIFF_STRIP 32

/// Floats a packed copy of an [n, k] weight takes: ceil(n / 32) strips of k x 32.
size_t erudiff_packed_count(int n, int k);

/// Packs a row-major weight W[n, k] (PyTorch's [out, in] layout) once, so that products with it need
/// no per-call repacking: strip s holds P[s][p][c] = W[32 s + c][p], zero past n.
void erudiff_pack_weight(int n, int k, const float *w, int ldw, float *packed);

/// Row-major C[m, n] = A[m, k] * W^T + beta * C over the output strips [s0, s1) of a weight packed by
/// `erudiff_pack_weight` (so threads can split the strips). beta == 0 does not read C. Needs level
/// AVX2 or above: returns 0 without touching memory below it, 1 when done.
int erudiff_sgemm_packed(int m, int n, int k, const float *a, int lda, const float *packed, int s0, int s1,
                         float beta, float *c, int ldc);

/// y = 0.5 x (1 + erf(x / sqrt 2)) (exact GELU, BERT's) for n elements; y may equal x. erf is a
/// rational approximation, max absolute error 4.2e-7 against double-precision erf (AVX-512 or AVX2 when
/// the CPU has it, the same formula in scalar code otherwise).
void erudiff_gelu_erf(const float *x, float *y, long n);

/// The tanh-approximated GELU (FLUX's feed-forward): y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))),
/// and its backward dx += dy * gelu'(x). Level AVX2 or above: they return 0 without touching memory below
/// it (callers then use their portable loop), 1 when done. y may equal x.
int erudiff_gelu_tanh(const float *x, float *y, long n);
int erudiff_gelu_tanh_backward(const float *dy, const float *x, float *dx, long n);

/// y = softmax(x) over one row of n values (max subtracted; a row of -inf gives zeros). Level AVX2 or
/// above: returns 0 without touching memory below it, 1 when done. y may equal x.
int erudiff_softmax_row(const float *x, float *y, long n);

/// One task of a parallel region: `fn(ctx, i)` for a task index i.
typedef void (*erudiff_task_fn)(void *ctx, long i);

/// Runs fn(ctx, i) for every i in [0, count) on the calling thread and up to threads - 1 pool workers,
/// returning when all are done. Workers spin for a while after each region (see
/// `erudiff_pool_set_spin`) so the next region of the same pass starts without a wake-up. A call made
/// while the pool is in use (a nested region, another thread) runs its tasks inline, in order.
void erudiff_pool_run(long count, erudiff_task_fn fn, void *ctx, int threads);

/// How long an idle worker spins before it sleeps (default 100 µs; 0 sleeps at once).
void erudiff_pool_set_spin(long nanoseconds);

#endif
