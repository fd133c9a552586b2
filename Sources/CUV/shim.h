#include <uv.h>

/// Turns on libuv's count of the time the loop spends blocked waiting for I/O (read with
/// uv_metrics_idle_time). A wrapper because uv_loop_configure is variadic, which Swift cannot call.
static inline int erudiff_uv_measure_idle_time(uv_loop_t *loop) {
    return uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
}
