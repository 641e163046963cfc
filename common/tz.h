/* tz.h - IANA time zones without the process-global TZ variable.
 *
 * libc converts to an arbitrary zone only through setenv("TZ") + tzset(),
 * which is process-global and not thread-safe. This module reads the
 * compiled zone files (TZif, RFC 8536: versions 1 to 4, the 64-bit section
 * when present, and the POSIX TZ footer rule for instants after the last
 * transition, e.g. past 2037 in Debian's "fat" files) and answers "what is
 * the UTC offset / local time at this instant" for any zone, on any thread.
 *
 * Zone names are IANA names ("Europe/Berlin", "UTC", "America/Argentina/
 * Buenos_Aires"): 1-64 bytes of [A-Za-z0-9_+-] in '/'-separated components;
 * no absolute path, no empty component, no component starting with '.', so
 * a name can never leave the zone directory. Files with leap-second records
 * ("right/...") are refused: Herald's instants are POSIX seconds.
 *
 * Instants are Unix seconds (int64_t *_s) in the range of
 * google.protobuf.Timestamp: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
 *
 * Threads: tz_get() loads a zone once from TZ_DIR_DEFAULT and caches it for
 * the life of the process (a mutex guards only the cache list); a zone is
 * immutable after loading, so every query function may be called on any
 * thread concurrently. Zones from tz_zone_parse()/tz_zone_open() are the
 * caller's and are equally immutable. */
#ifndef HERALD_TZ_H
#define HERALD_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
#define TZ_NAME_MAX 64            /* profiles.time_zone holds at most 64 chars */
#define TZ_FILE_MAX 262144        /* the largest real zone file is < 4 KiB */
#define TZ_CACHE_MAX 1024         /* zones kept by tz_get (tzdata has ~600) */
#define TZ_MIN_S (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define TZ_MAX_S (253402300799LL) /* 9999-12-31T23:59:59Z */

typedef struct tz_zone tz_zone; /* opaque, immutable once built */

/* Broken-down local time of an instant in a zone. */
typedef struct tz_local {
    int64_t year;         /* proleptic Gregorian, 1..9999 (after the offset, 0..10000) */
    int month;            /* 1-12 */
    int day;              /* 1-31 */
    int hour;             /* 0-23 */
    int minute;           /* 0-59 */
    int second;           /* 0-59 */
    int iso_weekday;      /* 1 = Monday ... 7 = Sunday */
    int yday;             /* 0-365 */
    int32_t utc_offset_s; /* local = UTC + offset */
    bool is_dst;
    char abbr[16]; /* "CEST", "+0530"; NUL-terminated, may be truncated */
} tz_local;

/* True when name is an acceptable zone name (syntax only; see above). */
bool tz_name_valid(const char *name);

/* The cached zone called name, loading it from TZ_DIR_DEFAULT the first
 * time. On ST_OK *out is borrowed and valid until the process exits.
 * ST_INVALID: bad name (nothing is read); ST_NOT_FOUND: no such zone file;
 * ST_INTERNAL: the file is not valid TZif, or unreadable; ST_EXHAUSTED: the
 * cache is full. err (errcap bytes, may be NULL) receives the reason. */
status tz_get(const char *name, const tz_zone **out, char *err, size_t errcap);

/* Uncached: reads dir/name (dir NULL = TZ_DIR_DEFAULT) into a new zone the
 * caller frees with tz_zone_free. Errors as tz_get. */
status tz_zone_open(const char *dir, const char *name, tz_zone **out, char *err, size_t errcap);

/* Builds a zone from the bytes of a TZif file (copied from; data may be
 * freed afterwards). name is only remembered (any string, NULL = ""). Every
 * count, index, offset and the footer are checked: malformed input gives
 * ST_INVALID and no zone, never a crash. */
status tz_zone_parse(const void *data, size_t len, const char *name, tz_zone **out, char *err,
                     size_t errcap);

/* The fixed UTC zone (offset 0, "UTC"); static, never freed. */
const tz_zone *tz_utc(void);

void tz_zone_free(tz_zone *z); /* NULL-safe; never pass a zone from tz_get */

const char *tz_zone_name(const tz_zone *z); /* borrowed from z */

/* UTC offset in seconds at instant t_s (clamped to [TZ_MIN_S, TZ_MAX_S]). */
int32_t tz_offset_at(const tz_zone *z, int64_t t_s);

/* Local time at instant t_s. ST_INVALID (with *out zeroed) when t_s is
 * outside [TZ_MIN_S, TZ_MAX_S]. */
status tz_localtime(const tz_zone *z, int64_t t_s, tz_local *out);

/* Hour of the week, 0-167, 0 = Monday 00:00-00:59 local (the ARM_SCOPE_
 * HOUR_OF_WEEK convention); -1 when t_s is out of range. */
int tz_hour_of_week(const tz_zone *z, int64_t t_s);

/* Days since 1970-01-01 of a civil date (proleptic Gregorian), and back.
 * Exposed for callers that count local days. */
int64_t tz_days_from_civil(int64_t year, int month, int day);
void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
