/* pg_write_load.c - the PostgreSQL crash checker at the db API level
 * (issue 4 fault tests; conventions §16 T4), ready to be pointed at the
 * profile RPCs once they exist.
 *
 * Starts a private PostgreSQL (tests/services.sh in a temp dir), applies the
 * migrations, then runs writers at about RATE writes/s: each write has a
 * request_id and goes through db_idem_begin -> INSERT -> db_idem_store ->
 * COMMIT with a DEADLINE_MS budget; a failed write is retried with the same
 * request_id (bounded), as a client would. Meanwhile PostgreSQL is killed
 * (pg_ctl -m immediate stop) and restarted CYCLES times. Afterwards:
 *   lost       acknowledged writes missing from the table        (must be 0)
 *   dup        request_ids present more than once                (must be 0)
 *   bad        failures other than UNAVAILABLE/DEADLINE_EXCEEDED/ABORTED
 *   overrun    calls that ended later than deadline + 100 ms
 *   recovery   ms from PostgreSQL accepting to the next acknowledged write
 *              (must be < 5000 each time)
 * and prints one machine-readable line starting with "RESULT".
 *
 *   pg_write_load [--cycles N] [--sync-off]
 * --sync-off is the control: synchronous_commit=off with a lazy WAL writer,
 * where the same checker must find lost writes (exit 0 when it does). Exit 0
 * when the run met its expectation, 1 otherwise, 77 to skip. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "migrate.h"
#include "test_db_support.h"
#include "util.h"

enum { WRITERS = 2, RATE = 150, DEADLINE_MS = 500, MAX_ACKS = 200000, MAX_RETRIES = 400 };

static tpriv g_pg;
static atomic_bool g_stop;
static atomic_int_fast64_t g_last_ack_ms;

typedef struct writer {
    int id;
    char **acked; /* request_ids acknowledged OK */
    int n_acked;
    int calls, fails, bad, overruns, gave_up;
    int64_t worst_overrun_ms;
} writer;

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* One attempt of one write. */
static status write_once(db_conn *db, const char *rid)
{
    db_idem idem;
    status st = db_idem_begin(db, DEADLINE_MS, rid, "/herald.test/Write", rid, strlen(rid), &idem);
    if (st != ST_OK || idem.replay)
        goto out;
    db_params p;
    db_params_init(&p);
    db_param_text(&p, rid);
    st = db_query(db, "load_insert", "INSERT INTO load_writes (rid) VALUES ($1)", &p, NULL);
    if (st == ST_OK)
        st = db_idem_store(db, &idem, 0, "ok", 2);
    if (st == ST_OK)
        st = db_commit(db);
    else
        db_rollback(db);
out:
    db_idem_fini(&idem);
    return st;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    db_conn *db = tdb_open(g_pg.database_url);
    int period_ms = 1000 * WRITERS / RATE;
    for (int seq = 0; !atomic_load(&g_stop) && w->n_acked < MAX_ACKS; seq++) {
        char rid[64];
        snprintf(rid, sizeof rid, "load-%d-%08d-000000000000000000000000", w->id, seq);
        bool ok = false;
        for (int attempt = 0; attempt < MAX_RETRIES && !ok; attempt++) {
            int64_t t0 = now_mono_ms();
            status st = write_once(db, rid);
            int64_t took = now_mono_ms() - t0;
            w->calls++;
            if (took > DEADLINE_MS + 100) {
                w->overruns++;
                if (took - DEADLINE_MS > w->worst_overrun_ms)
                    w->worst_overrun_ms = took - DEADLINE_MS;
            }
            if (st == ST_OK) {
                ok = true;
                break;
            }
            w->fails++;
            if (st != ST_UNAVAILABLE && st != ST_TIMEOUT && st != ST_CONFLICT) {
                w->bad++;
                fprintf(stderr, "writer %d: unexpected %s: %s\n", w->id, status_name(st),
                        db_errmsg(db));
            }
            if (atomic_load(&g_stop) && attempt > 20)
                break;
            sleep_ms(50);
        }
        if (!ok) {
            w->gave_up++;
            continue;
        }
        w->acked[w->n_acked++] = xstrdup(rid);
        atomic_store(&g_last_ack_ms, now_mono_ms());
        sleep_ms(period_ms);
    }
    db_close(db);
    return NULL;
}

int main(int argc, char **argv)
{
    int cycles = 3;
    bool sync_off = false;
    int rc = 1;
    int64_t recovery[16] = { 0 };

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sync-off") == 0)
            sync_off = true;
    }
    if (cycles < 1 || cycles > 16) {
        fprintf(stderr, "usage: %s [--cycles 1..16] [--sync-off]\n", argv[0]);
        return 2;
    }
    if (getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "DATABASE_URL not set (integration environment): skipping\n");
        return TEST_SKIP;
    }
    if (!tpriv_up(&g_pg, sync_off ? "loadoff" : "load")) {
        fprintf(stderr, "cannot start a private PostgreSQL\n");
        tpriv_down(&g_pg);
        return 1;
    }
    char *err = NULL;
    if (migrate_up(g_pg.database_url, &err) != ST_OK) {
        fprintf(stderr, "migrate: %s\n", err);
        goto out;
    }
    db_conn *admin = tdb_open(g_pg.database_url);
    /* no unique constraint: a duplicate must be caught by the checker, not hidden */
    tdb_must(admin, "CREATE TABLE load_writes (seq bigint GENERATED ALWAYS AS IDENTITY,"
                    " rid text NOT NULL)");
    if (sync_off) {
        (void)db_script(admin, "control", "ALTER SYSTEM SET synchronous_commit = off");
        (void)db_script(admin, "control", "ALTER SYSTEM SET wal_writer_delay = '10s'");
        (void)db_script(admin, "control", "SELECT pg_reload_conf()");
    }
    db_close(admin);

    writer w[WRITERS];
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].acked = xcalloc(MAX_ACKS, sizeof(char *));
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
    sleep_ms(2000);
    for (int c = 0; c < cycles; c++) {
        if (tpriv_pg_kill(&g_pg) != 0)
            fprintf(stderr, "pg_ctl stop failed in cycle %d\n", c);
        sleep_ms(1000);
        if (!tpriv_restart(&g_pg)) {
            fprintf(stderr, "restart failed in cycle %d\n", c);
            atomic_store(&g_stop, true);
            break;
        }
        int64_t t_up = now_mono_ms();
        recovery[c] = -1;
        while (now_mono_ms() - t_up < 15000) {
            if (atomic_load(&g_last_ack_ms) >= t_up) {
                recovery[c] = atomic_load(&g_last_ack_ms) - t_up;
                break;
            }
            sleep_ms(10);
        }
        sleep_ms(3000);
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);

    /* check */
    db_conn *db = tdb_open(g_pg.database_url);
    db_res *res = NULL;
    int64_t dup = 0, lost = 0, acked = 0, rows = 0;
    int calls = 0, fails = 0, bad = 0, overruns = 0, gave_up = 0;
    int64_t worst = 0, worst_recovery = 0;
    if (db_run(db, 30000, "check_dup",
               "SELECT count(*) FROM (SELECT rid FROM load_writes GROUP BY rid"
               " HAVING count(*) > 1) d",
               NULL, &res) != ST_OK) {
        fprintf(stderr, "check: %s\n", db_errmsg(db));
        goto out;
    }
    dup = db_res_int64(res, 0, 0);
    db_res_free(res);
    rows = tdb_int(db, "SELECT count(*) FROM load_writes");
    for (int i = 0; i < WRITERS; i++) {
        for (int k = 0; k < w[i].n_acked; k++) {
            db_params p;
            db_params_init(&p);
            db_param_text(&p, w[i].acked[k]);
            res = NULL;
            if (db_run(db, 5000, "check_row", "SELECT count(*) FROM load_writes WHERE rid = $1", &p,
                       &res) != ST_OK) {
                fprintf(stderr, "check: %s\n", db_errmsg(db));
                goto out;
            }
            if (db_res_int64(res, 0, 0) == 0)
                lost++;
            db_res_free(res);
            free(w[i].acked[k]);
            acked++;
        }
        free(w[i].acked);
        calls += w[i].calls;
        fails += w[i].fails;
        bad += w[i].bad;
        overruns += w[i].overruns;
        gave_up += w[i].gave_up;
        if (w[i].worst_overrun_ms > worst)
            worst = w[i].worst_overrun_ms;
    }
    db_close(db);
    char rec[256] = "";
    size_t off = 0;
    bool recovered = true;
    for (int c = 0; c < cycles; c++) {
        off += (size_t)snprintf(rec + off, sizeof rec - off, "%s%lld", c ? "," : "",
                                (long long)recovery[c]);
        if (recovery[c] < 0 || recovery[c] >= 5000)
            recovered = false;
        if (recovery[c] > worst_recovery)
            worst_recovery = recovery[c];
    }
    printf("RESULT pg_write_load sync_commit=%s cycles=%d acked=%lld rows=%lld lost=%lld "
           "dup=%lld calls=%d failed_calls=%d bad_codes=%d overruns=%d worst_overrun_ms=%lld "
           "gave_up=%d recovery_ms=%s\n",
           sync_off ? "off" : "on", cycles, (long long)acked, (long long)rows, (long long)lost,
           (long long)dup, calls, fails, bad, overruns, (long long)worst, gave_up, rec);
    fflush(stdout);
    if (sync_off)
        rc = (lost > 0 && dup == 0) ? 0 : 1; /* the checker must see the loss */
    else
        rc = (lost == 0 && dup == 0 && bad == 0 && overruns == 0 && gave_up == 0 && recovered &&
              acked > 0)
                 ? 0
                 : 1;
out:
    tpriv_down(&g_pg);
    free(err);
    return rc;
}
