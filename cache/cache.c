/* cache.c - the Redis cache (see cache.h). The only file that includes hiredis. */
#include "cache.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "lcache.h"
#include "util.h"

/* Envelope: magic, payload length (LE u32), FNV-1a 64 of the payload (LE). */
#define ENV_MAGIC "HRC1"
enum { ENV_HEAD = 16 };

struct cache {
    bool configured;
    cache_url url;
    int timeout_ms;
    int breaker_failures;
    int64_t breaker_open_ms;
    char *prefix;
    lcache *local; /* the in-process tier; NULL when off or Redis is not configured */
    /* breaker: consecutive failures, reopen time (0 = closed), probe token */
    atomic_int fails;
    atomic_int_fast64_t open_until_ms;
    atomic_bool probing;
    /* counters */
    atomic_uint_fast64_t hits;
    atomic_uint_fast64_t misses;
    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t bypasses;
    atomic_uint_fast64_t sets;
    atomic_uint_fast64_t opens;
};

struct cache_conn {
    cache *c;
    redisContext *ctx;
    char errmsg[160];
};

void cache_options_init(cache_options *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 50;
    o->breaker_failures = 3;
    o->breaker_open_ms = 5000;
    o->prefix = "herald:";
    o->local_bytes = 0;
}

/* ---------------------------------------------------------------- URL */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Copies s[0..n) percent-decoded into out (cap bytes); false if too long or bad. */
static bool pct_copy(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return false;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

static bool parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    long v = 0;
    if (n == 0 || n > 9)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool url_fail(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "REDIS_URL: %s", msg);
    return false;
}

bool cache_url_parse(const char *url, cache_url *out, char *err, size_t cap)
{
    const char *p;
    bool unix_sock = false;

    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL || url[0] == '\0')
        return url_fail(err, cap, "empty");
    if (url[0] == '/') {
        p = url;
        unix_sock = true;
    } else if (strncmp(url, "redis://", 8) == 0) {
        p = url + 8;
    } else if (strncmp(url, "unix://", 7) == 0) {
        p = url + 7;
        unix_sock = true;
    } else if (strncmp(url, "redis+unix://", 13) == 0) {
        p = url + 13;
        unix_sock = true;
    } else if (strncmp(url, "rediss://", 9) == 0) {
        return url_fail(err, cap, "TLS (rediss://) is not supported by hiredis 0.14");
    } else {
        return url_fail(err, cap, "expected redis://host:port/db or unix:///path?db=N");
    }

    /* userinfo: everything before the last '@' that precedes the path */
    const char *at = NULL;
    for (const char *q = p; *q && *q != '?' && (unix_sock || *q != '/'); q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p; /* "user:pw@" or "pw@" */
        if (!pct_copy(pw, (size_t)(at - pw), out->password, sizeof out->password))
            return url_fail(err, cap, "bad password encoding");
        p = at + 1;
    }

    const char *query = strchr(p, '?');
    size_t main_len = query ? (size_t)(query - p) : strlen(p);
    if (unix_sock) {
        if (main_len == 0 || p[0] != '/')
            return url_fail(err, cap, "unix socket path must be absolute");
        if (!pct_copy(p, main_len, out->path, sizeof out->path))
            return url_fail(err, cap, "socket path too long or badly encoded");
    } else {
        const char *slash = memchr(p, '/', main_len);
        size_t hp_len = slash ? (size_t)(slash - p) : main_len;
        const char *host = p;
        size_t host_len = hp_len;
        const char *port = NULL;
        if (hp_len > 0 && host[0] == '[') { /* [ipv6]:port */
            const char *rb = memchr(host, ']', hp_len);
            if (rb == NULL)
                return url_fail(err, cap, "unterminated [ipv6] host");
            host = host + 1;
            host_len = (size_t)(rb - host);
            if (rb + 1 < p + hp_len) {
                if (rb[1] != ':')
                    return url_fail(err, cap, "bad host");
                port = rb + 2;
            }
        } else {
            const char *colon = memchr(host, ':', hp_len);
            if (colon) {
                host_len = (size_t)(colon - host);
                port = colon + 1;
            }
        }
        if (host_len == 0) {
            host = "127.0.0.1";
            host_len = 9;
        }
        if (host_len >= sizeof out->host)
            return url_fail(err, cap, "host too long");
        memcpy(out->host, host, host_len);
        out->host[host_len] = '\0';
        if (port && !parse_int(port, (size_t)(p + hp_len - port), 1, 65535, &out->port))
            return url_fail(err, cap, "port must be 1..65535");
        if (slash && (size_t)(slash - p) + 1 < main_len) {
            if (!parse_int(slash + 1, main_len - (size_t)(slash - p) - 1, 0, 100000, &out->db))
                return url_fail(err, cap, "database must be a number");
        }
    }
    if (query) {
        const char *q = query + 1;
        while (*q) {
            const char *amp = strchr(q, '&');
            size_t n = amp ? (size_t)(amp - q) : strlen(q);
            if (n > 3 && strncmp(q, "db=", 3) == 0) {
                if (!parse_int(q + 3, n - 3, 0, 100000, &out->db))
                    return url_fail(err, cap, "db must be a number");
            } else if (n > 9 && strncmp(q, "password=", 9) == 0) {
                if (!pct_copy(q + 9, n - 9, out->password, sizeof out->password))
                    return url_fail(err, cap, "bad password encoding");
            }
            /* other parameters (timeouts...) are ignored: ours are fixed */
            q += n;
            if (*q == '&')
                q++;
        }
    }
    return true;
}

/* ---------------------------------------------------------------- shared cache */

cache *cache_new(const cache_options *o, char **err)
{
    cache_options def;
    char msg[200];

    *err = NULL;
    cache_options_init(&def);
    if (o == NULL)
        o = &def;
    cache *c = xcalloc(1, sizeof *c);
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : def.timeout_ms;
    c->breaker_failures = o->breaker_failures > 0 ? o->breaker_failures : def.breaker_failures;
    c->breaker_open_ms = o->breaker_open_ms > 0 ? o->breaker_open_ms : def.breaker_open_ms;
    c->prefix = xstrdup(o->prefix ? o->prefix : def.prefix);
    if (o->url != NULL && o->url[0] != '\0') {
        if (!cache_url_parse(o->url, &c->url, msg, sizeof msg)) {
            *err = xstrdup(msg);
            cache_free(c);
            return NULL;
        }
        c->configured = true;
        c->local = lcache_new(o->local_bytes);
    }
    return c;
}

void cache_free(cache *c)
{
    if (c == NULL)
        return;
    memset(c->url.password, 0, sizeof c->url.password);
    lcache_free(c->local);
    free(c->prefix);
    free(c);
}

bool cache_configured(const cache *c)
{
    return c != NULL && c->configured;
}

lcache *cache_local(const cache *c)
{
    return c != NULL ? c->local : NULL;
}

char *cache_key(const cache *c, const char *ns, const char *id, int64_t version)
{
    return xasprintf("%s%s:%s:v%" PRId64, c->prefix, ns, id, version);
}

void cache_stats_get(const cache *cc, cache_stats *out)
{
    cache *c = (cache *)cc; /* atomics are read-only here */
    memset(out, 0, sizeof *out);
    out->hits = atomic_load(&c->hits);
    out->misses = atomic_load(&c->misses);
    out->errors = atomic_load(&c->errors);
    out->bypasses = atomic_load(&c->bypasses);
    out->sets = atomic_load(&c->sets);
    out->breaker_opens = atomic_load(&c->opens);
    int64_t until = atomic_load(&c->open_until_ms);
    if (until == 0)
        out->breaker = CACHE_BREAKER_CLOSED;
    else if (now_mono_ms() < until)
        out->breaker = CACHE_BREAKER_OPEN;
    else
        out->breaker = CACHE_BREAKER_HALF_OPEN;
}

/* ---------------------------------------------------------------- breaker */

/* May this call talk to Redis? *probe: it is the half-open probe. */
static bool breaker_admit(cache *c, bool *probe)
{
    *probe = false;
    int64_t until = atomic_load(&c->open_until_ms);
    if (until == 0)
        return true;
    if (now_mono_ms() < until)
        return false;
    bool expected = false;
    if (atomic_compare_exchange_strong(&c->probing, &expected, true)) {
        *probe = true;
        return true;
    }
    return false;
}

static void breaker_success(cache *c, bool probe)
{
    atomic_store(&c->fails, 0);
    if (atomic_load(&c->open_until_ms) != 0)
        atomic_store(&c->open_until_ms, 0);
    if (probe)
        atomic_store(&c->probing, false);
}

static void breaker_failure(cache *c, bool probe)
{
    int64_t reopen = now_mono_ms() + c->breaker_open_ms;
    if (probe) {
        atomic_store(&c->open_until_ms, reopen);
        atomic_fetch_add(&c->opens, 1);
        atomic_store(&c->probing, false);
        return;
    }
    if (atomic_fetch_add(&c->fails, 1) + 1 >= c->breaker_failures) {
        int_fast64_t closed = 0;
        if (atomic_compare_exchange_strong(&c->open_until_ms, &closed, reopen))
            atomic_fetch_add(&c->opens, 1);
    }
}

/* ---------------------------------------------------------------- connections */

cache_conn *cache_open(cache *c)
{
    cache_conn *cc = xcalloc(1, sizeof *cc);
    cc->c = c;
    return cc;
}

static void drop(cache_conn *cc)
{
    if (cc->ctx != NULL) {
        redisFree(cc->ctx);
        cc->ctx = NULL;
    }
}

void cache_close(cache_conn *cc)
{
    if (cc == NULL)
        return;
    drop(cc);
    free(cc);
}

const char *cache_errmsg(const cache_conn *cc)
{
    return cc->errmsg;
}

static void set_err(cache_conn *cc, const char *what, const char *detail)
{
    snprintf(cc->errmsg, sizeof cc->errmsg, "redis %s: %s", what, detail ? detail : "");
}

/* One command on the live context. NULL on I/O failure (connection dropped,
 * *io = true) or an error reply (freed; the connection is fine); errmsg
 * says which. */
static redisReply *command(cache_conn *cc, const char *what, int argc, const char **argv,
                           const size_t *lens, bool *io)
{
    *io = false;
    redisReply *r = redisCommandArgv(cc->ctx, argc, argv, lens);
    if (r == NULL) {
        *io = true;
        set_err(cc, what, cc->ctx->errstr[0] ? cc->ctx->errstr : "I/O error");
        drop(cc);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(cc, what, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* A command of a pipeline (run_n). */
typedef struct cmd {
    int argc;
    const char **argv;
    const size_t *lens;
    redisReply *reply; /* out; the caller frees */
} cmd;

/* Sends n commands in one write and reads their n replies (one round
 * trip). false as command() does (all replies freed and NULL). */
static bool command_n(cache_conn *cc, const char *what, cmd *cmds, int n, bool *io)
{
    bool ok = true;
    *io = false;
    for (int i = 0; i < n; i++) {
        cmds[i].reply = NULL;
        if (redisAppendCommandArgv(cc->ctx, cmds[i].argc, cmds[i].argv, cmds[i].lens) != REDIS_OK)
            *io = true;
    }
    for (int i = 0; i < n && !*io; i++) {
        void *r = NULL;
        if (redisGetReply(cc->ctx, &r) != REDIS_OK || r == NULL)
            *io = true;
        cmds[i].reply = r;
    }
    if (*io) {
        set_err(cc, what, cc->ctx->errstr[0] ? cc->ctx->errstr : "I/O error");
        drop(cc);
        ok = false;
    }
    for (int i = 0; i < n && ok; i++) {
        if (cmds[i].reply->type == REDIS_REPLY_ERROR) {
            set_err(cc, what, cmds[i].reply->str);
            ok = false;
        }
    }
    if (!ok) {
        for (int i = 0; i < n; i++) {
            if (cmds[i].reply != NULL)
                freeReplyObject(cmds[i].reply);
            cmds[i].reply = NULL;
        }
    }
    return ok;
}

static bool connect_now(cache_conn *cc)
{
    cache *c = cc->c;
    struct timeval tv = { .tv_sec = c->timeout_ms / 1000,
                          .tv_usec = (c->timeout_ms % 1000) * 1000 };
    redisReply *r = NULL;
    bool io;

    if (c->url.path[0] != '\0')
        cc->ctx = redisConnectUnixWithTimeout(c->url.path, tv);
    else
        cc->ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv);
    if (cc->ctx == NULL) {
        set_err(cc, "connect", "out of memory");
        return false;
    }
    if (cc->ctx->err) {
        set_err(cc, "connect", cc->ctx->errstr);
        drop(cc);
        return false;
    }
    if (redisSetTimeout(cc->ctx, tv) != REDIS_OK) {
        set_err(cc, "connect", "cannot set timeout");
        drop(cc);
        return false;
    }
    if (c->url.password[0] != '\0') {
        const char *argv[] = { "AUTH", c->url.password };
        size_t lens[] = { 4, strlen(c->url.password) };
        r = command(cc, "AUTH", 2, argv, lens, &io);
        if (r == NULL) {
            drop(cc);
            return false;
        }
        freeReplyObject(r);
    }
    if (c->url.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", c->url.db);
        const char *argv[] = { "SELECT", db };
        size_t lens[] = { 6, strlen(db) };
        r = command(cc, "SELECT", 2, argv, lens, &io);
        if (r == NULL) {
            drop(cc);
            return false;
        }
        freeReplyObject(r);
    }
    return true;
}

/* hiredis writes with write(): a Redis that died makes the kernel raise
 * SIGPIPE, which would kill the process. As libpq does, block it on this
 * thread around our I/O and swallow one that we caused. */
typedef struct pipe_guard {
    sigset_t old;
    bool was_pending;
} pipe_guard;

static void pipe_block(pipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
}

static void pipe_restore(pipe_guard *g)
{
    sigset_t set, pending;
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = { 0, 0 };
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Runs n pipelined commands through the breaker. true with every
 * cmds[i].reply set (caller frees), or false with *rc = CACHE_BYPASS /
 * CACHE_ERROR. */
static bool run_n(cache_conn *cc, const char *what, cmd *cmds, int n, cache_rc *rc)
{
    cache *c = cc->c;
    bool probe;

    if (!c->configured || !breaker_admit(c, &probe)) {
        atomic_fetch_add(&c->bypasses, 1);
        *rc = CACHE_BYPASS;
        return false;
    }
    bool io = true;
    pipe_guard g;
    pipe_block(&g);
    if (cc->ctx == NULL && !connect_now(cc)) {
        pipe_restore(&g);
        goto failed;
    }
    bool ok = command_n(cc, what, cmds, n, &io);
    pipe_restore(&g);
    if (!ok)
        goto failed;
    breaker_success(c, probe);
    *rc = CACHE_OK;
    return true;
failed:
    /* An error reply (WRONGTYPE on a foreign key, say) means Redis answered:
     * it counts as an error but does not push the breaker. */
    if (io)
        breaker_failure(c, probe);
    else
        breaker_success(c, probe);
    atomic_fetch_add(&c->errors, 1);
    *rc = CACHE_ERROR;
    return false;
}

/* Runs one command through the breaker. Returns the reply (caller frees),
 * or NULL with *rc = CACHE_BYPASS / CACHE_ERROR. */
static redisReply *run(cache_conn *cc, const char *what, int argc, const char **argv,
                       const size_t *lens, cache_rc *rc)
{
    cmd one = { .argc = argc, .argv = argv, .lens = lens };
    return run_n(cc, what, &one, 1, rc) ? one.reply : NULL;
}

/* ---------------------------------------------------------------- get / set */

static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A GET reply: our envelope's payload copied into *val, or a miss. */
static cache_rc unwrap(cache_conn *cc, const redisReply *r, uint8_t **val, size_t *len)
{
    if (r->type == REDIS_REPLY_NIL)
        return CACHE_MISS;
    if (r->type != REDIS_REPLY_STRING || r->len < ENV_HEAD || memcmp(r->str, ENV_MAGIC, 4) != 0 ||
        get_le((const uint8_t *)r->str + 4, 4) != (uint64_t)r->len - ENV_HEAD ||
        get_le((const uint8_t *)r->str + 8, 8) !=
            fnv64((const uint8_t *)r->str + ENV_HEAD, (size_t)r->len - ENV_HEAD)) {
        set_err(cc, "GET", "value is not a Herald cache entry");
        return CACHE_MISS; /* garbage: someone else's or corrupted */
    }
    size_t n = (size_t)r->len - ENV_HEAD;
    uint8_t *copy = xmalloc(n + 1);
    memcpy(copy, r->str + ENV_HEAD, n);
    copy[n] = '\0';
    *val = copy;
    *len = n;
    return CACHE_OK;
}

cache_rc cache_get(cache_conn *cc, const char *key, uint8_t **val, size_t *len)
{
    return cache_get_ttl(cc, key, val, len, NULL);
}

cache_rc cache_get_ttl(cache_conn *cc, const char *key, uint8_t **val, size_t *len, int64_t *ttl_ms)
{
    cache_rc rc;
    cache *c = cc->c;

    *val = NULL;
    *len = 0;
    if (ttl_ms != NULL)
        *ttl_ms = 0;
    if (key == NULL || key[0] == '\0')
        return CACHE_EINVAL;
    const char *get_argv[] = { "GET", key };
    const char *ttl_argv[] = { "PTTL", key };
    size_t lens[] = { 3, strlen(key) };
    size_t ttl_lens[] = { 4, strlen(key) };
    cmd cmds[] = { { .argc = 2, .argv = get_argv, .lens = lens },
                   { .argc = 2, .argv = ttl_argv, .lens = ttl_lens } };
    if (!run_n(cc, "GET", cmds, ttl_ms != NULL ? 2 : 1, &rc))
        return rc;
    rc = unwrap(cc, cmds[0].reply, val, len);
    if (ttl_ms != NULL) {
        /* -1 (no expiry) and -2 (gone since the GET) give 0: not for the
         * in-process tier */
        const redisReply *t = cmds[1].reply;
        if (t->type == REDIS_REPLY_INTEGER && t->integer > 0)
            *ttl_ms = t->integer;
        freeReplyObject(cmds[1].reply);
    }
    freeReplyObject(cmds[0].reply);
    if (rc == CACHE_OK)
        atomic_fetch_add(&c->hits, 1);
    else
        atomic_fetch_add(&c->misses, 1);
    return rc;
}

cache_rc cache_set(cache_conn *cc, const char *key, const void *val, size_t len, int ttl_s)
{
    cache_rc rc;
    char ttl[16];

    if (key == NULL || key[0] == '\0' || ttl_s <= 0 || len > UINT32_MAX - ENV_HEAD ||
        (val == NULL && len > 0))
        return CACHE_EINVAL;
    uint8_t *buf = xmalloc(ENV_HEAD + len);
    memcpy(buf, ENV_MAGIC, 4);
    put_le(buf + 4, len, 4);
    if (len)
        memcpy(buf + ENV_HEAD, val, len);
    put_le(buf + 8, fnv64(buf + ENV_HEAD, len), 8);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *argv[] = { "SET", key, (const char *)buf, "EX", ttl };
    size_t lens[] = { 3, strlen(key), ENV_HEAD + len, 2, strlen(ttl) };
    redisReply *r = run(cc, "SET", 5, argv, lens, &rc);
    free(buf);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    atomic_fetch_add(&cc->c->sets, 1);
    return CACHE_OK;
}

cache_rc cache_del(cache_conn *cc, const char *key)
{
    cache_rc rc;

    if (key == NULL || key[0] == '\0')
        return CACHE_EINVAL;
    const char *argv[] = { "DEL", key };
    size_t lens[] = { 3, strlen(key) };
    redisReply *r = run(cc, "DEL", 2, argv, lens, &rc);
    if (r == NULL)
        return rc;
    freeReplyObject(r);
    return CACHE_OK;
}
