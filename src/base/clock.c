/* base/clock.c — monotonic milliseconds, the wall clock (with the testing builds' simulated
 * step) and the steady wall clock anchored at its first use. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"

uint64_t base_clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#ifdef CLEARMTA_TESTING
/* Seconds the test moved the wall clock by (tests/integration/t_92_clock.py). */
static int64_t test_offset(void)
{
    const char *path = getenv("CLEARMTA_TEST_CLOCK_FILE");
    FILE *f = path ? fopen(path, "re") : NULL;
    long long off = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld", &off) != 1)
        off = 0;
    fclose(f);
    return (int64_t)off;
}
#endif

int64_t base_clock_wall(void)
{
    int64_t now = (int64_t)time(NULL);
#ifdef CLEARMTA_TESTING
    now += test_offset();
#endif
    return now;
}

int64_t base_clock_steady(void)
{
    /* wall - monotonic at the first call; 0 is "not yet" (a wall clock in 1970 is no clock) */
    static _Atomic int64_t anchor_ms;
    int64_t anchor = atomic_load(&anchor_ms);
    if (anchor == 0) {
        int64_t want = base_clock_wall() * 1000 - (int64_t)base_clock_mono_ms();
        if (want == 0)
            want = 1;
        if (atomic_compare_exchange_strong(&anchor_ms, &anchor, want))
            anchor = want; /* else another thread anchored first: anchor holds its value */
    }
    return (anchor + (int64_t)base_clock_mono_ms()) / 1000;
}
