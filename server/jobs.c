/* jobs.c - periodic background jobs coordinated through PostgreSQL (jobs.h). */
#include "jobs.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

enum { JOBS_MAX = 32, JOBS_NOTE_MAX = 500 };

typedef struct job {
    char *name;
    int64_t interval_ms;
    int64_t lock_ms;
    job_fn fn;
    void *user;
    int64_t next_check_ms; /* local: when to try to claim again (monotonic) */
    bool registered;       /* its row exists (INSERT ... ON CONFLICT done) */
    atomic_bool kicked;
} job;

struct jobs {
    db_options dbo;
    char *conninfo;
    char *owner;
    int tick_ms;
    jobs_result_fn on_result;
    void *user;
    job list[JOBS_MAX];
    size_t n;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* protects stop and wakes the runner through cv */
    pthread_cond_t cv;
    bool stop;
};

jobs *jobs_new(const jobs_options *o)
{
    jobs *j = xcalloc(1, sizeof *j);
    j->dbo = *o->db;
    j->conninfo = o->db->conninfo ? xstrdup(o->db->conninfo) : NULL;
    j->dbo.conninfo = j->conninfo;
    j->dbo.application_name = "heraldd-jobs";
    j->owner = xstrdup(o->owner ? o->owner : "heraldd");
    j->tick_ms = o->tick_ms > 0 ? o->tick_ms : 250;
    j->on_result = o->on_result;
    j->user = o->user;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    return j;
}

void jobs_add(jobs *j, const char *name, int64_t interval_ms, int64_t lock_ms, job_fn fn,
              void *user)
{
    if (j->started || j->n >= JOBS_MAX || !fn || interval_ms < 1000 || interval_ms > 604800000 ||
        lock_ms <= 0)
        abort(); /* a programming error: registration is static */
    job *b = &j->list[j->n++];
    b->name = xstrdup(name);
    b->interval_ms = interval_ms;
    b->lock_ms = lock_ms;
    b->fn = fn;
    b->user = user;
    b->next_check_ms = 0;
    atomic_init(&b->kicked, false);
}

void jobs_kick(jobs *j, const char *name)
{
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->list[i].name, name) == 0)
            atomic_store(&j->list[i].kicked, true);
    pthread_mutex_lock(&j->mu);
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Makes sure the job's row exists; the interval follows this replica's
 * configuration (the last replica to start wins, which is what an operator
 * rolling out a new interval wants). */
static status job_register(db_conn *db, job *b)
{
    db_params p;
    db_params_init(&p);
    db_param_text(&p, b->name);
    db_param_int64(&p, b->interval_ms);
    status st = db_run(db, 2000, "jobs_register",
                       "INSERT INTO background_jobs (name, interval_seconds) "
                       "VALUES ($1, greatest(1, $2 / 1000)) ON CONFLICT (name) DO UPDATE "
                       "SET interval_seconds = EXCLUDED.interval_seconds",
                       &p, NULL);
    if (st == ST_OK)
        b->registered = true;
    return st;
}

/* Claims b when due and unlocked; *won tells whether this replica runs it. */
static status job_claim(jobs *j, db_conn *db, job *b, bool force, bool *won)
{
    db_params p;
    db_res *res = NULL;
    *won = false;
    db_params_init(&p);
    db_param_text(&p, b->name);
    db_param_text(&p, j->owner);
    db_param_int64(&p, b->lock_ms);
    db_param_int64(&p, b->interval_ms);
    db_param_bool(&p, force);
    status st = db_run(db, 2000, "jobs_claim",
                       "UPDATE background_jobs SET lease_owner = $2, "
                       "lease_until = now() + $3 * interval '1 millisecond', "
                       "next_run_at = now() + $4 * interval '1 millisecond', "
                       "last_started_at = now() "
                       "WHERE name = $1 AND (next_run_at <= now() OR $5) "
                       "AND (lease_until IS NULL OR lease_until < now()) RETURNING 1",
                       &p, &res);
    if (st == ST_OK)
        *won = db_res_rows(res) == 1;
    db_res_free(res);
    return st;
}

static void job_release(jobs *j, db_conn *db, job *b, status st, const char *note, double ms)
{
    db_params p;
    db_params_init(&p);
    db_param_text(&p, b->name);
    db_param_text(&p, j->owner);
    db_param_bool(&p, st == ST_OK);
    db_param_text(&p, note);
    (void)ms;
    /* Best effort: if this fails the lock simply expires at lease_until. */
    (void)db_run(db, 2000, "jobs_release",
                 "UPDATE background_jobs SET lease_owner = NULL, lease_until = NULL, "
                 "last_finished_at = now(), "
                 "last_status = CASE WHEN $3 THEN 'ok' ELSE 'error' END, "
                 "last_error = CASE WHEN $3 THEN '' ELSE left($4, 2000) END "
                 "WHERE name = $1 AND lease_owner = $2",
                 &p, NULL);
}

int jobs_run_due(jobs *j, db_conn *db, int64_t now_ms)
{
    int ran = 0;
    for (size_t i = 0; i < j->n; i++) {
        job *b = &j->list[i];
        bool force = atomic_exchange(&b->kicked, false);
        if (!force && now_ms < b->next_check_ms)
            continue;
        /* Whatever happens, look again one interval from now (sooner after a
         * database error, so a job resumes soon after an outage). */
        b->next_check_ms = now_ms + b->interval_ms;
        bool won = false;
        status st = b->registered ? ST_OK : job_register(db, b);
        if (st == ST_OK)
            st = job_claim(j, db, b, force, &won);
        if (st != ST_OK) {
            b->next_check_ms = now_ms + (b->interval_ms < 1000 ? b->interval_ms : 1000);
            if (j->on_result)
                j->on_result(b->name, false, st, db_errmsg(db), 0, j->user);
            continue;
        }
        if (!won) {
            if (j->on_result)
                j->on_result(b->name, false, ST_OK, "", 0, j->user);
            continue;
        }
        char note[JOBS_NOTE_MAX + 1] = "";
        int64_t margin = b->lock_ms / 10 < 100 ? 100 : b->lock_ms / 10;
        int64_t budget = b->lock_ms - margin > 0 ? b->lock_ms - margin : b->lock_ms;
        int64_t t0 = now_mono_us();
        st = b->fn(db, budget, note, sizeof note, b->user);
        double ms = (double)(now_mono_us() - t0) / 1000.0;
        if (db_in_tx(db)) /* a job that forgot to end its transaction */
            db_rollback(db);
        job_release(j, db, b, st, note, ms);
        if (j->on_result)
            j->on_result(b->name, true, st, note, ms, j->user);
        ran++;
    }
    return ran;
}

static void *jobs_thread(void *arg)
{
    jobs *j = arg;
    db_conn *db = db_open(&j->dbo);
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        pthread_mutex_unlock(&j->mu);
        jobs_run_due(j, db, now_mono_ms());
        pthread_mutex_lock(&j->mu);
        if (j->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += j->tick_ms / 1000;
        ts.tv_nsec += (long)(j->tick_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    }
    pthread_mutex_unlock(&j->mu);
    db_close(db);
    return NULL;
}

status jobs_start(jobs *j, char **err)
{
    *err = NULL;
    if (j->started)
        return ST_OK;
    int rc = pthread_create(&j->thread, NULL, jobs_thread, j);
    if (rc != 0) {
        *err = xasprintf("cannot start the jobs thread: %s", strerror(rc));
        return ST_INTERNAL;
    }
    j->started = true;
    return ST_OK;
}

void jobs_free(jobs *j)
{
    if (!j)
        return;
    if (j->started) {
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
    }
    for (size_t i = 0; i < j->n; i++)
        free(j->list[i].name);
    pthread_cond_destroy(&j->cv);
    pthread_mutex_destroy(&j->mu);
    free(j->owner);
    free(j->conninfo);
    free(j);
}
