/* log.h - structured logging: one JSON object (or key=value line) per event
 * on stdout, written with a single write() so lines from different threads
 * never interleave. Any thread. Secrets are never passed in here: callers
 * log lengths or hashes instead. */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stdatomic.h>
#include <stddef.h>

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
typedef enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT } log_format;

extern atomic_int log_level;  /* minimum level written; SIGHUP may change it */
extern atomic_int log_format_; /* log_format */

/* Parses "debug|info|warn|error|off"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

/* A structured field. Values are strings (escaped) or, with LOG_RAW(),
 * already-valid JSON (numbers, true/false). */
typedef struct log_field {
    const char *key;
    const char *val;
    int raw;
} log_field;
#define LOG_S(k, v) ((log_field){ (k), (v), 0 })
#define LOG_RAW(k, v) ((log_field){ (k), (v), 1 })

/* Writes one event: ts, level, msg, then the fields in order. fd 1 unless
 * log_set_fd() changed it (tests). */
void log_event(int level, const char *msg, const log_field *fields, size_t n_fields);

/* printf-style message with no extra fields. */
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void log_set_fd(int fd);

/* Test the level first so that disabled lines cost no formatting. */
#define log_at(lvl, ...)                          \
    do {                                          \
        if ((lvl) >= atomic_load(&log_level))     \
            log_write((lvl), __VA_ARGS__);        \
    } while (0)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_at(LOG_ERROR, __VA_ARGS__)

#endif
