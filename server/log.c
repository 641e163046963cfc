/* log.c - JSON-lines / text logging (see log.h). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* Length of the UTF-8 sequence a lead byte announces (0: not a lead byte). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

/* Appends s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped, and every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD, so a line always parses whatever a client sent (peer
 * addresses, method paths and metadata reach the log). */
static void escape(strbuf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t l = utf8_seq_len(c);
            if (l == 0 || i + l > n || !utf8_valid(s + i, l)) {
                strbuf_append(b, "\\ufffd", 6);
                i++;
            } else {
                strbuf_append(b, s + i, l);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"':
            strbuf_append(b, "\\\"", 2);
            break;
        case '\\':
            strbuf_append(b, "\\\\", 2);
            break;
        case '\n':
            strbuf_append(b, "\\n", 2);
            break;
        case '\r':
            strbuf_append(b, "\\r", 2);
            break;
        case '\t':
            strbuf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
                strbuf_append(b, u, 6);
            } else {
                strbuf_putc(b, (char)c);
            }
        }
        i++;
    }
}

/* Text format (logfmt): key=value, a value quoted (with the JSON escapes)
 * when it is empty or holds a space, quote, '=', backslash or anything that
 * is not printable ASCII. */
static void text_value(strbuf *b, const char *v)
{
    bool plain = v[0] != '\0';
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0' && plain; p++)
        plain = *p > 0x20 && *p < 0x7f && *p != '"' && *p != '=' && *p != '\\';
    if (plain) {
        strbuf_puts(b, v);
        return;
    }
    strbuf_putc(b, '"');
    escape(b, v);
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
        strbuf_printf(&b, "ts=%s level=%s msg=", ts, log_level_name(level));
        text_value(&b, msg);
        for (size_t i = 0; i < n_fields; i++) {
            if (!fields[i].val)
                continue;
            strbuf_putc(&b, ' ');
            escape(&b, fields[i].key);
            strbuf_putc(&b, '=');
            text_value(&b, fields[i].val);
        }
    } else {
        strbuf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, log_level_name(level));
        escape(&b, msg);
        strbuf_putc(&b, '"');
        for (size_t i = 0; i < n_fields; i++) {
            if (!fields[i].val)
                continue;
            strbuf_append(&b, ",\"", 2);
            escape(&b, fields[i].key);
            strbuf_append(&b, "\":", 2);
            if (fields[i].raw) {
                strbuf_puts(&b, fields[i].val);
            } else {
                strbuf_putc(&b, '"');
                escape(&b, fields[i].val);
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
