/* test_profiles_support.h - a real heraldd under test and the C client
 * around it, shared by test_profiles.c and the heraldd fault tests
 * (tests/fault/heraldd_*.c). Header-only (static functions).
 *
 * A heraldd is started with fork/exec on 127.0.0.1 with a free port
 * (--port-file), its own environment (DATABASE_URL and REDIS_URL given,
 * every other HERALD_* variable dropped), stdout/stderr into a log file,
 * and PR_SET_PDEATHSIG so that it never outlives the test. It is stopped
 * only by its PID. Every wait is bounded. */
#ifndef HERALD_TEST_PROFILES_SUPPORT_H
#define HERALD_TEST_PROFILES_SUPPORT_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "google/rpc/error_details.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "herald_client.h"
#include "util.h"

#ifndef HERALDD_BIN
#error "HERALDD_BIN must be defined by the build"
#endif

extern char **environ;

#define OPS "/herald.v1.OpsService/"

typedef struct hd {
    pid_t pid;
    int port;
    char dir[512];
    char log[600];
    herald_channel *ch;
} hd;

static void hd_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Starts heraldd with its files under dir (created). extra: more NAME=value
 * settings (NULL-terminated, may be NULL), taking precedence over the
 * defaults here (2 workers, no admin listener, 5 s shutdown grace). false when it did not write its
 * port within 30 s (the log says why). */
static bool hd_start(hd *h, const char *dir, const char *database_url, const char *redis_url,
                     const char *const *extra) __attribute__((unused));
static bool hd_start(hd *h, const char *dir, const char *database_url, const char *redis_url,
                     const char *const *extra)
{
    char port_file[600];
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    mkdir(dir, 0755);
    snprintf(h->log, sizeof h->log, "%s/heraldd.log", dir);
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    unlink(port_file);

    size_t n_env = 0;
    while (environ[n_env] != NULL)
        n_env++;
    char **env = xcalloc(n_env + 32, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++) {
        const char *e = environ[i];
        if (strncmp(e, "HERALD_", 7) == 0 || strncmp(e, "DATABASE_URL=", 13) == 0 ||
            strncmp(e, "REDIS_URL=", 10) == 0)
            continue;
        env[k++] = xstrdup(e);
    }
    /* extra first: getenv takes the first match, so extra overrides these */
    for (size_t i = 0; extra != NULL && extra[i] != NULL && k < n_env + 24; i++)
        env[k++] = xstrdup(extra[i]);
    env[k++] = xasprintf("DATABASE_URL=%s", database_url != NULL ? database_url : "");
    env[k++] = xasprintf("REDIS_URL=%s", redis_url != NULL ? redis_url : "");
    env[k++] = xstrdup("HERALD_ADMIN_LISTEN=");
    env[k++] = xstrdup("HERALD_WORKERS=2");
    env[k++] = xstrdup("HERALD_SHUTDOWN_GRACE=5s");
    env[k] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        char *const argv[] = { (char *)HERALDD_BIN,   (char *)"--listen", (char *)"127.0.0.1:0",
                               (char *)"--port-file", port_file,          NULL };
        execve(HERALDD_BIN, argv, env);
        _exit(127);
    }
    for (size_t i = 0; i < k; i++)
        free(env[i]);
    free(env);
    if (pid < 0)
        return false;
    h->pid = pid;

    int64_t until = now_mono_ms() + 30000;
    while (now_mono_ms() < until) {
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid) {
            h->pid = 0;
            fprintf(stderr, "heraldd exited during start-up; see %s\n", h->log);
            return false;
        }
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            int port = 0;
            bool ok = fscanf(f, "%d", &port) == 1 && port > 0;
            fclose(f);
            if (ok) {
                h->port = port;
                break;
            }
        }
        hd_sleep_ms(20);
    }
    if (h->port == 0)
        return false;
    herald_channel_options o;
    herald_channel_options_init(&o);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", h->port);
    o.target = target;
    char *err = NULL;
    if (!herald_channel_open(&o, &h->ch, &err)) {
        fprintf(stderr, "channel: %s\n", err);
        free(err);
        return false;
    }
    return true;
}

/* SIGTERM, then wait up to 30 s (SIGKILL after). Returns the exit code, 128+N
 * for a signal, -1 if it was not running. */
static int hd_stop(hd *h) __attribute__((unused));
static int hd_stop(hd *h)
{
    int rc = -1;
    herald_channel_close(h->ch);
    h->ch = NULL;
    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    int64_t until = now_mono_ms() + 30000;
    int wst = 0;
    for (;;) {
        pid_t r = waitpid(h->pid, &wst, WNOHANG);
        if (r == h->pid)
            break;
        if (now_mono_ms() > until) {
            fprintf(stderr, "heraldd %d ignored SIGTERM for 30 s: killing it\n", (int)h->pid);
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &wst, 0);
            break;
        }
        hd_sleep_ms(20);
    }
    h->pid = 0;
    if (WIFEXITED(wst))
        rc = WEXITSTATUS(wst);
    else if (WIFSIGNALED(wst))
        rc = 128 + WTERMSIG(wst);
    return rc;
}

/* True while the process runs. */
static bool hd_alive(hd *h) __attribute__((unused));
static bool hd_alive(hd *h)
{
    int wst;
    return h->pid > 0 && waitpid(h->pid, &wst, WNOHANG) == 0;
}

/* Health/Check of name: the HealthCheckResponse status, or -(gRPC code). */
static int hd_health(hd *h, const char *name) __attribute__((unused));
static int hd_health(hd *h, const char *name)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    herald_status st;
    herald_call_options o = { .timeout_ms = 1000 };
    req.service = (char *)name;
    herald_status_init(&st);
    int code =
        herald_call_unary(h->ch, "/grpc.health.v1.Health/Check", &req.base,
                          &grpc__health__v1__health_check_response__descriptor, &o, &resp, &st);
    int out = code == 0 ? (int)((Grpc__Health__V1__HealthCheckResponse *)resp)->status : -code;
    if (resp != NULL)
        protobuf_c_message_free_unpacked(resp, NULL);
    herald_status_fini(&st);
    return out;
}

/* Waits up to timeout_ms for name to report want; true when it did. */
static bool hd_wait_health(hd *h, const char *name, int want, int timeout_ms)
    __attribute__((unused));
static bool hd_wait_health(hd *h, const char *name, int want, int timeout_ms)
{
    int64_t until = now_mono_ms() + timeout_ms;
    do {
        if (hd_health(h, name) == want)
            return true;
        hd_sleep_ms(50);
    } while (now_mono_ms() < until);
    return false;
}

/* Lines of the heraldd log containing needle. */
static int hd_log_count(const hd *h, const char *needle) __attribute__((unused));
static int hd_log_count(const hd *h, const char *needle)
{
    FILE *f = fopen(h->log, "r");
    char line[8192];
    int n = 0;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* The log's size now: a mark for hd_log_count_since. */
static long hd_log_mark(const hd *h) __attribute__((unused));
static long hd_log_mark(const hd *h)
{
    struct stat sb;
    return stat(h->log, &sb) == 0 ? (long)sb.st_size : 0;
}

/* Lines between the marks from and to (byte offsets; lines are written
 * whole, with one write each) containing both needles (b may be NULL). */
static int hd_log_count_between(const hd *h, long from, long to, const char *a, const char *b)
    __attribute__((unused));
static int hd_log_count_between(const hd *h, long from, long to, const char *a, const char *b)
{
    FILE *f = fopen(h->log, "r");
    char line[8192];
    int n = 0;
    if (f == NULL || fseek(f, from, SEEK_SET) != 0) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    while (ftell(f) < to && fgets(line, sizeof line, f) != NULL)
        n += strstr(line, a) != NULL && (b == NULL || strstr(line, b) != NULL);
    fclose(f);
    return n;
}

/* One unary OpsService call (thread-safe: any thread, one channel). Returns
 * the gRPC code; *resp (caller frees with protobuf_c_message_free_unpacked)
 * on OK. st may be NULL. */
static int ops_call(hd *h, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                    ProtobufCMessage **resp, herald_status *st) __attribute__((unused));
static int ops_call(hd *h, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                    ProtobufCMessage **resp, herald_status *st)
{
    char path[128];
    herald_status local;
    herald_call_options o = { .timeout_ms = timeout_ms };
    ProtobufCMessage *r = NULL;
    snprintf(path, sizeof path, OPS "%s", method);
    if (st == NULL)
        herald_status_init(&local);
    int code = herald_call_unary(h->ch, path, req, resp_desc, &o, &r, st != NULL ? st : &local);
    if (st == NULL)
        herald_status_fini(&local);
    if (resp != NULL)
        *resp = r;
    else if (r != NULL)
        protobuf_c_message_free_unpacked(r, NULL);
    return code;
}

/* The BadRequest detail of st, or NULL (caller frees). */
static Google__Rpc__BadRequest *st_bad_request(const herald_status *st) __attribute__((unused));
static Google__Rpc__BadRequest *st_bad_request(const herald_status *st)
{
    for (size_t i = 0; i < st->n_details; i++)
        if (strstr(st->details[i].type_url, "google.rpc.BadRequest") != NULL)
            return google__rpc__bad_request__unpack(NULL, st->details[i].value_len,
                                                    st->details[i].value);
    return NULL;
}

/* Does st carry a BadRequest violation of field (exact path)? */
static bool st_violation(const herald_status *st, const char *field) __attribute__((unused));
static bool st_violation(const herald_status *st, const char *field)
{
    Google__Rpc__BadRequest *br = st_bad_request(st);
    bool found = false;
    for (size_t i = 0; br != NULL && i < br->n_field_violations; i++)
        if (strcmp(br->field_violations[i]->field, field) == 0)
            found = true;
    if (br != NULL)
        google__rpc__bad_request__free_unpacked(br, NULL);
    return found;
}

/* The ErrorInfo reason of st into buf ("" when none). */
static const char *st_reason(const herald_status *st, char *buf, size_t cap)
    __attribute__((unused));
static const char *st_reason(const herald_status *st, char *buf, size_t cap)
{
    buf[0] = '\0';
    for (size_t i = 0; i < st->n_details; i++) {
        if (strstr(st->details[i].type_url, "google.rpc.ErrorInfo") == NULL)
            continue;
        Google__Rpc__ErrorInfo *ei =
            google__rpc__error_info__unpack(NULL, st->details[i].value_len, st->details[i].value);
        if (ei != NULL) {
            snprintf(buf, cap, "%s", ei->reason);
            google__rpc__error_info__free_unpacked(ei, NULL);
        }
    }
    return buf;
}

/* A request_id of the UUID shape, unique per (tag, n) within this process. */
static void rid_make(char out[40], unsigned tag, unsigned n) __attribute__((unused));
static void rid_make(char out[40], unsigned tag, unsigned n)
{
    snprintf(out, 40, "%08x-%04x-4%03x-8%03x-%012x", (unsigned)getpid(), tag & 0xffff,
             (n >> 12) & 0xfff, n & 0xfff, n);
}

#endif
