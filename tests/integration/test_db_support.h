/* test_db_support.h - helpers shared by the store and cache integration
 * tests: environment, throw-away databases, private service instances
 * (tests/services.sh in a temp directory) and shell commands. Header-only
 * (static functions) so each test stays one .c file. Single-threaded use. */
#ifndef HERALD_TEST_DB_SUPPORT_H
#define HERALD_TEST_DB_SUPPORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "util.h"

#define TEST_SKIP 77 /* ctest SKIP_RETURN_CODE */

#ifndef HERALD_SOURCE_DIR
#error "HERALD_SOURCE_DIR must be defined by the build"
#endif

/* Runs a shell command; returns its exit status (-1 if it did not exit). */
static int tsh(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static int tsh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    free(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        return -1;
    return WEXITSTATUS(rc);
}

/* DATABASE_URL with its database name replaced by dbname (new string). */
static char *tdb_url_for(const char *url, const char *dbname) __attribute__((unused));
static char *tdb_url_for(const char *url, const char *dbname)
{
    const char *q = strchr(url, '?');
    size_t head = q ? (size_t)(q - url) : strlen(url);
    size_t slash = head;
    while (slash > 0 && url[slash - 1] != '/')
        slash--;
    return xasprintf("%.*s%s%s", (int)slash, url, dbname, q ? q : "");
}

/* Whether tdb_open's handles prepare their statements (db.prepared_statements). */
static bool tdb_prepared __attribute__((unused)) = true;

/* A db handle on conninfo with test-friendly defaults. */
static db_conn *tdb_open(const char *conninfo) __attribute__((unused));
static db_conn *tdb_open(const char *conninfo)
{
    db_options o;
    db_options_init(&o);
    o.conninfo = conninfo;
    o.prepared_statements = tdb_prepared;
    o.application_name = "herald-test";
    return db_open(&o);
}

/* Runs a parameterless statement; aborts the test on failure. */
static void tdb_must(db_conn *db, const char *sql) __attribute__((unused));
static void tdb_must(db_conn *db, const char *sql)
{
    status st = db_run(db, 60000, "test_setup", sql, NULL, NULL);
    if (st != ST_OK) {
        fprintf(stderr, "setup statement failed: %s\n", db_errmsg(db));
        abort();
    }
}

/* First column of the first row as int64 (aborts on failure). */
static int64_t tdb_int(db_conn *db, const char *sql) __attribute__((unused));
static int64_t tdb_int(db_conn *db, const char *sql)
{
    db_res *res = NULL;
    status st = db_run(db, 60000, "test_read", sql, NULL, &res);
    if (st != ST_OK || db_res_rows(res) < 1) {
        fprintf(stderr, "read failed: %s\n", db_errmsg(db));
        abort();
    }
    int64_t v = db_res_int64(res, 0, 0);
    db_res_free(res);
    return v;
}

/* Creates a fresh database "<prefix>_<pid>" (dropping a leftover one) and
 * returns its conninfo (caller frees); *name_out gets the name. */
static char *tdb_create(const char *admin_url, const char *prefix, char **name_out)
    __attribute__((unused));
static char *tdb_create(const char *admin_url, const char *prefix, char **name_out)
{
    char *name = xasprintf("%s_%d", prefix, (int)getpid());
    db_conn *db = tdb_open(admin_url);
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    tdb_must(db, "SELECT 1");
    /* CREATE/DROP DATABASE cannot run in a transaction block: autocommit script */
    if (db_script(db, "test_dropdb", sql) != ST_OK) {
        fprintf(stderr, "drop database: %s\n", db_errmsg(db));
        abort();
    }
    free(sql);
    sql = xasprintf("CREATE DATABASE %s", name);
    if (db_script(db, "test_createdb", sql) != ST_OK) {
        fprintf(stderr, "create database: %s\n", db_errmsg(db));
        abort();
    }
    free(sql);
    db_close(db);
    *name_out = name;
    return tdb_url_for(admin_url, name);
}

static void tdb_drop(const char *admin_url, const char *name) __attribute__((unused));
static void tdb_drop(const char *admin_url, const char *name)
{
    db_conn *db = tdb_open(admin_url);
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    (void)db_script(db, "test_dropdb", sql);
    free(sql);
    db_close(db);
}

/* ---- private instances (tests/services.sh up/down in a temp directory) ---- */

typedef struct tpriv {
    char dir[256];
    char database_url[512];
    char redis_url[512];
    char pgdata[512];
    char bindir[256];
    char redis_pid[32];
} tpriv;

static void tpriv_read_env(tpriv *p)
{
    char *path = xasprintf("%s/env", p->dir);
    FILE *f = fopen(path, "r");
    free(path);
    if (f == NULL)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *v = eq + 1;
        size_t n = strlen(v);
        while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\''))
            v[--n] = '\0';
        if (*v == '\'')
            v++;
        if (strcmp(line, "DATABASE_URL") == 0)
            snprintf(p->database_url, sizeof p->database_url, "%s", v);
        else if (strcmp(line, "REDIS_URL") == 0)
            snprintf(p->redis_url, sizeof p->redis_url, "%s", v);
        else if (strcmp(line, "PGDATA") == 0)
            snprintf(p->pgdata, sizeof p->pgdata, "%s", v);
        else if (strcmp(line, "PG_BINDIR") == 0)
            snprintf(p->bindir, sizeof p->bindir, "%s", v);
        else if (strcmp(line, "REDIS_PID") == 0)
            snprintf(p->redis_pid, sizeof p->redis_pid, "%s", v);
    }
    fclose(f);
}

/* Starts a private PostgreSQL + Redis under a new temp dir. false on failure. */
static bool tpriv_up(tpriv *p, const char *tag) __attribute__((unused));
static bool tpriv_up(tpriv *p, const char *tag)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/herald-%s-%d", tag, (int)getpid());
    if (tsh("%s/tests/services.sh up %s >/dev/null", HERALD_SOURCE_DIR, p->dir) != 0)
        return false;
    tpriv_read_env(p);
    return p->database_url[0] != '\0';
}

/* (Re)starts whatever is down in the instance (after tpriv_pg_kill). */
static bool tpriv_restart(tpriv *p) __attribute__((unused));
static bool tpriv_restart(tpriv *p)
{
    if (tsh("%s/tests/services.sh up %s >/dev/null", HERALD_SOURCE_DIR, p->dir) != 0)
        return false;
    tpriv_read_env(p);
    return true;
}

/* pg_ctl -m immediate stop: a crash without a checkpoint. */
static int tpriv_pg_kill(tpriv *p) __attribute__((unused));
static int tpriv_pg_kill(tpriv *p)
{
    return tsh("runuser -u postgres -- %s/pg_ctl -D %s -m immediate -w stop >/dev/null 2>&1",
               p->bindir, p->pgdata);
}

static void tpriv_down(tpriv *p) __attribute__((unused));
static void tpriv_down(tpriv *p)
{
    if (p->dir[0] == '\0')
        return;
    (void)tsh("%s/tests/services.sh down %s >/dev/null 2>&1", HERALD_SOURCE_DIR, p->dir);
    (void)tsh("rm -rf %s $(readlink -f %s/pg 2>/dev/null | xargs -r dirname) 2>/dev/null", p->dir,
              p->dir);
}

#endif
