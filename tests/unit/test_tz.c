/* test_tz.c - the TZif reader against `TZ=... date` (a table captured from
 * date(1)) and against glibc's localtime_r with TZ set (a runtime oracle over
 * thousands of seeded instants from 1900 to 2400, including DST edges and the
 * POSIX footer past 2037); name hardening; malformed files; threads. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tz.h"
#include "util.h"

/* Captured with: TZ=$zone date -d @$t '+%Y-%m-%d %H:%M:%S %z %Z %u' */
/* clang-format off */
static const struct {
    const char *zone;
    int64_t t;
    const char *want;
} date_table[] = {
    { "America/New_York", 1710053999LL, "2024-03-10 01:59:59 -0500 EST 7" },
    { "America/New_York", 1710054000LL, "2024-03-10 03:00:00 -0400 EDT 7" },
    { "America/New_York", 1730613599LL, "2024-11-03 01:59:59 -0400 EDT 7" },
    { "America/New_York", 1730613600LL, "2024-11-03 01:00:00 -0500 EST 7" },
    { "America/New_York", 2540289600LL, "2050-07-01 08:00:00 -0400 EDT 5" },
    { "America/New_York", 2530767599LL, "2050-03-13 01:59:59 -0500 EST 7" },
    { "America/New_York", 2530767600LL, "2050-03-13 03:00:00 -0400 EDT 7" },
    { "America/New_York", 4097196000LL, "2099-11-01 01:00:00 -0500 EST 7" },
    { "America/New_York", -618062400LL, "1950-06-01 08:00:00 -0400 EDT 4" },
    { "Europe/Berlin", 1711846799LL, "2024-03-31 01:59:59 +0100 CET 7" },
    { "Europe/Berlin", 1711846800LL, "2024-03-31 03:00:00 +0200 CEST 7" },
    { "Europe/Berlin", 1729990799LL, "2024-10-27 02:59:59 +0200 CEST 7" },
    { "Europe/Berlin", 1729990800LL, "2024-10-27 02:00:00 +0100 CET 7" },
    { "Europe/Berlin", 4128627599LL, "2100-10-31 02:59:59 +0200 CEST 7" },
    { "Europe/Berlin", 4128627600LL, "2100-10-31 02:00:00 +0100 CET 7" },
    { "Europe/Berlin", -775828800LL, "1945-06-01 15:00:00 +0300 CEMT 5" },
    { "Australia/Sydney", 1712419199LL, "2024-04-07 02:59:59 +1100 AEDT 7" },
    { "Australia/Sydney", 1712419200LL, "2024-04-07 02:00:00 +1000 AEST 7" },
    { "Australia/Sydney", 1728143999LL, "2024-10-06 01:59:59 +1000 AEST 7" },
    { "Australia/Sydney", 1728144000LL, "2024-10-06 03:00:00 +1100 AEDT 7" },
    { "Australia/Sydney", 2366841600LL, "2045-01-01 11:00:00 +1100 AEDT 7" },
    { "Australia/Sydney", 2382458400LL, "2045-07-01 04:00:00 +1000 AEST 6" },
    { "Asia/Kolkata", 1893456000LL, "2030-01-01 05:30:00 +0530 IST 2" },
    { "Asia/Kolkata", -862617600LL, "1942-09-01 06:30:00 +0630 +0630 2" },
    { "Asia/Kolkata", 2871748800LL, "2061-01-01 01:30:00 +0530 IST 6" },
    { "UTC", 7258118400LL, "2200-01-01 00:00:00 +0000 UTC 3" },
    { "UTC", 0LL, "1970-01-01 00:00:00 +0000 UTC 4" },
};
/* clang-format on */

static const char *const oracle_zones[] = {
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "UTC",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Europe/Dublin", /* negative DST in the source data */
    "Africa/Casablanca",
    "Pacific/Apia",
    "Antarctica/Troll",
    "America/Nuuk",
};

static void format_local(const tz_local *lt, char *buf, size_t cap)
{
    int32_t off = lt->utc_offset_s;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, cap, "%04lld-%02d-%02d %02d:%02d:%02d %c%02d%02d %s %d", (long long)lt->year,
             lt->month, lt->day, lt->hour, lt->minute, lt->second, sign, off / 3600, off / 60 % 60,
             lt->abbr, lt->iso_weekday);
}

static void tz_matches_date_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof date_table / sizeof date_table[0]; i++) {
        const tz_zone *z = NULL;
        char err[128] = "";
        assert_int_equal(tz_get(date_table[i].zone, &z, err, sizeof err), ST_OK);
        tz_local lt;
        assert_int_equal(tz_localtime(z, date_table[i].t, &lt), ST_OK);
        char got[96];
        format_local(&lt, got, sizeof got);
        if (strcmp(got, date_table[i].want) != 0)
            fail_msg("%s @%lld: got '%s', want '%s'", date_table[i].zone,
                     (long long)date_table[i].t, got, date_table[i].want);
        assert_int_equal(tz_offset_at(z, date_table[i].t), lt.utc_offset_s);
    }
}

/* splitmix64: a seeded sequence for choosing instants. */
static uint64_t mix_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* glibc is the oracle here: setenv("TZ") is process-global, which is fine in
 * this single-threaded test and exactly what tz.c exists to avoid. */
static void tz_matches_glibc(void **state)
{
    (void)state;
    const int64_t lo = -2208988800LL; /* 1900 */
    const int64_t hi = 13569465600LL; /* 2400 */
    uint64_t seed = 7;
    size_t checked = 0;
    for (size_t zi = 0; zi < sizeof oracle_zones / sizeof oracle_zones[0]; zi++) {
        const tz_zone *z = NULL;
        char err[128] = "";
        status st = tz_get(oracle_zones[zi], &z, err, sizeof err);
        if (st != ST_OK)
            fail_msg("%s: %s", oracle_zones[zi], err);
        setenv("TZ", oracle_zones[zi], 1);
        tzset();
        for (int k = 0; k < 3000; k++) {
            int64_t t;
            if (k < 2000) {
                t = lo + (int64_t)(mix_next(&seed) % (uint64_t)(hi - lo));
            } else {
                /* around glibc's own transitions: find one by bisection */
                int64_t a =
                    1577836800LL + (int64_t)(mix_next(&seed) % (uint64_t)(400LL * 31556952));
                t = a;
                struct tm ta, tb;
                time_t ta_t = (time_t)a, tb_t = (time_t)(a + 183 * 86400);
                localtime_r(&ta_t, &ta);
                localtime_r(&tb_t, &tb);
                if (ta.tm_gmtoff != tb.tm_gmtoff) {
                    int64_t l = a, h = a + 183 * 86400;
                    for (int it = 0; it < 64 && h - l > 1; it++) {
                        int64_t m = l + (h - l) / 2;
                        time_t mt = (time_t)m;
                        struct tm tmm;
                        localtime_r(&mt, &tmm);
                        if (tmm.tm_gmtoff == ta.tm_gmtoff)
                            l = m;
                        else
                            h = m;
                    }
                    t = h - 1 + (int64_t)(k % 3); /* last second before, first two after */
                }
            }
            time_t tt = (time_t)t;
            struct tm want;
            assert_non_null(localtime_r(&tt, &want));
            tz_local got;
            assert_int_equal(tz_localtime(z, t, &got), ST_OK);
            if (got.utc_offset_s != want.tm_gmtoff || got.hour != want.tm_hour ||
                got.minute != want.tm_min || got.second != want.tm_sec || got.day != want.tm_mday ||
                got.month != want.tm_mon + 1 || got.year != (int64_t)want.tm_year + 1900 ||
                got.yday != want.tm_yday ||
                got.iso_weekday != (want.tm_wday == 0 ? 7 : want.tm_wday) ||
                got.is_dst != (want.tm_isdst > 0) || strcmp(got.abbr, want.tm_zone) != 0)
                fail_msg("%s @%lld: offset %d/%ld dst %d/%d abbr %s/%s %02d:%02d", oracle_zones[zi],
                         (long long)t, got.utc_offset_s, (long)want.tm_gmtoff, got.is_dst,
                         want.tm_isdst, got.abbr, want.tm_zone, got.hour, want.tm_hour);
            checked++;
        }
    }
    unsetenv("TZ");
    tzset();
    assert_true(checked >= 14 * 3000);
}

static void tz_hour_of_week_and_ranges(void **state)
{
    (void)state;
    const tz_zone *z = NULL;
    assert_int_equal(tz_get("Europe/Berlin", &z, NULL, 0), ST_OK);
    /* 2024-01-01 was a Monday; 00:30 local = 2023-12-31T23:30Z. */
    assert_int_equal(tz_hour_of_week(z, 1704065400LL), 0);
    /* Sunday 2024-01-07 23:59:59 local = 22:59:59Z. */
    assert_int_equal(tz_hour_of_week(z, 1704668399LL), 167);
    assert_int_equal(tz_hour_of_week(tz_utc(), 1704065400LL), 6 * 24 + 23);
    tz_local lt;
    assert_int_equal(tz_localtime(z, TZ_MAX_S + 1, &lt), ST_INVALID);
    assert_int_equal(tz_localtime(z, TZ_MIN_S - 1, &lt), ST_INVALID);
    assert_int_equal(tz_localtime(z, TZ_MAX_S, &lt), ST_OK);
    assert_int_equal(lt.year, 10000); /* 9999-12-31T23:59:59Z in Berlin */
    assert_int_equal(tz_localtime(z, TZ_MIN_S, &lt), ST_OK);
    assert_int_equal(tz_hour_of_week(z, INT64_MAX), -1);
    /* Civil round trip over a wide range of days. */
    for (int64_t d = -800000; d <= 3000000; d += 997) {
        int64_t y;
        int m, dd;
        tz_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(tz_days_from_civil(y, m, dd), d);
    }
}

static void tz_names_are_hardened(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/etc/passwd",
        "../../etc/passwd",
        "Europe/../../etc/passwd",
        "Europe//Berlin",
        "Europe/Berlin/",
        ".hidden",
        "Europe/.x",
        "zone.tab",
        "Europe/Berlin\n",
        "Europe Berlin",
        "Europe\\Berlin",
        "a\x80",
        "Europe/Berlin;rm",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const tz_zone *z = (const tz_zone *)1;
        assert_false(tz_name_valid(bad[i]));
        assert_int_equal(tz_get(bad[i], &z, NULL, 0), ST_INVALID);
        assert_null(z);
    }
    assert_false(tz_name_valid(NULL));
    static const char *const good[] = { "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires",
                                        "America/Port-au-Prince", "US/Eastern" };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const tz_zone *z = NULL;
        assert_true(tz_name_valid(good[i]));
        assert_int_equal(tz_get(good[i], &z, NULL, 0), ST_OK);
        assert_string_equal(tz_zone_name(z), good[i]);
    }
    /* Etc/GMT+5 is UTC-5 (POSIX sign). */
    const tz_zone *z = NULL;
    assert_int_equal(tz_get("Etc/GMT+5", &z, NULL, 0), ST_OK);
    assert_int_equal(tz_offset_at(z, 1700000000LL), -5 * 3600);
    /* Syntactically fine but not zones: unknown, directory, not TZif, leap seconds. */
    char err[128];
    assert_int_equal(tz_get("Mars/Olympus_Mons", &z, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(tz_get("Europe", &z, err, sizeof err), ST_NOT_FOUND);
    assert_int_equal(tz_get("leapseconds", &z, err, sizeof err), ST_NOT_FOUND);
    assert_int_not_equal(tz_get("right/UTC", &z, err, sizeof err), ST_OK);
    /* Cached: the same pointer every time. */
    const tz_zone *a = NULL, *b = NULL;
    assert_int_equal(tz_get("Asia/Kolkata", &a, NULL, 0), ST_OK);
    assert_int_equal(tz_get("Asia/Kolkata", &b, NULL, 0), ST_OK);
    assert_ptr_equal(a, b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = xmalloc(TZ_FILE_MAX);
    *len = fread(buf, 1, TZ_FILE_MAX, f);
    fclose(f);
    return buf;
}

/* Every truncation and thousands of seeded byte corruptions either parse
 * into a zone that answers queries or are refused; none crashes (run under
 * ASan/UBSan). */
static void tz_survives_malformed_files(void **state)
{
    (void)state;
    size_t len;
    unsigned char *orig = slurp(TZ_DIR_DEFAULT "/America/New_York", &len);
    unsigned char *buf = xmalloc(len);
    tz_zone *z = NULL;
    char err[128];

    assert_int_equal(tz_zone_parse(orig, len, "NY", &z, err, sizeof err), ST_OK);
    assert_int_equal(tz_offset_at(z, 1720000000LL), -4 * 3600);
    tz_zone_free(z);

    size_t refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        status st = tz_zone_parse(orig, cut, "cut", &z, err, sizeof err);
        if (st == ST_OK) {
            (void)tz_offset_at(z, 1720000000LL);
            tz_zone_free(z);
        } else {
            assert_null(z);
            refused++;
        }
    }
    assert_true(refused >= len - 2); /* only the full file (and maybe len-1) parse */

    uint64_t seed = 42;
    size_t parsed = 0;
    for (int round = 0; round < 4000; round++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(mix_next(&seed) % 4);
        for (int f = 0; f < flips; f++) {
            size_t at = (size_t)(mix_next(&seed) % len);
            buf[at] = (unsigned char)mix_next(&seed);
        }
        if (tz_zone_parse(buf, len, "fuzz", &z, err, sizeof err) == ST_OK) {
            tz_local lt;
            for (int q = 0; q < 8; q++) {
                int64_t t = TZ_MIN_S + (int64_t)(mix_next(&seed) % (uint64_t)(TZ_MAX_S - TZ_MIN_S));
                assert_int_equal(tz_localtime(z, t, &lt), ST_OK);
                assert_in_range(lt.hour, 0, 23);
            }
            tz_zone_free(z);
            parsed++;
        } else {
            assert_null(z);
        }
    }
    assert_true(parsed > 0 && parsed < 4000);
    tz_zone_free(NULL);
    free(buf);
    free(orig);
}

/* A version 1 reader's view: the same file with its version byte cleared
 * is read from the 32-bit block alone and agrees inside 1901-2037. */
static void tz_reads_version1_data(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = slurp(TZ_DIR_DEFAULT "/Europe/Berlin", &len);
    tz_zone *v2 = NULL, *v1 = NULL;
    assert_int_equal(tz_zone_parse(buf, len, "v2", &v2, NULL, 0), ST_OK);
    buf[4] = 0;
    assert_int_equal(tz_zone_parse(buf, len, "v1", &v1, NULL, 0), ST_OK);
    uint64_t seed = 3;
    for (int i = 0; i < 5000; i++) {
        int64_t t = -2147483647LL + (int64_t)(mix_next(&seed) % 4294967295ULL);
        assert_int_equal(tz_offset_at(v1, t), tz_offset_at(v2, t));
    }
    tz_zone_free(v1);
    tz_zone_free(v2);
    free(buf);
}

/* Hand-made footers: the rules that real files rarely exercise. */
static void tz_footer_rules(void **state)
{
    (void)state;
    /* A v2 file with no transitions, one type, and the given footer. */
    static const struct {
        const char *footer;
        int64_t t;
        int32_t want_off; /* INT32_MIN: must be refused */
    } cases[] = {
        { "IST-5:30", 4102444800LL, 19800 },
        { "<+0545>-5:45", 4102444800LL, 20700 },
        /* Jn ignores Feb 29: J60 is March 1 even in 2048; /3 = 03:00 local */
        { "AAA3BBB,J60/3,J300", 2466633600LL + 6 * 3600 - 1, -3 * 3600 },
        { "AAA3BBB,J60/3,J300", 2466633600LL + 6 * 3600, -2 * 3600 },
        /* zero-based n counts Feb 29: day 59 of 2048 is Feb 29 */
        { "AAA3BBB,59/0,300", 2466547200LL + 3 * 3600, -2 * 3600 },
        { "AAA3BBB,59/0,300", 2466547200LL + 3 * 3600 - 1, -3 * 3600 },
        /* v3: negative and > 24 h rule times (last Sunday of March 2024 at -1:00) */
        { "XXX-2YYY,M3.5.0/-1,M10.5.0/25", 1711843200LL - 3 * 3600 - 1, 2 * 3600 },
        { "XXX-2YYY,M3.5.0/-1,M10.5.0/25", 1711843200LL - 3 * 3600, 3 * 3600 },
        /* malformed footers */
        { "EST5EDT", 0, INT32_MIN }, /* DST without a rule */
        { "E5", 0, INT32_MIN },      /* name too short */
        { "EST5EDT,M13.1.0,M11.1.0", 0, INT32_MIN },
        { "EST5EDT,M3.6.0,M11.1.0", 0, INT32_MIN },
        { "EST99", 0, INT32_MIN },
        { "EST5EDT,M3.2.0/200,M11.1.0", 0, INT32_MIN },
        { "<AB", 0, INT32_MIN },
        { "EST5EDT,M3.2.0,M11.1.0junk", 0, INT32_MIN },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char f[256];
        size_t n = 0;
        /* header v2 with all counts 0 but typecnt 1, charcnt 4; v1 block */
        for (int part = 0; part < 2; part++) {
            memset(f + n, 0, 44);
            memcpy(f + n, "TZif2", 5);
            f[n + 20 + 19] = 1; /* typecnt */
            f[n + 20 + 23] = 4; /* charcnt */
            n += 44;
            memset(f + n, 0, 6); /* ttinfo: utoff 0, isdst 0, idx 0 */
            n += 6;
            memcpy(f + n, "UTC", 4);
            n += 4;
        }
        size_t fl = strlen(cases[i].footer);
        f[n++] = '\n';
        memcpy(f + n, cases[i].footer, fl);
        n += fl;
        f[n++] = '\n';
        tz_zone *z = NULL;
        char err[128] = "";
        status st = tz_zone_parse(f, n, cases[i].footer, &z, err, sizeof err);
        if (cases[i].want_off == INT32_MIN) {
            if (st == ST_OK)
                fail_msg("footer '%s' accepted", cases[i].footer);
            continue;
        }
        if (st != ST_OK)
            fail_msg("footer '%s': %s", cases[i].footer, err);
        if (tz_offset_at(z, cases[i].t) != cases[i].want_off)
            fail_msg("footer '%s' @%lld: %d, want %d", cases[i].footer, (long long)cases[i].t,
                     tz_offset_at(z, cases[i].t), cases[i].want_off);
        tz_zone_free(z);
    }
}

static void *hammer(void *arg)
{
    const char *const *names = arg;
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        const tz_zone *z = NULL;
        if (tz_get(names[i % 4], &z, NULL, 0) != ST_OK) {
            bad++;
            continue;
        }
        tz_local lt;
        if (tz_localtime(z, 1700000000LL + i * 3601LL, &lt) != ST_OK)
            bad++;
    }
    return (void *)bad;
}

static void tz_is_thread_safe(void **state)
{
    (void)state;
    static const char *const names[] = { "Europe/Paris", "Asia/Tokyo", "America/Chicago",
                                         "Africa/Lagos" };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)names), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tz_matches_date_table),
        cmocka_unit_test(tz_matches_glibc),
        cmocka_unit_test(tz_hour_of_week_and_ranges),
        cmocka_unit_test(tz_names_are_hardened),
        cmocka_unit_test(tz_survives_malformed_files),
        cmocka_unit_test(tz_reads_version1_data),
        cmocka_unit_test(tz_footer_rules),
        cmocka_unit_test(tz_is_thread_safe),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
