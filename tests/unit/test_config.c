/* Unit tests for server/config.c: precedence, every kind of bad value with
 * its exact message and exit code, secret masking, --help, reload. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "util.h"

#define MAX_ARGS 16

/* A temporary file with the given content; returns its path (caller frees
 * and unlinks). */
static char *temp_file(const char *content)
{
    char *path = xstrdup("/tmp/herald-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(content);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
    return path;
}

static void rewrite_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

/* Loads from NULL-terminated argv / envp lists. */
static int load(config *cfg, config_cli *cli, const char *const *argv, const char *const *envp,
                char **err)
{
    int argc = 0;
    while (argv != NULL && argv[argc] != NULL)
        argc++;
    return config_load(cfg, cli, argc, (char *const *)argv, (char *const *)envp, err);
}

static void defaults_apply(void **state)
{
    (void)state;
    config cfg;
    config_cli cli;
    char *err = NULL;
    const char *argv[] = { NULL };
    assert_int_equal(load(&cfg, &cli, argv, NULL, &err), 0);
    assert_null(err);
    assert_string_equal(cfg.listen, "0.0.0.0:50051");
    assert_int_equal(cfg.workers, config_auto_workers());
    assert_true(cfg.workers >= 1 && cfg.workers <= 16);
    assert_int_equal(cfg.max_recv_bytes, 1048576);
    assert_int_equal(cfg.call_arena_bytes, 16 * 1048576);
    assert_int_equal(cfg.default_deadline_ms, 30000);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.log_format, LOG_FORMAT_JSON);
    assert_int_equal(cfg.shutdown_delay_ms, 0);
    assert_int_equal(cfg.shutdown_grace_ms, 20000);
    assert_string_equal(cfg.database_url, "");
    assert_string_equal(cfg.redis_url, "");
    assert_true(cfg.reflection);
    assert_string_equal(cfg.health_listen, "");
    assert_string_equal(cfg.admin_listen, "0.0.0.0:9464");
    assert_string_equal(cfg.tls_cert, "");
    for (size_t i = 0; i < config_key_count(); i++) {
        assert_int_equal(config_source(&cfg, config_key_at(i)), CFG_SRC_DEFAULT);
        assert_string_equal(config_source_name(&cfg, config_key_at(i)), "default");
    }
    assert_int_equal(cli.n_args, 0);
    assert_false(cli.help || cli.version || cli.print_config);
    config_fini(&cfg);
}

/* flag > env > file > default, for one key, removing one source at a time. */
static void precedence(void **state)
{
    (void)state;
    char *path = temp_file("# test\n\nworkers = 3\nlog.level = \"debug\"  \n");
    char *cfgflag = xasprintf("--config=%s", path);
    char *file_src = xasprintf("%s:3", path);
    config cfg;
    config_cli cli;
    char *err = NULL;

    const char *argv_flag[] = { cfgflag, "--workers", "7", NULL };
    const char *argv_eq[] = { cfgflag, "--workers=8", NULL };
    const char *argv_file[] = { cfgflag, NULL };
    const char *env[] = { "HERALD_WORKERS=5", NULL };

    assert_int_equal(load(&cfg, &cli, argv_flag, env, &err), 0);
    assert_int_equal(cfg.workers, 7);
    assert_int_equal(config_source(&cfg, config_key_find("workers")), CFG_SRC_FLAG);
    assert_string_equal(config_source_name(&cfg, config_key_find("workers")), "--workers");
    assert_int_equal(cfg.log_level, LOG_DEBUG); /* from the file, quotes removed */
    assert_string_equal(cli.config_path, path);
    config_fini(&cfg);

    assert_int_equal(load(&cfg, &cli, argv_eq, env, &err), 0);
    assert_int_equal(cfg.workers, 8);
    assert_string_equal(config_source_name(&cfg, config_key_find("workers")), "--workers");
    config_fini(&cfg);

    assert_int_equal(load(&cfg, &cli, argv_file, env, &err), 0);
    assert_int_equal(cfg.workers, 5);
    assert_int_equal(config_source(&cfg, config_key_find("workers")), CFG_SRC_ENV);
    assert_string_equal(config_source_name(&cfg, config_key_find("workers")), "HERALD_WORKERS");
    config_fini(&cfg);

    assert_int_equal(load(&cfg, &cli, argv_file, NULL, &err), 0);
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(config_source(&cfg, config_key_find("workers")), CFG_SRC_FILE);
    assert_string_equal(config_source_name(&cfg, config_key_find("workers")), file_src);
    config_fini(&cfg);

    /* The file can also come from HERALD_CONFIG. */
    char *env_cfg = xasprintf("HERALD_CONFIG=%s", path);
    const char *env2[] = { env_cfg, NULL };
    const char *none[] = { NULL };
    assert_int_equal(load(&cfg, &cli, none, env2, &err), 0);
    assert_int_equal(cfg.workers, 3);
    config_fini(&cfg);

    assert_int_equal(load(&cfg, &cli, none, NULL, &err), 0);
    assert_int_equal(cfg.workers, config_auto_workers());
    config_fini(&cfg);

    unlink(path);
    free(env_cfg);
    free(file_src);
    free(cfgflag);
    free(path);
}

static void env_alias_and_forms(void **state)
{
    (void)state;
    config cfg;
    config_cli cli;
    char *err = NULL;

    const char *env_alias[] = { "HERALD_GRPC_ADDR=127.0.0.1:1", NULL };
    const char *env_both[] = { "HERALD_GRPC_ADDR=127.0.0.1:1", "HERALD_LISTEN=[::1]:2", NULL };
    const char *none[] = { NULL };
    assert_int_equal(load(&cfg, &cli, none, env_alias, &err), 0);
    assert_string_equal(cfg.listen, "127.0.0.1:1");
    assert_string_equal(config_source_name(&cfg, config_key_find("listen")), "HERALD_GRPC_ADDR");
    config_fini(&cfg);
    assert_int_equal(load(&cfg, &cli, none, env_both, &err), 0);
    assert_string_equal(cfg.listen, "[::1]:2");
    config_fini(&cfg);

    /* Human forms of sizes and durations; flag spellings with '_' too. */
    const char *argv[] = { "--max-recv-bytes",
                           "2MiB",
                           "--call_arena_bytes=512KiB",
                           "--shutdown-grace-ms",
                           "1m",
                           "--shutdown.delay_ms=1500ms",
                           "--default-deadline-ms",
                           "250",
                           "--workers",
                           "AUTO",
                           NULL };
    assert_int_equal(load(&cfg, &cli, argv, NULL, &err), 0);
    assert_int_equal(cfg.max_recv_bytes, 2 * 1048576);
    assert_int_equal(cfg.call_arena_bytes, 512 * 1024);
    assert_int_equal(cfg.shutdown_grace_ms, 60000);
    assert_int_equal(cfg.shutdown_delay_ms, 1500);
    assert_int_equal(cfg.default_deadline_ms, 250);
    assert_int_equal(cfg.workers, config_auto_workers());
    config_fini(&cfg);

    /* Booleans. */
    const char *no_refl[] = { "--no-reflection", NULL };
    const char *refl_off[] = { "--reflection=off", NULL };
    const char *refl_on[] = { "--no-reflection", "--reflection", NULL };
    const char *env_no[] = { "HERALD_REFLECTION=No", NULL };
    assert_int_equal(load(&cfg, &cli, no_refl, NULL, &err), 0);
    assert_false(cfg.reflection);
    config_fini(&cfg);
    assert_int_equal(load(&cfg, &cli, refl_off, NULL, &err), 0);
    assert_false(cfg.reflection);
    config_fini(&cfg);
    assert_int_equal(load(&cfg, &cli, refl_on, NULL, &err), 0);
    assert_true(cfg.reflection); /* the last flag wins */
    config_fini(&cfg);
    assert_int_equal(load(&cfg, &cli, none, env_no, &err), 0);
    assert_false(cfg.reflection);
    config_fini(&cfg);

    /* Positional arguments and "--". */
    const char *pos[] = { "migrate", "--workers", "2", "force", "--", "-1", NULL };
    assert_int_equal(load(&cfg, &cli, pos, NULL, &err), 0);
    assert_int_equal(cli.n_args, 3);
    assert_string_equal(cli.args[0], "migrate");
    assert_string_equal(cli.args[1], "force");
    assert_string_equal(cli.args[2], "-1");
    assert_int_equal(cfg.workers, 2);
    config_fini(&cfg);
    const char *neg[] = { "migrate", "force", "-1", "--", "--x", NULL };
    assert_int_equal(load(&cfg, &cli, neg, NULL, &err), 0);
    assert_int_equal(cli.n_args, 4);
    assert_string_equal(cli.args[2], "-1");
    assert_string_equal(cli.args[3], "--x");
    config_fini(&cfg);
}

typedef struct bad_case {
    const char *argv[4];
    const char *env[3];
    int rc;
    const char *msg;
} bad_case;

static const bad_case bad_cases[] = {
    { { "--workers", "300" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"300\" for workers (from --workers): is out of range; allowed: an integer in "
      "1..256, or auto" },
    { { "--workers=0" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"0\" for workers (from --workers): is out of range; allowed: an integer in "
      "1..256, or auto" },
    { { NULL },
      { "HERALD_WORKERS=four" },
      CONFIG_EX_CONFIG,
      "bad value \"four\" for workers (from HERALD_WORKERS): is not an integer; allowed: an "
      "integer in 1..256, or auto" },
    { { NULL },
      { "HERALD_WORKERS=4x" },
      CONFIG_EX_CONFIG,
      "bad value \"4x\" for workers (from HERALD_WORKERS): is not an integer; allowed: an "
      "integer in 1..256, or auto" },
    { { NULL },
      { "HERALD_WORKERS=" },
      CONFIG_EX_CONFIG,
      "bad value \"\" for workers (from HERALD_WORKERS): is not an integer; allowed: an "
      "integer in 1..256, or auto" },
    { { "--log-level", "loud" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"loud\" for log.level (from --log-level): is not a valid choice; allowed: one "
      "of debug, info, warn, error, off" },
    { { NULL },
      { "HERALD_LOG_FORMAT=xml" },
      CONFIG_EX_CONFIG,
      "bad value \"xml\" for log.format (from HERALD_LOG_FORMAT): is not a valid choice; "
      "allowed: one of json, text" },
    { { NULL },
      { "HERALD_REFLECTION=maybe" },
      CONFIG_EX_CONFIG,
      "bad value \"maybe\" for reflection (from HERALD_REFLECTION): is not a boolean; allowed: "
      "true or false (also yes/no, on/off, 1/0)" },
    { { "--max-recv-bytes", "1TiB" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"1TiB\" for max_recv_bytes (from --max-recv-bytes): is not a size; allowed: a "
      "size in 1024..67108864 bytes (e.g. 65536, 512KiB, 1MiB)" },
    { { "--max-recv-bytes", "100" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"100\" for max_recv_bytes (from --max-recv-bytes): is out of range; allowed: a "
      "size in 1024..67108864 bytes (e.g. 65536, 512KiB, 1MiB)" },
    { { NULL },
      { "HERALD_SHUTDOWN_GRACE=2h" },
      CONFIG_EX_CONFIG,
      "bad value \"2h\" for shutdown.grace_ms (from HERALD_SHUTDOWN_GRACE): is out of range; "
      "allowed: a duration in 0..3600000 ms (e.g. 1500, 1500ms, 20s, 1m)" },
    { { NULL },
      { "HERALD_SHUTDOWN_DELAY=-5" },
      CONFIG_EX_CONFIG,
      "bad value \"-5\" for shutdown.delay_ms (from HERALD_SHUTDOWN_DELAY): is not a duration; "
      "allowed: a duration in 0..300000 ms (e.g. 1500, 1500ms, 20s, 1m)" },
    { { "--default-deadline-ms", "99999999999999999999" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"99999999999999999999\" for default_deadline_ms (from --default-deadline-ms): "
      "is not a duration; allowed: a duration in 1..3600000 ms (e.g. 1500, 1500ms, 20s, 1m)" },
    { { "--listen", "localhost" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"localhost\" for listen (from --listen): is not valid; allowed: host:port with "
      "port 0..65535 ([v6]:port and unix:/path too)" },
    { { "--listen", "1.2.3.4:70000" },
      { NULL },
      CONFIG_EX_CONFIG,
      "bad value \"1.2.3.4:70000\" for listen (from --listen): is not valid; allowed: host:port "
      "with port 0..65535 ([v6]:port and unix:/path too)" },
    /* A bad secret is shown masked. */
    { { NULL },
      { "DATABASE_URL=mysql://app:hunter2@db/x" },
      CONFIG_EX_CONFIG,
      "bad value \"mysql://app:***@db/x\" for database_url (from DATABASE_URL): is not valid; "
      "allowed: empty, a postgresql:// URI or a libpq key=value conninfo" },
    { { NULL },
      { "DATABASE_URL=x", "DATABASE_URL_FILE=/nonexistent" },
      CONFIG_EX_CONFIG,
      "both DATABASE_URL and DATABASE_URL_FILE are set for database_url; set only one" },
    { { NULL },
      { "REDIS_URL_FILE=/nonexistent/redis" },
      CONFIG_EX_CONFIG,
      "REDIS_URL_FILE for redis_url: cannot read /nonexistent/redis: No such file or directory" },
    { { "--tls-cert", "/etc/hostname" },
      { NULL },
      CONFIG_EX_CONFIG,
      "tls.cert and tls.key must be set together (both empty = plaintext)" },
    { { "--tls-client-ca=/etc/hostname" },
      { NULL },
      CONFIG_EX_CONFIG,
      "tls.client_ca needs tls.cert and tls.key (mTLS is a TLS option)" },
    { { "--config", "/nonexistent/herald.conf" },
      { NULL },
      CONFIG_EX_CONFIG,
      "cannot read /nonexistent/herald.conf: No such file or directory" },
    /* Usage errors. */
    { { "--bogus" }, { NULL }, CONFIG_EX_USAGE, "unknown flag '--bogus'; try 'heraldd --help'" },
    { { "--workres", "4" },
      { NULL },
      CONFIG_EX_USAGE,
      "unknown flag '--workres' (did you mean --workers?); try 'heraldd --help'" },
    { { "-x" }, { NULL }, CONFIG_EX_USAGE, "unknown flag '-x'; try 'heraldd --help'" },
    { { "--workers" },
      { NULL },
      CONFIG_EX_USAGE,
      "flag '--workers' needs a value; try 'heraldd --help'" },
    { { "--no-workers" },
      { NULL },
      CONFIG_EX_USAGE,
      "unknown flag '--no-workers'; try 'heraldd --help'" },
    { { "--no-reflection=1" },
      { NULL },
      CONFIG_EX_USAGE,
      "flag '--no-reflection' takes no value; try 'heraldd --help'" },
};

static void bad_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        config cfg;
        config_cli cli;
        char *err = NULL;
        int rc = load(&cfg, &cli, c->argv, c->env, &err);
        if (rc != c->rc || err == NULL || strcmp(err, c->msg) != 0)
            fail_msg("case %zu: rc %d, err \"%s\"; want rc %d, \"%s\"", i, rc, err ? err : "(null)",
                     c->rc, c->msg);
        free(err);
        config_fini(&cfg);
    }
}

static void bad_file(void **state)
{
    (void)state;
    struct {
        const char *content;
        const char *suffix; /* expected message after "<path>" */
        int rc;
    } cases[] = {
        { "workers = 2\n\nworkerz = 3\n", ":3: unknown key \"workerz\" (see heraldd --help)",
          CONFIG_EX_CONFIG },
        { "# ok\nworkers 2\n", ":2: expected `key = value`, got \"workers 2\"", CONFIG_EX_CONFIG },
        { "listen = \"127.0.0.1:1\" x\n", ":1: unterminated or trailing text after quoted value",
          CONFIG_EX_CONFIG },
        { "listen = \"127.0.0.1:1\n", ":1: unterminated or trailing text after quoted value",
          CONFIG_EX_CONFIG },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *path = temp_file(cases[i].content);
        char *want = xasprintf("%s%s", path, cases[i].suffix);
        const char *argv[] = { "--config", path, NULL };
        config cfg;
        config_cli cli;
        char *err = NULL;
        assert_int_equal(load(&cfg, &cli, argv, NULL, &err), cases[i].rc);
        assert_string_equal(err, want);
        free(err);
        config_fini(&cfg);
        unlink(path);
        free(want);
        free(path);
    }

    /* A bad value in the file names the file and line. */
    char *path = temp_file("log.format = text\nshutdown.grace_ms = soon # when?\n");
    char *want = xasprintf("bad value \"soon\" for shutdown.grace_ms (from %s:2): is not a "
                           "duration; allowed: a duration in 0..3600000 ms (e.g. 1500, 1500ms, "
                           "20s, 1m)",
                           path);
    const char *argv[] = { "--config", path, NULL };
    config cfg;
    config_cli cli;
    char *err = NULL;
    assert_int_equal(load(&cfg, &cli, argv, NULL, &err), CONFIG_EX_CONFIG);
    assert_string_equal(err, want);
    free(err);
    config_fini(&cfg);
    unlink(path);
    free(want);
    free(path);
}

/* --help and --version skip validation so they work in a broken env. */
static void help_ignores_bad_values(void **state)
{
    (void)state;
    config cfg;
    config_cli cli;
    char *err = NULL;
    const char *argv[] = { "--help", NULL };
    const char *env[] = { "HERALD_WORKERS=lots", NULL };
    assert_int_equal(load(&cfg, &cli, argv, env, &err), 0);
    assert_true(cli.help);
    config_fini(&cfg);
    const char *argv2[] = { "-V", NULL };
    assert_int_equal(load(&cfg, &cli, argv2, env, &err), 0);
    assert_true(cli.version);
    config_fini(&cfg);
}

static void help_lists_every_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print_help(f, "heraldd");
    fclose(f);
    for (size_t i = 0; i < config_key_count(); i++) {
        const cfg_key *k = config_key_at(i);
        char flag[80];
        size_t j = 0;
        for (; k->name[j] != '\0'; j++)
            flag[j] = k->name[j] == '.' || k->name[j] == '_' ? '-' : k->name[j];
        flag[j] = '\0';
        char *key_line = xasprintf("\n  %s\n", k->name);
        char *flag_txt = xasprintf(k->type == CFG_BOOL ? "--[no-]%s" : "--%s", flag);
        char *env_txt = xasprintf("$%s", k->env);
        char *dflt =
            k->auto_fn ? xasprintf("Default %s (", k->dflt) : xasprintf("Default \"%s\";", k->dflt);
        if (strstr(text, key_line) == NULL || strstr(text, flag_txt) == NULL ||
            strstr(text, env_txt) == NULL || strstr(text, dflt) == NULL ||
            strstr(text, k->help) == NULL)
            fail_msg("--help lacks part of key %s", k->name);
        free(dflt);
        free(env_txt);
        free(flag_txt);
        free(key_line);
    }
    assert_non_null(strstr(text, "an integer in 1..256, or auto"));
    assert_non_null(strstr(text, "one of debug, info, warn, error, off"));
    assert_non_null(strstr(text, "$DATABASE_URL_FILE"));
    assert_non_null(strstr(text, "--print-config"));
    free(text);
}

static void mask_urls(void **state)
{
    (void)state;
    struct {
        const char *in, *out;
    } cases[] = {
        { "postgresql://herald:s3cret@db:5432/herald?sslmode=require",
          "postgresql://herald:***@db:5432/herald?sslmode=require" },
        { "postgresql://herald@db/herald", "postgresql://herald@db/herald" },
        { "postgresql:///herald?host=/tmp/pg&password=s3cret&x=1",
          "postgresql:///herald?host=/tmp/pg&password=***&x=1" },
        { "host=/tmp dbname=herald password=s3cret user=x",
          "host=/tmp dbname=herald password=*** user=x" },
        { "host=/tmp password = 'se cr\\'et' user=x", "host=/tmp password = *** user=x" },
        { "redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0" },
        { "redis://u:p@w@h/0", "redis://u:***@h/0" },
        { "unix:///tmp/redis.sock", "unix:///tmp/redis.sock" },
        { "user=passwordless dbname=x", "user=passwordless dbname=x" },
        { "", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = config_mask_url(cases[i].in);
        if (strcmp(m, cases[i].out) != 0)
            fail_msg("mask(%s) = %s, want %s", cases[i].in, m, cases[i].out);
        free(m);
    }
}

static void secrets_masked(void **state)
{
    (void)state;
    char *secret_file = temp_file("redis://:r3dispw@127.0.0.1:6379/2\n");
    char *env_file = xasprintf("REDIS_URL_FILE=%s", secret_file);
    const char *env[] = { "DATABASE_URL=postgresql://herald:s3cret@db/herald", env_file, NULL };
    const char *argv[] = { "--print-config", NULL };
    config cfg;
    config_cli cli;
    char *err = NULL;
    assert_int_equal(load(&cfg, &cli, argv, env, &err), 0);
    assert_true(cli.print_config);
    /* The real values are kept (trailing newline of the file removed). */
    assert_string_equal(cfg.database_url, "postgresql://herald:s3cret@db/herald");
    assert_string_equal(cfg.redis_url, "redis://:r3dispw@127.0.0.1:6379/2");
    assert_string_equal(config_source_name(&cfg, config_key_find("redis_url")), "REDIS_URL_FILE");

    /* --print-config */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print(&cfg, f);
    fclose(f);
    assert_null(strstr(text, "s3cret"));
    assert_null(strstr(text, "r3dispw"));
    assert_non_null(strstr(text, "database_url = postgresql://herald:***@db/herald"));
    assert_non_null(strstr(text, "# DATABASE_URL\n"));
    assert_non_null(strstr(text, "redis_url = redis://:***@127.0.0.1:6379/2"));
    assert_non_null(strstr(text, "# REDIS_URL_FILE\n"));
    assert_non_null(strstr(text, "workers = "));
    assert_non_null(strstr(text, "health_listen = \"\""));
    free(text);

    /* The logged config line. */
    char *log_path = temp_file("");
    FILE *lf = fopen(log_path, "w");
    log_set_fd(fileno(lf));
    config_log(&cfg);
    log_set_fd(1);
    fclose(lf);
    FILE *rf = fopen(log_path, "r");
    char line[8192];
    assert_non_null(fgets(line, sizeof line, rf));
    assert_null(fgets(line + strlen(line), (int)(sizeof line - strlen(line)), rf)); /* one */
    fclose(rf);
    assert_null(strstr(line, "s3cret"));
    assert_null(strstr(line, "r3dispw"));
    assert_non_null(strstr(line, "\"msg\":\"effective config\""));
    assert_non_null(strstr(line, "\"database_url\":\"postgresql://herald:***@db/herald\""));
    char *w = xasprintf("\"workers\":%d,", cfg.workers);
    assert_non_null(strstr(line, w));
    free(w);
    assert_non_null(strstr(line, "\"reflection\":true"));
    assert_non_null(strstr(line, "\"log.level\":\"info\""));
    unlink(log_path);
    free(log_path);
    config_fini(&cfg);

    /* A plain secret row value never appears, also via config_value_string. */
    const cfg_key *k = config_key_find("database_url");
    assert_true(k->flags & CFG_SECRET);
    unlink(secret_file);
    free(env_file);
    free(secret_file);
}

/* What --print-config prints loads back to the same values. */
static void print_config_round_trips(void **state)
{
    (void)state;
    const char *argv[] = { "--workers",       "3", "--log-format=text", "--listen", "127.0.0.1:0",
                           "--no-reflection", NULL };
    config a, b;
    config_cli cli;
    char *err = NULL;
    assert_int_equal(load(&a, &cli, argv, NULL, &err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    config_print(&a, f);
    fclose(f);
    char *path = temp_file(text);
    const char *argv2[] = { "--config", path, NULL };
    assert_int_equal(load(&b, &cli, argv2, NULL, &err), 0);
    assert_int_equal(config_changes(&a, &b, NULL, NULL), 0);
    assert_int_equal(b.workers, 3);
    assert_int_equal(config_source(&b, config_key_find("workers")), CFG_SRC_FILE);
    config_fini(&a);
    config_fini(&b);
    unlink(path);
    free(path);
    free(text);
}

typedef struct change_log {
    int n;
    char keys[8][32];
    char olds[8][64];
    char news[8][64];
    unsigned flags[8];
} change_log;

static void record_change(const cfg_key *k, const char *o, const char *n, void *user)
{
    change_log *cl = user;
    if (cl->n >= 8)
        return;
    snprintf(cl->keys[cl->n], 32, "%s", k->name);
    snprintf(cl->olds[cl->n], 64, "%s", o);
    snprintf(cl->news[cl->n], 64, "%s", n);
    cl->flags[cl->n] = k->flags;
    cl->n++;
}

static void reload_rereads_file(void **state)
{
    (void)state;
    char *path = temp_file("log.level = info\nworkers = 2\n");
    const char *argv[] = { "--config", path, NULL };
    const char *argv_flag[] = { "--config", path, "--log-level", "error", NULL };
    config cur, fresh;
    config_cli cli;
    char *err = NULL;
    assert_int_equal(load(&cur, &cli, argv, NULL, &err), 0);
    assert_int_equal(cur.log_level, LOG_INFO);

    rewrite_file(path, "log.level = debug\nworkers = 4\n");
    assert_int_equal(config_reload(&cur, &fresh, &err), 0);
    assert_int_equal(fresh.log_level, LOG_DEBUG);
    change_log cl;
    memset(&cl, 0, sizeof cl);
    assert_int_equal(config_changes(&cur, &fresh, record_change, &cl), 2);
    assert_int_equal(cl.n, 2);
    assert_string_equal(cl.keys[0], "workers"); /* table order */
    assert_false(cl.flags[0] & CFG_RELOAD);
    assert_string_equal(cl.keys[1], "log.level");
    assert_true(cl.flags[1] & CFG_RELOAD);
    assert_string_equal(cl.olds[1], "info");
    assert_string_equal(cl.news[1], "debug");
    config_fini(&fresh);

    /* A bad value on reload is refused with the usual message. */
    rewrite_file(path, "log.level = chatty\n");
    char *want = xasprintf("bad value \"chatty\" for log.level (from %s:1): is not a valid "
                           "choice; allowed: one of debug, info, warn, error, off",
                           path);
    assert_int_equal(config_reload(&cur, &fresh, &err), CONFIG_EX_CONFIG);
    assert_string_equal(err, want);
    free(err);
    err = NULL;
    free(want);
    config_fini(&fresh);
    config_fini(&cur);

    /* A flag keeps beating the file after a reload. */
    rewrite_file(path, "log.level = info\n");
    assert_int_equal(load(&cur, &cli, argv_flag, NULL, &err), 0);
    rewrite_file(path, "log.level = debug\n");
    assert_int_equal(config_reload(&cur, &fresh, &err), 0);
    assert_int_equal(fresh.log_level, LOG_ERROR);
    assert_int_equal(config_changes(&cur, &fresh, NULL, NULL), 0);
    config_fini(&fresh);
    config_fini(&cur);

    unlink(path);
    free(path);
}

/* Table sanity: every default parses, names are unique, enums match log.h. */
static void table_sane(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_key_count(); i++) {
        const cfg_key *k = config_key_at(i);
        assert_non_null(k->help);
        assert_non_null(k->env);
        assert_ptr_equal(config_key_find(k->name), k);
        if (k->flags & CFG_SECRET)
            assert_int_equal(k->type, CFG_STR);
    }
    const cfg_key *lv = config_key_find("log.level");
    for (int l = LOG_DEBUG; l <= LOG_OFF; l++)
        assert_string_equal(lv->choices[l], log_level_name(l));
    assert_null(config_key_find("nope"));
    assert_ptr_equal(config_key_find("log-level"), lv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply),
        cmocka_unit_test(precedence),
        cmocka_unit_test(env_alias_and_forms),
        cmocka_unit_test(bad_values),
        cmocka_unit_test(bad_file),
        cmocka_unit_test(help_ignores_bad_values),
        cmocka_unit_test(help_lists_every_key),
        cmocka_unit_test(mask_urls),
        cmocka_unit_test(secrets_masked),
        cmocka_unit_test(print_config_round_trips),
        cmocka_unit_test(reload_rereads_file),
        cmocka_unit_test(table_sane),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
