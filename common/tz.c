/* tz.c - a small, defensive TZif reader (RFC 8536) and POSIX TZ rule
 * evaluator. Every length and index read from a file is checked before use;
 * the file is read whole (at most TZ_FILE_MAX bytes) and parsed from memory. */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define TZ_ABBR_MAX 16
#define TZ_TYPES_MAX 256
#define TZ_CHARS_MAX 1024
#define TZ_FOOTER_MAX 256
/* RFC 8536: utoff SHOULD be in [-89999, 93599]; anything else is garbage. */
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599

typedef struct tz_type {
    int32_t utoff;
    bool isdst;
    char abbr[TZ_ABBR_MAX];
} tz_type;

/* One end of the DST period of a POSIX TZ rule. */
typedef enum { RULE_JULIAN1, RULE_JULIAN0, RULE_MONTH } rule_kind;

typedef struct tz_rule_date {
    rule_kind kind;
    int day;        /* Jn: 1-365; n: 0-365; Mm.w.d: d (0 = Sunday) */
    int month;      /* Mm.w.d only */
    int week;       /* Mm.w.d only: 1-5, 5 = last */
    int32_t time_s; /* local time of day of the change; -167h..167h (RFC 8536 v3) */
} tz_rule_date;

typedef struct tz_rule {
    tz_type std;
    bool has_dst;
    tz_type dst;
    tz_rule_date start; /* given in standard time */
    tz_rule_date end;   /* given in daylight time */
} tz_rule;

struct tz_zone {
    char name[TZ_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;      /* strictly ascending */
    uint8_t *trans_type; /* index into types, < ntypes */
    size_t ntypes;
    tz_type *types; /* ntypes >= 1 */
    bool has_rule;  /* footer present and non-empty */
    tz_rule rule;
    struct tz_zone *next; /* cache list link (tz_get only) */
};

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (err == NULL || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- calendar */

int64_t tz_days_from_civil(int64_t year, int month, int day)
{
    int64_t y = year - (month <= 2);
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t mp = month > 2 ? month - 3 : month + 9;
    int64_t doy = (153 * mp + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (m <= 2);
    *month = m;
    *day = d;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* 0 = Sunday ... 6 = Saturday (POSIX rule convention) of a day number. */
static int weekday_sun0(int64_t days)
{
    /* 1970-01-01 was a Thursday (4). */
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

static const int month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

/* Days since the epoch of the rule date in year y. */
static int64_t rule_date_days(const tz_rule_date *r, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    switch (r->kind) {
    case RULE_JULIAN1: {
        /* Jn: 1..365, February 29 is never counted. */
        int64_t doy = r->day - 1;
        if (is_leap(y) && r->day >= 60)
            doy++;
        return jan1 + doy;
    }
    case RULE_JULIAN0:
        return jan1 + r->day;
    case RULE_MONTH: {
        int64_t first = tz_days_from_civil(y, r->month, 1);
        int mlen = month_days[r->month - 1] + (r->month == 2 && is_leap(y));
        int delta = (r->day - weekday_sun0(first) + 7) % 7; /* first such weekday */
        int mday = delta + 7 * (r->week - 1);
        while (mday >= mlen)
            mday -= 7;
        return first + mday;
    }
    }
    return jan1;
}

/* ---------------------------------------------------------------- POSIX TZ footer */

typedef struct cursor {
    const char *p;
    const char *end;
} cursor;

static bool cur_peek(const cursor *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool cur_digit(const cursor *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* An unsigned decimal of at most max_digits digits into *v. */
static bool parse_uint(cursor *c, int max_digits, int *v)
{
    int n = 0, val = 0;
    while (cur_digit(c) && n < max_digits) {
        val = val * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0 || cur_digit(c))
        return false;
    *v = val;
    return true;
}

/* A zone abbreviation: 3+ letters, or <...> of [A-Za-z0-9+-]. */
static bool parse_abbr(cursor *c, char *out)
{
    size_t n = 0;
    if (cur_peek(c, '<')) {
        c->p++;
        while (c->p < c->end && *c->p != '>') {
            char ch = *c->p;
            bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '+' || ch == '-';
            if (!ok || n + 1 >= TZ_ABBR_MAX)
                return false;
            out[n++] = ch;
            c->p++;
        }
        if (!cur_peek(c, '>'))
            return false;
        c->p++;
    } else {
        while (c->p < c->end &&
               ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z'))) {
            if (n + 1 >= TZ_ABBR_MAX)
                return false;
            out[n++] = *c->p;
            c->p++;
        }
    }
    out[n] = '\0';
    return n >= 3;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours, as seconds. */
static bool parse_hms(cursor *c, int max_hours, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;
    if (cur_peek(c, '+')) {
        c->p++;
    } else if (cur_peek(c, '-')) {
        sign = -1;
        c->p++;
    }
    if (!parse_uint(c, 3, &h) || h > max_hours)
        return false;
    if (cur_peek(c, ':')) {
        c->p++;
        if (!parse_uint(c, 2, &m) || m > 59)
            return false;
        if (cur_peek(c, ':')) {
            c->p++;
            if (!parse_uint(c, 2, &s) || s > 59)
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool parse_rule_date(cursor *c, tz_rule_date *d)
{
    if (cur_peek(c, 'J')) {
        c->p++;
        d->kind = RULE_JULIAN1;
        if (!parse_uint(c, 3, &d->day) || d->day < 1 || d->day > 365)
            return false;
    } else if (cur_peek(c, 'M')) {
        c->p++;
        d->kind = RULE_MONTH;
        if (!parse_uint(c, 2, &d->month) || d->month < 1 || d->month > 12)
            return false;
        if (!cur_peek(c, '.'))
            return false;
        c->p++;
        if (!parse_uint(c, 1, &d->week) || d->week < 1 || d->week > 5)
            return false;
        if (!cur_peek(c, '.'))
            return false;
        c->p++;
        if (!parse_uint(c, 1, &d->day) || d->day > 6)
            return false;
    } else {
        d->kind = RULE_JULIAN0;
        if (!parse_uint(c, 3, &d->day) || d->day > 365)
            return false;
    }
    d->time_s = 2 * 3600;
    if (cur_peek(c, '/')) {
        c->p++;
        if (!parse_hms(c, 167, &d->time_s))
            return false;
    }
    return true;
}

/* Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
static bool parse_posix_tz(const char *s, size_t len, tz_rule *r)
{
    cursor c = { s, s + len };
    int32_t off;

    memset(r, 0, sizeof *r);
    if (!parse_abbr(&c, r->std.abbr) || !parse_hms(&c, 24, &off))
        return false;
    r->std.utoff = -off; /* POSIX offsets are west-positive */
    if (c.p == c.end)
        return true;
    if (!parse_abbr(&c, r->dst.abbr))
        return false;
    r->has_dst = true;
    r->dst.isdst = true;
    r->dst.utoff = r->std.utoff + 3600;
    if (c.p < c.end && *c.p != ',') {
        if (!parse_hms(&c, 24, &off))
            return false;
        r->dst.utoff = -off;
    }
    /* RFC 8536 footers always carry the rule when there is DST. */
    if (!cur_peek(&c, ','))
        return false;
    c.p++;
    if (!parse_rule_date(&c, &r->start) || !cur_peek(&c, ','))
        return false;
    c.p++;
    if (!parse_rule_date(&c, &r->end))
        return false;
    return c.p == c.end;
}

/* The type in force at t under the footer rule. */
static const tz_type *rule_type(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return &r->std;
    int64_t year;
    int month, day;
    tz_civil_from_days(floor_div(t + r->std.utoff, 86400), &year, &month, &day);
    int64_t start = rule_date_days(&r->start, year) * 86400 + r->start.time_s - r->std.utoff;
    int64_t end = rule_date_days(&r->end, year) * 86400 + r->end.time_s - r->dst.utoff;
    bool dst;
    if (start < end)
        dst = t >= start && t < end;
    else
        dst = !(t >= end && t < start);
    return dst ? &r->dst : &r->std;
}

/* ---------------------------------------------------------------- TZif */

typedef struct tzif_counts {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_counts;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64s(const unsigned char *p)
{
    uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
    return (int64_t)v;
}

/* Reads a 44-byte header at off; *version is 1, 2, 3 or 4. */
static bool tzif_header(const unsigned char *d, size_t len, size_t off, int *version,
                        tzif_counts *k)
{
    if (len < 44 || off > len - 44 || memcmp(d + off, "TZif", 4) != 0)
        return false;
    unsigned char v = d[off + 4];
    if (v == 0)
        *version = 1;
    else if (v >= '2' && v <= '4')
        *version = v - '0';
    else
        return false;
    const unsigned char *c = d + off + 20;
    k->isutcnt = be32(c);
    k->isstdcnt = be32(c + 4);
    k->leapcnt = be32(c + 8);
    k->timecnt = be32(c + 12);
    k->typecnt = be32(c + 16);
    k->charcnt = be32(c + 20);
    return true;
}

/* Size of a data block with time size ts (4 or 8); 0 when absurd. */
static uint64_t tzif_block_size(const tzif_counts *k, unsigned ts)
{
    return (uint64_t)k->timecnt * ts + k->timecnt + (uint64_t)k->typecnt * 6 + k->charcnt +
           (uint64_t)k->leapcnt * (ts + 4) + k->isstdcnt + k->isutcnt;
}

static status tzif_block(const unsigned char *d, size_t len, size_t off, const tzif_counts *k,
                         unsigned ts, tz_zone *z, char *err, size_t errcap)
{
    if (k->typecnt == 0 || k->typecnt > TZ_TYPES_MAX) {
        set_err(err, errcap, "TZif: %u local time types", k->typecnt);
        return ST_INVALID;
    }
    if (k->charcnt == 0 || k->charcnt > TZ_CHARS_MAX) {
        set_err(err, errcap, "TZif: %u abbreviation bytes", k->charcnt);
        return ST_INVALID;
    }
    if ((k->isstdcnt != 0 && k->isstdcnt != k->typecnt) ||
        (k->isutcnt != 0 && k->isutcnt != k->typecnt)) {
        set_err(err, errcap, "TZif: indicator counts do not match the type count");
        return ST_INVALID;
    }
    if (k->leapcnt != 0) {
        set_err(err, errcap, "TZif: leap-second zones are not supported");
        return ST_INVALID;
    }
    uint64_t need = tzif_block_size(k, ts);
    if (off > len || need > len - off) {
        set_err(err, errcap, "TZif: truncated data block");
        return ST_INVALID;
    }
    const unsigned char *times = d + off;
    const unsigned char *idx = times + (size_t)k->timecnt * ts;
    const unsigned char *info = idx + k->timecnt;
    const char *chars = (const char *)(info + (size_t)k->typecnt * 6);

    z->ntrans = k->timecnt;
    z->trans = xcalloc(k->timecnt ? k->timecnt : 1, sizeof *z->trans);
    z->trans_type = xcalloc(k->timecnt ? k->timecnt : 1, 1);
    z->ntypes = k->typecnt;
    z->types = xcalloc(k->typecnt, sizeof *z->types);

    for (uint32_t i = 0; i < k->timecnt; i++) {
        int64_t t = ts == 8 ? be64s(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
        if (i > 0 && t <= z->trans[i - 1]) {
            set_err(err, errcap, "TZif: transition times not ascending at %u", i);
            return ST_INVALID;
        }
        if (idx[i] >= k->typecnt) {
            set_err(err, errcap, "TZif: transition %u names type %u of %u", i, idx[i], k->typecnt);
            return ST_INVALID;
        }
        z->trans[i] = t;
        z->trans_type[i] = idx[i];
    }
    for (uint32_t i = 0; i < k->typecnt; i++) {
        const unsigned char *e = info + (size_t)i * 6;
        int32_t utoff = (int32_t)be32(e);
        unsigned isdst = e[4], desig = e[5];
        if (utoff < TZ_UTOFF_MIN || utoff > TZ_UTOFF_MAX || isdst > 1 || desig >= k->charcnt) {
            set_err(err, errcap, "TZif: bad local time type %u", i);
            return ST_INVALID;
        }
        const char *a = chars + desig;
        size_t room = k->charcnt - desig;
        const char *nul = memchr(a, '\0', room);
        if (nul == NULL) {
            set_err(err, errcap, "TZif: unterminated abbreviation of type %u", i);
            return ST_INVALID;
        }
        size_t alen = (size_t)(nul - a);
        if (alen >= TZ_ABBR_MAX)
            alen = TZ_ABBR_MAX - 1;
        memcpy(z->types[i].abbr, a, alen);
        z->types[i].abbr[alen] = '\0';
        z->types[i].utoff = utoff;
        z->types[i].isdst = isdst != 0;
    }
    return ST_OK;
}

void tz_zone_free(tz_zone *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->trans_type);
    free(z->types);
    free(z);
}

status tz_zone_parse(const void *data, size_t len, const char *name, tz_zone **out, char *err,
                     size_t errcap)
{
    const unsigned char *d = data;
    status st;
    tz_zone *z = NULL;
    int version, version2;
    tzif_counts k1, k2;

    *out = NULL;
    if (d == NULL || len > TZ_FILE_MAX) {
        set_err(err, errcap, "TZif: no data or more than %d bytes", TZ_FILE_MAX);
        return ST_INVALID;
    }
    if (!tzif_header(d, len, 0, &version, &k1)) {
        set_err(err, errcap, "not a TZif file");
        return ST_INVALID;
    }
    z = xcalloc(1, sizeof *z);
    (void)snprintf(z->name, sizeof z->name, "%s", name ? name : "");

    uint64_t v1size = tzif_block_size(&k1, 4);
    if (v1size > len - 44) {
        set_err(err, errcap, "TZif: truncated version 1 block");
        st = ST_INVALID;
        goto out;
    }
    if (version == 1) {
        st = tzif_block(d, len, 44, &k1, 4, z, err, errcap);
        goto out;
    }

    /* Version 2+: skip the 32-bit block, use the 64-bit one and the footer. */
    size_t off2 = 44 + (size_t)v1size;
    if (!tzif_header(d, len, off2, &version2, &k2) || version2 != version) {
        set_err(err, errcap, "TZif: bad second header");
        st = ST_INVALID;
        goto out;
    }
    st = tzif_block(d, len, off2 + 44, &k2, 8, z, err, errcap);
    if (st != ST_OK)
        goto out;
    size_t foot = off2 + 44 + (size_t)tzif_block_size(&k2, 8);
    if (foot >= len || d[foot] != '\n') {
        set_err(err, errcap, "TZif: missing footer");
        st = ST_INVALID;
        goto out;
    }
    const unsigned char *fs = d + foot + 1;
    size_t room = len - foot - 1;
    if (room > TZ_FOOTER_MAX + 1)
        room = TZ_FOOTER_MAX + 1;
    const unsigned char *fe = memchr(fs, '\n', room);
    if (fe == NULL) {
        set_err(err, errcap, "TZif: unterminated or oversized footer");
        st = ST_INVALID;
        goto out;
    }
    if (fe > fs) {
        if (!parse_posix_tz((const char *)fs, (size_t)(fe - fs), &z->rule)) {
            set_err(err, errcap, "TZif: bad TZ string in footer");
            st = ST_INVALID;
            goto out;
        }
        z->has_rule = true;
    }
    st = ST_OK;
out:
    if (st != ST_OK) {
        tz_zone_free(z);
        z = NULL;
    }
    *out = z;
    return st;
}

/* ---------------------------------------------------------------- names and files */

bool tz_name_valid(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX)
        return false;
    bool comp_start = true;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (ch == '/') {
            if (comp_start) /* leading '/', "//" */
                return false;
            comp_start = true;
            continue;
        }
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '+';
        if (!ok)
            return false; /* includes '.', so neither ".." nor hidden files */
        comp_start = false;
    }
    return !comp_start; /* no trailing '/' */
}

static status read_zone_file(const char *dir, const char *name, tz_zone **out, char *err,
                             size_t errcap)
{
    status st;
    int fd = -1;
    unsigned char *buf = NULL;
    char path[PATH_MAX];
    struct stat sb;

    *out = NULL;
    if (!tz_name_valid(name)) {
        set_err(err, errcap, "invalid time zone name");
        return ST_INVALID;
    }
    int pn = snprintf(path, sizeof path, "%s/%s", dir ? dir : TZ_DIR_DEFAULT, name);
    if (pn < 0 || (size_t)pn >= sizeof path) {
        set_err(err, errcap, "time zone path too long");
        return ST_INVALID;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        set_err(err, errcap, "unknown time zone %s", name);
        st = (e == ENOENT || e == ENOTDIR || e == ELOOP) ? ST_NOT_FOUND : ST_INTERNAL;
        goto out;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_err(err, errcap, "unknown time zone %s", name);
        st = ST_NOT_FOUND;
        goto out;
    }
    if (sb.st_size < 44 || sb.st_size > TZ_FILE_MAX) {
        set_err(err, errcap, "unknown time zone %s (not a zone file)", name);
        st = ST_NOT_FOUND;
        goto out;
    }
    size_t size = (size_t)sb.st_size, got = 0;
    buf = xmalloc(size);
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            set_err(err, errcap, "reading time zone %s failed", name);
            st = ST_INTERNAL;
            goto out;
        }
        got += (size_t)r;
    }
    if (memcmp(buf, "TZif", 4) != 0) {
        set_err(err, errcap, "unknown time zone %s (not a zone file)", name);
        st = ST_NOT_FOUND;
        goto out;
    }
    st = tz_zone_parse(buf, size, name, out, err, errcap);
    if (st == ST_INVALID)
        st = ST_INTERNAL; /* a named system file that is corrupt is our problem */
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return st;
}

status tz_zone_open(const char *dir, const char *name, tz_zone **out, char *err, size_t errcap)
{
    return read_zone_file(dir, name, out, err, errcap);
}

/* The cache: a list of immutable zones, only ever appended to. The mutex
 * protects cache_head and cache_count; the zones themselves need no lock. */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static tz_zone *cache_head;
static size_t cache_count;

status tz_get(const char *name, const tz_zone **out, char *err, size_t errcap)
{
    status st = ST_OK;
    tz_zone *z = NULL;

    *out = NULL;
    if (!tz_name_valid(name)) {
        set_err(err, errcap, "invalid time zone name");
        return ST_INVALID;
    }
    pthread_mutex_lock(&cache_mu);
    for (tz_zone *c = cache_head; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            *out = c;
            goto out;
        }
    }
    if (cache_count >= TZ_CACHE_MAX) {
        set_err(err, errcap, "time zone cache full");
        st = ST_EXHAUSTED;
        goto out;
    }
    /* Loading under the lock: a few KiB once per zone per process. */
    st = read_zone_file(NULL, name, &z, err, errcap);
    if (st != ST_OK)
        goto out;
    z->next = cache_head;
    cache_head = z;
    cache_count++;
    *out = z;
out:
    pthread_mutex_unlock(&cache_mu);
    return st;
}

/* ---------------------------------------------------------------- queries */

static tz_type utc_type = { 0, false, "UTC" };
static tz_zone utc_zone = { .name = "UTC", .ntypes = 1, .types = &utc_type };

const tz_zone *tz_utc(void)
{
    return &utc_zone;
}

const char *tz_zone_name(const tz_zone *z)
{
    return z->name;
}

static int64_t clamp_t(int64_t t)
{
    return t < TZ_MIN_S ? TZ_MIN_S : t > TZ_MAX_S ? TZ_MAX_S : t;
}

static const tz_type *type_at(const tz_zone *z, int64_t t)
{
    if (z->ntrans == 0)
        return z->has_rule ? rule_type(&z->rule, t) : &z->types[0];
    if (t < z->trans[0])
        return &z->types[0];
    if (t >= z->trans[z->ntrans - 1]) {
        if (z->has_rule)
            return rule_type(&z->rule, t);
        return &z->types[z->trans_type[z->ntrans - 1]];
    }
    /* Largest i with trans[i] <= t; trans[0] <= t < trans[ntrans-1]. */
    size_t lo = 0, hi = z->ntrans - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return &z->types[z->trans_type[lo]];
}

int32_t tz_offset_at(const tz_zone *z, int64_t t_s)
{
    return type_at(z, clamp_t(t_s))->utoff;
}

status tz_localtime(const tz_zone *z, int64_t t_s, tz_local *out)
{
    memset(out, 0, sizeof *out);
    if (t_s < TZ_MIN_S || t_s > TZ_MAX_S)
        return ST_INVALID;
    const tz_type *ty = type_at(z, t_s);
    int64_t local = t_s + ty->utoff;
    int64_t days = floor_div(local, 86400);
    int64_t sod = local - days * 86400;
    tz_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(sod / 3600);
    out->minute = (int)(sod / 60 % 60);
    out->second = (int)(sod % 60);
    int w = weekday_sun0(days);
    out->iso_weekday = w == 0 ? 7 : w;
    out->yday = (int)(days - tz_days_from_civil(out->year, 1, 1));
    out->utc_offset_s = ty->utoff;
    out->is_dst = ty->isdst;
    (void)snprintf(out->abbr, sizeof out->abbr, "%s", ty->abbr);
    return ST_OK;
}

int tz_hour_of_week(const tz_zone *z, int64_t t_s)
{
    tz_local lt;
    if (tz_localtime(z, t_s, &lt) != ST_OK)
        return -1;
    return (lt.iso_weekday - 1) * 24 + lt.hour;
}
