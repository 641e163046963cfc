/* vercache.c - cache versions in memory, pushed by NOTIFY (see vercache.h).
 *
 * The map is a chained hash table under one mutex: lookups copy two
 * integers out, so the lock is held for a hash and a string compare. A
 * forgotten scope is kept as an entry with tomb_seq != 0 (a "tombstone"),
 * which both reads as a miss and tells a racing merge to stay out.
 *
 * seq numbers every event that can make a read from PostgreSQL outdated
 * before it is merged: forgetting a scope, a notification about a forgotten
 * scope, an eviction, a clear. A token is seq at the read's start. */
#include "vercache.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

enum {
    LISTEN_SLICE_MS = 100, /* longest wait before the stop flag is seen */
    BACKOFF_MIN_MS = 100,  /* after a failed LISTEN */
    BACKOFF_MAX_MS = 2000,
    SCOPE_MAX = 256, /* longer scopes are not cached (cache_versions allows 200) */
};

typedef struct vc_entry {
    struct vc_entry *next;
    uint64_t hash;
    int64_t version;
    int64_t vtime_us;
    uint64_t tomb_seq; /* 0: live; else forgotten at this seq */
    char scope[];
} vc_entry;

struct vercache {
    /* mu protects buckets, n, hand, seq, clear_seq and evict_seq */
    pthread_mutex_t mu;
    vc_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;
    size_t cap;
    size_t hand; /* next bucket the eviction scan looks at */
    uint64_t seq;
    uint64_t clear_seq;
    uint64_t evict_seq;
    atomic_int_fast64_t trusted_until_us; /* monotonic; 0 = not trusted */

    atomic_uint_fast64_t hits, misses, merged, refused, notified, resets, evictions, unechoed;
    atomic_size_t entries;

    /* the listener */
    bool started;
    pthread_t thread;
    atomic_bool stop;
    db_options dbo;
    char *conninfo;
    int64_t stale_ms;
    /* the heartbeat, listener thread only */
    uint64_t beat_id;   /* this process's beats among every replica's */
    uint64_t beat_n;    /* beats sent */
    char beat_want[64]; /* the payload of the beat in flight */
    bool beat_seen;     /* its echo arrived */
};

static _Atomic(vercache *) g_process;

void vercache_process_set(vercache *vc)
{
    atomic_store(&g_process, vc);
}

vercache *vercache_process(void)
{
    return atomic_load(&g_process);
}

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

vercache *vercache_new(size_t cap)
{
    vercache *vc = xcalloc(1, sizeof *vc);
    vc->cap = cap > 0 ? cap : 1;
    vc->nbuckets = 16;
    while (vc->nbuckets < vc->cap)
        vc->nbuckets <<= 1;
    vc->buckets = xcalloc(vc->nbuckets, sizeof *vc->buckets);
    vc->seq = 1; /* tokens are never 0 */
    pthread_mutex_init(&vc->mu, NULL);
    return vc;
}

static void clear_locked(vercache *vc)
{
    for (size_t i = 0; i < vc->nbuckets; i++) {
        vc_entry *e = vc->buckets[i];
        while (e != NULL) {
            vc_entry *next = e->next;
            free(e);
            e = next;
        }
        vc->buckets[i] = NULL;
    }
    vc->n = 0;
    vc->clear_seq = ++vc->seq;
    atomic_store(&vc->entries, 0);
}

void vercache_free(vercache *vc)
{
    if (vc == NULL)
        return;
    vercache_listen_stop(vc);
    clear_locked(vc);
    free(vc->buckets);
    pthread_mutex_destroy(&vc->mu);
    free(vc);
}

static bool trusted_now(const vercache *vc)
{
    int64_t until = atomic_load(&((vercache *)vc)->trusted_until_us);
    return until != 0 && now_mono_us() < until;
}

static vc_entry *find_locked(vercache *vc, const char *scope, uint64_t h)
{
    for (vc_entry *e = vc->buckets[h & (vc->nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && strcmp(e->scope, scope) == 0)
            return e;
    return NULL;
}

/* Drops one entry (the first one the clock hand finds). */
static void evict_one_locked(vercache *vc)
{
    for (size_t k = 0; k < vc->nbuckets; k++) {
        size_t i = (vc->hand + k) & (vc->nbuckets - 1);
        vc_entry *e = vc->buckets[i];
        if (e != NULL) {
            vc->buckets[i] = e->next;
            free(e);
            vc->n--;
            vc->hand = i + 1;
            vc->evict_seq = ++vc->seq;
            atomic_fetch_add(&vc->evictions, 1);
            return;
        }
    }
}

static vc_entry *insert_locked(vercache *vc, const char *scope, uint64_t h)
{
    if (vc->n >= vc->cap)
        evict_one_locked(vc);
    size_t len = strlen(scope);
    vc_entry *e = xcalloc(1, sizeof *e + len + 1);
    memcpy(e->scope, scope, len + 1);
    e->hash = h;
    size_t b = h & (vc->nbuckets - 1);
    e->next = vc->buckets[b];
    vc->buckets[b] = e;
    vc->n++;
    atomic_store(&vc->entries, vc->n);
    return e;
}

static void max_merge(vc_entry *e, int64_t version, int64_t vtime_us)
{
    if (version > e->version || (version == e->version && vtime_us > e->vtime_us)) {
        e->version = version;
        e->vtime_us = vtime_us;
    }
}

static bool scope_ok(const char *scope)
{
    return scope != NULL && scope[0] != '\0' && strlen(scope) < SCOPE_MAX;
}

bool vercache_get(vercache *vc, const char *scope, int64_t *version, int64_t *vtime_us)
{
    if (vc == NULL)
        return false;
    bool hit = false;
    if (scope_ok(scope) && trusted_now(vc)) {
        uint64_t h = hash_of(scope);
        pthread_mutex_lock(&vc->mu);
        const vc_entry *e = find_locked(vc, scope, h);
        if (e != NULL && e->tomb_seq == 0) {
            *version = e->version;
            *vtime_us = e->vtime_us;
            hit = true;
        }
        pthread_mutex_unlock(&vc->mu);
    }
    atomic_fetch_add(hit ? &vc->hits : &vc->misses, 1);
    return hit;
}

uint64_t vercache_token(vercache *vc)
{
    if (vc == NULL || !trusted_now(vc))
        return 0;
    pthread_mutex_lock(&vc->mu);
    uint64_t t = vc->seq;
    pthread_mutex_unlock(&vc->mu);
    return t;
}

void vercache_merge(vercache *vc, const char *scope, int64_t version, int64_t vtime_us,
                    uint64_t token)
{
    if (vc == NULL || !scope_ok(scope))
        return;
    bool ok = false;
    if (token != 0) {
        uint64_t h = hash_of(scope);
        pthread_mutex_lock(&vc->mu);
        if (token >= vc->clear_seq) {
            vc_entry *e = find_locked(vc, scope, h);
            if (e != NULL && e->tomb_seq == 0) {
                max_merge(e, version, vtime_us);
                ok = true;
            } else if (e != NULL ? token >= e->tomb_seq : token >= vc->evict_seq) {
                if (e == NULL)
                    e = insert_locked(vc, scope, h);
                e->version = version;
                e->vtime_us = vtime_us;
                e->tomb_seq = 0;
                ok = true;
            }
        }
        pthread_mutex_unlock(&vc->mu);
    }
    atomic_fetch_add(ok ? &vc->merged : &vc->refused, 1);
}

void vercache_forget(vercache *vc, const char *scope)
{
    if (vc == NULL || !scope_ok(scope))
        return;
    uint64_t h = hash_of(scope);
    pthread_mutex_lock(&vc->mu);
    vc_entry *e = find_locked(vc, scope, h);
    if (e == NULL)
        e = insert_locked(vc, scope, h);
    e->tomb_seq = ++vc->seq;
    pthread_mutex_unlock(&vc->mu);
}

void vercache_forget_all(vercache *vc)
{
    if (vc == NULL)
        return;
    pthread_mutex_lock(&vc->mu);
    clear_locked(vc);
    pthread_mutex_unlock(&vc->mu);
}

void vercache_notified(vercache *vc, const char *scope, int64_t version, int64_t vtime_us)
{
    if (vc == NULL || !scope_ok(scope))
        return;
    uint64_t h = hash_of(scope);
    pthread_mutex_lock(&vc->mu);
    vc_entry *e = find_locked(vc, scope, h);
    if (e == NULL) {
        e = insert_locked(vc, scope, h);
        e->version = version;
        e->vtime_us = vtime_us;
    } else if (e->tomb_seq != 0) {
        /* a read that started before this version committed may be in
         * flight: it must not put its older answer here */
        e->tomb_seq = ++vc->seq;
    } else {
        max_merge(e, version, vtime_us);
    }
    pthread_mutex_unlock(&vc->mu);
    atomic_fetch_add(&vc->notified, 1);
}

static bool parse_i64(const char *s, const char *end, int64_t *out)
{
    if (s == end || end - s > 18) /* no overflow; versions and microseconds fit */
        return false;
    int64_t v = 0;
    bool neg = *s == '-';
    if (neg && ++s == end)
        return false;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return true;
}

bool vercache_apply_payload(vercache *vc, const char *payload)
{
    if (strncmp(payload, "gone ", 5) == 0) {
        if (!scope_ok(payload + 5))
            return false;
        vercache_forget(vc, payload + 5);
        atomic_fetch_add(&vc->notified, 1);
        return true;
    }
    const char *sp1 = strchr(payload, ' ');
    const char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    int64_t version, vtime_us;
    if (sp2 == NULL || !parse_i64(payload, sp1, &version) || !parse_i64(sp1 + 1, sp2, &vtime_us) ||
        !scope_ok(sp2 + 1))
        return false;
    vercache_notified(vc, sp2 + 1, version, vtime_us);
    return true;
}

void vercache_trust_until(vercache *vc, int64_t until_us)
{
    atomic_store(&vc->trusted_until_us, until_us);
}

void vercache_reset(vercache *vc)
{
    atomic_store(&vc->trusted_until_us, 0); /* first: no lookup trusts what follows */
    pthread_mutex_lock(&vc->mu);
    clear_locked(vc);
    pthread_mutex_unlock(&vc->mu);
    atomic_fetch_add(&vc->resets, 1);
}

void vercache_stats_get(vercache *vc, vercache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (vc == NULL)
        return;
    out->hits = atomic_load(&vc->hits);
    out->misses = atomic_load(&vc->misses);
    out->merged = atomic_load(&vc->merged);
    out->refused = atomic_load(&vc->refused);
    out->notified = atomic_load(&vc->notified);
    out->resets = atomic_load(&vc->resets);
    out->unechoed = atomic_load(&vc->unechoed);
    out->evictions = atomic_load(&vc->evictions);
    out->entries = atomic_load(&vc->entries);
    out->trusted = trusted_now(vc);
}

/* ---------------------------------------------------------------- the listener */

static void on_notify(const char *channel, const char *payload, void *user)
{
    vercache *vc = user;
    if (strcmp(channel, VERCACHE_CHANNEL) != 0)
        return;
    if (strncmp(payload, "beat ", 5) == 0) { /* a replica's heartbeat */
        if (strcmp(payload, vc->beat_want) == 0)
            vc->beat_seen = true;
        return;
    }
    (void)vercache_apply_payload(vc, payload);
}

static void drop_notify(const char *channel, const char *payload, void *user)
{
    (void)channel;
    (void)payload;
    (void)user;
}

/* One heartbeat: a NOTIFY sent on sender, then the wait on the listening
 * connection db for its echo until deadline_us. Notifications reach a
 * listener in commit order, so the echo arrives after every notification
 * of a transaction that committed before the beat, and those are merged by
 * then. The beat comes from another session because a session's own
 * NOTIFY comes back to it at commit on whichever server connection ran it:
 * behind a transaction pooler that is often the listening one (the server
 * connection this client used last), so an echo to ourselves would prove
 * nothing while the pooler drops what other sessions notify between our
 * transactions (PgBouncer: "got packet 'A' from server when not linked").
 * Another session's NOTIFY reaches db only through a server connection
 * that stays ours. Returns ST_OK with *echoed (false also when the beat
 * could not be sent), or the listening connection's failure. */
static status beat(vercache *vc, db_conn *db, db_conn *sender, int64_t deadline_us, bool *echoed)
{
    db_params p;
    *echoed = false;
    (void)snprintf(vc->beat_want, sizeof vc->beat_want, "beat %016" PRIx64 "-%" PRIu64, vc->beat_id,
                   ++vc->beat_n);
    vc->beat_seen = false;
    db_params_init(&p);
    db_param_text(&p, VERCACHE_CHANNEL);
    db_param_text(&p, vc->beat_want);
    bool sent = db_run(sender, (deadline_us - now_mono_us()) / 1000, "version_beat",
                       "SELECT pg_notify($1, $2)", &p, NULL) == ST_OK;
    /* behind a pooler the sender may be handed notifications (its own beat
     * among them): they count for nothing and must not pile up in libpq */
    (void)db_notify_wait(sender, 0, drop_notify, NULL);
    status st = ST_OK;
    while (sent && st == ST_OK && !vc->beat_seen) {
        int64_t left_ms = (deadline_us - now_mono_us()) / 1000;
        if (left_ms <= 0 || atomic_load(&vc->stop))
            break;
        st = db_notify_wait(db, (int)(left_ms < LISTEN_SLICE_MS ? left_ms : LISTEN_SLICE_MS),
                            on_notify, vc);
    }
    *echoed = st == ST_OK && vc->beat_seen;
    return st;
}

/* Sleeps up to ms in slices, returning early when asked to stop. */
static void nap(vercache *vc, int64_t ms)
{
    while (ms > 0 && !atomic_load(&vc->stop)) {
        int64_t slice = ms < LISTEN_SLICE_MS ? ms : LISTEN_SLICE_MS;
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)slice * 1000000L };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= slice;
    }
}

static void *listen_main(void *arg)
{
    vercache *vc = arg;
    db_conn *db = db_open(&vc->dbo);
    db_options so = vc->dbo;
    so.application_name = "heraldd-versions-beat";
    db_conn *sender = db_open(&so); /* sends the heartbeats: see beat */
    int64_t beat_ms = vc->stale_ms / 2;
    uint64_t session = 0; /* db_session of the subscription; 0: none */
    int backoff_ms = 0;

    while (!atomic_load(&vc->stop)) {
        if (session == 0 || db_session(db) != session || !db_connected(db)) {
            if (session != 0 || atomic_load(&vc->trusted_until_us) != 0)
                vercache_reset(vc);
            session = 0;
            if (db_listen(db, beat_ms, VERCACHE_CHANNEL) != ST_OK) {
                backoff_ms = backoff_ms ? backoff_ms * 2 : BACKOFF_MIN_MS;
                if (backoff_ms > BACKOFF_MAX_MS)
                    backoff_ms = BACKOFF_MAX_MS;
                nap(vc, backoff_ms);
                continue;
            }
            backoff_ms = 0;
            session = db_session(db);
        }
        /* the heartbeat (see beat): trust until stale_ms after it was sent.
         * No echo with a healthy connection means notifications do not come
         * back to this client (a transaction pooler hands the listening
         * server connection to others): the map then stays untrusted and
         * every lookup reads PostgreSQL, until an echo arrives again. */
        int64_t t0 = now_mono_us();
        bool echoed = false;
        if (beat(vc, db, sender, t0 + beat_ms * 1000, &echoed) != ST_OK ||
            db_session(db) != session) {
            vercache_reset(vc);
            session = 0;
            continue;
        }
        if (echoed) {
            if (!trusted_now(vc)) /* trust had lapsed: what was missed is unknown */
                vercache_reset(vc);
            vercache_trust_until(vc, t0 + vc->stale_ms * 1000);
        } else if (!atomic_load(&vc->stop)) {
            atomic_store(&vc->trusted_until_us, 0);
            atomic_fetch_add(&vc->unechoed, 1);
        }
        int64_t next_us = t0 + beat_ms * 1000;
        for (;;) {
            int64_t left_ms = (next_us - now_mono_us()) / 1000;
            if (left_ms <= 0 || atomic_load(&vc->stop))
                break;
            if (db_notify_wait(db, (int)(left_ms < LISTEN_SLICE_MS ? left_ms : LISTEN_SLICE_MS),
                               on_notify, vc) != ST_OK) {
                vercache_reset(vc);
                session = 0;
                break;
            }
        }
    }
    vercache_reset(vc);
    db_close(sender);
    db_close(db);
    return NULL;
}

bool vercache_listen_start(vercache *vc, const db_options *dbo, int64_t stale_ms, char **err)
{
    *err = NULL;
    if (vc->started) {
        *err = xstrdup("the version listener is already running");
        return false;
    }
    vc->dbo = *dbo;
    vc->conninfo = xstrdup(dbo->conninfo != NULL ? dbo->conninfo : "");
    vc->dbo.conninfo = vc->conninfo;
    vc->dbo.application_name = "heraldd-versions";
    vc->dbo.prepared_statements = false; /* LISTEN and one NOTIFY a beat */
    vc->stale_ms = stale_ms < 200 ? 200 : stale_ms;
    vc->beat_id = hash_of(vc->conninfo) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)now_mono_us() ^
                  (uint64_t)(uintptr_t)vc;
    atomic_store(&vc->stop, false);
    int rc = pthread_create(&vc->thread, NULL, listen_main, vc);
    if (rc != 0) {
        *err = xasprintf("cannot start the version listener: %s", strerror(rc));
        free(vc->conninfo);
        vc->conninfo = NULL;
        return false;
    }
    vc->started = true;
    return true;
}

void vercache_listen_stop(vercache *vc)
{
    if (vc == NULL || !vc->started)
        return;
    atomic_store(&vc->stop, true);
    pthread_join(vc->thread, NULL);
    vc->started = false;
    free(vc->conninfo);
    vc->conninfo = NULL;
}
