/* test_llm_config.c - the llm.* settings: defaults, environment (the key
 * from HERALD_LLM_API_KEY or HERALD_LLM_API_KEY_FILE), the key masked in
 * --print-config, bad values refused with key, value and range, and
 * llm_config_from() carrying them into the provider's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "llm.h"
#include "util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static int load(config *cfg, const char *const *argv, const char *const *env, char **err)
{
    config_cli cli;
    int argc = 0;
    while (argv != NULL && argv[argc] != NULL)
        argc++;
    return config_load(cfg, &cli, argc, (char *const *)argv, (char *const *)env, err);
}

static char *print_config(const config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    config_print(cfg, f);
    (void)fclose(f);
    return text;
}

static void defaults(void **state)
{
    (void)state;
    config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, NULL, NULL, &err), 0);
    assert_string_equal(cfg.llm_url, "");
    assert_string_equal(cfg.llm_api_key, "");
    assert_int_equal(cfg.llm_timeout_ms, 20000);
    assert_int_equal(cfg.llm_connect_timeout_ms, 2000);
    assert_int_equal(cfg.llm_max_response_bytes, 1 << 20);
    assert_int_equal(cfg.llm_max_attempts, 3);
    llm_config lc;
    llm_config_from(&lc, &cfg);
    assert_string_equal(lc.url, "");
    assert_int_equal(lc.max_response_bytes, 1 << 20);
    llm_client *c = llm_new(&lc, NULL);
    assert_false(llm_configured(c));
    llm_free(c);
    config_fini(&cfg);
}

static void from_environment_and_masked(void **state)
{
    (void)state;
    const char *env[] = { "HERALD_LLM_URL=http://127.0.0.1:8080/v1/chat/completions",
                          "HERALD_LLM_MODEL=qwen2.5-7b",
                          "HERALD_LLM_API_KEY=sk-live-TOPSECRET",
                          "HERALD_LLM_TIMEOUT=45s",
                          "HERALD_LLM_CONNECT_TIMEOUT=500ms",
                          "HERALD_LLM_MAX_RESPONSE_BYTES=256KiB",
                          "HERALD_LLM_MAX_ATTEMPTS=5",
                          NULL };
    config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, NULL, env, &err), 0);
    llm_config lc;
    llm_config_from(&lc, &cfg);
    assert_string_equal(lc.url, "http://127.0.0.1:8080/v1/chat/completions");
    assert_string_equal(lc.model, "qwen2.5-7b");
    assert_string_equal(lc.api_key, "sk-live-TOPSECRET");
    assert_int_equal(lc.timeout_ms, 45000);
    assert_int_equal(lc.connect_timeout_ms, 500);
    assert_int_equal(lc.max_response_bytes, 256 * 1024);
    assert_int_equal(lc.max_attempts, 5);

    char *text = print_config(&cfg);
    assert_non_null(strstr(text, "llm.url"));
    assert_non_null(strstr(text, "qwen2.5-7b"));
    assert_null(strstr(text, "TOPSECRET")); /* --print-config masks the key */
    free(text);
    const cfg_key *k = config_key_find("llm.api_key");
    assert_non_null(k);
    assert_true(k->flags & CFG_SECRET);
    char *shown = config_value_string(&cfg, k, true);
    assert_null(strstr(shown, "TOPSECRET"));
    free(shown);
    config_fini(&cfg);
}

static void key_from_file(void **state)
{
    (void)state;
    char path[] = "/tmp/herald_llm_keyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char key[] = "sk-from-file-123\n";
    assert_int_equal(write(fd, key, sizeof key - 1), (ssize_t)(sizeof key - 1));
    close(fd);
    char *file_var = xasprintf("HERALD_LLM_API_KEY_FILE=%s", path);
    const char *env[] = { "HERALD_LLM_URL=https://llm.example/v1/chat/completions", file_var,
                          NULL };
    config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, NULL, env, &err), 0);
    assert_string_equal(cfg.llm_api_key, "sk-from-file-123"); /* newline removed */
    config_fini(&cfg);
    unlink(path);
    free(file_var);
}

static void bad_values_refused(void **state)
{
    (void)state;
    struct {
        const char *var;
        const char *key; /* the message names the key */
    } bad[] = {
        { "HERALD_LLM_URL=ftp://x/y", "llm.url" },
        { "HERALD_LLM_URL=http://", "llm.url" },
        { "HERALD_LLM_URL=http://a b/", "llm.url" },
        { "HERALD_LLM_MAX_ATTEMPTS=0", "llm.max_attempts" },
        { "HERALD_LLM_MAX_ATTEMPTS=11", "llm.max_attempts" },
        { "HERALD_LLM_TIMEOUT=5ms", "llm.timeout_ms" },
        { "HERALD_LLM_MAX_RESPONSE_BYTES=1GiB", "llm.max_response_bytes" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = { bad[i].var, NULL };
        config cfg;
        char *err = NULL;
        int rc = load(&cfg, NULL, env, &err);
        if (rc != CONFIG_EX_CONFIG || err == NULL || strstr(err, bad[i].key) == NULL)
            fail_msg("%s: rc %d, message %s", bad[i].var, rc, err != NULL ? err : "(none)");
        free(err);
        config_fini(&cfg);
    }
    /* Flags work too, and the URL check accepts https. */
    const char *argv[] = { "--llm-url", "https://api.example.com/v1/chat/completions",
                           "--llm-max-attempts=2", NULL };
    config cfg;
    char *err = NULL;
    assert_int_equal(load(&cfg, argv, NULL, &err), 0);
    assert_string_equal(cfg.llm_url, "https://api.example.com/v1/chat/completions");
    assert_int_equal(cfg.llm_max_attempts, 2);
    config_fini(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(from_environment_and_masked),
        cmocka_unit_test(key_from_file),
        cmocka_unit_test(bad_values_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
