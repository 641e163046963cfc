/* test_procstat.c - the /proc parsers on hand-written text (command names
 * with spaces and parentheses, truncated lines), then the live figures of
 * this process moving as the test makes them move: a thread, a file, CPU
 * time, memory. */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "procstat.h"
#include "util.h"

/* A real line of /proc/<pid>/stat with a hostile command name. */
static const char stat_line[] =
    "4242 (we(ird) ) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 "
    "250 150 0 0 20 0 7 0 500 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 "
    "1 0 0 0 0 0\n";

static void parse_stat_fields(void **state)
{
    (void)state;
    procstat ps;
    memset(&ps, 0, sizeof ps);
    ps.open_fds = 11; /* untouched by the parser */
    assert_true(procstat_parse_stat(stat_line, 100, 4096, 1700000000, &ps));
    assert_true(ps.cpu_seconds == 4.0); /* (250 + 150) / 100 */
    assert_int_equal(ps.threads, 7);
    assert_int_equal(ps.vsize_bytes, 104857600);
    assert_int_equal(ps.rss_bytes, 2560 * 4096);
    assert_true(ps.start_time_s == 1700000005.0); /* btime + 500 ticks / 100 */
    assert_int_equal(ps.open_fds, 11);

    /* Unknown boot time: no start time. */
    assert_true(procstat_parse_stat(stat_line, 100, 4096, 0, &ps));
    assert_true(ps.start_time_s == 0);
}

static void parse_stat_malformed(void **state)
{
    (void)state;
    procstat ps;
    memset(&ps, 0, sizeof ps);
    ps.threads = 99;
    assert_false(procstat_parse_stat("", 100, 4096, 0, &ps));
    assert_false(procstat_parse_stat("12 cat R 1 2", 100, 4096, 0, &ps)); /* no parentheses */
    assert_false(procstat_parse_stat("12 (cat) R 1 2 3 4 5 6 7 8 9 10\n", 100, 4096, 0, &ps));
    assert_false(procstat_parse_stat(stat_line, 0, 4096, 0, &ps)); /* bad tick rate */
    /* Cut right before rss. */
    char cut[sizeof stat_line];
    snprintf(cut, sizeof cut, "%s", stat_line);
    char *p = strstr(cut, " 2560 ");
    assert_non_null(p);
    *p = '\0';
    assert_false(procstat_parse_stat(cut, 100, 4096, 0, &ps));
    /* A letter where utime should be. */
    assert_false(procstat_parse_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0 5 6 7\n", 100,
                                     4096, 0, &ps));
    assert_int_equal(ps.threads, 99); /* untouched on failure */
}

static void parse_statm_and_btime(void **state)
{
    (void)state;
    assert_int_equal(procstat_parse_statm_rss("732 426 398 6 0 89 0\n", 4096), 426 * 4096);
    assert_int_equal(procstat_parse_statm_rss("732\n", 4096), -1);
    assert_int_equal(procstat_parse_statm_rss("", 4096), -1);
    assert_int_equal(procstat_parse_btime("cpu  1 2 3\nintr 5 6 7\nctxt 9\nbtime 1795889651\n"
                                          "processes 3\n"),
                     1795889651);
    assert_int_equal(procstat_parse_btime("btime 42"), 42);
    assert_int_equal(procstat_parse_btime("cpu 1\nnobtime 5\n"), -1);
    assert_int_equal(procstat_parse_btime("xbtime 5\n"), -1);
}

/* ---- live figures ---- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void *parked(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    return NULL;
}

static void live_figures(void **state)
{
    (void)state;
    procstat a, b;
    assert_int_equal(procstat_read(&a), ST_OK);
    assert_true(a.rss_bytes > 0);
    assert_true(a.vsize_bytes >= a.rss_bytes);
    assert_true(a.threads >= 1);
    assert_true(a.open_fds >= 3);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    assert_int_equal(a.max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_cur);
    double now = (double)now_real_ms() / 1000.0;
    /* This process started moments ago (tick granularity 10 ms; btime is
     * whole seconds: allow a few seconds either way). */
    assert_true(a.start_time_s > now - 120 && a.start_time_s < now + 2);

    /* Two more threads, two more fds. */
    gate_open = false;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, parked, NULL), 0);
    int fd1 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd2 = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd1 >= 0 && fd2 >= 0);
    assert_int_equal(procstat_read(&b), ST_OK);
    assert_int_equal(b.threads, a.threads + 2);
    assert_int_equal(b.open_fds, a.open_fds + 2);
    assert_int_equal(procstat_open_fds(), a.open_fds + 2);
    close(fd1);
    close(fd2);
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mu);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(procstat_open_fds(), a.open_fds);

    /* CPU time: spin until the kernel's own process CPU clock has advanced
     * 300 ms (bounded by 20 s of wall time on a busy machine), then
     * /proc's figure must have advanced as much, to its 10 ms ticks. */
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    int64_t wall_until = now_mono_ms() + 20000;
    volatile uint64_t x = 0;
    double spent = 0;
    while (spent < 0.3 && now_mono_ms() < wall_until) {
        for (int i = 0; i < 100000; i++)
            x = x * 6364136223846793005ULL + 1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        spent = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    }
    assert_true(spent >= 0.3);
    assert_int_equal(procstat_read(&b), ST_OK);
    assert_true(b.cpu_seconds - a.cpu_seconds >= 0.3 - 0.05);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double total = (double)c1.tv_sec + (double)c1.tv_nsec / 1e9;
    assert_true(b.cpu_seconds <= total + 0.05);

    /* RSS follows 32 MiB that is touched, from both readers. */
    int64_t before = procstat_rss_bytes();
    size_t big = (size_t)32 << 20;
    char *mem = malloc(big);
    assert_non_null(mem);
    memset(mem, 0x5a, big);
    int64_t after = procstat_rss_bytes();
    assert_true(after >= before + (int64_t)(big * 9 / 10));
    assert_int_equal(procstat_read(&b), ST_OK);
    assert_true(b.rss_bytes >= before + (int64_t)(big * 9 / 10));
    free(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_stat_fields),
        cmocka_unit_test(parse_stat_malformed),
        cmocka_unit_test(parse_statm_and_btime),
        cmocka_unit_test(live_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
