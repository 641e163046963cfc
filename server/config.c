/* config.c - the settings table and its four sources (see config.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A config file larger than this is a mistake (a binary, a log file). */
#define CONFIG_FILE_MAX (1u << 20)

struct config_priv {
    cfg_source *src; /* per row */
    char **src_name; /* per row: "--workers", "HERALD_WORKERS", "file:3" (owned) */
    int argc;
    char **argv; /* copies, as loaded (for reload) */
    char **envp; /* copies, NULL-terminated */
    char *config_path;
    char *port_file;
    const char **args; /* positional arguments: pointers into argv */
    int n_args;
};

/* ---- checks for string rows ---- */

/* "host:port", "[v6]:port" or "unix:/path". */
static const char *check_addr(const char *v)
{
    static const char allowed[] = "host:port with port 0..65535 ([v6]:port and unix:/path too)";
    if (strncmp(v, "unix:", 5) == 0)
        return v[5] != '\0' ? NULL : allowed;
    const char *colon = strrchr(v, ':');
    if (colon == NULL || colon == v || colon[1] == '\0')
        return allowed;
    if (v[0] == '[' && colon[-1] != ']')
        return allowed;
    long port = 0;
    for (const char *p = colon + 1; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p) || port > 65535)
            return allowed;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535 ? NULL : allowed;
}

static const char *check_addr_or_off(const char *v)
{
    if (v[0] == '\0')
        return NULL;
    return check_addr(v) == NULL ? NULL
                                 : "empty (off) or host:port with port 0..65535 ([v6]:port and "
                                   "unix:/path too)";
}

static const char *check_pg_url(const char *v)
{
    static const char allowed[] = "empty, a postgresql:// URI or a libpq key=value conninfo";
    if (v[0] == '\0')
        return NULL;
    if (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0)
        return NULL;
    if (strstr(v, "://") == NULL && strchr(v, '=') != NULL)
        return NULL;
    return allowed;
}

static const char *check_http_url_or_off(const char *v)
{
    static const char allowed[] = "empty (off) or an http:// or https:// URL";
    if (v[0] == '\0')
        return NULL;
    const char *host = strncmp(v, "http://", 7) == 0    ? v + 7
                       : strncmp(v, "https://", 8) == 0 ? v + 8
                                                        : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/')
        return allowed;
    for (const char *p = v; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return allowed;
    return NULL;
}

static const char *check_redis_url(const char *v)
{
    if (v[0] == '\0' || strncmp(v, "redis://", 8) == 0 || strncmp(v, "unix://", 7) == 0)
        return NULL;
    return "empty, redis://[:password@]host[:port][/db] or unix:///path/to/socket";
}

int64_t config_auto_workers(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    return cpus * 2 > 16 ? 16 : cpus * 2;
}

/* ---- the table ---- */

/* The index of each choice is the stored value: these follow log.h. */
static const char *const level_choices[] = { "debug", "info", "warn", "error", "off", NULL };
static const char *const format_choices[] = { "json", "text", NULL };
static const char *const auth_reflection_choices[] = { "open", "token", NULL }; /* auth.h */

/* offsetof(config, field), refusing to compile when field is not a ctype. */
#define F(field, ctype) \
    (offsetof(config, field) + 0 * sizeof(_Generic(((config *)0)->field, ctype : 1)))
#define KIB ((int64_t)1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)

/* clang-format off */
static const cfg_key cfg_keys[] = {
    /* name, type, field, default, min, max, flags, env, env alias, choices, check, auto, help */
    { "listen", CFG_STR, F(listen, char *), "0.0.0.0:50051", 0, 0, 0,
      "HERALD_LISTEN", "HERALD_GRPC_ADDR", NULL, check_addr, NULL,
      "gRPC listen address; port 0 picks a free port (see --port-file)" },
    { "workers", CFG_INT, F(workers, int), "auto", 1, 256, 0,
      "HERALD_WORKERS", NULL, NULL, NULL, config_auto_workers,
      "worker threads, each with its own queue and connections; auto = min(2 x CPUs, 16)" },
    { "max_recv_bytes", CFG_BYTES, F(max_recv_bytes, int64_t), "1MiB", 1 * KIB, 64 * MIB, 0,
      "HERALD_MAX_RECV_BYTES", NULL, NULL, NULL, NULL,
      "largest request message accepted (larger: RESOURCE_EXHAUSTED)" },
    { "call_arena_bytes", CFG_BYTES, F(call_arena_bytes, int64_t), "16MiB", 64 * KIB, 1 * GIB, 0,
      "HERALD_CALL_ARENA_BYTES", NULL, NULL, NULL, NULL,
      "memory budget for decoding one request and its scratch data" },
    { "default_deadline_ms", CFG_DURATION_MS, F(default_deadline_ms, int64_t), "30s", 1, 3600000, 0,
      "HERALD_DEFAULT_DEADLINE_MS", NULL, NULL, NULL, NULL,
      "deadline applied to calls whose client set none" },
    { "log.level", CFG_ENUM, F(log_level, int), "info", 0, 0, CFG_RELOAD,
      "HERALD_LOG_LEVEL", NULL, level_choices, NULL, NULL,
      "lowest level logged" },
    { "log.format", CFG_ENUM, F(log_format, int), "json", 0, 0, CFG_RELOAD,
      "HERALD_LOG_FORMAT", NULL, format_choices, NULL, NULL,
      "json: one JSON object per line; text: key=value for a terminal" },
    { "shutdown.delay_ms", CFG_DURATION_MS, F(shutdown_delay_ms, int64_t), "0", 0, 300000, 0,
      "HERALD_SHUTDOWN_DELAY", NULL, NULL, NULL, NULL,
      "on SIGTERM, time NOT_SERVING before draining (lets load balancers stop routing)" },
    { "shutdown.grace_ms", CFG_DURATION_MS, F(shutdown_grace_ms, int64_t), "20s", 0, 3600000, 0,
      "HERALD_SHUTDOWN_GRACE", NULL, NULL, NULL, NULL,
      "time in-flight calls get to finish before they are cancelled" },
    { "database_url", CFG_STR, F(database_url, char *), "", 0, 0, CFG_SECRET | CFG_URL,
      "DATABASE_URL", NULL, NULL, check_pg_url, NULL,
      "PostgreSQL connection (libpq URI or conninfo)" },
    { "redis_url", CFG_STR, F(redis_url, char *), "", 0, 0, CFG_SECRET | CFG_URL,
      "REDIS_URL", NULL, NULL, check_redis_url, NULL,
      "Redis cache; empty = no cache" },
    { "cache.local_bytes", CFG_BYTES, F(cache_local_bytes, int64_t), "4MiB", 0, 1 * GIB, 0,
      "HERALD_CACHE_LOCAL_BYTES", NULL, NULL, NULL, NULL,
      "in-process copy of Redis cache hits (LRU, never kept past the Redis TTL); 0 = off" },
    { "cache.version_listen", CFG_BOOL, F(cache_version_listen, bool), "true", 0, 0, 0,
      "HERALD_CACHE_VERSION_LISTEN", NULL, NULL, NULL, NULL,
      "keep cache versions in memory, pushed by PostgreSQL LISTEN/NOTIFY; off behind a pooler "
      "without LISTEN (PgBouncer transaction pooling): every cached read asks PostgreSQL" },
    { "cache.version_stale_ms", CFG_DURATION_MS, F(cache_version_stale_ms, int64_t), "2s", 200, 60000, 0,
      "HERALD_CACHE_VERSION_STALE_MS", NULL, NULL, NULL, NULL,
      "longest a replica may serve a cache version older than an acknowledged write if "
      "notifications stop (heartbeat every half of it)" },
    { "migrate_on_start", CFG_BOOL, F(migrate_on_start, bool), "true", 0, 0, 0,
      "HERALD_MIGRATE_ON_START", NULL, NULL, NULL, NULL,
      "apply pending migrations at start (advisory lock); readiness waits for them" },
    { "reflection", CFG_BOOL, F(reflection, bool), "true", 0, 0, 0,
      "HERALD_REFLECTION", NULL, NULL, NULL, NULL,
      "serve grpc.reflection v1 and v1alpha (grpcurl, Postman)" },
    { "health_listen", CFG_STR, F(health_listen, char *), "", 0, 0, 0,
      "HERALD_HEALTH_LISTEN", "HERALD_HEALTH_ADDR", NULL, check_addr_or_off, NULL,
      "extra plaintext listener serving only grpc.health.v1 (probes when the main port has mTLS)" },
    { "admin_listen", CFG_STR, F(admin_listen, char *), "0.0.0.0:9464", 0, 0, 0,
      "HERALD_ADMIN_LISTEN", "HERALD_METRICS_ADDR", NULL, check_addr_or_off, NULL,
      "admin HTTP listener (/metrics); empty = off" },
    { "memory.limit_mb", CFG_INT, F(memory_limit_mb, int), "256", 0, 1048576, 0,
      "HERALD_MEMORY_LIMIT_MB", NULL, NULL, NULL, NULL,
      "RSS limit in MiB: above it expensive RPCs get RESOURCE_EXHAUSTED; 0 = no limit" },
    { "memory.soft_pct", CFG_INT, F(memory_soft_pct, int), "75", 10, 99, 0,
      "HERALD_MEMORY_SOFT_PCT", NULL, NULL, NULL, NULL,
      "soft memory limit, % of memory.limit_mb: above it caches are shed" },
    { "memory.sample_ms", CFG_DURATION_MS, F(memory_sample_ms, int64_t), "2s", 100, 60000, 0,
      "HERALD_MEMORY_SAMPLE_MS", NULL, NULL, NULL, NULL,
      "how often the memory manager samples RSS" },
    { "db.slow_query_ms", CFG_DURATION_MS, F(db_slow_query_ms, int64_t), "1s", 0, 3600000, CFG_RELOAD,
      "HERALD_DB_SLOW_QUERY_MS", NULL, NULL, NULL, NULL,
      "statements slower than this go to the slow-query log (ListSlowQueries); 0 = off" },
    { "db.prepared_statements", CFG_BOOL, F(db_prepared_statements, bool), "true", 0, 0, 0,
      "HERALD_DB_PREPARED_STATEMENTS", NULL, NULL, NULL, NULL,
      "prepare each statement once per connection; off behind a pooler that moves clients "
      "between server connections (PgBouncer transaction pooling without max_prepared_statements)" },
    { "tls.cert", CFG_STR, F(tls_cert, char *), "", 0, 0, 0,
      "HERALD_TLS_CERT", NULL, NULL, NULL, NULL,
      "PEM certificate chain file; set with tls.key to serve TLS" },
    { "tls.key", CFG_STR, F(tls_key, char *), "", 0, 0, 0,
      "HERALD_TLS_KEY", NULL, NULL, NULL, NULL,
      "PEM private key file for tls.cert" },
    { "tls.client_ca", CFG_STR, F(tls_client_ca, char *), "", 0, 0, 0,
      "HERALD_TLS_CLIENT_CA", NULL, NULL, NULL, NULL,
      "PEM CA bundle; set = clients must present a certificate it signed (mTLS)" },
    { "auth.tokens", CFG_STR, F(auth_tokens, char *), "", 0, 0, CFG_SECRET | CFG_RELOAD,
      "HERALD_TOKENS", NULL, NULL, NULL, NULL,
      "bearer tokens name:scope[+scope]:token, separated by newlines or commas (server/auth.h); empty = auth off" },
    { "auth.reflection", CFG_ENUM, F(auth_reflection, int), "open", 0, 0, 0,
      "HERALD_AUTH_REFLECTION", NULL, auth_reflection_choices, NULL, NULL,
      "open: reflection answers anyone; token: it needs a valid bearer token (any scope)" },
    { "llm.url", CFG_STR, F(llm_url, char *), "", 0, 0, CFG_URL,
      "HERALD_LLM_URL", NULL, NULL, check_http_url_or_off, NULL,
      "OpenAI-compatible chat-completions URL (http://host:port/v1/chat/completions); empty = no LLM" },
    { "llm.model", CFG_STR, F(llm_model, char *), "", 0, 0, 0,
      "HERALD_LLM_MODEL", NULL, NULL, NULL, NULL,
      "model name sent to the LLM endpoint; empty = not sent" },
    { "llm.api_key", CFG_STR, F(llm_api_key, char *), "", 0, 0, CFG_SECRET,
      "HERALD_LLM_API_KEY", NULL, NULL, NULL, NULL,
      "bearer token for the LLM endpoint" },
    { "llm.timeout_ms", CFG_DURATION_MS, F(llm_timeout_ms, int64_t), "20s", 100, 600000, 0,
      "HERALD_LLM_TIMEOUT", NULL, NULL, NULL, NULL,
      "time limit of one LLM attempt (the call's deadline applies too)" },
    { "llm.connect_timeout_ms", CFG_DURATION_MS, F(llm_connect_timeout_ms, int64_t), "2s", 10, 60000, 0,
      "HERALD_LLM_CONNECT_TIMEOUT", NULL, NULL, NULL, NULL,
      "time limit for connecting to the LLM endpoint" },
    { "llm.max_response_bytes", CFG_BYTES, F(llm_max_response_bytes, int64_t), "1MiB", 4 * KIB, 64 * MIB, 0,
      "HERALD_LLM_MAX_RESPONSE_BYTES", NULL, NULL, NULL, NULL,
      "largest LLM response body accepted; a larger one is cut off and fails" },
    { "llm.max_attempts", CFG_INT, F(llm_max_attempts, int), "3", 1, 10, 0,
      "HERALD_LLM_MAX_ATTEMPTS", NULL, NULL, NULL, NULL,
      "LLM requests per call: 429, 5xx and connection failures are retried within the deadline" },
    { "learning.checkpoint_ms", CFG_DURATION_MS, F(learning_checkpoint_ms, int64_t), "24h", 0, 2592000000LL, 0,
      "HERALD_LEARNING_CHECKPOINT", NULL, NULL, NULL, NULL,
      "a post's outcome (reward) is computed this long after it was published" },
    { "learning.half_life_days", CFG_INT, F(learning_half_life_days, int), "90", 0, 3650, 0,
      "HERALD_LEARNING_HALF_LIFE_DAYS", NULL, NULL, NULL, NULL,
      "an outcome's weight in the arm statistics halves every this many days; 0 = never" },
    { "learning.min_impressions", CFG_INT, F(learning_min_impressions, int), "100", 1, 1000000000, 0,
      "HERALD_LEARNING_MIN_IMPRESSIONS", NULL, NULL, NULL, NULL,
      "outcomes of posts with fewer impressions are recorded but not learnt from" },
    { "learning.job_interval_ms", CFG_DURATION_MS, F(learning_job_interval_ms, int64_t), "60s", 1000, 86400000, 0,
      "HERALD_LEARNING_JOB_INTERVAL", NULL, NULL, NULL, NULL,
      "how often the outcome checkpoint job looks for posts past their checkpoint" },
};
/* clang-format on */

#define N_KEYS (sizeof cfg_keys / sizeof cfg_keys[0])

size_t config_key_count(void)
{
    return N_KEYS;
}

const cfg_key *config_key_at(size_t i)
{
    return i < N_KEYS ? &cfg_keys[i] : NULL;
}

/* Keys, flags and file keys match with '.', '_' and '-' treated alike. */
static bool name_eq(const char *a, const char *b, size_t blen)
{
    size_t i = 0;
    for (; a[i] != '\0' && i < blen; i++) {
        char ca = a[i] == '.' || a[i] == '_' ? '-' : a[i];
        char cb = b[i] == '.' || b[i] == '_' ? '-' : b[i];
        if (ca != cb)
            return false;
    }
    return a[i] == '\0' && i == blen;
}

static const cfg_key *key_find_n(const char *name, size_t n)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (name_eq(cfg_keys[i].name, name, n))
            return &cfg_keys[i];
    return NULL;
}

const cfg_key *config_key_find(const char *name)
{
    return key_find_n(name, strlen(name));
}

static size_t key_index(const cfg_key *k)
{
    return (size_t)(k - cfg_keys);
}

/* "log.level" -> "log-level" into buf. */
static const char *flag_name(const cfg_key *k, char *buf, size_t cap)
{
    size_t i = 0;
    for (; k->name[i] != '\0' && i + 1 < cap; i++)
        buf[i] = k->name[i] == '.' || k->name[i] == '_' ? '-' : k->name[i];
    buf[i] = '\0';
    return buf;
}

static void *field(config *cfg, const cfg_key *k)
{
    return (char *)cfg + k->offset;
}

static const void *cfield(const config *cfg, const cfg_key *k)
{
    return (const char *)cfg + k->offset;
}

/* ---- values ---- */

static char *mask_value(const cfg_key *k, const char *v)
{
    if (k->flags & CFG_URL)
        return config_mask_url(v);
    if ((k->flags & CFG_SECRET) && v[0] != '\0')
        return xstrdup("***");
    return xstrdup(v);
}

char *config_value_string(const config *cfg, const cfg_key *k, bool mask)
{
    const void *p = cfield(cfg, k);
    switch (k->type) {
    case CFG_INT:
        return xasprintf("%d", *(const int *)p);
    case CFG_BYTES:
    case CFG_DURATION_MS:
        return xasprintf("%lld", (long long)*(const int64_t *)p);
    case CFG_BOOL:
        return xstrdup(*(const bool *)p ? "true" : "false");
    case CFG_ENUM:
        return xstrdup(k->choices[*(const int *)p]);
    case CFG_STR: {
        const char *s = *(char *const *)p;
        if (s == NULL)
            s = "";
        return mask ? mask_value(k, s) : xstrdup(s);
    }
    }
    return xstrdup("?");
}

/* What row k accepts, for --help and error messages. Caller frees. */
static char *allowed_text(const cfg_key *k)
{
    strbuf b = { 0 };
    switch (k->type) {
    case CFG_INT:
        strbuf_printf(&b, "an integer in %lld..%lld%s", (long long)k->min, (long long)k->max,
                      k->auto_fn ? ", or auto" : "");
        break;
    case CFG_BYTES:
        strbuf_printf(&b, "a size in %lld..%lld bytes (e.g. 65536, 512KiB, 1MiB)",
                      (long long)k->min, (long long)k->max);
        break;
    case CFG_DURATION_MS:
        strbuf_printf(&b, "a duration in %lld..%lld ms (e.g. 1500, 1500ms, 20s, 1m)",
                      (long long)k->min, (long long)k->max);
        break;
    case CFG_BOOL:
        strbuf_puts(&b, "true or false (also yes/no, on/off, 1/0)");
        break;
    case CFG_ENUM:
        strbuf_puts(&b, "one of ");
        for (int i = 0; k->choices[i] != NULL; i++)
            strbuf_printf(&b, "%s%s", i ? ", " : "", k->choices[i]);
        break;
    case CFG_STR:
        /* A check returns what it allows for any input it refuses; "\x01" is
         * refused by every check, so this asks for the text without a value. */
        if (k->check != NULL)
            strbuf_puts(&b, k->check("\x01"));
        else
            strbuf_puts(&b, "any text");
        break;
    }
    return strbuf_take(&b);
}

/* Parses a decimal integer with an optional unit suffix from units[] (name,
 * multiplier; "" = no suffix). False when malformed or overflowing. */
typedef struct unit {
    const char *name;
    int64_t mult;
} unit;

static bool parse_scaled(const char *s, const unit *units, int64_t *out)
{
    const char *p = s;
    if (!isdigit((unsigned char)*p))
        return false;
    int64_t n = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (INT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (*p - '0');
    }
    while (*p == ' ')
        p++;
    for (const unit *u = units; u->name != NULL; u++) {
        if (strcasecmp(p, u->name) != 0)
            continue;
        if (u->mult != 0 && n > INT64_MAX / u->mult)
            return false;
        *out = n * u->mult;
        return true;
    }
    return false;
}

static const unit size_units[] = {
    { "", 1 },      { "b", 1 },        { "k", KIB },         { "kib", KIB },
    { "m", MIB },   { "mib", MIB },    { "g", GIB },         { "gib", GIB },
    { "kb", 1000 }, { "mb", 1000000 }, { "gb", 1000000000 }, { NULL, 0 },
};
static const unit duration_units[] = {
    { "", 1 },        { "ms", 1 },      { "s", 1000 }, { "m", 60000 },
    { "min", 60000 }, { "h", 3600000 }, { NULL, 0 },
};

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Stores value v (from source src) into row k of cfg. On failure returns
 * CONFIG_EX_CONFIG and sets *err. */
static int set_value(config *cfg, const cfg_key *k, const char *v, const char *src, char **err)
{
    void *p = field(cfg, k);
    const char *reason = NULL;
    int64_t n = 0;

    switch (k->type) {
    case CFG_INT:
        if (k->auto_fn != NULL && strcasecmp(v, "auto") == 0) {
            n = k->auto_fn();
        } else {
            char *end = NULL;
            errno = 0;
            long long ll = strtoll(v, &end, 10);
            if (v[0] == '\0' || isspace((unsigned char)v[0]) || *end != '\0' || errno != 0) {
                reason = "is not an integer";
                break;
            }
            n = ll;
        }
        if (n < k->min || n > k->max)
            reason = "is out of range";
        else
            *(int *)p = (int)n;
        break;
    case CFG_BYTES:
        if (!parse_scaled(v, size_units, &n))
            reason = "is not a size";
        else if (n < k->min || n > k->max)
            reason = "is out of range";
        else
            *(int64_t *)p = n;
        break;
    case CFG_DURATION_MS:
        if (!parse_scaled(v, duration_units, &n))
            reason = "is not a duration";
        else if (n < k->min || n > k->max)
            reason = "is out of range";
        else
            *(int64_t *)p = n;
        break;
    case CFG_BOOL:
        if (!parse_bool(v, (bool *)p))
            reason = "is not a boolean";
        break;
    case CFG_ENUM: {
        int found = -1;
        for (int i = 0; k->choices[i] != NULL; i++)
            if (strcasecmp(v, k->choices[i]) == 0)
                found = i;
        if (found < 0 && k->choices == level_choices && strcasecmp(v, "warning") == 0)
            found = LOG_WARN;
        if (found < 0)
            reason = "is not a valid choice";
        else
            *(int *)p = found;
        break;
    }
    case CFG_STR:
        if (k->check != NULL && k->check(v) != NULL) {
            reason = "is not valid";
            break;
        }
        free(*(char **)p);
        *(char **)p = xstrdup(v);
        break;
    }
    if (reason == NULL)
        return 0;

    char *shown = mask_value(k, v);
    char *allowed = allowed_text(k);
    *err = xasprintf("bad value \"%s\" for %s (from %s): %s; allowed: %s", shown, k->name, src,
                     reason, allowed);
    free(allowed);
    free(shown);
    return CONFIG_EX_CONFIG;
}

/* ---- URL masking ---- */

/* strcasestr is a GNU extension; this is the portable few lines of it. */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay != '\0'; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return hay;
    return NULL;
}

/* Copies s into b with the value of every password=... parameter masked:
 * libpq conninfo (`password=x`, `password = 'a b'`) and URL queries. */
static void mask_password_params(strbuf *b, const char *s)
{
    const char *p = s;
    while (*p != '\0') {
        const char *hit = find_ci(p, "password");
        if (hit == NULL)
            break;
        bool at_start = hit == s || hit[-1] == ' ' || hit[-1] == '?' || hit[-1] == '&';
        const char *q = hit + 8;
        while (*q == ' ')
            q++;
        if (!at_start || *q != '=') {
            strbuf_append(b, p, (size_t)(hit + 8 - p));
            p = hit + 8;
            continue;
        }
        q++;
        while (*q == ' ')
            q++;
        strbuf_append(b, p, (size_t)(q - p));
        bool query = hit != s && (hit[-1] == '?' || hit[-1] == '&');
        if (query) {
            while (*q != '\0' && *q != '&' && *q != '#')
                q++;
        } else if (*q == '\'') {
            for (q++; *q != '\0' && *q != '\''; q++)
                if (*q == '\\' && q[1] != '\0')
                    q++;
            if (*q == '\'')
                q++;
        } else {
            while (*q != '\0' && *q != ' ')
                q++;
        }
        strbuf_puts(b, "***");
        p = q;
    }
    strbuf_puts(b, p);
}

char *config_mask_url(const char *url)
{
    strbuf b = { 0 };
    strbuf tmp = { 0 };
    const char *scheme_end = strstr(url, "://");
    const char *rest = url;

    if (scheme_end != NULL) {
        const char *auth = scheme_end + 3;
        size_t auth_len = strcspn(auth, "/?#");
        const char *at = NULL;
        for (size_t i = 0; i < auth_len; i++)
            if (auth[i] == '@')
                at = auth + i;
        if (at != NULL) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL) {
                strbuf_append(&tmp, url, (size_t)(colon + 1 - url));
                strbuf_puts(&tmp, "***");
                rest = at;
            }
        }
    }
    strbuf_puts(&tmp, rest);
    mask_password_params(&b, tmp.data != NULL ? tmp.data : "");
    strbuf_fini(&tmp);
    return strbuf_take(&b);
}

/* ---- sources ---- */

static const char *env_get(char *const *envp, const char *name)
{
    if (envp == NULL || name == NULL)
        return NULL;
    size_t n = strlen(name);
    for (size_t i = 0; envp[i] != NULL; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

/* Reads a whole (small) file into a new NUL-terminated string. */
static int read_small_file(const char *path, char **out, char **err)
{
    int rc = CONFIG_EX_CONFIG;
    FILE *f = NULL;
    strbuf b = { 0 };
    char chunk[4096];

    *out = NULL;
    f = fopen(path, "r");
    if (f == NULL) {
        *err = xasprintf("cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        strbuf_append(&b, chunk, n);
        if (b.len > CONFIG_FILE_MAX) {
            *err = xasprintf("cannot read %s: larger than %u bytes", path, CONFIG_FILE_MAX);
            goto out;
        }
    }
    if (ferror(f)) {
        *err = xasprintf("cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (memchr(b.data != NULL ? b.data : "", '\0', b.len) != NULL) {
        *err = xasprintf("cannot read %s: it holds a NUL byte", path);
        goto out;
    }
    *out = strbuf_take(&b);
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    strbuf_fini(&b);
    return rc;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Per-row values found in the file: vals[i] (owned) and srcs[i] ("path:N"). */
typedef struct file_vals {
    char *vals[N_KEYS];
    char *srcs[N_KEYS];
} file_vals;

static void file_vals_fini(file_vals *fv)
{
    for (size_t i = 0; i < N_KEYS; i++) {
        free(fv->vals[i]);
        free(fv->srcs[i]);
    }
}

static int parse_file(const char *path, file_vals *fv, char **err)
{
    char *text = NULL;
    int rc = read_small_file(path, &text, err);
    if (rc != 0)
        return rc;

    int lineno = 0;
    char *line = text;
    /* Walk lines by hand: strtok would merge empty lines and skew numbers. */
    while (line != NULL && rc == 0) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        char *s = trim(line);
        line = nl != NULL ? nl + 1 : NULL;
        if (s[0] == '\0' || s[0] == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            *err = xasprintf("%s:%d: expected `key = value`, got \"%s\"", path, lineno, s);
            rc = CONFIG_EX_CONFIG;
            break;
        }
        *eq = '\0';
        char *key = trim(s);
        char *val = trim(eq + 1);
        if (val[0] == '"') {
            /* "quoted value"  # optional comment */
            char *close = strchr(val + 1, '"');
            char *after = close != NULL ? close + 1 : NULL;
            while (after != NULL && isspace((unsigned char)*after))
                after++;
            if (after == NULL || (*after != '\0' && *after != '#')) {
                *err = xasprintf("%s:%d: unterminated or trailing text after quoted value", path,
                                 lineno);
                rc = CONFIG_EX_CONFIG;
                break;
            }
            *close = '\0';
            val++;
        } else {
            char *hash = strstr(val, " #");
            if (hash != NULL) {
                *hash = '\0';
                val = trim(val);
            }
        }
        const cfg_key *k = config_key_find(key);
        if (k == NULL) {
            *err = xasprintf("%s:%d: unknown key \"%s\" (see heraldd --help)", path, lineno, key);
            rc = CONFIG_EX_CONFIG;
            break;
        }
        size_t i = key_index(k);
        free(fv->vals[i]);
        free(fv->srcs[i]);
        fv->vals[i] = xstrdup(val);
        fv->srcs[i] = xasprintf("%s:%d", path, lineno);
    }
    free(text);
    return rc;
}

/* Finds row k's environment value: the variable, then its alias, then (for
 * secrets) NAME_FILE. *val is borrowed from envp or, for NAME_FILE, is *owned
 * (caller frees); src[0..cap) gets the variable's name. */
static int env_value(const config *cfg, const cfg_key *k, const char **val, char *src, size_t cap,
                     char **owned, char **err)
{
    char *const *envp = cfg->priv->envp;
    *val = NULL;
    *owned = NULL;
    src[0] = '\0';
    const char *v = env_get(envp, k->env);
    if (v != NULL)
        snprintf(src, cap, "%s", k->env);
    else if ((v = env_get(envp, k->env_alias)) != NULL)
        snprintf(src, cap, "%s", k->env_alias);
    if (!(k->flags & CFG_SECRET) || k->env == NULL) {
        *val = v;
        return 0;
    }

    /* Secrets: NAME_FILE holds the value (Docker/Kubernetes secrets). */
    char file_var[128];
    snprintf(file_var, sizeof file_var, "%s_FILE", k->env);
    const char *path = env_get(envp, file_var);
    if (path == NULL) {
        *val = v;
        return 0;
    }
    if (v != NULL) {
        *err = xasprintf("both %s and %s are set for %s; set only one", src, file_var, k->name);
        return CONFIG_EX_CONFIG;
    }
    char *content = NULL;
    char *why = NULL;
    if (read_small_file(path, &content, &why) != 0) {
        *err = xasprintf("%s for %s: %s", file_var, k->name, why);
        free(why);
        return CONFIG_EX_CONFIG;
    }
    size_t n = strlen(content);
    while (n > 0 && (content[n - 1] == '\n' || content[n - 1] == '\r'))
        content[--n] = '\0';
    *owned = content;
    *val = content;
    snprintf(src, cap, "%s", file_var);
    return 0;
}

static void set_source(config *cfg, size_t i, cfg_source s, const char *name)
{
    cfg->priv->src[i] = s;
    free(cfg->priv->src_name[i]);
    cfg->priv->src_name[i] = xstrdup(name);
}

/* ---- the command line ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1;
            size_t ins = d[i][j - 1] + 1;
            size_t m = sub < del ? sub : del;
            d[i][j] = m < ins ? m : ins;
        }
    return d[la][lb];
}

static char *unknown_flag_msg(const char *arg, const char *name, size_t n)
{
    char given[64];
    snprintf(given, sizeof given, "%.*s", (int)(n < 63 ? n : 63), name);
    const char *best = NULL;
    char fbuf[64];
    char best_buf[64];
    size_t best_d = 3;
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t dist = edit_distance(given, flag_name(&cfg_keys[i], fbuf, sizeof fbuf));
        if (dist < best_d) {
            best_d = dist;
            snprintf(best_buf, sizeof best_buf, "%s", fbuf);
            best = best_buf;
        }
    }
    if (best != NULL)
        return xasprintf("unknown flag '%s' (did you mean --%s?); try 'heraldd --help'", arg, best);
    return xasprintf("unknown flag '%s'; try 'heraldd --help'", arg);
}

/* Per-row flag values (borrowed from the argv copy) and the flag spelling. */
typedef struct flag_vals {
    const char *vals[N_KEYS];
    const char *srcs[N_KEYS];
} flag_vals;

static int parse_argv(config *cfg, config_cli *cli, flag_vals *fl, char **err)
{
    struct config_priv *pv = cfg->priv;
    bool positional_only = false;

    for (int i = 0; i < pv->argc; i++) {
        char *a = pv->argv[i];
        /* "-1" is a positional argument (`migrate force -1`), not a flag. */
        if (positional_only || a[0] != '-' || a[1] == '\0' || isdigit((unsigned char)a[1])) {
            pv->args[pv->n_args++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            positional_only = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli->help = true;
            continue;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            cli->version = true;
            continue;
        }
        if (strcmp(a, "--print-config") == 0) {
            cli->print_config = true;
            continue;
        }
        if (a[1] != '-') {
            *err = unknown_flag_msg(a, a + 1, strlen(a + 1));
            return CONFIG_EX_USAGE;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const char *val = eq != NULL ? eq + 1 : NULL;

        char **special = NULL;
        if (n == 6 && strncmp(name, "config", 6) == 0)
            special = &pv->config_path;
        else if (name_eq("port-file", name, n))
            special = &pv->port_file;
        const cfg_key *k = special == NULL ? key_find_n(name, n) : NULL;
        bool negated = false;
        if (special == NULL && k == NULL && n > 3 && strncmp(name, "no-", 3) == 0) {
            k = key_find_n(name + 3, n - 3);
            if (k != NULL && k->type != CFG_BOOL)
                k = NULL;
            negated = k != NULL;
        }
        if (special == NULL && k == NULL) {
            *err = unknown_flag_msg(a, name, n);
            return CONFIG_EX_USAGE;
        }
        if (negated && val != NULL) {
            *err = xasprintf("flag '%.*s' takes no value; try 'heraldd --help'", (int)(n + 2), a);
            return CONFIG_EX_USAGE;
        }
        if (k != NULL && k->type == CFG_BOOL && val == NULL)
            val = negated ? "false" : "true"; /* booleans take a value only after '=' */
        if (val == NULL) {
            if (i + 1 >= pv->argc) {
                *err = xasprintf("flag '%s' needs a value; try 'heraldd --help'", a);
                return CONFIG_EX_USAGE;
            }
            val = pv->argv[++i];
        }
        if (special != NULL) {
            free(*special);
            *special = xstrdup(val);
            continue;
        }
        size_t idx = key_index(k);
        fl->vals[idx] = val;
        fl->srcs[idx] = a; /* "--workers" or "--workers=4": trimmed when stored */
    }
    return 0;
}

/* "--workers=4" -> "--workers". Caller frees. */
static char *flag_src_name(const char *arg)
{
    const char *eq = strchr(arg, '=');
    return eq != NULL ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
}

/* ---- cross-field checks ---- */

static int check_readable(const config *cfg, const char *key, const char *path, char **err)
{
    if (path[0] == '\0' || access(path, R_OK) == 0)
        return 0;
    const cfg_key *k = config_key_find(key);
    *err = xasprintf("bad value \"%s\" for %s (from %s): cannot read the file: %s", path, key,
                     config_source_name(cfg, k), strerror(errno));
    return CONFIG_EX_CONFIG;
}

static int validate(const config *cfg, char **err)
{
    int rc;
    if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
        *err = xstrdup("tls.cert and tls.key must be set together (both empty = plaintext)");
        return CONFIG_EX_CONFIG;
    }
    if (cfg->tls_client_ca[0] != '\0' && cfg->tls_cert[0] == '\0') {
        *err = xstrdup("tls.client_ca needs tls.cert and tls.key (mTLS is a TLS option)");
        return CONFIG_EX_CONFIG;
    }
    if ((rc = check_readable(cfg, "tls.cert", cfg->tls_cert, err)) != 0)
        return rc;
    if ((rc = check_readable(cfg, "tls.key", cfg->tls_key, err)) != 0)
        return rc;
    return check_readable(cfg, "tls.client_ca", cfg->tls_client_ca, err);
}

/* ---- load ---- */

static char **copy_vec(char *const *v, int n)
{
    char **out = xcalloc((size_t)n + 1, sizeof *out);
    for (int i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static int vec_len(char *const *v)
{
    int n = 0;
    while (v != NULL && v[n] != NULL)
        n++;
    return n;
}

static void priv_init(config *cfg, int argc, char *const argv[], char *const envp[])
{
    struct config_priv *pv = xcalloc(1, sizeof *pv);
    pv->src = xcalloc(N_KEYS, sizeof *pv->src);
    pv->src_name = xcalloc(N_KEYS, sizeof *pv->src_name);
    pv->argc = argc;
    pv->argv = copy_vec(argv, argc);
    pv->envp = copy_vec(envp, vec_len(envp));
    pv->args = xcalloc((size_t)argc + 1, sizeof *pv->args);
    cfg->priv = pv;
}

static int load_values(config *cfg, const flag_vals *fl, char **err)
{
    int rc = 0;
    file_vals fv;
    memset(&fv, 0, sizeof fv);

    if (cfg->priv->config_path != NULL) {
        rc = parse_file(cfg->priv->config_path, &fv, err);
        if (rc != 0)
            goto out;
    }
    for (size_t i = 0; i < N_KEYS && rc == 0; i++) {
        const cfg_key *k = &cfg_keys[i];
        char env_src[128];
        const char *env_val = NULL;
        char *owned = NULL;
        rc = env_value(cfg, k, &env_val, env_src, sizeof env_src, &owned, err);
        if (rc != 0)
            break;

        /* Defaults are parsed too: a bad default is caught by the unit tests. */
        const char *v = k->dflt;
        const char *src = "default";
        cfg_source s = CFG_SRC_DEFAULT;
        char *flag_src = NULL;
        if (fl->vals[i] != NULL) {
            flag_src = flag_src_name(fl->srcs[i]);
            v = fl->vals[i];
            src = flag_src;
            s = CFG_SRC_FLAG;
        } else if (env_val != NULL) {
            v = env_val;
            src = env_src;
            s = CFG_SRC_ENV;
        } else if (fv.vals[i] != NULL) {
            v = fv.vals[i];
            src = fv.srcs[i];
            s = CFG_SRC_FILE;
        }
        rc = set_value(cfg, k, v, src, err);
        set_source(cfg, i, s, src);
        free(flag_src);
        free(owned);
    }
    if (rc == 0)
        rc = validate(cfg, err);
out:
    file_vals_fini(&fv);
    return rc;
}

/* Every string field starts as "" so readers never see NULL. */
static void init_strings(config *cfg)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (cfg_keys[i].type == CFG_STR)
            *(char **)field(cfg, &cfg_keys[i]) = xstrdup("");
}

int config_load(config *cfg, config_cli *cli, int argc, char *const argv[], char *const envp[],
                char **err)
{
    int rc;
    flag_vals fl;
    memset(&fl, 0, sizeof fl);
    memset(cfg, 0, sizeof *cfg);
    memset(cli, 0, sizeof *cli);
    *err = NULL;
    priv_init(cfg, argc, argv, envp);
    init_strings(cfg);

    rc = parse_argv(cfg, cli, &fl, err);
    if (rc == 0 && cfg->priv->config_path == NULL) {
        const char *p = env_get(cfg->priv->envp, "HERALD_CONFIG");
        if (p != NULL && p[0] != '\0')
            cfg->priv->config_path = xstrdup(p);
    }
    cli->config_path = cfg->priv->config_path;
    cli->port_file = cfg->priv->port_file;
    cli->n_args = cfg->priv->n_args;
    cli->args = cfg->priv->args;
    if (rc != 0 || cli->help || cli->version)
        return rc;
    return load_values(cfg, &fl, err);
}

int config_reload(const config *cur, config *fresh, char **err)
{
    config_cli cli;
    return config_load(fresh, &cli, cur->priv->argc, cur->priv->argv, cur->priv->envp, err);
}

void config_fini(config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        if (cfg_keys[i].type == CFG_STR) {
            char **p = field(cfg, &cfg_keys[i]);
            free(*p);
            *p = NULL;
        }
    struct config_priv *pv = cfg->priv;
    if (pv != NULL) {
        for (size_t i = 0; i < N_KEYS; i++)
            free(pv->src_name[i]);
        free(pv->src_name);
        free(pv->src);
        for (int i = 0; i < pv->argc; i++)
            free(pv->argv[i]);
        free(pv->argv);
        for (int i = 0; pv->envp[i] != NULL; i++)
            free(pv->envp[i]);
        free(pv->envp);
        free(pv->args);
        free(pv->config_path);
        free(pv->port_file);
        free(pv);
    }
    cfg->priv = NULL;
}

int config_changes(const config *old_cfg, const config *new_cfg, config_change_fn fn, void *user)
{
    int n = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        char *a = config_value_string(old_cfg, k, false);
        char *b = config_value_string(new_cfg, k, false);
        if (strcmp(a, b) != 0) {
            n++;
            if (fn != NULL) {
                char *ma = config_value_string(old_cfg, k, true);
                char *mb = config_value_string(new_cfg, k, true);
                fn(k, ma, mb, user);
                free(ma);
                free(mb);
            }
        }
        free(a);
        free(b);
    }
    return n;
}

const char *config_source_name(const config *cfg, const cfg_key *k)
{
    const char *s = cfg->priv != NULL ? cfg->priv->src_name[key_index(k)] : NULL;
    return s != NULL ? s : "default";
}

cfg_source config_source(const config *cfg, const cfg_key *k)
{
    return cfg->priv != NULL ? cfg->priv->src[key_index(k)] : CFG_SRC_DEFAULT;
}

/* ---- output ---- */

static const char *metavar(const cfg_key *k)
{
    switch (k->type) {
    case CFG_INT:
        return "N";
    case CFG_BYTES:
        return "SIZE";
    case CFG_DURATION_MS:
        return "DURATION";
    case CFG_BOOL:
        return "";
    case CFG_ENUM:
        return "NAME";
    case CFG_STR:
        if (k->flags & CFG_URL)
            return "URL";
        if (k->check == check_addr || k->check == check_addr_or_off)
            return "ADDR";
        if (strncmp(k->name, "tls.", 4) == 0)
            return "FILE";
        if (k->flags & CFG_SECRET)
            return "SECRET";
        return "TEXT";
    }
    return "VALUE";
}

void config_print_help(FILE *out, const char *prog)
{
    char fbuf[64];
    fprintf(out,
            "Usage: %s [serve] [FLAGS]\n"
            "       %s migrate up | down N | version | force V [FLAGS]\n"
            "\n"
            "Herald control-plane gRPC server.\n"
            "Settings: flags > environment > config file (--config) > defaults.\n"
            "\n"
            "Flags:\n"
            "  -h, --help              show this help and exit\n"
            "  -V, --version           show the version (and gRPC's) and exit\n"
            "      --print-config      print the effective settings, secrets masked, and exit\n"
            "      --config FILE       read `key = value` lines from FILE ($HERALD_CONFIG)\n"
            "      --port-file FILE    write the bound gRPC port to FILE once listening\n"
            "\n"
            "Settings (key, flag, environment variable):\n",
            prog, prog);
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        flag_name(k, fbuf, sizeof fbuf);
        fprintf(out, "  %s\n      --%s%s%s%s", k->name, k->type == CFG_BOOL ? "[no-]" : "", fbuf,
                metavar(k)[0] != '\0' ? " " : "", metavar(k));
        if (k->env != NULL)
            fprintf(out, "   $%s", k->env);
        if (k->env_alias != NULL)
            fprintf(out, " (or $%s)", k->env_alias);
        if (k->flags & CFG_SECRET)
            fprintf(out, " (or $%s_FILE)", k->env);
        fprintf(out, "\n      %s.\n", k->help);
        char *allowed = allowed_text(k);
        if (k->auto_fn != NULL)
            fprintf(out, "      Default %s (%lld here); %s.", k->dflt, (long long)k->auto_fn(),
                    allowed);
        else
            fprintf(out, "      Default \"%s\"; %s.", k->dflt, allowed);
        free(allowed);
        if (k->flags & CFG_SECRET)
            fputs(" Secret: masked when printed.", out);
        if (k->flags & CFG_RELOAD)
            fputs(" Reloaded on SIGHUP.", out);
        fputc('\n', out);
    }
    fputs("\nExit status: 0 clean stop; 1 start-up failure; 64 usage error; 78 bad\n"
          "configuration; 128+N when a second SIGTERM/SIGINT cut the drain short.\n",
          out);
}

/* Quotes a value for the config file syntax when it needs it. */
static char *file_quote(const char *v)
{
    if (v[0] == '\0' || strpbrk(v, " \t#\"") != NULL)
        return xasprintf("\"%s\"", v);
    return xstrdup(v);
}

void config_print(const config *cfg, FILE *out)
{
    fputs("# heraldd effective settings (flags > environment > file > defaults)\n", out);
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        char *v = config_value_string(cfg, k, true);
        char *q = file_quote(v);
        char *line = xasprintf("%s = %s", k->name, q);
        fprintf(out, "%-40s # %s\n", line, config_source_name(cfg, k));
        free(line);
        free(q);
        free(v);
    }
}

void config_log(const config *cfg)
{
    log_field fields[N_KEYS];
    char *vals[N_KEYS];
    for (size_t i = 0; i < N_KEYS; i++) {
        const cfg_key *k = &cfg_keys[i];
        vals[i] = config_value_string(cfg, k, true);
        bool raw = k->type == CFG_INT || k->type == CFG_BYTES || k->type == CFG_DURATION_MS ||
                   k->type == CFG_BOOL;
        fields[i] = (log_field){ k->name, vals[i], raw };
    }
    log_event(LOG_INFO, "effective config", fields, N_KEYS);
    for (size_t i = 0; i < N_KEYS; i++)
        free(vals[i]);
}
