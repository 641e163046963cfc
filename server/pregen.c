/* pregen.c - drafting, completion threads and the pre-generation job (see
 * pregen.h). */
#include "pregen.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "generator.h"
#include "http.h"
#include "log.h"
#include "profiles.h"
#include "rpc.h"
#include "util.h"

/* ================================================================ completion threads */

typedef struct task {
    pregen_fn fn;
    void *arg;
    struct task *next;
} task;

static struct {
    pthread_mutex_t mu; /* protects every field below but the atomics */
    pthread_cond_t cv;  /* a task was queued, or stopping */
    task *head, *tail;
    int queued;
    int running;
    bool started;
    bool stopping;
    pthread_t th[PREGEN_THREADS];
    int n_th;
    db_options dbo;
    char *conninfo;
    bool (*busy)(void *user);
    void *busy_user;
    http_client *http; /* main's thread only */
    llm_client *llm;
    jobs *jobs;
    bool own_http, own_llm, own_jobs; /* made here (not borrowed from pregen_options) */
} pg = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static _Atomic(llm_client *) pg_llm;
static atomic_bool pg_live; /* started and not stopping: busy probe allowed */

static void *thread_main(void *unused)
{
    (void)unused;
    db_options o;
    pthread_mutex_lock(&pg.mu);
    o = pg.dbo;
    pthread_mutex_unlock(&pg.mu);
    o.application_name = "heraldd-content";
    db_conn *db = db_open(&o); /* lazy: connects on first use */

    pthread_mutex_lock(&pg.mu);
    for (;;) {
        while (pg.head == NULL && !pg.stopping)
            pthread_cond_wait(&pg.cv, &pg.mu);
        if (pg.head == NULL)
            break; /* stopping and drained */
        task *t = pg.head;
        pg.head = t->next;
        if (pg.head == NULL)
            pg.tail = NULL;
        pg.queued--;
        pg.running++;
        pthread_mutex_unlock(&pg.mu);
        t->fn(db, t->arg);
        free(t);
        pthread_mutex_lock(&pg.mu);
        pg.running--;
    }
    pthread_mutex_unlock(&pg.mu);
    db_close(db);
    return NULL;
}

static bool server_busy(void *user)
{
    return rpc_server_busy_workers(user) > 0;
}

/* jobs_result_fn: one line per run that did something or failed. */
static void job_logged(const char *name, bool ran, status st, const char *note, double ms,
                       void *user)
{
    (void)user;
    if (!ran || (st == ST_OK && (note == NULL || strncmp(note, "0 draft", 7) == 0 ||
                                 strncmp(note, "skipped", 7) == 0)))
        return;
    char ms_s[32];
    (void)snprintf(ms_s, sizeof ms_s, "%.1f", ms);
    log_field f[] = { LOG_S("job", name), LOG_S("status", status_name(st)),
                      LOG_S("note", note != NULL ? note : ""), LOG_RAW("ms", ms_s) };
    log_event(st == ST_OK ? LOG_INFO : LOG_WARN, "background job ran", f, 4);
}

status pregen_start(const pregen_options *o, char **err)
{
    *err = NULL;
    pthread_mutex_lock(&pg.mu);
    if (pg.started) {
        pthread_mutex_unlock(&pg.mu);
        return ST_OK;
    }
    db_options_init(&pg.dbo);
    if (o->dbo != NULL)
        pg.dbo = *o->dbo;
    pg.conninfo = pg.dbo.conninfo != NULL ? xstrdup(pg.dbo.conninfo) : NULL;
    pg.dbo.conninfo = pg.conninfo;
    pg.busy = o->srv != NULL ? server_busy : NULL;
    pg.busy_user = o->srv;
    pg.stopping = false;
    pg.started = true;
    pthread_mutex_unlock(&pg.mu);

    pg.own_http = pg.own_llm = pg.own_jobs = false;
    if (o->llm != NULL) {
        pg.llm = o->llm;
    } else if (o->cfg != NULL && o->cfg->llm_url[0] != '\0') {
        char *herr = NULL;
        pg.http = o->http != NULL ? o->http : http_client_new(&herr);
        pg.own_http = o->http == NULL;
        pg.own_llm = pg.http != NULL;
        if (pg.http == NULL) {
            log_field f[] = { LOG_S("error", herr != NULL ? herr : "") };
            log_event(LOG_ERROR, "cannot start the http client: the LLM provider is off", f, 1);
            free(herr);
        } else {
            llm_config lc;
            llm_config_from(&lc, o->cfg);
            pg.llm = llm_new(&lc, pg.http);
            log_field f[] = { LOG_S("model", llm_model(pg.llm)) };
            log_event(LOG_INFO, "LLM provider configured", f, 1);
        }
    }
    atomic_store(&pg_llm, pg.llm != NULL && llm_configured(pg.llm) ? pg.llm : NULL);

    for (int i = 0; i < PREGEN_THREADS; i++) {
        if (pthread_create(&pg.th[i], NULL, thread_main, NULL) != 0) {
            *err = xstrdup("cannot start the content completion threads");
            pregen_stop();
            return ST_INTERNAL;
        }
        pg.n_th++;
    }
    if (o->jobs != NULL) {
        pregen_add_job(o->jobs);
    } else if (pg.conninfo != NULL && pg.conninfo[0] != '\0') {
        pg.own_jobs = true;
        char host[128] = "heraldd";
        (void)gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char *owner = xasprintf("%s:%ld", host, (long)getpid());
        jobs_options jo = { .db = &pg.dbo, .owner = owner, .on_result = job_logged };
        pg.jobs = jobs_new(&jo);
        free(owner);
        pregen_add_job(pg.jobs);
        char *jerr = NULL;
        if (jobs_start(pg.jobs, &jerr) != ST_OK) {
            *err = jerr != NULL ? jerr : xstrdup("cannot start the jobs runner");
            pregen_stop();
            return ST_INTERNAL;
        }
    }
    atomic_store(&pg_live, true);
    return ST_OK;
}

void pregen_stop(void)
{
    atomic_store(&pg_live, false);
    pthread_mutex_lock(&pg.mu);
    bool started = pg.started;
    pthread_mutex_unlock(&pg.mu);
    if (!started)
        return;
    if (pg.own_jobs)
        jobs_free(pg.jobs); /* waits for a running job */
    pg.jobs = NULL;
    atomic_store(&pg_llm, NULL);
    if (pg.own_llm)
        llm_free(pg.llm); /* cancels the LLM calls; their callbacks still submit */
    pg.llm = NULL;
    pthread_mutex_lock(&pg.mu);
    pg.stopping = true;
    pthread_cond_broadcast(&pg.cv);
    pthread_mutex_unlock(&pg.mu);
    for (int i = 0; i < pg.n_th; i++)
        pthread_join(pg.th[i], NULL);
    if (pg.own_http)
        http_client_free(pg.http);
    pg.http = NULL;
    pthread_mutex_lock(&pg.mu);
    pg.n_th = 0;
    pg.started = false;
    free(pg.conninfo);
    pg.conninfo = NULL;
    pthread_mutex_unlock(&pg.mu);
    content_store_reset();
}

llm_client *pregen_llm(void)
{
    return atomic_load(&pg_llm);
}

status pregen_submit(pregen_fn fn, void *arg)
{
    task *t = xcalloc(1, sizeof *t);
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&pg.mu);
    if (!pg.started || pg.stopping || pg.n_th == 0) {
        pthread_mutex_unlock(&pg.mu);
        free(t);
        return ST_UNAVAILABLE;
    }
    if (pg.tail != NULL)
        pg.tail->next = t;
    else
        pg.head = t;
    pg.tail = t;
    pg.queued++;
    pthread_cond_signal(&pg.cv);
    pthread_mutex_unlock(&pg.mu);
    return ST_OK;
}

int pregen_pending(void)
{
    pthread_mutex_lock(&pg.mu);
    int n = pg.queued + pg.running;
    pthread_mutex_unlock(&pg.mu);
    return n;
}

bool pregen_busy(void)
{
    if (!atomic_load(&pg_live))
        return false;
    pthread_mutex_lock(&pg.mu);
    bool (*fn)(void *) = pg.busy;
    void *user = pg.busy_user;
    bool queued = pg.queued + pg.running > 0;
    pthread_mutex_unlock(&pg.mu);
    if (queued)
        return true;
    llm_client *llm = pregen_llm();
    if (llm != NULL && llm_jobs_in_flight(llm) > 0)
        return true;
    return fn != NULL && fn(user);
}

/* ================================================================ drafting */

void pregen_text_fini(pregen_text *t)
{
    if (t == NULL)
        return;
    free(t->text);
    t->text = NULL;
    t->len = 0;
}

const char *pregen_initial_state(const Herald__V1__Profile *profile)
{
    return profile->auto_approve ? "approved" : "draft";
}

status pregen_compose_builtin(db_conn *db, int64_t budget_ms, const pregen_draft_in *in,
                              pregen_text *out, char *err, size_t errcap)
{
    const content_plan *plan = in->plan;
    int64_t t0 = now_mono_ms();
    status st = ST_FAILED_PRECONDITION;
    char gerr[200];

    memset(out, 0, sizeof *out);
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    for (int attempt = 0; attempt < PREGEN_SEED_TRIES; attempt++) {
        uint64_t seed = in->seed + (uint64_t)attempt * 0x9e3779b97f4a7c15ULL;
        generator_request gr = {
            .content_type = plan->content_type,
            .voice_style = plan->voice_style,
            .topic = plan->topic,
            .platform = in->platform,
            .seed = seed,
            .fact_key = in->fact_key,
            .recent = in->history,
            .since_ms = now_real_ms() - (int64_t)CONTENT_DUP_WINDOW_DAYS * 86400000,
            .exclude_id = in->exclude_id,
            .max_similarity = CONTENT_DUP_THRESHOLD,
        };
        generator_draft d;
        status gst = generator_compose(in->cat, &gr, &d, gerr, sizeof gerr);
        if (gst != ST_OK) {
            generator_draft_fini(&d);
            if (err != NULL)
                (void)snprintf(err, errcap, "the built-in generator cannot write %s/%s/%s: %s",
                               plan->content_type, plan->voice_style, plan->topic, gerr);
            st = ST_FAILED_PRECONDITION;
            break; /* the arms themselves are the problem: another seed will not help */
        }
        pregen_text_fini(out);
        out->text = d.text;
        out->len = d.len;
        out->seed = seed;
        d.text = NULL;
        generator_draft_fini(&d);
        content_gates_run(in->cat, out->text, out->len, in->platform, plan->content_type,
                          plan->voice_style, plan->topic, in->history, in->exclude_id,
                          CONTENT_DUP_THRESHOLD, CONTENT_DUP_WINDOW_DAYS, &out->gates);
        if (!out->gates.pass) {
            if (err != NULL) {
                char names[400];
                content_gates_failed_names(&out->gates, names, sizeof names);
                (void)snprintf(err, errcap, "built-in text failed %s", names);
            }
            st = ST_FAILED_PRECONDITION;
            continue;
        }
        char hash[CONTENT_HASH_HEX], owner[CONTENT_ID_MAX];
        if (!content_hash_hex(out->text, out->len, hash)) {
            st = ST_INTERNAL;
            break;
        }
        st = content_live_hash_owner(db, budget_ms, in->profile->profile_id, hash, NULL, owner);
        if (st != ST_OK)
            break;
        if (owner[0] != '\0') {
            if (err != NULL)
                (void)snprintf(err, errcap, "the same text is already live as post %s", owner);
            st = ST_FAILED_PRECONDITION;
            continue;
        }
        st = ST_OK;
        break;
    }
    out->duration_ms = now_mono_ms() - t0;
    return st;
}

status pregen_draft_tx(db_conn *db, const pregen_draft_in *in, char id_out[CONTENT_ID_MAX],
                       pregen_text *t, char *err, size_t errcap)
{
    pregen_text local;
    pregen_text *txt = t != NULL ? t : &local;
    id_out[0] = '\0';
    status st = pregen_compose_builtin(db, 0, in, txt, err, errcap);
    if (st == ST_OK) {
        const content_plan *plan = in->plan;
        content_new_post np = {
            .profile_id = in->profile->profile_id,
            .state = pregen_initial_state(in->profile),
            .platform = in->platform,
            .kind = in->kind != NULL ? in->kind : "original",
            .text = txt->text,
            .len = txt->len,
            .content_type = plan->content_type,
            .voice_style = plan->voice_style,
            .topic = plan->topic,
            .provider = "builtin",
            .llm_model = "",
            .seed = txt->seed,
            .decision = plan->automatic ? &plan->decision : NULL,
            .decision_id = plan->decision_id,
            .source_post_id = in->source_post_id,
            .gates = &txt->gates,
            .dup_threshold = CONTENT_DUP_THRESHOLD,
        };
        st = content_post_insert_tx(db, &np, id_out);
        if (st == ST_OK && in->history != NULL)
            (void)textsim_index_add(in->history, id_out, txt->text, txt->len, now_real_ms());
    }
    if (t == NULL)
        pregen_text_fini(&local);
    return st;
}

/* ================================================================ the job */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t pregen_seed(void)
{
    static atomic_uint_fast64_t counter;
    return mix64((uint64_t)now_mono_us() ^ ((uint64_t)now_real_ms() << 20) ^
                 atomic_fetch_add(&counter, 0x632be59bd9b4e019ULL));
}

/* Tops up one claimed profile inside the open transaction. *made gets the
 * drafts stored; *failed those that did not pass. */
static status fill_profile(db_conn *db, arena *a, const char *id, int missing, int *made,
                           int *failed, char *why, size_t whycap)
{
    Herald__V1__Profile *prof = NULL;
    content_catalog *snap = NULL;
    textsim_index *hist = NULL;
    char err[400];

    status st = profile_get_tx(db, a, id, false, &prof);
    if (st == ST_OK)
        st = content_catalog_acquire(db, 0, &snap, err, sizeof err);
    if (st == ST_OK) {
        hist = textsim_index_new();
        st = content_history_load(db, 0, id, CONTENT_DUP_WINDOW_DAYS, hist);
    }
    int want = missing < PREGEN_MAX_PER_RUN ? missing : PREGEN_MAX_PER_RUN;
    for (int i = 0; st == ST_OK && i < want; i++) {
        if (pregen_busy())
            break;
        content_plan plan;
        uint64_t seed = pregen_seed();
        content_plan_req rq = {
            .cat = content_catalog_get(snap),
            .profile = prof,
            .builtin_only = true,
            .now_ms = now_real_ms(),
            .seed = seed,
        };
        status pst = content_plan_choose(db, 0, &rq, &plan, err, sizeof err);
        if (pst == ST_OK) {
            pregen_draft_in in = { .cat = content_catalog_get(snap),
                                   .profile = prof,
                                   .plan = &plan,
                                   .platform = (platform_id)prof->platform,
                                   .seed = seed,
                                   .history = hist };
            char post_id[CONTENT_ID_MAX];
            pst = pregen_draft_tx(db, &in, post_id, NULL, err, sizeof err);
        }
        content_plan_fini(&plan);
        if (pst == ST_OK) {
            (*made)++;
        } else if (pst == ST_FAILED_PRECONDITION || pst == ST_INVALID) {
            (*failed)++;
            (void)snprintf(why, whycap, "%s: %.200s", id, err);
            if (*failed >= 3)
                break; /* this profile cannot be filled now; leave it to a later run */
        } else {
            st = pst; /* the store failed: the transaction is gone */
        }
    }
    textsim_index_free(hist);
    content_catalog_release(snap);
    return st;
}

status pregen_run(db_conn *db, int64_t budget_ms, char *note, size_t cap, void *user)
{
    (void)user;
    int64_t until =
        now_mono_ms() + (budget_ms < PREGEN_RUN_BUDGET_MS ? budget_ms : PREGEN_RUN_BUDGET_MS);
    int made = 0, failed = 0, profiles = 0;
    char why[320] = "";
    status st = ST_OK;
    char **skip = NULL;
    size_t n_skip = 0;
    arena *a = arena_new(0);

    if (pregen_busy()) {
        (void)snprintf(note, cap, "skipped: service busy");
        arena_free(a);
        return ST_OK;
    }
    while (st == ST_OK && now_mono_ms() < until && !pregen_busy()) {
        char id[64];
        int missing = 0;
        bool found = false;
        st = db_begin(db, until - now_mono_ms());
        if (st != ST_OK)
            break;
        st = content_pregen_claim_tx(db, (const char *const *)skip, n_skip, id, &missing, &found);
        if (st != ST_OK || !found) {
            db_rollback(db);
            break;
        }
        skip = xrealloc(skip, (n_skip + 1) * sizeof *skip);
        skip[n_skip++] = xstrdup(id);
        profiles++;
        int m = 0;
        arena_reset(a);
        st = fill_profile(db, a, id, missing, &m, &failed, why, sizeof why);
        if (st == ST_OK)
            st = db_commit(db);
        else
            db_rollback(db);
        if (st == ST_OK)
            made += m;
    }
    if (st == ST_OK)
        (void)snprintf(note, cap, "%d draft(s) for %d profile(s)%s%s%s", made, profiles,
                       failed > 0 ? "; " : "", failed > 0 ? "not filled: " : "", why);
    else
        (void)snprintf(note, cap, "stopped after %d draft(s): %s", made, db_errmsg(db));
    for (size_t i = 0; i < n_skip; i++)
        free(skip[i]);
    free(skip);
    arena_free(a);
    return st;
}

void pregen_add_job(jobs *j)
{
    jobs_add(j, PREGEN_JOB_NAME, PREGEN_INTERVAL_MS, PREGEN_LOCK_MS, pregen_run, NULL);
}
