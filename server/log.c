/* log.c - JSON-lines / text logging (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

atomic_int log_level = LOG_INFO;
atomic_int log_format_ = LOG_FORMAT_JSON;
static atomic_int log_fd = 1;

static const char *const level_names[] = { "debug", "info", "warn", "error", "off" };

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

const char *log_level_name(int level)
{
    return level >= 0 && level <= LOG_OFF ? level_names[level] : "unknown";
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static void write_all(const char *p, size_t n)
{
    int fd = atomic_load(&log_fd);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Text format: key=value, values quoted when they hold spaces or quotes. */
static void text_value(strbuf *b, const char *v)
{
    if (v[0] != '\0' && strpbrk(v, " \"=\t\n") == NULL) {
        strbuf_json_escape(b, v, strlen(v));
        return;
    }
    strbuf_putc(b, '"');
    strbuf_json_escape(b, v, strlen(v));
    strbuf_putc(b, '"');
}

void log_event(int level, const char *msg, const log_field *fields, size_t n_fields)
{
    if (level < atomic_load(&log_level))
        return;
    char ts[32];
    fmt_rfc3339_ms(now_real_ms(), ts, sizeof ts);
    strbuf b = { 0 };
    if (atomic_load(&log_format_) == LOG_FORMAT_TEXT) {
        strbuf_printf(&b, "%s %-5s ", ts, log_level_name(level));
        text_value(&b, msg);
        for (size_t i = 0; i < n_fields; i++) {
            if (!fields[i].val)
                continue;
            strbuf_printf(&b, " %s=", fields[i].key);
            text_value(&b, fields[i].val);
        }
    } else {
        strbuf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, log_level_name(level));
        strbuf_json_escape(&b, msg, strlen(msg));
        strbuf_putc(&b, '"');
        for (size_t i = 0; i < n_fields; i++) {
            if (!fields[i].val)
                continue;
            strbuf_putc(&b, ',');
            strbuf_putc(&b, '"');
            strbuf_json_escape(&b, fields[i].key, strlen(fields[i].key));
            strbuf_append(&b, "\":", 2);
            if (fields[i].raw) {
                strbuf_puts(&b, fields[i].val);
            } else {
                strbuf_putc(&b, '"');
                strbuf_json_escape(&b, fields[i].val, strlen(fields[i].val));
                strbuf_putc(&b, '"');
            }
        }
        strbuf_putc(&b, '}');
    }
    strbuf_putc(&b, '\n');
    write_all(b.data, b.len);
    strbuf_fini(&b);
}

void log_write(int level, const char *fmt, ...)
{
    if (level < atomic_load(&log_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_event(level, msg, NULL, 0);
    free(msg);
}
