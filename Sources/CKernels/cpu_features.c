// Which instruction set the kernels here use, decided once from the CPU and ERUDIFF_KERNELS, and
// lowered on request (tests run every level the CPU has; benchmarks compare them side by side).
#include "CKernels.h"
#include <stdlib.h>
#include <string.h>

static int hardware = -1;
static int limit = ERUDIFF_KERNELS_AVX512;

static int detect(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ERUDIFF_KERNELS_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ERUDIFF_KERNELS_AVX2;
    return ERUDIFF_KERNELS_PORTABLE;
}

int erudiff_kernel_hardware_level(void) {
    if (hardware < 0) {
        const char *env = getenv("ERUDIFF_KERNELS");
        if (env && strcmp(env, "portable") == 0) limit = ERUDIFF_KERNELS_PORTABLE;
        else if (env && strcmp(env, "avx2") == 0) limit = ERUDIFF_KERNELS_AVX2;
        hardware = detect();
    }
    return hardware;
}

int erudiff_kernel_level(void) {
    const int h = erudiff_kernel_hardware_level();
    return h < limit ? h : limit;
}

int erudiff_kernel_level_limit(int level) {
    erudiff_kernel_hardware_level();
    limit = level < ERUDIFF_KERNELS_PORTABLE ? ERUDIFF_KERNELS_PORTABLE
          : level > ERUDIFF_KERNELS_AVX512 ? ERUDIFF_KERNELS_AVX512 : level;
    return erudiff_kernel_level();
}
