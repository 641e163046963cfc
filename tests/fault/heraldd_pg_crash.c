/* heraldd_pg_crash.c - PostgreSQL crashes under a write load through heraldd
 * (issue 4 "Done when"; conventions §16 T4), the heraldd-level version of
 * pg_write_load.c.
 *
 * Starts a private PostgreSQL and Redis (tests/services.sh in a temp dir)
 * and a heraldd on them (it applies the migrations itself), then WRITERS
 * client threads send about RATE mutations/s over gRPC: CreateProfile of a
 * new profile, then UpdateProfile calls on it (display_name "u<seq>"), each
 * with its own request_id and a DEADLINE_MS deadline, retried with the same
 * request_id until acknowledged (bounded), as a client would. Meanwhile
 * PostgreSQL is killed with `pg_ctl -m immediate stop` and restarted CYCLES
 * times. Afterwards, straight from the database:
 *   lost      acknowledged creates missing, or profiles whose revision or
 *             display_name is behind their last acknowledged update
 *   dup       profiles whose revision is ahead of 1 + acknowledged updates
 *             (an update applied twice), or idempotency keys beyond the
 *             acknowledged mutations
 *   bad       failures other than UNAVAILABLE / DEADLINE_EXCEEDED / ABORTED
 *             (an ALREADY_EXISTS on a retried create would be one: the
 *             retry must replay)
 *   overrun   calls that ended later than deadline + 100 ms (client clock)
 *   recovery  ms from PostgreSQL accepting connections to the next
 *             acknowledged write, per cycle (must be < 5,000), with the same
 *             heraldd process (PID checked)
 * and prints one line starting with "RESULT".
 *
 *   fault_heraldd_pg [--cycles N] [--sync-off]
 * --sync-off is the control: synchronous_commit=off with a lazy WAL writer;
 * the same checker must then find lost acknowledged writes (exit 0 when it
 * does). Exit 0 when the run met its expectation, 1 otherwise, 77 to skip
 * (no DATABASE_URL: not in the integration environment). */
#include <pthread.h>
#include <stdatomic.h>

#include "test_db_support.h"
#include "test_profiles_support.h"

enum {
    WRITERS = 4, /* with 4 heraldd workers: each write waits for its COMMIT's fsync */
    RATE = 150,
    DEADLINE_MS = 500,
    MAX_OPS = 100000,
    MAX_RETRIES = 400,
    UPDATES_PER_PROFILE = 4,
};

typedef struct prof_rec {
    char id[32];
    int acked_updates;
    char last_name[32]; /* last acknowledged display_name ("" = none) */
} prof_rec;

typedef struct writer {
    int id;
    prof_rec *profs;
    int n_profs;
    int acked_ops;
    int calls, fails, bad, aborted, overruns, gave_up, not_found;
    int64_t worst_overrun_ms;
} writer;

static hd g_hd;
static tpriv g_pg;
static bool g_sync_off;
static atomic_bool g_stop;
static atomic_int_fast64_t g_last_ack_ms;

/* One mutation until acknowledged (or given up). Returns the final code. */
static int mutate(writer *w, bool create, const char *id, const char *name, unsigned seq)
{
    char rid[40];
    rid_make(rid, (unsigned)(0x100 + w->id), seq);
    Herald__V1__Profile p = HERALD__V1__PROFILE__INIT;
    Herald__V1__CreateProfileRequest cr = HERALD__V1__CREATE_PROFILE_REQUEST__INIT;
    Herald__V1__UpdateProfileRequest ur = HERALD__V1__UPDATE_PROFILE_REQUEST__INIT;
    p.profile_id = (char *)id;
    if (create) {
        p.platform = HERALD__V1__PLATFORM__PLATFORM_X;
        cr.request_id = rid;
        cr.profile = &p;
    } else {
        p.display_name = (char *)name;
        ur.request_id = rid;
        ur.profile = &p;
    }
    const ProtobufCMessage *req = create ? &cr.base : &ur.base;
    int code = -1;
    for (int attempt = 0; attempt < MAX_RETRIES; attempt++) {
        int64_t t0 = now_mono_ms();
        code = ops_call(&g_hd, create ? "CreateProfile" : "UpdateProfile", req,
                        &herald__v1__profile__descriptor, DEADLINE_MS, NULL, NULL);
        int64_t took = now_mono_ms() - t0;
        w->calls++;
        if (took > DEADLINE_MS + 100) {
            w->overruns++;
            if (took - DEADLINE_MS > w->worst_overrun_ms)
                w->worst_overrun_ms = took - DEADLINE_MS;
        }
        if (code == GRPC_CODE_OK)
            return code;
        w->fails++;
        if (code == GRPC_CODE_ABORTED) {
            w->aborted++; /* our own earlier attempt still held the key */
        } else if (code == GRPC_CODE_NOT_FOUND && g_sync_off) {
            w->not_found++; /* the control lost the profile: a detected loss */
            return code;
        } else if (code != GRPC_CODE_UNAVAILABLE && code != GRPC_CODE_DEADLINE_EXCEEDED) {
            w->bad++;
            fprintf(stderr, "writer %d: %s on %s %s\n", w->id, herald_code_name(code),
                    create ? "create" : "update", id);
        }
        if (atomic_load(&g_stop) && attempt > 20)
            break;
        hd_sleep_ms(50);
    }
    w->gave_up++;
    return code;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    int period_ms = 1000 * WRITERS / RATE;
    unsigned seq = 0;
    prof_rec *cur = NULL;
    while (!atomic_load(&g_stop) && w->n_profs < MAX_OPS) {
        bool create = cur == NULL || cur->acked_updates >= UPDATES_PER_PROFILE;
        char name[32];
        int code;
        int64_t t_op = now_mono_ms();
        seq++;
        if (create) {
            cur = &w->profs[w->n_profs];
            snprintf(cur->id, sizeof cur->id, "w%d-%06u", w->id, seq);
            code = mutate(w, true, cur->id, NULL, seq);
            if (code != GRPC_CODE_OK) {
                cur = NULL;
                continue;
            }
            w->n_profs++;
        } else {
            snprintf(name, sizeof name, "u%u", seq);
            code = mutate(w, false, cur->id, name, seq);
            if (code != GRPC_CODE_OK) {
                cur = NULL; /* lost (control) or given up: start a new profile */
                continue;
            }
            cur->acked_updates++;
            snprintf(cur->last_name, sizeof cur->last_name, "%s", name);
        }
        w->acked_ops++;
        int64_t now = now_mono_ms();
        atomic_store(&g_last_ack_ms, now);
        /* pace to RATE in total: the period minus what the write took */
        int64_t wait = period_ms - (now - t_op);
        if (wait > 0)
            hd_sleep_ms((int)wait);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int cycles = 3, rc = 1;
    int64_t recovery[16] = { 0 };
    bool same_pid = true;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
            cycles = atoi(argv[++i]);
        else if (strcmp(argv[i], "--sync-off") == 0)
            g_sync_off = true;
    }
    if (cycles < 1 || cycles > 16) {
        fprintf(stderr, "usage: %s [--cycles 1..16] [--sync-off]\n", argv[0]);
        return 2;
    }
    if (getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "DATABASE_URL not set (integration environment): skipping\n");
        return TEST_SKIP;
    }
    if (!tpriv_up(&g_pg, g_sync_off ? "hdpgoff" : "hdpg")) {
        fprintf(stderr, "cannot start a private PostgreSQL\n");
        tpriv_down(&g_pg);
        return 1;
    }
    if (g_sync_off) {
        db_conn *admin = tdb_open(g_pg.database_url);
        (void)db_script(admin, "control", "ALTER SYSTEM SET synchronous_commit = off");
        (void)db_script(admin, "control", "ALTER SYSTEM SET wal_writer_delay = '10s'");
        (void)db_script(admin, "control", "SELECT pg_reload_conf()");
        db_close(admin);
    }
    herald_client_init();
    char dir[300];
    snprintf(dir, sizeof dir, "%s/heraldd", g_pg.dir);
    static const char *const env[] = { "HERALD_WORKERS=4", NULL };
    if (!hd_start(&g_hd, dir, g_pg.database_url, g_pg.redis_url, env) ||
        !hd_wait_health(&g_hd, "readiness", 1, 30000)) {
        fprintf(stderr, "heraldd did not become ready (log: %s)\n", g_hd.log);
        goto out;
    }
    pid_t pid = g_hd.pid;
    int64_t t_start = now_mono_ms();

    writer w[WRITERS];
    pthread_t t[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].profs = xcalloc(MAX_OPS, sizeof *w[i].profs);
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
    hd_sleep_ms(2000);
    for (int c = 0; c < cycles; c++) {
        if (tpriv_pg_kill(&g_pg) != 0)
            fprintf(stderr, "pg_ctl stop failed in cycle %d\n", c);
        hd_sleep_ms(1000);
        if (!tpriv_restart(&g_pg)) { /* returns once PostgreSQL accepts connections */
            fprintf(stderr, "restart failed in cycle %d\n", c);
            break;
        }
        int64_t t_up = now_mono_ms();
        recovery[c] = -1;
        while (now_mono_ms() - t_up < 15000) {
            if (atomic_load(&g_last_ack_ms) >= t_up) {
                recovery[c] = atomic_load(&g_last_ack_ms) - t_up;
                break;
            }
            hd_sleep_ms(10);
        }
        if (!hd_alive(&g_hd) || g_hd.pid != pid)
            same_pid = false;
        hd_sleep_ms(3000);
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    same_pid = same_pid && hd_alive(&g_hd) && g_hd.pid == pid;

    /* the check, straight from the database */
    db_conn *db = tdb_open(g_pg.database_url);
    int64_t lost = 0, dup = 0, acked = 0, profiles = 0;
    int calls = 0, fails = 0, bad = 0, aborted = 0, overruns = 0, gave_up = 0, not_found = 0;
    int64_t worst = 0;
    for (int i = 0; i < WRITERS; i++) {
        for (int k = 0; k < w[i].n_profs; k++) {
            const prof_rec *r = &w[i].profs[k];
            db_params p;
            db_res *res = NULL;
            db_params_init(&p);
            db_param_text(&p, r->id);
            if (db_run(db, 10000, "check_profile",
                       "SELECT revision, display_name FROM profiles WHERE profile_id = $1", &p,
                       &res) != ST_OK) {
                fprintf(stderr, "check: %s\n", db_errmsg(db));
                goto out;
            }
            profiles++;
            if (db_res_rows(res) == 0) {
                lost++;
            } else {
                int64_t rev = db_res_int64(res, 0, 0);
                if (rev < 1 + r->acked_updates ||
                    (r->last_name[0] != '\0' && strcmp(db_res_text(res, 0, 1), r->last_name) != 0))
                    lost++;
                else if (rev > 1 + r->acked_updates)
                    dup++;
            }
            db_res_free(res);
        }
        acked += w[i].acked_ops;
        calls += w[i].calls;
        fails += w[i].fails;
        bad += w[i].bad;
        aborted += w[i].aborted;
        overruns += w[i].overruns;
        gave_up += w[i].gave_up;
        not_found += w[i].not_found;
        if (w[i].worst_overrun_ms > worst)
            worst = w[i].worst_overrun_ms;
        free(w[i].profs);
    }
    int64_t keys = tdb_int(db, "SELECT count(*) FROM idempotency_keys");
    int64_t rows = tdb_int(db, "SELECT count(*) FROM profiles");
    db_close(db);
    if (!g_sync_off && gave_up == 0 && keys > acked)
        dup += keys - acked; /* a mutation recorded that no one was told about */

    char rec[256] = "";
    size_t off = 0;
    bool recovered = true;
    for (int c = 0; c < cycles; c++) {
        off += (size_t)snprintf(rec + off, sizeof rec - off, "%s%lld", c ? "," : "",
                                (long long)recovery[c]);
        if (recovery[c] < 0 || recovery[c] >= 5000)
            recovered = false;
    }
    printf("RESULT heraldd_pg_crash sync_commit=%s cycles=%d writers=%d run_s=%.1f acked=%lld "
           "profiles=%lld rows=%lld "
           "idem_keys=%lld lost=%lld dup=%lld calls=%d failed_calls=%d aborted=%d bad_codes=%d "
           "not_found=%d overruns=%d worst_overrun_ms=%lld gave_up=%d recovery_ms=%s "
           "same_pid=%s\n",
           g_sync_off ? "off" : "on", cycles, WRITERS, (double)(now_mono_ms() - t_start) / 1000,
           (long long)acked, (long long)profiles, (long long)rows, (long long)keys, (long long)lost,
           (long long)dup, calls, fails, aborted, bad, not_found, overruns, (long long)worst,
           gave_up, rec, same_pid ? "yes" : "no");
    fflush(stdout);
    if (g_sync_off)
        rc = (lost > 0 || not_found > 0) ? 0 : 1; /* the checker must see the loss */
    else
        rc = (lost == 0 && dup == 0 && bad == 0 && overruns == 0 && gave_up == 0 && recovered &&
              same_pid && acked > 0)
                 ? 0
                 : 1;
out:
    if (g_hd.pid > 0 && hd_stop(&g_hd) != 0) {
        fprintf(stderr, "heraldd did not exit 0 after SIGTERM\n");
        rc = 1;
    }
    herald_client_shutdown();
    if (rc != 0)
        (void)tsh("tail -n 30 %s >&2", g_hd.log);
    tpriv_down(&g_pg);
    return rc;
}
