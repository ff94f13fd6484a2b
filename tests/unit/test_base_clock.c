/* tests/unit/test_base_clock.c — the clocks: the steady clock starts at the wall time and then
 * ignores steps of the wall clock (simulated through the testing builds' clock file), both
 * forwards and back; the monotonic clock never goes back. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/clock.h"

static char clock_file[] = "/tmp/clearmta-test-clock-XXXXXX";

static void set_step(long long seconds)
{
    FILE *f = fopen(clock_file, "w");
    assert_non_null(f);
    fprintf(f, "%lld\n", seconds);
    fclose(f);
}

static void test_steady_ignores_steps(void **state)
{
    (void)state;
    int fd = mkstemp(clock_file);
    assert_true(fd >= 0);
    close(fd);
    setenv("CLEARMTA_TEST_CLOCK_FILE", clock_file, 1);
    set_step(0);
    int64_t wall = base_clock_wall(), steady = base_clock_steady();
    assert_true(steady - wall <= 1 && wall - steady <= 1);
    set_step(2 * 86400);
    assert_true(base_clock_wall() - wall >= 2 * 86400 - 1);
    assert_true(base_clock_steady() - steady <= 1); /* the step does not move it */
    set_step(-86400);
    assert_true(wall - base_clock_wall() >= 86400 - 1);
    assert_true(base_clock_steady() >= steady); /* nor back */
    unsetenv("CLEARMTA_TEST_CLOCK_FILE");
    unlink(clock_file);
}

static void test_monotonic(void **state)
{
    (void)state;
    uint64_t last = base_clock_mono_ms();
    for (int i = 0; i < 1000; i++) {
        uint64_t now = base_clock_mono_ms();
        assert_true(now >= last);
        last = now;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steady_ignores_steps),
        cmocka_unit_test(test_monotonic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
