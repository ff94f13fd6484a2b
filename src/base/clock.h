/* base/clock.h — the clocks: monotonic time for every timeout and interval, and the steady wall
 * clock for queue ages, retry times and backoffs, so that a step of the system clock (NTP, an
 * administrator, a VM resumed) neither expires mail early nor stalls its retries. */
#ifndef CLEARMTA_BASE_CLOCK_H
#define CLEARMTA_BASE_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: never jumps, never goes back. */
uint64_t base_clock_mono_ms(void);

/* The system's wall clock, Unix seconds (in testing builds plus the offset in seconds read
 * from the file $CLEARMTA_TEST_CLOCK_FILE, when set: a simulated clock step). */
int64_t base_clock_wall(void);

/* Unix seconds that advance with the monotonic clock from the wall time of the first call:
 * equal to base_clock_wall() until the system clock is stepped, then off by the step until
 * the process restarts. Thread-safe. */
int64_t base_clock_steady(void);

#endif
