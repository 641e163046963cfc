/* fuzz_config.c - heraldd's configuration loader over a hostile file.
 *
 * The input is written to a private temporary file and loaded with
 * `--config FILE` (config_load, server/config.h), no environment. Then, on
 * success, every row is printed masked and --print-config is rendered.
 * Invariants: config_load returns 0, 64 or 78 and sets a message exactly
 * when it fails; a secret row's value (8+ chars) never shows up in the
 * error message, in the masked values or in --print-config. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

static char path[64];
/* Text heraldd prints for any configuration (--help, the defaults): a
 * "secret" that is a substring of it may show up legitimately. */
static char *baseline;

static void remove_file(void)
{
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(path, sizeof path, "/tmp/herald-fuzz-config-%ld.conf", (long)getpid());
    atexit(remove_file);
    atomic_store(&log_level, LOG_OFF);
    size_t len = 0;
    FILE *mem = open_memstream(&baseline, &len);
    if (mem != NULL) {
        config cfg;
        config_cli cli;
        char *err = NULL;
        char *none[] = { NULL };
        if (config_load(&cfg, &cli, 0, none, none, &err) == 0)
            config_print(&cfg, mem);
        config_print_help(mem, "heraldd");
        config_fini(&cfg);
        free(err);
        fclose(mem);
    }
    return 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* The values (8+ chars) the file gives secret rows, as a NUL-separated list
 * in out[0..cap); the number found. Values also present on another line are
 * skipped (they may be echoed legitimately from there). */
static int secret_values(const char *text, char *out, size_t cap)
{
    char *copy = strdup(text);
    int n = 0;
    size_t used = 0;
    if (copy == NULL)
        return 0;
    for (char *line = copy; line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *eq = strchr(line, '=');
        if (eq != NULL) {
            *eq = '\0';
            char *key = trim(line);
            char *val = trim(eq + 1);
            size_t vl = strlen(val);
            if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
                val[vl - 1] = '\0';
                val++;
                vl -= 2;
            }
            const cfg_key *k = config_key_find(key);
            if (k != NULL && (k->flags & CFG_SECRET) && !(k->flags & CFG_URL) && vl >= 8 &&
                used + vl + 1 < cap) {
                /* count occurrences in the whole text: only one allowed */
                const char *first = strstr(text, val);
                if (first != NULL && strstr(first + 1, val) == NULL &&
                    (baseline == NULL || strstr(baseline, val) == NULL)) {
                    memcpy(out + used, val, vl + 1);
                    used += vl + 1;
                    n++;
                }
            }
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(copy);
    return n;
}

static void check_no_secret(const char *text, const char *secrets, int n)
{
    if (text == NULL)
        return;
    const char *s = secrets;
    for (int i = 0; i < n; i++) {
        if (strstr(text, s) != NULL)
            fprintf(stderr, "secret \"%s\" shown in: %s\n", s, text);
        FUZZ_CHECK(strstr(text, s) == NULL);
        s += strlen(s) + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    if (size > 0 && fwrite(data, 1, size, f) != size) {
        fclose(f);
        return 0;
    }
    fclose(f);

    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char secrets[8192];
    int n_secrets = secret_values(text, secrets, sizeof secrets);

    config cfg;
    config_cli cli;
    char *err = NULL;
    char *argv[] = { "--config", path, NULL };
    char *envp[] = { NULL };
    int rc = config_load(&cfg, &cli, 2, argv, envp, &err);
    FUZZ_CHECK(rc == 0 || rc == CONFIG_EX_USAGE || rc == CONFIG_EX_CONFIG);
    FUZZ_CHECK((rc == 0) == (err == NULL));
    check_no_secret(err, secrets, n_secrets);
    if (rc == 0) {
        for (size_t i = 0; i < config_key_count(); i++) {
            char *v = config_value_string(&cfg, config_key_at(i), true);
            FUZZ_CHECK(v != NULL);
            check_no_secret(v, secrets, n_secrets);
            free(v);
        }
        char *printed = NULL;
        size_t printed_len = 0;
        FILE *mem = open_memstream(&printed, &printed_len);
        if (mem != NULL) {
            config_print(&cfg, mem);
            fclose(mem);
            check_no_secret(printed, secrets, n_secrets);
            free(printed);
        }
    }
    free(err);
    config_fini(&cfg);
    free(text);
    return 0;
}
