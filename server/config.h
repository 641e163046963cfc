/* config.h - heraldd's settings: one table, four sources, one struct.
 *
 * Every setting is one row of the table in config.c (name, type, struct
 * field, default, range, flags, environment variable, help). Parsing,
 * validation, --help, --print-config, the logged start-up line and SIGHUP
 * reload are all driven by that table, so adding a setting is one row plus
 * one struct field below.
 *
 * Precedence, highest first:
 *   1. command-line flags: `--workers 4` or `--workers=4`; the flag is the key
 *      with '.' and '_' turned into '-' (`--log-level`, `--shutdown-grace-ms`).
 *      Booleans: `--reflection`, `--no-reflection`, `--reflection=false`.
 *   2. environment: the row's variable (HERALD_*, DATABASE_URL, REDIS_URL),
 *      then its alias; a secret row also reads NAME_FILE (the file's content,
 *      trailing newline removed) when NAME itself is unset.
 *   3. the config file given by --config FILE (or HERALD_CONFIG): `key = value`
 *      lines, `#` comments, optional double quotes around the value.
 *   4. the row's default.
 * Sizes take B/KiB/MiB/GiB (or KB/MB/GB) suffixes, durations ms/s/m/h (a bare
 * number is the unit in the key's name). Booleans: true/false, yes/no,
 * on/off, 1/0.
 *
 * Errors. config_load never exits and never prints: it returns an exit code
 * (CONFIG_EX_USAGE for an unknown flag or a missing flag value,
 * CONFIG_EX_CONFIG for a bad value, an unknown key in the file or an unreadable
 * file) and a message naming the key, the value (secrets masked), where it
 * came from and what is allowed. main prints it and exits with that code.
 *
 * Threads. A loaded config is immutable: any thread may read it. CFG_RELOAD
 * rows are applied on SIGHUP by the caller (see config_reload), which stores
 * the new values where the readers look (log levels are atomics in log.h);
 * the struct handed to workers keeps its start-up values. */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes (sysexits.h). heraldd uses them for start-up failures. */
enum {
    CONFIG_EX_USAGE = 64,  /* EX_USAGE: unknown flag, missing flag value */
    CONFIG_EX_CONFIG = 78, /* EX_CONFIG: bad value, bad config file */
};

typedef enum {
    CFG_INT = 0,     /* int, within [min, max] */
    CFG_STR,         /* char * (owned), optionally checked by the row */
    CFG_ENUM,        /* int: index into the row's choices */
    CFG_BOOL,        /* bool */
    CFG_BYTES,       /* int64_t bytes, within [min, max]; "1MiB" accepted */
    CFG_DURATION_MS, /* int64_t milliseconds, within [min, max]; "20s" accepted */
} cfg_type;

enum {
    CFG_SECRET = 1 << 0, /* never printed or logged; NAME_FILE accepted */
    CFG_RELOAD = 1 << 1, /* SIGHUP applies a new value */
    CFG_URL = 1 << 2,    /* printable with its password masked (user:***@) */
};

typedef enum {
    CFG_SRC_DEFAULT = 0,
    CFG_SRC_FILE,
    CFG_SRC_ENV,
    CFG_SRC_FLAG,
} cfg_source;

/* One row of the settings table. Rows are static and immutable. */
typedef struct cfg_key {
    const char *name; /* "log.level" */
    cfg_type type;
    size_t offset;              /* of the field in struct config */
    const char *dflt;           /* parsed like any other value */
    int64_t min, max;           /* INT, BYTES, DURATION_MS */
    unsigned flags;             /* CFG_SECRET | CFG_RELOAD | CFG_URL */
    const char *env;            /* "HERALD_LOG_LEVEL"; NULL: no variable */
    const char *env_alias;      /* older/conventional name, read when env is unset */
    const char *const *choices; /* ENUM: NULL-terminated, index = value */
    /* STR: extra validation; returns NULL if fine, else what is allowed. */
    const char *(*check)(const char *value);
    /* INT: the value "auto" means auto_fn() (workers). NULL: no "auto". */
    int64_t (*auto_fn)(void);
    const char *help; /* one line */
} cfg_key;

struct config_priv; /* sources, saved argv/env; private to config.c */

/* The effective settings. Strings are owned by the struct (never NULL after
 * config_load; "" means unset). */
typedef struct config {
    char *listen;                   /* listen */
    int workers;                    /* workers */
    int64_t max_recv_bytes;         /* max_recv_bytes */
    int64_t call_arena_bytes;       /* call_arena_bytes */
    int64_t default_deadline_ms;    /* default_deadline_ms */
    int log_level;                  /* log.level: LOG_DEBUG.. (log.h) */
    int log_format;                 /* log.format: log_format (log.h) */
    int64_t shutdown_delay_ms;      /* shutdown.delay_ms */
    int64_t shutdown_grace_ms;      /* shutdown.grace_ms */
    char *database_url;             /* database_url (secret) */
    char *redis_url;                /* redis_url (secret) */
    int64_t cache_local_bytes;      /* cache.local_bytes (0 = no in-process tier) */
    bool cache_version_listen;      /* cache.version_listen */
    int64_t cache_version_stale_ms; /* cache.version_stale_ms */
    bool migrate_on_start;          /* migrate_on_start */
    bool reflection;                /* reflection */
    char *health_listen;            /* health_listen ("" = off) */
    char *admin_listen;             /* admin_listen ("" = off) */
    int memory_limit_mb;            /* memory.limit_mb (0 = no limit) */
    int memory_soft_pct;            /* memory.soft_pct */
    int64_t memory_sample_ms;       /* memory.sample_ms */
    int64_t db_slow_query_ms;       /* db.slow_query_ms (0 = no slow-query log) */
    bool db_prepared_statements;    /* db.prepared_statements */
    char *tls_cert;                 /* tls.cert (path) */
    char *tls_key;                  /* tls.key (path) */
    char *tls_client_ca;            /* tls.client_ca (path; set = require client certs) */
    char *auth_tokens;              /* auth.tokens (secret; auth.h syntax; "" = auth off) */
    int auth_reflection;            /* auth.reflection: auth_reflection (auth.h) */

    /* the LLM provider (llm.h) */
    char *llm_url;                  /* llm.url ("" = no LLM) */
    char *llm_model;                /* llm.model */
    char *llm_api_key;              /* llm.api_key (secret) */
    int64_t llm_timeout_ms;         /* llm.timeout_ms */
    int64_t llm_connect_timeout_ms; /* llm.connect_timeout_ms */
    int64_t llm_max_response_bytes; /* llm.max_response_bytes */
    int llm_max_attempts;           /* llm.max_attempts */

    /* the learner (outcomes.h) */
    int64_t learning_checkpoint_ms;   /* learning.checkpoint_ms */
    int learning_half_life_days;      /* learning.half_life_days (0 = no discounting) */
    int learning_min_impressions;     /* learning.min_impressions */
    int64_t learning_job_interval_ms; /* learning.job_interval_ms */

    struct config_priv *priv;
} config;

/* What the command line asked for besides settings. Strings are owned by the
 * config they were loaded with (valid until config_fini). */
typedef struct config_cli {
    bool help;
    bool version;
    bool print_config;
    const char *config_path; /* --config or HERALD_CONFIG; NULL if none */
    const char *port_file;   /* --port-file; NULL if none */
    int n_args;              /* positional arguments, in order */
    const char *const *args;
} config_cli;

/* Loads cfg from argv[0..argc) (flags and positional arguments only: no
 * program name), envp (NULL-terminated "NAME=value" strings, may be NULL)
 * and the config file. argv and envp are copied (SIGHUP re-reads them).
 * Returns 0, CONFIG_EX_USAGE or CONFIG_EX_CONFIG; on failure *err is a
 * message for stderr (caller frees). cfg is always initialised: call
 * config_fini either way. With --help or --version the values are not
 * validated (so `--help` works with a broken environment). */
int config_load(config *cfg, config_cli *cli, int argc, char *const argv[], char *const envp[],
                char **err);
void config_fini(config *cfg); /* NULL-safe; also after a failed load */

/* Re-reads the environment (and *_FILE secrets) and the config file with the
 * same argv as cur was loaded with. On 0, *fresh is a complete new config
 * (caller finis it); see config_changes to apply it. */
int config_reload(const config *cur, config *fresh, char **err);

/* Calls fn for every row whose value differs between old and new, with the
 * printable (masked) values. Returns the number of differences. */
typedef void (*config_change_fn)(const cfg_key *k, const char *old_val, const char *new_val,
                                 void *user);
int config_changes(const config *old_cfg, const config *new_cfg, config_change_fn fn, void *user);

/* The table. */
size_t config_key_count(void);
const cfg_key *config_key_at(size_t i);
const cfg_key *config_key_find(const char *name);

/* The value of row k as text, masked when mask is set (secrets "***", URL
 * passwords "***"). Returns a new string the caller frees. */
char *config_value_string(const config *cfg, const cfg_key *k, bool mask);
/* Where row k's value came from: "default", "--workers", "HERALD_WORKERS",
 * "/etc/herald.conf:3". Borrowed from cfg. */
const char *config_source_name(const config *cfg, const cfg_key *k);
cfg_source config_source(const config *cfg, const cfg_key *k);

/* --help text: usage, commands, every row (key, flag, variable, default,
 * range or choices, help) and the other flags. */
void config_print_help(FILE *out, const char *prog);
/* --print-config: `key = value  # source` per row, secrets masked. */
void config_print(const config *cfg, FILE *out);
/* Logs the effective configuration as one INFO line (secrets masked). */
void config_log(const config *cfg);

/* Masks the password in a URL ("postgresql://u:pw@h/db" -> "postgresql://
 * u:***@h/db") and any password=... parameter (libpq key=value conninfo or
 * URL query). Returns a new string the caller frees. */
char *config_mask_url(const char *url);

/* min(2 x online CPUs, 16), at least 1: the "auto" worker count. */
int64_t config_auto_workers(void);

#endif
