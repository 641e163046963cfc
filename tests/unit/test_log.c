/* Unit tests for server/log.c: every line is one strict JSON object (checked
 * with json-c), control characters and broken UTF-8 are escaped, levels
 * filter, the text format is key=value, and each line is a single write()
 * even with several threads logging at once. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <json-c/json.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "log.h"
#include "util.h"

/* write() as seen by log.c: counted for the fd under test, then passed to
 * the kernel. Linking this into the test binary interposes libc's. */
static atomic_int watched_fd = -1;
static atomic_int write_calls;

ssize_t write(int fd, const void *buf, size_t n)
{
    if (fd == atomic_load(&watched_fd))
        atomic_fetch_add(&write_calls, 1);
    return syscall(SYS_write, fd, buf, n);
}

typedef struct capture {
    char path[64];
    int fd;
} capture;

static void capture_start(capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/herald-test-log-XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    /* O_APPEND: concurrent writes land whole, one after the other. */
    assert_int_equal(fcntl(c->fd, F_SETFL, O_APPEND), 0);
    log_set_fd(c->fd);
    atomic_store(&watched_fd, c->fd);
    atomic_store(&write_calls, 0);
}

/* Stops capturing and returns everything written (caller frees). */
static char *capture_end(capture *c, size_t *len)
{
    log_set_fd(1);
    atomic_store(&watched_fd, -1);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    strbuf b = { 0 };
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        strbuf_append(&b, chunk, n);
    fclose(f);
    close(c->fd);
    unlink(c->path);
    *len = b.len;
    return strbuf_take(&b);
}

/* Strictly parses one line (without its newline) as a JSON object. */
static json_object *parse_line(const char *line, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, line, (int)len);
    bool whole = o != NULL && json_tokener_get_parse_end(tok) == len;
    json_tokener_free(tok);
    if (o == NULL || !whole || !json_object_is_type(o, json_type_object))
        fail_msg("not one JSON object: %.*s", (int)len, line);
    return o;
}

static const char *get_str(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        fail_msg("no string field %s", key);
    return json_object_get_string(v);
}

static void setup_level(int level, int format)
{
    atomic_store(&log_level, level);
    atomic_store(&log_format_, format);
}

static void json_line_parses(void **state)
{
    (void)state;
    setup_level(LOG_DEBUG, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    const char *nasty = "a \"quoted\" \\ back\nnew\rret\ttab \x01\x1f\x7f end";
    log_field f[] = {
        LOG_S("grpc.method", "GetPost"),
        LOG_RAW("grpc.time_ms", "12.5"),
        LOG_S("peer.address", nasty),
        LOG_S("skipped", NULL),
        LOG_S("utf8", "caf\xc3\xa9 \xe2\x9c\x93"),
    };
    log_event(LOG_WARN, nasty, f, 5);
    size_t len;
    char *out = capture_end(&c, &len);
    assert_true(len > 0);
    assert_int_equal(out[len - 1], '\n');
    /* Exactly one line, and no raw control byte in it. */
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            fail_msg("raw control byte 0x%02x at %zu", (unsigned char)out[i], i);
    json_object *o = parse_line(out, len - 1);
    assert_string_equal(get_str(o, "level"), "warn");
    assert_string_equal(get_str(o, "msg"), nasty); /* round-trips exactly */
    assert_string_equal(get_str(o, "peer.address"), nasty);
    assert_string_equal(get_str(o, "grpc.method"), "GetPost");
    assert_string_equal(get_str(o, "utf8"), "caf\xc3\xa9 \xe2\x9c\x93");
    json_object *t = NULL;
    assert_true(json_object_object_get_ex(o, "grpc.time_ms", &t));
    assert_true(json_object_is_type(t, json_type_double));
    assert_false(json_object_object_get_ex(o, "skipped", NULL));
    /* ts is RFC 3339 UTC with milliseconds. */
    const char *ts = get_str(o, "ts");
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    /* The key order: ts, level, msg first. */
    assert_true(strncmp(out, "{\"ts\":\"", 7) == 0);
    assert_non_null(strstr(out, "\",\"level\":\"warn\",\"msg\":\""));
    json_object_put(o);
    free(out);
}

/* Bytes that are not UTF-8 become U+FFFD so the line still parses. */
static void broken_utf8_replaced(void **state)
{
    (void)state;
    setup_level(LOG_DEBUG, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    log_field f[] = { LOG_S("path", "/x\xff\xfe/\xc3(\xe2\x82/\xed\xa0\x80/\xf0\x9f\x98\x80") };
    log_event(LOG_INFO, "bad \xc0\xaf", f, 1);
    size_t len;
    char *out = capture_end(&c, &len);
    assert_true(utf8_valid(out, len));
    json_object *o = parse_line(out, len - 1);
    /* Each bad byte is one U+FFFD (EF BF BD); the valid emoji survives. */
    assert_string_equal(get_str(o, "msg"), "bad \xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(get_str(o, "path"), "/x\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd(\xef\xbf\xbd"
                                            "\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd/"
                                            "\xf0\x9f\x98\x80");
    json_object_put(o);
    free(out);
}

static void levels_filter(void **state)
{
    (void)state;
    setup_level(LOG_WARN, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    log_debug("hidden %d", 1);
    log_info("hidden %d", 2);
    log_warn("shown %d", 3);
    log_error("shown %d", 4);
    log_event(LOG_INFO, "hidden", NULL, 0);
    atomic_store(&log_level, LOG_OFF);
    log_error("hidden %d", 5);
    size_t len;
    char *out = capture_end(&c, &len);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"shown 3\""));
    assert_non_null(strstr(out, "\"level\":\"error\",\"msg\":\"shown 4\""));
    assert_int_equal(log_level_parse("warning"), LOG_WARN);
    assert_int_equal(log_level_parse("debug"), LOG_DEBUG);
    assert_int_equal(log_level_parse("loud"), -1);
    free(out);
}

static void text_format(void **state)
{
    (void)state;
    setup_level(LOG_DEBUG, LOG_FORMAT_TEXT);
    capture c;
    capture_start(&c);
    log_field f[] = { LOG_S("addr", "127.0.0.1:5"), LOG_S("note", "two words"), LOG_S("empty", ""),
                      LOG_RAW("n", "7"), LOG_S("ctl", "a\nb") };
    log_event(LOG_INFO, "listening", f, 5);
    log_event(LOG_ERROR, "bind failed: address in use", NULL, 0);
    size_t len;
    char *out = capture_end(&c, &len);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    assert_true(strncmp(out, "ts=", 3) == 0);
    assert_non_null(strstr(out, "Z level=info msg=listening addr=127.0.0.1:5 note=\"two words\" "
                                "empty=\"\" n=7 ctl=\"a\\nb\""));
    assert_non_null(strstr(nl + 1, "level=error msg=\"bind failed: address in use\"\n"));
    setup_level(LOG_INFO, LOG_FORMAT_JSON);
    free(out);
}

/* One write() per line, also for a line far larger than a pipe buffer. */
static void one_write_per_line(void **state)
{
    (void)state;
    setup_level(LOG_DEBUG, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    size_t big_n = 200000;
    char *big = xmalloc(big_n + 1);
    memset(big, 'x', big_n);
    big[big_n] = '\0';
    log_field f[] = { LOG_S("a", "1"), LOG_S("b", big) };
    log_event(LOG_INFO, "big", f, 2);
    log_info("small %s", "line");
    log_write(LOG_WARN, "third");
    int calls = atomic_load(&write_calls);
    size_t len;
    char *out = capture_end(&c, &len);
    assert_int_equal(calls, 3);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += out[i] == '\n';
    assert_int_equal(lines, 3);
    free(out);
    free(big);
}

enum { THREADS = 4, LINES_PER_THREAD = 300 };

static void *log_many(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[2048];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES_PER_THREAD; i++) {
        char seq[32], tid[16];
        snprintf(seq, sizeof seq, "%d", i);
        snprintf(tid, sizeof tid, "%d", id);
        log_field f[] = { LOG_RAW("thread", tid), LOG_RAW("seq", seq), LOG_S("pad", pad) };
        log_event(LOG_INFO, "concurrent", f, 3);
    }
    return NULL;
}

static void threads_never_interleave(void **state)
{
    (void)state;
    setup_level(LOG_INFO, LOG_FORMAT_JSON);
    capture c;
    capture_start(&c);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    int calls = atomic_load(&write_calls);
    size_t len;
    char *out = capture_end(&c, &len);
    assert_int_equal(calls, THREADS * LINES_PER_THREAD);

    int next[THREADS] = { 0 };
    int lines = 0;
    char *p = out;
    while (p < out + len) {
        char *nl = memchr(p, '\n', (size_t)(out + len - p));
        assert_non_null(nl);
        json_object *o = parse_line(p, (size_t)(nl - p));
        json_object *t = NULL, *s = NULL;
        assert_true(json_object_object_get_ex(o, "thread", &t));
        assert_true(json_object_object_get_ex(o, "seq", &s));
        int id = json_object_get_int(t);
        assert_true(id >= 0 && id < THREADS);
        /* Per thread, lines appear in order and none is lost. */
        assert_int_equal(json_object_get_int(s), next[id]);
        next[id]++;
        assert_int_equal(strlen(get_str(o, "pad")), 2047);
        json_object_put(o);
        lines++;
        p = nl + 1;
    }
    assert_int_equal(lines, THREADS * LINES_PER_THREAD);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_line_parses),   cmocka_unit_test(broken_utf8_replaced),
        cmocka_unit_test(levels_filter),      cmocka_unit_test(text_format),
        cmocka_unit_test(one_write_per_line), cmocka_unit_test(threads_never_interleave),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
