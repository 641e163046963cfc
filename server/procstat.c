/* procstat.c - process figures from /proc (see procstat.h). */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small /proc file into buf (NUL-terminated); false on failure or
 * an empty file. /proc files report size 0, so read until EOF. */
static bool read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return len > 0;
}

/* Parses one unsigned decimal at *p (skipping leading spaces); advances *p.
 * false when there is no digit. */
static bool next_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

/* Skips one space-separated field (which may be negative or a letter). */
static bool skip_field(const char **p)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0' || *s == '\n')
        return false;
    while (*s != ' ' && *s != '\0' && *s != '\n')
        s++;
    *p = s;
    return true;
}

bool procstat_parse_stat(const char *text, long ticks_per_s, long page_bytes, int64_t boot_time_s,
                         procstat *out)
{
    const char *open_paren = strchr(text, '(');
    const char *close_paren = strrchr(text, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren || ticks_per_s <= 0 ||
        page_bytes <= 0)
        return false;
    /* After ')' come fields 3 (state) onwards; we want 14 utime, 15 stime,
     * 20 num_threads, 22 starttime, 23 vsize, 24 rss. */
    const char *p = close_paren + 1;
    uint64_t utime = 0, stime = 0, threads = 0, start = 0, vsize = 0, rss = 0;
    for (int field = 3; field <= 24; field++) {
        uint64_t *want = NULL;
        switch (field) {
        case 14:
            want = &utime;
            break;
        case 15:
            want = &stime;
            break;
        case 20:
            want = &threads;
            break;
        case 22:
            want = &start;
            break;
        case 23:
            want = &vsize;
            break;
        case 24:
            want = &rss;
            break;
        default:
            break;
        }
        if (want != NULL ? !next_u64(&p, want) : !skip_field(&p))
            return false;
    }
    out->cpu_seconds = (double)(utime + stime) / (double)ticks_per_s;
    out->threads = (int64_t)threads;
    out->vsize_bytes = (int64_t)vsize;
    out->rss_bytes = (int64_t)rss * page_bytes;
    out->start_time_s =
        boot_time_s > 0 ? (double)boot_time_s + (double)start / (double)ticks_per_s : 0;
    return true;
}

int64_t procstat_parse_statm_rss(const char *text, long page_bytes)
{
    const char *p = text;
    uint64_t size = 0, resident = 0;
    if (page_bytes <= 0 || !next_u64(&p, &size) || !next_u64(&p, &resident))
        return -1;
    return (int64_t)resident * page_bytes;
}

int64_t procstat_parse_btime(const char *text)
{
    /* "btime N" at the start of a line. */
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, "btime ", 6) == 0) {
            const char *q = p + 6;
            uint64_t v = 0;
            return next_u64(&q, &v) ? (int64_t)v : -1;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return -1;
}

/* The boot time never changes: read /proc/stat once. Its "intr" line can be
 * many kilobytes long, so read it line by line. */
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;
static int64_t boot_time_s; /* written once under boot_once, read after it */

static void boot_time_init(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        int64_t v = procstat_parse_btime(line);
        if (v > 0) {
            boot_time_s = v;
            break;
        }
    }
    free(line);
    (void)fclose(f);
}

int64_t procstat_rss_bytes(void)
{
    char buf[256];
    if (!read_small("/proc/self/statm", buf, sizeof buf))
        return -1;
    return procstat_parse_statm_rss(buf, sysconf(_SC_PAGESIZE));
}

int64_t procstat_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int own = dirfd(d);
    int64_t n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (strtol(e->d_name, NULL, 10) == own)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

status procstat_read(procstat *out)
{
    status st = ST_OK;
    char buf[4096];

    out->rss_bytes = -1;
    out->vsize_bytes = -1;
    out->cpu_seconds = 0;
    out->threads = -1;
    out->start_time_s = 0;
    pthread_once(&boot_once, boot_time_init);
    if (!read_small("/proc/self/stat", buf, sizeof buf) ||
        !procstat_parse_stat(buf, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), boot_time_s, out))
        st = ST_UNAVAILABLE;
    out->open_fds = procstat_open_fds();
    if (out->open_fds < 0)
        st = ST_UNAVAILABLE;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_cur;
    else
        out->max_fds = -1;
    return st;
}
