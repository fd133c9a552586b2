// The one CPU check every kernel here depends on (AVX-512F), done once.
#include "CKernels.h"

static int available = -1;

int erudiff_avx512_available(void) {
    if (available < 0) {
        __builtin_cpu_init();
        available = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return available;
}
