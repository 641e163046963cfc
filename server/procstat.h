/* procstat.h - this process's resource figures, read from /proc (Linux).
 *
 * What Prometheus' process collector reports (resident and virtual memory,
 * CPU seconds, open and maximum file descriptors, start time) plus the thread
 * count, for /metrics, GetStatus and the memory manager. Each read opens a
 * few small /proc files (no allocation beyond the stack, no lock); the boot
 * time needed for the start time is read once per process.
 *
 * Threads: every function may be called from any thread. Never logs. The
 * parsers are pure and exported for tests. */
#ifndef HERALD_PROCSTAT_H
#define HERALD_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

typedef struct procstat {
    int64_t rss_bytes;   /* resident set size */
    int64_t vsize_bytes; /* virtual memory size */
    double cpu_seconds;  /* user + system CPU time */
    int64_t threads;     /* threads in the process */
    int64_t open_fds;    /* entries in /proc/self/fd (the directory's own fd excluded) */
    int64_t max_fds;     /* RLIMIT_NOFILE soft limit; -1 when unlimited */
    double start_time_s; /* process start, seconds since the epoch; 0 when unknown */
} procstat;

/* Fills *out from /proc/self/stat, /proc/self/fd and getrlimit. A figure
 * that cannot be read is left at -1 (0 for the doubles) and the result is
 * ST_UNAVAILABLE (e.g. /proc not mounted); ST_OK when everything was read. */
status procstat_read(procstat *out);

/* Resident set size in bytes from /proc/self/statm (the cheapest read: one
 * small file); -1 when it cannot be read. For the memory manager's sampling. */
int64_t procstat_rss_bytes(void);

/* Open file descriptors of this process; -1 when /proc/self/fd is missing. */
int64_t procstat_open_fds(void);

/* ---- pure parsers (exported for tests) ---- */

/* Parses the text of /proc/<pid>/stat. The command name (field 2) is the
 * text between the first '(' and the LAST ')' and may hold spaces and
 * parentheses. ticks_per_s is sysconf(_SC_CLK_TCK), page_bytes the page
 * size, boot_time_s the "btime" of /proc/stat (0 = unknown: start_time_s
 * stays 0). Sets rss_bytes, vsize_bytes, cpu_seconds, threads and
 * start_time_s; leaves the other fields alone. false when the text is
 * malformed (out then untouched). */
bool procstat_parse_stat(const char *text, long ticks_per_s, long page_bytes, int64_t boot_time_s,
                         procstat *out);

/* The resident pages (second number) of /proc/<pid>/statm times page_bytes;
 * -1 when malformed. */
int64_t procstat_parse_statm_rss(const char *text, long page_bytes);

/* The "btime" value of /proc/stat text; -1 when absent. */
int64_t procstat_parse_btime(const char *text);

#endif
