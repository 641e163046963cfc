/* main.c - heraldd: command line, start-up, signals and graceful shutdown.
 *
 *   heraldd [serve] [FLAGS]                           run the server (default)
 *   heraldd migrate up|down N|version|force V [FLAGS] schema migrations
 *
 * Threads. main blocks SIGTERM, SIGINT and SIGHUP before anything else (so
 * every thread gRPC or the runtime starts inherits the mask) and one signal
 * thread takes them with sigwait (SIGUSR1 is blocked too: main's way to wake
 * that thread at exit):
 *   SIGHUP          re-read the config file and environment; CFG_RELOAD rows
 *                   (log.level, log.format, auth.tokens, db.slow_query_ms)
 *                   apply, each change is logged.
 *   SIGTERM/SIGINT  main drains (conventions §9): every health entry
 *                   NOT_SERVING (pushed to Watchers), wait shutdown.delay_ms,
 *                   end the Watch streams, stop accepting and give in-flight
 *                   calls shutdown.grace_ms, cancel the rest, free, exit 0.
 *   a second one    cancel every call now; main finishes its cleanup and exits
 *                   128+signal (143 for SIGTERM, 130 for SIGINT); if cleanup
 *                   is stuck (a handler blocked in I/O) the signal thread
 *                   _exit()s with that code after 2 s.
 *
 * The store (serve). With database_url set, each worker gets its own lazy
 * PostgreSQL connection and Redis connection (worker.h), and after the port
 * is bound (so probes answer from the first second):
 *   1. migrate_on_start (default true): migrate_up under the advisory lock.
 *      - applied / nothing to do: the schema gate opens.
 *      - PostgreSQL unreachable: logged; the readiness pinger retries it
 *        every second, so heraldd may start before its database.
 *      - ST_FAILED_PRECONDITION (a changed migration file, a dirty database
 *        or one newer than this binary): heraldd REFUSES TO SERVE but keeps
 *        running (conventions §13): an error on the log and stderr names the
 *        file, readiness and every herald service stay NOT_SERVING, store
 *        calls answer UNAVAILABLE, liveness stays SERVING (a restart would
 *        not fix the database). Once an operator repairs it (`heraldd migrate
 *        force V` to this binary's version) the pinger's check passes and
 *        heraldd serves without a restart.
 *   2. the readiness pinger (its own connection): every second,
 *      migrate_check_conn (a ping plus the schema version and checksums);
 *      readiness and each herald.v1 service go NOT_SERVING after 3 failures
 *      and SERVING after 1 success. "" and liveness never depend on
 *      PostgreSQL or Redis.
 * With database_url empty heraldd still starts (health, reflection and
 * UNIMPLEMENTED stubs work; an operator can probe it) but warns, keeps
 * readiness NOT_SERVING for good, and store calls answer UNAVAILABLE "no
 * database configured". Redis is optional: without redis_url every cache
 * lookup is a miss. A redis_url that does not parse is a configuration error.
 *
 * Around the store ("process-wide services" below has the order): the memory
 * manager (over memory.limit_mb, expensive RPCs get RESOURCE_EXHAUSTED), the
 * http client and the LLM provider, the figures of GetStatus/GetSloReport,
 * the admin HTTP listener (/metrics, /healthz, /readyz on admin_listen),
 * ContentService's completion threads and the one background-jobs runner
 * (register_jobs; started once the schema is verified).
 *
 * Exit status: 0 clean stop; 1 start-up failure (bind, TLS files, services)
 * or a failed migrate command; 64 usage error; 78 bad configuration; 128+N
 * forced by a second signal. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "descset.h"
#include "health.h"
#include "log.h"
#include "reflection.h"
#include "rpc.h"
#include "util.h"
#include "worker.h"

#include "cache.h"
#include "db.h"
#include "http.h"
#include "jobs.h"
#include "lcache.h"
#include "llm.h"
#include "memwatch.h"
#include "metrics.h"
#include "migrate.h"
#include "ops_status.h"
#include "outcomes.h"
#include "pregen.h"
#include "publisher.h"
#include "svc.h"
#include "vercache.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "0.0.0"
#endif
#ifndef HERALD_COMMIT
#define HERALD_COMMIT "unknown"
#endif

extern char **environ;

/* libgrpc's own version ("29.0.0" = core of gRPC 1.51). Declared here rather
 * than including <grpc/grpc.h>, which only rpc.c may use. */
const char *grpc_version_string(void);

enum {
    EXIT_STARTUP = 1,
    FORCED_EXIT_WAIT_MS = 2000,
    VERSION_MAP_CAP = 65536, /* scopes the version map holds (vercache.h); ~100 B each */
};

/* State shared by main and the signal thread; mu protects every field. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int stop_signo;         /* first SIGTERM/SIGINT; 0 until then */
    int forced_signo;       /* a second one; 0 until then */
    bool quit;              /* main is done: the signal thread exits */
    rpc_server *servers[2]; /* running servers, for cancel-all; NULL when gone */
    const config *boot_cfg; /* the start-up config (reload re-reads its sources) */
    worker_shared *shared;  /* where a reload publishes the config in force (GetConfig) */
} life = { .mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Bearer tokens (auth.h): set by serve() before the server starts, freed
 * after the signal thread (which reloads it) is joined. */
static auth *api_auth;

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGTERM:
        return "SIGTERM";
    case SIGINT:
        return "SIGINT";
    case SIGHUP:
        return "SIGHUP";
    default:
        return "signal";
    }
}

/* Start-up failures go to the log and, for a person or an init system
 * watching stderr, to stderr as well. */
static void startup_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void startup_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    log_event(LOG_ERROR, msg, NULL, 0);
    (void)fprintf(stderr, "heraldd: %s\n", msg);
    free(msg);
}

/* ---- SIGHUP: reload ---- */

typedef struct reload_ctx {
    int n_applied;
} reload_ctx;

static void log_change(const cfg_key *k, const char *old_val, const char *new_val, void *user)
{
    reload_ctx *rc = user;
    log_field f[] = { LOG_S("key", k->name), LOG_S("old", old_val), LOG_S("new", new_val) };
    if (k->flags & CFG_RELOAD) {
        log_event(LOG_INFO, "config reloaded", f, 3);
        rc->n_applied++;
    } else {
        log_event(LOG_WARN, "config changed; restart to apply", f, 3);
    }
}

/* Runs on the signal thread only, so *applied and *owned need no lock.
 * *applied is what the last reload applied (at first the start-up config);
 * *owned is the reload-made copy behind it, if any. */
static void reload_tls(const config *c);

static void reload_config(const config **applied, config **owned)
{
    config fresh;
    char *err = NULL;
    reload_ctx rc = { 0 };

    if (config_reload(life.boot_cfg, &fresh, &err) != 0) {
        log_field f[] = { LOG_S("error", err) };
        log_event(LOG_ERROR, "config reload failed; keeping the current settings", f, 1);
        free(err);
        config_fini(&fresh);
        return;
    }
    /* Log the changes at the more verbose of the old and new levels, so the
     * lines show whichever way the level moved; then apply. */
    int old_level = atomic_load(&log_level);
    if (fresh.log_level < old_level)
        atomic_store(&log_level, fresh.log_level);
    config_changes(*applied, &fresh, log_change, &rc);
    atomic_store(&log_level, fresh.log_level);
    atomic_store(&log_format_, fresh.log_format);
    db_slow_threshold_set_ms(fresh.db_slow_query_ms);
    if (api_auth != NULL && strcmp(fresh.auth_tokens, (*applied)->auth_tokens) != 0) {
        char *aerr = NULL;
        if (auth_reload(api_auth, fresh.auth_tokens, &aerr) == ST_OK) {
            char n[24];
            (void)snprintf(n, sizeof n, "%zu", auth_token_count(api_auth));
            log_field f[] = { LOG_RAW("tokens", n) };
            log_event(LOG_INFO, "auth.tokens reloaded", f, 1);
        } else {
            log_field f[] = { LOG_S("error", aerr) };
            log_event(LOG_ERROR, "auth.tokens not reloaded; keeping the current tokens", f, 1);
        }
        free(aerr);
    }
    reload_tls(&fresh);
    if (rc.n_applied == 0)
        log_info("config reloaded: no reloadable setting changed");

    config *next = xmalloc(sizeof *next);
    *next = fresh; /* the struct moves; its heap parts are handed over */
    /* Publish it for GetConfig before the one it replaces is freed. */
    pthread_mutex_lock(&life.mu);
    worker_shared *sh = life.shared;
    pthread_mutex_unlock(&life.mu);
    if (sh != NULL) {
        pthread_mutex_lock(&sh->live_mu);
        sh->live = next;
        pthread_mutex_unlock(&sh->live_mu);
    }
    if (*owned != NULL) {
        config_fini(*owned);
        free(*owned);
    }
    *owned = next;
    *applied = next;
}

/* ---- the signal thread ---- */

static void forced_exit_watchdog(int sig)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += FORCED_EXIT_WAIT_MS / 1000;
    pthread_mutex_lock(&life.mu);
    int rc = 0;
    while (!life.quit && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&life.cond, &life.mu, &until);
    bool done = life.quit;
    pthread_mutex_unlock(&life.mu);
    if (!done) {
        log_error("cleanup did not finish within %d ms of the second %s; exiting now",
                  FORCED_EXIT_WAIT_MS, signal_name(sig));
        _exit(128 + sig);
    }
}

static void *signal_main(void *arg)
{
    const sigset_t *set = arg; /* SIGTERM, SIGINT, SIGHUP and SIGUSR1 */
    const config *applied = life.boot_cfg;
    config *owned = NULL;

    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            /* main's wake-up when it is done (pthread_kill); else ignored. */
            pthread_mutex_lock(&life.mu);
            bool quit = life.quit;
            pthread_mutex_unlock(&life.mu);
            if (quit)
                break;
            continue;
        }
        if (sig == SIGHUP) {
            log_info("SIGHUP: reloading configuration");
            reload_config(&applied, &owned);
            continue;
        }
        pthread_mutex_lock(&life.mu);
        if (life.stop_signo == 0) {
            life.stop_signo = sig;
            pthread_cond_broadcast(&life.cond);
            pthread_mutex_unlock(&life.mu);
            log_field f[] = { LOG_S("signal", signal_name(sig)) };
            log_event(LOG_INFO, "shutdown requested; draining", f, 1);
            continue;
        }
        life.forced_signo = sig;
        for (int i = 0; i < 2; i++)
            if (life.servers[i] != NULL)
                rpc_server_cancel_all(life.servers[i]);
        pthread_cond_broadcast(&life.cond);
        pthread_mutex_unlock(&life.mu);
        log_field f[] = { LOG_S("signal", signal_name(sig)) };
        log_event(LOG_WARN, "second signal: cancelling every call and exiting", f, 1);
        forced_exit_watchdog(sig);
        break;
    }
    if (owned != NULL) {
        pthread_mutex_lock(&life.mu);
        worker_shared *sh = life.shared;
        pthread_mutex_unlock(&life.mu);
        if (sh != NULL) {
            pthread_mutex_lock(&sh->live_mu);
            sh->live = NULL; /* back to the start-up config */
            pthread_mutex_unlock(&sh->live_mu);
        }
        config_fini(owned);
        free(owned);
    }
    return NULL;
}

/* ---- start-up helpers ---- */

static char *read_pem(const char *key, const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        startup_error("cannot read %s %s: %s", key, path, strerror(errno));
        return NULL;
    }
    strbuf b = { 0 };
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (4u << 20))
        strbuf_append(&b, chunk, n);
    (void)fclose(f);
    return strbuf_take(&b);
}

/* SIGHUP: re-reads the TLS files (cert-manager rewrites them in place) and
 * hands them to the main server for the connections that follow. Runs on the
 * signal thread; life.mu keeps the server from being freed meanwhile. */
static void reload_tls(const config *c)
{
    if (c->tls_cert[0] == '\0')
        return;
    char *cert = read_pem("tls.cert", c->tls_cert);
    char *key = read_pem("tls.key", c->tls_key);
    char *ca = c->tls_client_ca[0] != '\0' ? read_pem("tls.client_ca", c->tls_client_ca) : NULL;
    char *err = NULL;
    status st = ST_INVALID;
    if (cert != NULL && key != NULL && (c->tls_client_ca[0] == '\0' || ca != NULL)) {
        pthread_mutex_lock(&life.mu);
        if (life.servers[0] != NULL)
            st = rpc_server_reload_tls(life.servers[0], cert, key, ca, &err);
        pthread_mutex_unlock(&life.mu);
    }
    if (st == ST_OK) {
        log_info("TLS certificates reloaded: new connections use them");
    } else {
        log_field f[] = { LOG_S("error", err != NULL ? err : "cannot read the TLS files") };
        log_event(LOG_ERROR, "TLS certificates not reloaded; keeping the current ones", f, 1);
    }
    free(err);
    free(ca);
    free(key);
    free(cert);
}

/* The listen address with the bound port: "0.0.0.0:0" -> "0.0.0.0:41234". */
static char *bound_addr(const char *listen, int port)
{
    const char *colon = strrchr(listen, ':');
    if (strncmp(listen, "unix:", 5) == 0 || colon == NULL)
        return xstrdup(listen);
    return xasprintf("%.*s:%d", (int)(colon - listen), listen, port);
}

/* Written to a temporary name and renamed, so a reader never sees half. */
static bool write_port_file(const char *path, int port)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    bool ok = false;
    FILE *f = fopen(tmp, "w");
    if (f != NULL) {
        ok = fprintf(f, "%d\n", port) > 0;
        ok = fclose(f) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
    }
    if (!ok) {
        startup_error("cannot write --port-file %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

/* Waits up to ms for a second signal; returns early when one comes. */
static void sleep_unless_forced(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t ns = until.tv_nsec + (ms % 1000) * 1000000;
    until.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&life.mu);
    int rc = 0;
    while (life.forced_signo == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&life.cond, &life.mu, &until);
    pthread_mutex_unlock(&life.mu);
}

static int forced_signal(void)
{
    pthread_mutex_lock(&life.mu);
    int sig = life.forced_signo;
    pthread_mutex_unlock(&life.mu);
    return sig;
}

/* The herald.v1 services heraldd serves on the worker pool. */
static size_t herald_services(ProtobufCService **out, size_t cap)
{
    size_t n = 0;
    ProtobufCService *all[] = { svc_content_service(), svc_scheduling_service(),
                                svc_learning_service(), svc_ops_service() };
    for (size_t i = 0; i < sizeof all / sizeof all[0] && n < cap; i++)
        out[n++] = all[i];
    return n;
}

/* ---- the store: migrations, readiness, the schema gate ---- */

/* What the readiness pinger and main share. Set up by serve() before the
 * pinger starts; afterwards only the pinger thread touches last_migrate_err
 * and health/services are read-only. */
typedef struct store_state {
    worker_shared *shared;
    health *h;
    ProtobufCService **svcs;
    size_t n_svcs;
    ops_status *ops;            /* each ping's outcome goes to GetStatus */
    jobs *jobs;                 /* started once the schema is verified; NULL without a database */
    bool jobs_started;          /* main (before the pinger starts), then the pinger thread */
    char last_migrate_err[512]; /* the last logged migrate failure, to log each once */
} store_state;

/* Runs migrate_up and moves the schema gate. Logs the outcome (a repeated
 * failure only once). lock_wait_ms bounds the wait for another migrator. */
static status store_migrate(store_state *ss, int64_t lock_wait_ms, char *why, size_t cap)
{
    migrate_options mo;
    char *err = NULL;
    int applied = 0;

    migrate_options_init(&mo, ss->shared->cfg->database_url);
    mo.lock_wait_ms = lock_wait_ms;
    int64_t t0 = now_mono_ms();
    status st = migrate_up_opts(&mo, &applied, &err);
    if (st == ST_OK) {
        char n[16], ver[24], ms[24];
        (void)snprintf(n, sizeof n, "%d", applied);
        (void)snprintf(ver, sizeof ver, "%lld", (long long)migrate_expected_version());
        (void)snprintf(ms, sizeof ms, "%lld", (long long)(now_mono_ms() - t0));
        log_field f[] = { LOG_RAW("applied", n), LOG_RAW("version", ver), LOG_RAW("ms", ms) };
        log_event(LOG_INFO, applied > 0 ? "migrations applied" : "schema up to date", f, 3);
        ss->last_migrate_err[0] = '\0';
        atomic_store(&ss->shared->schema, WORKER_SCHEMA_OK);
        free(err);
        return ST_OK;
    }
    const char *msg = err != NULL ? err : status_name(st);
    (void)snprintf(why, cap, "%s", msg);
    if (st == ST_FAILED_PRECONDITION) {
        atomic_store(&ss->shared->schema, WORKER_SCHEMA_REFUSED);
        startup_error("refusing to serve: %s; readiness stays NOT_SERVING until the database "
                      "is repaired (heraldd migrate version|force)",
                      msg);
    } else if (strcmp(ss->last_migrate_err, msg) != 0) {
        log_field f[] = { LOG_S("error", msg), LOG_S("status", status_name(st)) };
        log_event(LOG_WARN, "cannot apply migrations yet; retrying every second", f, 2);
    }
    (void)snprintf(ss->last_migrate_err, sizeof ss->last_migrate_err, "%s", msg);
    free(err);
    return st;
}

/* Background jobs run only against a verified schema: started by main when
 * the start-up migration verified it, else by the pinger's first good probe
 * (never both: main calls this before it starts the pinger). */
static void store_start_jobs(store_state *ss)
{
    char *err = NULL;
    if (ss->jobs == NULL || ss->jobs_started)
        return;
    if (jobs_start(ss->jobs, &err) != ST_OK) {
        log_field f[] = { LOG_S("error", err != NULL ? err : "") };
        log_event(LOG_ERROR, "background jobs not started", f, 1);
        free(err);
        return;
    }
    ss->jobs_started = true;
    log_debug("background jobs started");
}

/* db_probe_fn of the readiness pinger (its thread): applies pending
 * migrations while they are still owed, then checks the schema. */
static status store_probe(db_conn *db, char *why, size_t cap, void *user)
{
    store_state *ss = user;
    worker_schema was = worker_schema_get(ss->shared);
    if (was == WORKER_SCHEMA_PENDING && ss->shared->cfg->migrate_on_start) {
        status st = store_migrate(ss, 2000, why, cap);
        if (st != ST_OK) {
            ops_status_note_ping(ss->ops, false, 0, why);
            return st;
        }
    }
    int64_t t0 = now_mono_us();
    status st = migrate_check_conn(db, why, cap, NULL);
    ops_status_note_ping(ss->ops, st == ST_OK, (double)(now_mono_us() - t0) / 1000.0, why);
    if (st == ST_OK && worker_schema_get(ss->shared) != WORKER_SCHEMA_OK) {
        atomic_store(&ss->shared->schema, WORKER_SCHEMA_OK);
        log_info("database schema verified at version %lld: serving",
                 (long long)migrate_expected_version());
    }
    if (st == ST_OK)
        store_start_jobs(ss);
    return st;
}

/* db_ready_fn: readiness and every herald.v1 service follow the database. */
static void store_ready_changed(bool ready, const char *why, void *user)
{
    store_state *ss = user;
    health_state hs = ready ? HEALTH_SERVING : HEALTH_NOT_SERVING;
    health_set(ss->h, "readiness", hs);
    for (size_t i = 0; i < ss->n_svcs; i++)
        health_set(ss->h, ss->svcs[i]->descriptor->name, hs);
    log_field f[] = { LOG_S("readiness", ready ? "SERVING" : "NOT_SERVING"), LOG_S("why", why) };
    log_event(ready ? LOG_INFO : LOG_WARN, ready ? "ready" : "not ready", f, 2);
}

/* Runs before every handler (user: the worker_shared): the bearer token,
 * then the memory manager's admission (expensive RPCs over the limit get
 * RESOURCE_EXHAUSTED with a retry delay), then names the RPC on the worker's
 * connection for the slow-query log. */
static status store_interceptor(rpc_call *call, void *user)
{
    worker_shared *shared = user;
    const char *who = NULL;
    status st = auth_check(api_auth, call, &who); /* sets the call's status on failure */
    rpc_call_set_principal(call, who);            /* the token's name (NULL: none) */
    if (st != ST_OK)
        return st;
    st = memwatch_intercept(shared->mem, call); /* sets the call's status on refusal */
    if (st != ST_OK)
        return st;
    worker *w = rpc_call_worker(call);
    if (w != NULL && w->db != NULL)
        db_set_method(w->db, rpc_call_path(call));
    return ST_OK;
}

static void fill_options(rpc_options *o, const config *cfg, worker_shared *shared, const char *cert,
                         const char *key, const char *ca)
{
    rpc_options_init(o);
    o->listen_addr = cfg->listen;
    o->workers = cfg->workers;
    o->max_recv_bytes = (size_t)cfg->max_recv_bytes;
    o->call_arena_bytes = (size_t)cfg->call_arena_bytes;
    o->default_deadline_ms = cfg->default_deadline_ms;
    o->tls_cert_pem = cert;
    o->tls_key_pem = key;
    o->tls_client_ca_pem = ca;
    o->tls_require_client_cert = ca != NULL;
    o->descriptors = descset_api();
    o->worker_init = worker_rpc_init;
    o->worker_fini = worker_rpc_fini;
    o->interceptor = store_interceptor;
    o->user = shared;
    o->access_log = true;
}

/* The plaintext health-only listener (health_listen): one priority thread,
 * no TLS, so probes work when the main port requires client certificates. */
static rpc_server *start_health_server(const config *cfg, health *h)
{
    rpc_options o;
    char *err = NULL;
    rpc_server *s = NULL;

    rpc_options_init(&o);
    o.listen_addr = cfg->health_listen;
    o.workers = 1;
    o.descriptors = descset_api();
    o.access_log = true;
    s = rpc_server_new(&o, &err);
    if (s == NULL)
        goto fail;
    if (rpc_server_add_service(s, health_service(h), RPC_POOL_PRIORITY, &err) != ST_OK)
        goto fail;
    if (rpc_server_start(s, &err) != ST_OK)
        goto fail;
    char *addr = bound_addr(cfg->health_listen, rpc_server_port(s));
    char port[16];
    (void)snprintf(port, sizeof port, "%d", rpc_server_port(s));
    log_field f[] = { LOG_S("addr", addr), LOG_RAW("port", port) };
    log_event(LOG_INFO, "health listener up", f, 2);
    free(addr);
    return s;
fail:
    startup_error("health_listen %s: %s", cfg->health_listen, err != NULL ? err : "failed");
    free(err);
    rpc_server_free(s);
    return NULL;
}

/* ---- process-wide services (start order; serve() stops them in reverse) ----
 *   1. the memory manager           memwatch.h  (before the server: the interceptor reads it)
 *   2. outbound HTTP and the LLM    http.h, llm.h
 *   3. the status figures           ops_status.h (GetStatus, GetSloReport)
 *   4. the admin HTTP listener      metrics.h   (after rpc_server_start)
 *   5. ContentService's threads     pregen.h
 *   6. background jobs              jobs.h      (once the schema is verified) */

/* RSS against memory.limit_mb. NULL (logged) when its thread cannot start. */
/* memwatch_shed_fn: the in-process cache tier is only a copy. */
static void shed_local_cache(memwatch_level level, void *user)
{
    (void)level;
    lcache_clear(user);
}

static memwatch *start_memwatch(const config *cfg, const cache *c)
{
    memwatch_options mo;
    char *err = NULL;

    memwatch_options_init(&mo);
    mo.limit_bytes = (int64_t)cfg->memory_limit_mb << 20;
    mo.soft_pct = cfg->memory_soft_pct;
    mo.sample_ms = cfg->memory_sample_ms;
    memwatch *m = memwatch_new(&mo);
    if (cache_local(c) != NULL)
        memwatch_add_shed(m, shed_local_cache, cache_local(c));
    if (memwatch_start(m, &err) != ST_OK) {
        startup_error("memory manager: %s", err != NULL ? err : "cannot start");
        free(err);
        memwatch_free(m);
        return NULL;
    }
    return m;
}

/* The curl-multi client and the LLM provider over it. false (logged) when
 * the http thread cannot start. The LLM client exists even without llm.url
 * (llm_configured() is then false). */
static bool start_outbound(const config *cfg, http_client **http, llm_client **llm)
{
    char *err = NULL;
    *http = http_client_new(&err);
    if (*http == NULL) {
        startup_error("cannot start the http client: %s", err != NULL ? err : "failed");
        free(err);
        return false;
    }
    llm_config lc;
    llm_config_from(&lc, cfg);
    *llm = llm_new(&lc, *http);
    if (llm_configured(*llm)) {
        log_field f[] = { LOG_S("model", llm_model(*llm)) };
        log_event(LOG_INFO, "LLM provider configured", f, 1);
    } else {
        log_info("llm.url is empty: drafts come from the built-in generator");
    }
    return true;
}

/* /metrics, /healthz and /readyz on admin_listen. NULL (logged) when it
 * cannot bind. */
static metrics *start_admin(const config *cfg, rpc_server *srv, health *h,
                            const worker_shared *shared)
{
    metrics_options mo;
    char *err = NULL;

    metrics_options_init(&mo);
    mo.listen_addr = cfg->admin_listen;
    mo.rpc = srv;
    mo.health = h;
    mo.mem = shared->mem;
    mo.db = shared->have_db;
    mo.cache = shared->cache;
    mo.http = shared->http;
    mo.version = HERALD_VERSION;
    mo.commit = HERALD_COMMIT;
    metrics *m = metrics_new(&mo);
    if (metrics_start(m, &err) != ST_OK) {
        startup_error("admin_listen %s: %s", cfg->admin_listen, err != NULL ? err : "failed");
        free(err);
        metrics_free(m);
        return NULL;
    }
    char *addr = bound_addr(cfg->admin_listen, metrics_port(m));
    char port[16];
    (void)snprintf(port, sizeof port, "%d", metrics_port(m));
    log_field f[] = { LOG_S("addr", addr), LOG_RAW("port", port) };
    log_event(LOG_INFO, "admin listener up", f, 2);
    free(addr);
    return m;
}

/* ---- background jobs ---- */

enum {
    IDEM_PRUNE_INTERVAL_MS = 10 * 60 * 1000,
    IDEM_PRUNE_LOCK_MS = 60 * 1000,
    IDEM_PRUNE_BATCH = 1000,
    /* Keys stay replayable for at least 24 h (conventions §5); the extra
     * hour absorbs clock differences between replicas. */
    IDEM_RETENTION_S = DB_IDEM_RETENTION_MIN_S + 3600,
};

/* job_fn: deletes expired idempotency keys, a batch per transaction, until
 * none is left or the budget is spent. */
static status job_idem_prune(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    (void)user;
    int64_t until = now_mono_ms() + budget_ms, total = 0, deleted = 0;
    status st = ST_OK;
    do {
        int64_t left = until - now_mono_ms();
        if (left <= 0)
            break;
        st = db_idem_prune(db, left, IDEM_RETENTION_S, IDEM_PRUNE_BATCH, &deleted);
        if (st == ST_OK)
            total += deleted;
    } while (st == ST_OK && deleted == IDEM_PRUNE_BATCH);
    if (st != ST_OK)
        (void)snprintf(note, cap, "pruned %lld keys, then: %s", (long long)total, db_errmsg(db));
    else if (total > 0)
        (void)snprintf(note, cap, "pruned %lld keys", (long long)total);
    return st;
}

/* jobs_result_fn, on the runner's thread only (so the table below needs no
 * lock): a run that did something at info, a routine one at debug, a
 * failure at warn; a job that cannot even be claimed (database away) is
 * logged once per distinct reason. */
static void job_result(const char *name, bool ran, status st, const char *note, double ms,
                       void *user)
{
    enum { SEEN = 16 };
    static struct {
        char name[65];
        char err[200];
    } seen[SEEN];
    worker_shared *shared = user;
    size_t i = 0;
    while (i < SEEN && seen[i].name[0] != '\0' && strcmp(seen[i].name, name) != 0)
        i++;
    if (i < SEEN && seen[i].name[0] == '\0')
        (void)snprintf(seen[i].name, sizeof seen[i].name, "%s", name);

    if (!ran && st == ST_OK)
        return; /* another replica had it */
    if (!ran) {
        if (i < SEEN && strcmp(seen[i].err, note != NULL ? note : "") == 0)
            return;
        if (i < SEEN)
            (void)snprintf(seen[i].err, sizeof seen[i].err, "%s", note != NULL ? note : "");
        log_field f[] = { LOG_S("job", name), LOG_S("status", status_name(st)),
                          LOG_S("error", note != NULL ? note : "") };
        /* quiet while the schema is not there yet: readiness says so already */
        log_event(worker_schema_get(shared) == WORKER_SCHEMA_OK ? LOG_WARN : LOG_DEBUG,
                  "background job not claimed", f, 3);
        return;
    }
    if (i < SEEN)
        seen[i].err[0] = '\0';
    bool routine = st == ST_OK && (note == NULL || note[0] == '\0' || strncmp(note, "0 ", 2) == 0 ||
                                   strncmp(note, "skipped", 7) == 0);
    char ms_s[32];
    (void)snprintf(ms_s, sizeof ms_s, "%.1f", ms);
    log_field f[] = { LOG_S("job", name), LOG_S("status", status_name(st)),
                      LOG_S("note", note != NULL ? note : ""), LOG_RAW("ms", ms_s) };
    log_event(st != ST_OK ? LOG_WARN : routine ? LOG_DEBUG : LOG_INFO, "background job ran", f, 4);
}

/* The one runner (its own thread and connection); NULL without a database. */
static jobs *new_jobs(worker_shared *shared)
{
    if (!shared->have_db)
        return NULL;
    char host[128] = "heraldd";
    (void)gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char *owner = xasprintf("%s:%ld", host, (long)getpid());
    jobs_options jo = {
        .db = &shared->dbo, .owner = owner, .on_result = job_result, .user = shared
    };
    jobs *j = jobs_new(&jo);
    free(owner);
    return j;
}

/* THE place where background jobs are registered (before jobs_start). A
 * module with a job adds a line here (its jobs_add or *_jobs_add):
 *   - idempotency-key pruning (here);
 *   - learning's outcome checkpoints (outcomes.h);
 *   - ContentService's pre-generation: pregen_start(.jobs = j) adds it.
 * The built-in publisher and its lease sweep run on their own thread
 * (start_publisher), not as jobs. */
static void register_jobs(jobs *j, const config *cfg)
{
    if (j == NULL)
        return;
    jobs_add(j, "idempotency_prune", IDEM_PRUNE_INTERVAL_MS, IDEM_PRUNE_LOCK_MS, job_idem_prune,
             NULL);
    outcomes_jobs_add(j, cfg);
}

/* ---- the built-in publisher ---- */

static bool publisher_ready(void *user)
{
    return worker_schema_get(user) == WORKER_SCHEMA_OK;
}

/* heraldd's own publishing (WEBHOOK and X_API_V2 targets) and the lease
 * sweep: one thread with its own connection (publisher.h), idle until the
 * schema is verified. NULL (logged) when the thread cannot start. */
static publisher *start_publisher(worker_shared *shared, http_client *http)
{
    char host[128] = "heraldd";
    char *err = NULL;
    (void)gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char *id = xasprintf("heraldd-publisher:%.80s:%ld", host, (long)getpid());
    publisher_options po;
    publisher_options_init(&po);
    po.db = &shared->dbo;
    po.http = http;
    po.executor_id = id;
    po.ready = publisher_ready;
    po.user = shared;
    publisher *p = publisher_start(&po, &err);
    free(id);
    if (p == NULL)
        startup_error("%s", err != NULL ? err : "cannot start the publisher");
    free(err);
    return p;
}

/* ---- serve ---- */

static int serve(const config *cfg, const config_cli *cli, sigset_t *sigs)
{
    int rc = EXIT_STARTUP;
    char *err = NULL;
    char *cert = NULL, *key = NULL, *ca = NULL, *addr = NULL;
    health *h = NULL;
    reflection *refl = NULL;
    rpc_server *srv = NULL, *hsrv = NULL;
    pthread_t sig_thread;
    bool sig_started = false;
    ProtobufCService *svcs[8];
    size_t n_svcs = herald_services(svcs, 8);
    worker_shared shared = { .cfg = cfg, .live_mu = PTHREAD_MUTEX_INITIALIZER };
    store_state ss = { .shared = &shared, .svcs = svcs, .n_svcs = n_svcs };
    db_pinger *pinger = NULL;
    memwatch *mem = NULL;
    http_client *http = NULL;
    llm_client *llm = NULL;
    ops_status *ops = NULL;
    metrics *met = NULL;
    jobs *bg = NULL;
    publisher *pub = NULL;
    vercache *vc = NULL;

    atomic_store(&log_level, cfg->log_level);
    atomic_store(&log_format_, cfg->log_format);
    char pid[24];
    (void)snprintf(pid, sizeof pid, "%ld", (long)getpid());
    log_field start_f[] = { LOG_S("version", HERALD_VERSION), LOG_S("commit", HERALD_COMMIT),
                            LOG_RAW("pid", pid) };
    log_event(LOG_INFO, "heraldd starting", start_f, 3);
    config_log(cfg);
    db_slow_threshold_set_ms(cfg->db_slow_query_ms);

    life.boot_cfg = cfg;
    life.shared = &shared; /* serve() outlives the signal thread (joined below) */
    if (pthread_create(&sig_thread, NULL, signal_main, sigs) != 0) {
        startup_error("cannot start the signal thread");
        return EXIT_STARTUP;
    }
    sig_started = true;

    if (cfg->tls_cert[0] != '\0') {
        cert = read_pem("tls.cert", cfg->tls_cert);
        key = read_pem("tls.key", cfg->tls_key);
        if (cfg->tls_client_ca[0] != '\0')
            ca = read_pem("tls.client_ca", cfg->tls_client_ca);
        if (cert == NULL || key == NULL || (cfg->tls_client_ca[0] != '\0' && ca == NULL))
            goto out_threads;
    }

    cache_options co;
    cache_options_init(&co);
    co.url = cfg->redis_url;
    co.local_bytes = (size_t)cfg->cache_local_bytes;
    shared.cache = cache_new(&co, &err);
    if (shared.cache == NULL) {
        startup_error("bad redis_url: %s", err);
        rc = CONFIG_EX_CONFIG;
        goto out_threads;
    }
    db_options_init(&shared.dbo);
    shared.dbo.conninfo = cfg->database_url;
    shared.dbo.prepared_statements = cfg->db_prepared_statements;
    shared.have_db = cfg->database_url[0] != '\0';
    atomic_store(&shared.schema, shared.have_db ? WORKER_SCHEMA_PENDING : WORKER_SCHEMA_NO_DB);

    rpc_global_init();
    (void)descset_api(); /* parse the embedded set now: a broken build fails here */
    api_auth =
        auth_new(descset_api(), cfg->auth_tokens, (auth_reflection)cfg->auth_reflection, &err);
    if (api_auth == NULL) {
        startup_error("auth.tokens: %s", err);
        rc = CONFIG_EX_CONFIG;
        goto out;
    }
    if (auth_enabled(api_auth)) {
        char n[24];
        (void)snprintf(n, sizeof n, "%zu", auth_token_count(api_auth));
        log_field af[] = { LOG_RAW("tokens", n),
                           LOG_S("reflection", cfg->auth_reflection ? "token" : "open") };
        log_event(LOG_INFO, "auth on: bearer tokens required", af, 2);
    } else {
        log_warn("auth off: no auth.tokens configured, every caller is trusted (set "
                 "HERALD_TOKENS or HERALD_TOKENS_FILE)");
    }

    h = health_new();
    ss.h = h;
    health_set(h, "", HEALTH_SERVING);
    health_set(h, "liveness", HEALTH_SERVING);
    health_set(h, "readiness", HEALTH_NOT_SERVING); /* until the database says otherwise */

    /* What the interceptor and the handlers reach through worker_shared. */
    if ((mem = start_memwatch(cfg, shared.cache)) == NULL)
        goto out;
    shared.mem = mem;
    if (!start_outbound(cfg, &http, &llm))
        goto out;
    shared.http = http;
    shared.llm = llm;
    bg = new_jobs(&shared);
    ss.jobs = bg;
    register_jobs(bg, cfg);

    rpc_options o;
    fill_options(&o, cfg, &shared, cert, key, ca);
    srv = rpc_server_new(&o, &err);
    if (srv == NULL) {
        startup_error("cannot create the server: %s", err);
        goto out;
    }
    ops_status_options oo;
    ops_status_options_init(&oo);
    oo.rpc = srv;
    oo.mem = mem;
    oo.cache = shared.cache;
    oo.http = http;
    oo.llm = llm;
    oo.publisher = shared.have_db; /* start_publisher below, with a database */
    oo.shared = &shared;
    oo.workers = cfg->workers;
    oo.version = HERALD_VERSION;
    oo.commit = HERALD_COMMIT;
    ops = ops_status_new(&oo);
    ss.ops = ops;
    shared.ops = ops_status_view(ops);

    if (rpc_server_add_service(srv, health_service(h), RPC_POOL_PRIORITY, &err) != ST_OK) {
        startup_error("cannot add grpc.health.v1.Health: %s", err);
        goto out;
    }
    if (cfg->reflection) {
        refl = reflection_new(descset_api());
        if (reflection_register(refl, srv, &err) != ST_OK) {
            startup_error("cannot add reflection: %s", err);
            goto out;
        }
    }
    for (size_t i = 0; i < n_svcs; i++) {
        if (rpc_server_add_service(srv, svcs[i], RPC_POOL_WORKERS, &err) != ST_OK) {
            startup_error("cannot add %s: %s", svcs[i]->descriptor->name, err);
            goto out;
        }
        health_set(h, svcs[i]->descriptor->name, HEALTH_NOT_SERVING);
    }
    if (rpc_server_start(srv, &err) != ST_OK) {
        startup_error("start-up failed: %s", err);
        goto out;
    }
    if (cfg->health_listen[0] != '\0' && (hsrv = start_health_server(cfg, h)) == NULL)
        goto out;

    pthread_mutex_lock(&life.mu);
    life.servers[0] = srv;
    life.servers[1] = hsrv;
    pthread_mutex_unlock(&life.mu);

    int port = rpc_server_port(srv);
    addr = bound_addr(cfg->listen, port);
    if (cli->port_file != NULL && !write_port_file(cli->port_file, port))
        goto out;
    char port_s[16], workers_s[16];
    (void)snprintf(port_s, sizeof port_s, "%d", port);
    (void)snprintf(workers_s, sizeof workers_s, "%d", cfg->workers);
    log_field lf[] = { LOG_S("addr", addr), LOG_RAW("port", port_s), LOG_RAW("workers", workers_s),
                       LOG_S("tls", cert != NULL ? (ca != NULL ? "mtls" : "tls") : "off") };
    log_event(LOG_INFO, "listening", lf, 4);

    if (cfg->admin_listen[0] != '\0' && (met = start_admin(cfg, srv, h, &shared)) == NULL)
        goto out;
    if (ops_status_start(ops, &err) != ST_OK) {
        startup_error("%s", err);
        goto out;
    }

    /* ContentService's completion threads and pre-generation job (on bg) */
    pregen_options pgo = {
        .cfg = cfg, .dbo = &shared.dbo, .srv = srv, .http = http, .llm = llm, .jobs = bg
    };
    if (pregen_start(&pgo, &err) != ST_OK) {
        startup_error("%s", err);
        goto out;
    }

    /* The store, once probes can reach us: migrations, then readiness. */
    if (!shared.have_db) {
        log_warn("database_url is empty: readiness stays NOT_SERVING and calls that need the "
                 "store answer UNAVAILABLE (set DATABASE_URL)");
    } else {
        char why[512] = "";
        if (cfg->migrate_on_start)
            (void)store_migrate(&ss, 120000, why, sizeof why);
        else
            log_info("migrate_on_start is off: serving once the schema is at version %lld",
                     (long long)migrate_expected_version());
        if (cfg->cache_version_listen) {
            /* before the first cached read: until it has subscribed, every
             * read asks PostgreSQL */
            vc = vercache_new(VERSION_MAP_CAP);
            if (!vercache_listen_start(vc, &shared.dbo, cfg->cache_version_stale_ms, &err)) {
                startup_error("%s", err);
                goto out;
            }
            vercache_process_set(vc);
        }
        if (worker_schema_get(&shared) == WORKER_SCHEMA_OK)
            store_start_jobs(&ss); /* else the pinger starts them once it verifies the schema */
        db_pinger_options po;
        db_pinger_options_init(&po);
        po.probe = store_probe;
        po.on_change = store_ready_changed;
        po.user = &ss;
        pinger = db_pinger_start(&shared.dbo, &po, &err);
        if (pinger == NULL) {
            startup_error("%s", err);
            goto out;
        }
        if (met != NULL)
            metrics_set_pinger(met, pinger);
    }

    if (shared.have_db && (pub = start_publisher(&shared, http)) == NULL)
        goto out;

    /* Serve until SIGTERM/SIGINT. */
    pthread_mutex_lock(&life.mu);
    while (life.stop_signo == 0)
        pthread_cond_wait(&life.cond, &life.mu);
    pthread_mutex_unlock(&life.mu);

    /* Drain, conventions §9. */
    int64_t t0 = now_mono_ms();
    health_begin_shutdown(h);
    sleep_unless_forced(cfg->shutdown_delay_ms);
    health_finish_watchers(h);
    rpc_server_shutdown(srv, forced_signal() ? 0 : cfg->shutdown_grace_ms);
    if (hsrv != NULL)
        rpc_server_shutdown(hsrv, 0);
    if (met != NULL)
        metrics_set_pinger(met, NULL); /* before the pinger goes */
    db_pinger_stop(pinger);
    pinger = NULL;
    char ms[24];
    (void)snprintf(ms, sizeof ms, "%lld", (long long)(now_mono_ms() - t0));
    log_field sf[] = { LOG_RAW("drain_ms", ms) };
    log_event(LOG_INFO, "stopped", sf, 1);
    rc = 0;

out:
    if (rc != 0 && h != NULL) {
        /* A failure after start: a Watch may already be open, and health_free
         * wants every one finished. */
        health_begin_shutdown(h);
        health_finish_watchers(h);
    }
    pthread_mutex_lock(&life.mu);
    life.servers[0] = NULL;
    life.servers[1] = NULL;
    pthread_mutex_unlock(&life.mu);
    /* The reverse of the start order. Calls first: nothing new reaches the
     * services below once the server has stopped (a no-op after the drain). */
    rpc_server_shutdown(srv, 0);
    rpc_server_shutdown(hsrv, 0);
    metrics_free(met);      /* reads the server, memory, db, cache and http figures */
    db_pinger_stop(pinger); /* before health_free (it calls health_set) and jobs_free (it
                             * starts the jobs) */
    jobs_free(bg);          /* waits for a running job */
    /* lets its transfers finish (then cancels them) and reports them;
     * before http_client_free */
    publisher_stop(pub, forced_signal() ? 0 : cfg->shutdown_grace_ms);
    ops_status_free(ops);
    llm_free(llm); /* cancels LLM calls; their callbacks hand them to pregen */
    pregen_stop(); /* finishes those; before rpc_server_free (detached calls) */
    http_client_free(http);
    rpc_server_free(hsrv);
    rpc_server_free(srv);       /* joins the workers: their connections close */
    vercache_process_set(NULL); /* the workers and /metrics are gone: nobody reads it */
    vercache_free(vc);          /* stops the listener */
    vc = NULL;
    memwatch_free(mem); /* after the server: the interceptor reads it */
    reflection_free(refl);
    health_free(h);
    rpc_global_fini();
    descset_api_release();
out_threads:
    cache_free(shared.cache);
    if (sig_started) {
        pthread_mutex_lock(&life.mu);
        life.quit = true;
        pthread_cond_broadcast(&life.cond);
        pthread_mutex_unlock(&life.mu);
        pthread_kill(sig_thread, SIGUSR1);
        pthread_join(sig_thread, NULL);
    }
    life.shared = NULL;
    auth_free(api_auth); /* the signal thread, which reloads it, is gone */
    api_auth = NULL;
    int forced = forced_signal();
    if (forced != 0)
        rc = 128 + forced;
    free(addr);
    free(ca);
    free(key);
    free(cert);
    free(err);
    return rc;
}

/* ---- migrate ---- */

/* A decimal integer, optionally negative, that fits in int64_t. */
static bool parse_int_arg(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0)
        return false;
    *out = v;
    return true;
}

/* heraldd migrate up | down N | version | force V. N >= 1; V >= -1 (-1 =
 * no migration applied). Prints what it did on stdout; errors on stderr. */
static int migrate(const config *cfg, int argc, const char *const argv[])
{
    int64_t n = 0;
    const char *verb = argc > 0 ? argv[0] : "";
    bool ok = (argc == 1 && (strcmp(verb, "up") == 0 || strcmp(verb, "version") == 0)) ||
              (argc == 2 && strcmp(verb, "down") == 0 && parse_int_arg(argv[1], &n) && n >= 1 &&
               n <= INT32_MAX) ||
              (argc == 2 && strcmp(verb, "force") == 0 && parse_int_arg(argv[1], &n) && n >= -1);
    if (!ok) {
        (void)fprintf(stderr, "heraldd: usage: heraldd migrate up | down N | version | force V; "
                              "try 'heraldd --help'\n");
        return CONFIG_EX_USAGE;
    }
    int rc = EXIT_STARTUP;
    char *err = NULL;
    status st;
    if (cfg->database_url[0] == '\0') {
        (void)fprintf(stderr, "heraldd: migrate: database_url is empty (set DATABASE_URL or "
                              "--database-url)\n");
        return CONFIG_EX_CONFIG;
    }
    migrate_options mo;
    migrate_options_init(&mo, cfg->database_url);
    if (strcmp(verb, "up") == 0) {
        int applied = 0;
        int64_t version = -1;
        bool dirty = false;
        st = migrate_up_opts(&mo, &applied, &err);
        if (st == ST_OK)
            st = migrate_version_opts(&mo, &version, &dirty, &err);
        if (st == ST_OK)
            printf("applied %d migration(s); version %lld\n", applied, (long long)version);
    } else if (strcmp(verb, "down") == 0) {
        st = migrate_down_opts(&mo, (int)n, &err);
        if (st == ST_OK)
            printf("reverted %lld migration(s)\n", (long long)n);
    } else if (strcmp(verb, "force") == 0) {
        st = migrate_force_opts(&mo, n, &err);
        if (st == ST_OK)
            printf("forced version %lld\n", (long long)n);
    } else {
        int64_t version = -1;
        bool dirty = false;
        st = migrate_version_opts(&mo, &version, &dirty, &err);
        if (st == ST_OK && version < 0)
            printf("none (expected %lld)\n", (long long)migrate_expected_version());
        else if (st == ST_OK)
            printf("%lld%s (expected %lld)\n", (long long)version, dirty ? " (dirty)" : "",
                   (long long)migrate_expected_version());
    }
    if (st == ST_OK)
        rc = 0;
    else
        (void)fprintf(stderr, "heraldd: migrate %s: %s\n", verb,
                      err != NULL ? err : status_name(st));
    free(err);
    return rc;
}

static void print_version(void)
{
    printf("heraldd %s (commit %s)\ngRPC core %s, protobuf-c %s\n", HERALD_VERSION, HERALD_COMMIT,
           grpc_version_string(), protobuf_c_version());
}

int main(int argc, char **argv)
{
    sigset_t sigs;
    config cfg;
    config_cli cli;
    char *err = NULL;
    int rc;

    /* Before any thread exists (gRPC's included): every thread inherits the
     * mask and only the signal thread ever takes these. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGUSR1); /* main wakes the signal thread with it at exit */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (http_global_init() != ST_OK) { /* libcurl, before any thread exists */
        (void)fprintf(stderr, "heraldd: cannot initialise libcurl\n");
        return 1;
    }
    /* A client vanishing mid-write must not kill the process. */
    (void)signal(SIGPIPE, SIG_IGN);
    /* glibc gives each thread that contends for malloc an arena of its own
     * (up to 8 x CPUs) and keeps what was freed in each: with gRPC's threads
     * and ours that is several MB of RSS that only fragments. One arena per
     * CPU (at least 2) is as many as can contend at once; MALLOC_ARENA_MAX
     * or GLIBC_TUNABLES in the environment still decide when set. */
    if (getenv("MALLOC_ARENA_MAX") == NULL && getenv("GLIBC_TUNABLES") == NULL) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        (void)mallopt(M_ARENA_MAX, ncpu > 2 ? (int)(ncpu < 64 ? ncpu : 64) : 2);
    }

    rc = config_load(&cfg, &cli, argc - 1, argv + 1, environ, &err);
    if (rc != 0) {
        (void)fprintf(stderr, "heraldd: %s\n", err);
        goto out;
    }
    if (cli.help) {
        config_print_help(stdout, "heraldd");
        goto out;
    }
    if (cli.version) {
        print_version();
        goto out;
    }
    const char *cmd = cli.n_args > 0 ? cli.args[0] : "serve";
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0) {
        (void)fprintf(stderr, "heraldd: unknown command '%s'; try 'heraldd --help'\n", cmd);
        rc = CONFIG_EX_USAGE;
        goto out;
    }
    if (strcmp(cmd, "serve") == 0 && cli.n_args > 1) {
        (void)fprintf(stderr,
                      "heraldd: serve takes no arguments (got '%s'); try 'heraldd --help'\n",
                      cli.args[1]);
        rc = CONFIG_EX_USAGE;
        goto out;
    }
    if (cli.print_config) {
        config_print(&cfg, stdout);
        goto out;
    }
    if (strcmp(cmd, "migrate") == 0) {
        /* A one-shot command: let SIGINT/SIGTERM stop it the default way. */
        pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
        rc = migrate(&cfg, cli.n_args - 1, cli.args + 1);
    } else {
        rc = serve(&cfg, &cli, &sigs);
    }
out:
    free(err);
    config_fini(&cfg);
    http_global_fini();
    return rc;
}
