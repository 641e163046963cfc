/* util.h - small helpers shared by server, client and tests.
 * Allocation wrappers abort on out-of-memory (nothing else checks for it).
 * Everything here is thread-safe and holds no global state. */
#ifndef HERALD_UTIL_H
#define HERALD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new buffer the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF) and holds no NUL byte. */
bool utf8_valid(const char *s, size_t len);

/* Number of code points in valid UTF-8 s[0..len). */
size_t utf8_count(const char *s, size_t len);

/* Milliseconds on CLOCK_MONOTONIC / CLOCK_REALTIME. */
int64_t now_mono_ms(void);
int64_t now_real_ms(void);
/* Microseconds on CLOCK_MONOTONIC. */
int64_t now_mono_us(void);

/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds
 * ("2026-11-28T17:21:38.412Z") into buf (>= 25 bytes). Returns buf. */
char *fmt_rfc3339_ms(int64_t epoch_ms, char *buf, size_t cap);

/* A growable byte buffer. Zero-initialise ({0}) or strbuf_init; release
 * with strbuf_fini. data is always NUL-terminated once anything was added. */
typedef struct strbuf {
    char *data;
    size_t len;
    size_t cap;
} strbuf;

void strbuf_init(strbuf *b);
void strbuf_fini(strbuf *b);
void strbuf_reset(strbuf *b);
void strbuf_append(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as the body of a JSON string (no quotes), escaping quotes,
 * backslashes and control characters. */
void strbuf_json_escape(strbuf *b, const char *s, size_t n);
/* Hands the buffer to the caller (free it) and resets b. Never NULL. */
char *strbuf_take(strbuf *b);

#endif
