/* Unit tests for the herald CLI's pure parts (client/cli_*.c): names, enum
 * values, durations, UUIDs, request flags generated from descriptors and
 * the JSON they build, the registry, and the table renderer. No network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cli.h"
#include "herald/clitest/v1/json3.pb-c.h"
#include "herald/v1/content.pb-c.h"
#include "herald/v1/ops.pb-c.h"
#include "pbjson.h"
#include "util.h"

static void names(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } camel[] = {
        { "GenerateDraft", "generate-draft" },
        { "GetSloReport", "get-slo-report" },
        { "GetSLOReport", "get-slo-report" },
        { "ListArms", "list-arms" },
        { "V2Thing", "v2-thing" },
        { "Recommend", "recommend" },
    };
    for (size_t i = 0; i < sizeof camel / sizeof camel[0]; i++) {
        char *k = cli_kebab_from_camel(camel[i].in);
        assert_string_equal(k, camel[i].out);
        free(k);
    }
    char *k = cli_kebab_from_snake("follows_per_1k_impressions");
    assert_string_equal(k, "follows-per-1k-impressions");
    free(k);
    char *v = cli_service_verb(&herald__v1__content_service__descriptor);
    assert_string_equal(v, "content");
    free(v);
    assert_ptr_equal(cli_find_verb("ops")->desc, &herald__v1__ops_service__descriptor);
    assert_null(cli_find_verb("health")); /* not an API verb: the built-in wins */
    const ProtobufCMethodDescriptor *m = cli_find_verb_method(cli_find_verb("ops"), "get-profile");
    assert_non_null(m);
    assert_string_equal(m->name, "GetProfile");
}

static void enum_values(void **state)
{
    (void)state;
    const ProtobufCEnumDescriptor *p = &herald__v1__platform__descriptor;
    assert_string_equal(cli_enum_value(p, "x"), "PLATFORM_X");
    assert_string_equal(cli_enum_value(p, "X"), "PLATFORM_X");
    assert_string_equal(cli_enum_value(p, "PLATFORM_X"), "PLATFORM_X");
    assert_string_equal(cli_enum_value(p, "platform-x"), "PLATFORM_X");
    assert_null(cli_enum_value(p, "mastodon"));
    const ProtobufCEnumValue *one = protobuf_c_enum_descriptor_get_value(p, 1);
    assert_string_equal(cli_enum_value(p, "1"), one->name);
    assert_null(cli_enum_value(p, "999"));
    const ProtobufCEnumDescriptor *c = &herald__clitest__v1__color__descriptor;
    assert_string_equal(cli_enum_value(c, "deep-blue"), "COLOR_DEEP_BLUE");
    field_flag ff = { .kind = FF_ENUM };
    flag_set fs;
    flag_set_build(&fs, &herald__clitest__v1__scalars__descriptor);
    char *choices = field_flag_enum_choices(flag_set_find(&fs, "color"));
    assert_string_equal(choices, "red|deep-blue");
    free(choices);
    (void)ff;
    flag_set_fini(&fs);
}

static void durations_and_uuids(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(cli_parse_duration_ms("10s", &ms) && ms == 10000);
    assert_true(cli_parse_duration_ms("1.5s", &ms) && ms == 1500);
    assert_true(cli_parse_duration_ms("250ms", &ms) && ms == 250);
    assert_true(cli_parse_duration_ms("2m", &ms) && ms == 120000);
    assert_true(cli_parse_duration_ms("1h", &ms) && ms == 3600000);
    assert_true(cli_parse_duration_ms("3", &ms) && ms == 3000);
    assert_true(cli_parse_duration_ms("0", &ms) && ms == 0);
    assert_false(cli_parse_duration_ms("-1s", &ms));
    assert_false(cli_parse_duration_ms("10 s", &ms));
    assert_false(cli_parse_duration_ms("soon", &ms));
    assert_false(cli_parse_duration_ms("", &ms));
    char a[37], b[37];
    cli_uuid4(a);
    cli_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

/* Applies flags (name, value pairs) over base JSON and decodes. */
static ProtobufCMessage *apply(const ProtobufCMessageDescriptor *d, const char *base,
                               const char *const *pairs, char **err_out)
{
    flag_set fs;
    flag_set_build(&fs, d);
    json_object *root = NULL;
    char *err = NULL;
    assert_int_equal(pbjson_parse(base, strlen(base), &root, &err), ST_OK);
    ProtobufCMessage *m = NULL;
    bool ok = true;
    for (size_t i = 0; pairs[i] && ok; i += 2) {
        const field_flag *ff = flag_set_find(&fs, pairs[i]);
        if (!ff)
            fail_msg("no flag --%s", pairs[i]);
        size_t seen = 0;
        for (size_t k = 0; k < i; k += 2)
            seen += flag_set_find(&fs, pairs[k]) == ff;
        ok = field_flag_apply(ff, pairs[i + 1], seen, root, &err);
    }
    if (ok) {
        pbjson_options o = { 0 };
        if (pbjson_decode(root, d, &o, &m, &err) != ST_OK)
            m = NULL;
    }
    json_object_put(root);
    flag_set_fini(&fs);
    if (err_out)
        *err_out = err;
    else
        free(err);
    return m;
}

static void flags_from_descriptors(void **state)
{
    (void)state;
    flag_set fs;
    flag_set_build(&fs, &herald__clitest__v1__scalars__descriptor);
    /* Every field has a flag; nested messages get dotted ones. */
    const char *expect[] = { "i32",        "r-i64",       "text",
                             "blob",       "color",       "inner",
                             "inner.name", "inner.count", "inner.children",
                             "r-inner",    "choice-text", "snake-case-name",
                             NULL };
    for (size_t i = 0; expect[i]; i++)
        assert_non_null(flag_set_find(&fs, expect[i]));
    assert_non_null(flag_set_find(&fs, "snake_case_name")); /* proto spelling */
    assert_null(flag_set_find(&fs, "inner.children.name")); /* not below repeated */
    assert_string_equal(flag_set_suggest(&fs, "txet"), "text");
    assert_null(flag_set_suggest(&fs, "completely-different"));
    assert_string_equal(field_flag_type(flag_set_find(&fs, "i64")), "int64");
    assert_string_equal(field_flag_type(flag_set_find(&fs, "inner")), "json");
    assert_true(flag_set_find(&fs, "r-text")->repeated);
    flag_set_fini(&fs);

    /* The whole request API has flags, and none collide. */
    for (size_t s = 0; s < registry_n_services; s++) {
        const ProtobufCServiceDescriptor *sd = registry_services[s].desc;
        for (unsigned i = 0; i < sd->n_methods; i++) {
            flag_set_build(&fs, sd->methods[i].input);
            for (size_t a = 0; a < fs.n; a++) {
                for (size_t b = a + 1; b < fs.n; b++)
                    assert_string_not_equal(fs.flags[a].name, fs.flags[b].name);
            }
            flag_set_fini(&fs);
        }
    }
}

static void flags_build_json(void **state)
{
    (void)state;
    const char *pairs[] = { "text",       "over", "r-text",  "a",
                            "r-text",     "b",    "color",   "red",
                            "inner.name", "n",    "i64",     "-9007199254740993",
                            "flag",       "true", "blob",    "hi",
                            "choice-num", "7",    "r-color", "deep-blue",
                            NULL };
    char *err = NULL;
    Herald__Clitest__V1__Scalars *s = (Herald__Clitest__V1__Scalars *)apply(
        &herald__clitest__v1__scalars__descriptor,
        "{\"text\":\"base\",\"r_text\":[\"x\",\"y\",\"z\"],\"inner\":{\"count\":\"5\"},\"u32\":9}",
        pairs, &err);
    if (!s)
        fail_msg("%s", err);
    assert_string_equal(s->text, "over"); /* the flag wins over -d */
    assert_int_equal(s->n_r_text, 2);     /* first use replaces -d's list */
    assert_string_equal(s->r_text[1], "b");
    assert_int_equal(s->color, HERALD__CLITEST__V1__COLOR__COLOR_RED);
    assert_string_equal(s->inner->name, "n");
    assert_int_equal(s->inner->count, 5); /* -d's sibling kept */
    assert_true(s->i64 == -INT64_C(9007199254740993));
    assert_true(s->flag);
    assert_int_equal(s->blob.len, 2);
    assert_memory_equal(s->blob.data, "hi", 2);
    assert_int_equal(s->choice_num, 7);
    assert_int_equal(s->u32, 9);
    assert_int_equal(s->n_r_color, 1);
    protobuf_c_message_free_unpacked(&s->base, NULL);

    /* Whole-message JSON flags, maps and well-known types. */
    const char *p2[] = { "inner", "{\"name\":\"j\",\"count\":\"2\"}", NULL };
    s = (Herald__Clitest__V1__Scalars *)apply(&herald__clitest__v1__scalars__descriptor, "{}", p2,
                                              NULL);
    assert_string_equal(s->inner->name, "j");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    const char *p3[] = { "str-str", "a=1",       "str-str",     "b=x=y", "i32-i64",
                         "-3=4",    "u32-color", "2=deep-blue", NULL };
    Herald__Clitest__V1__Maps *mp =
        (Herald__Clitest__V1__Maps *)apply(&herald__clitest__v1__maps__descriptor, "{}", p3, &err);
    if (!mp)
        fail_msg("%s", err);
    assert_int_equal(mp->n_str_str, 2);
    assert_string_equal(mp->str_str[1]->value, "x=y");
    assert_int_equal(mp->i32_i64[0]->key, -3);
    assert_int_equal(mp->u32_color[0]->value, HERALD__CLITEST__V1__COLOR__COLOR_DEEP_BLUE);
    protobuf_c_message_free_unpacked(&mp->base, NULL);
    const char *p4[] = { "ts",    "2026-01-31", "dur",
                         "1.5m",  "mask",       "display-name,posting_policy.min-gap",
                         "w-i64", "12",         "w-bool",
                         "false", NULL };
    Herald__Clitest__V1__WellKnown *w = (Herald__Clitest__V1__WellKnown *)apply(
        &herald__clitest__v1__well_known__descriptor, "{}", p4, &err);
    if (!w)
        fail_msg("%s", err);
    assert_true(w->ts->seconds == INT64_C(1769817600));
    assert_int_equal(w->dur->seconds, 90);
    assert_string_equal(w->mask->paths[0], "display_name");
    assert_string_equal(w->mask->paths[1], "posting_policy.min_gap");
    assert_int_equal(w->w_i64->value, 12);
    assert_false(w->w_bool->value);
    protobuf_c_message_free_unpacked(&w->base, NULL);
    /* now+1h lands an hour ahead (within a minute). */
    const char *p5[] = { "ts", "now+1h", NULL };
    w = (Herald__Clitest__V1__WellKnown *)apply(&herald__clitest__v1__well_known__descriptor, "{}",
                                                p5, NULL);
    int64_t ahead = w->ts->seconds - now_real_ms() / 1000;
    assert_true(ahead > 3540 && ahead < 3660);
    protobuf_c_message_free_unpacked(&w->base, NULL);

    /* Errors name the flag. */
    const char *bad[][3] = {
        { "i32", "abc", "--i32: expected an integer" },
        { "u32", "-1", "--u32: expected a non-negative integer" },
        { "flag", "maybe", "--flag: expected true or false" },
        { "color", "green", "--color: unknown value \"green\" (one of red|deep-blue)" },
        { "inner", "[1]", "--inner: expected a JSON object" },
        { "dbl", "1.2.3", "--dbl: expected a number" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *pb[] = { bad[i][0], bad[i][1], NULL };
        assert_null(apply(&herald__clitest__v1__scalars__descriptor, "{}", pb, &err));
        assert_non_null(err);
        if (strncmp(err, bad[i][2], strlen(bad[i][2])) != 0)
            fail_msg("error \"%s\" does not start with \"%s\"", err, bad[i][2]);
        free(err);
    }
    const char *pm[] = { "str-str", "novalue", NULL };
    assert_null(apply(&herald__clitest__v1__maps__descriptor, "{}", pm, &err));
    assert_string_equal(err, "--str-str: expected key=value, got \"novalue\"");
    free(err);
    /* Range checks happen in the decoder. */
    const char *pr[] = { "i32", "2147483648", NULL };
    assert_null(apply(&herald__clitest__v1__scalars__descriptor, "{}", pr, &err));
    assert_non_null(strstr(err, "out of range"));
    free(err);
}

static char *render_table(const char *json)
{
    json_object *j = NULL;
    char *err = NULL;
    assert_int_equal(pbjson_parse(json, strlen(json), &j, &err), ST_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    out_table(fp, j);
    fclose(fp);
    json_object_put(j);
    return buf;
}

static void tables(void **state)
{
    (void)state;
    char *t = render_table("{\"profiles\":[{\"profileId\":\"p1\",\"displayName\":\"Sleep "
                           "Coach\",\"policy\":{\"maxPostsPerDay\":3}},{\"profileId\":\"p22\","
                           "\"displayName\":\"\xc3\x89t\xc3\xa9\"}],\"nextPageToken\":\"abc\"}");
    assert_string_equal(t, "PROFILE_ID  DISPLAY_NAME  POLICY.MAX_POSTS_PER_DAY\n"
                           "p1          Sleep Coach   3\n"
                           "p22         \xc3\x89t\xc3\xa9\n"
                           "\n"
                           "nextPageToken: abc\n");
    free(t);
    /* Columns keep field order when the first row lacks some fields. */
    t = render_table("{\"rows\":[{\"a\":1,\"d\":4},{\"a\":1,\"b\":2,\"c\":3,\"d\":4}]}");
    assert_string_equal(t, "A  B  C  D\n1        4\n1  2  3  4\n");
    free(t);
    t = render_table("{\"status\":\"SERVING\"}");
    assert_string_equal(t, "status: SERVING\n");
    free(t);
    t = render_table("{\"post\":{\"postId\":\"a\",\"text\":\"line one\\nline two\","
                     "\"tags\":[\"x\",\"y\"]},\"count\":\"2\"}");
    assert_string_equal(t, "post:\n"
                           "  postId: a\n"
                           "  text:\n"
                           "    line one\n"
                           "    line two\n"
                           "  tags:   x, y\n"
                           "count: 2\n");
    free(t);
    t = render_table("{}");
    assert_string_equal(t, "(empty)\n");
    free(t);
    /* Long cells are cut at a code point, with an ellipsis. */
    strbuf b = { 0 };
    strbuf_puts(&b, "{\"rows\":[{\"t\":\"");
    for (int i = 0; i < 100; i++)
        strbuf_puts(&b, "\xc3\xa9");
    strbuf_puts(&b, "\"}]}");
    t = render_table(b.data);
    assert_int_equal(utf8_count(t, strlen(t)), 2 + 60 + 1); /* "T\n" + cell + "\n" */
    assert_true(utf8_valid(t, strlen(t)));
    free(t);
    strbuf_fini(&b);
}

static void registry_lookups(void **state)
{
    (void)state;
    const registry_service *s = NULL;
    const ProtobufCMethodDescriptor *m = NULL;
    assert_true(registry_method_find("herald.v1.OpsService/GetProfile", &s, &m));
    assert_string_equal(m->name, "GetProfile");
    assert_true(registry_method_find("/grpc.health.v1.Health/Watch", &s, &m));
    assert_false(s->api);
    assert_true(registry_method_find("herald.v1.ContentService.GenerateDraft", &s, &m));
    assert_true(s->api);
    assert_false(registry_method_find("herald.v1.OpsService/Nope", &s, &m));
    assert_false(registry_method_find("nothing", &s, &m));
    assert_non_null(registry_message_find("google.rpc.BadRequest"));
    assert_non_null(registry_message_find(".herald.v1.Post"));
    assert_null(registry_message_find("herald.v1.Nope"));
    assert_non_null(registry_enum_find("herald.v1.Platform"));
    /* Every API service of the descriptor set is in the registry, and the
     * method lists agree (what `herald list` shows, the CLI can call). */
    const descset *ds = cli_descset();
    for (size_t i = 0; i < descset_service_count(ds); i++) {
        const descset_symbol *sym = descset_service_at(ds, i);
        const registry_service *rs = registry_service_find(sym->name);
        assert_non_null(rs);
        const Google__Protobuf__ServiceDescriptorProto *sp = sym->proto;
        assert_int_equal(sp->n_method, rs->desc->n_methods);
        for (size_t k = 0; k < sp->n_method; k++)
            assert_string_equal(sp->method[k]->name, rs->desc->methods[k].name);
    }
}

static void comments(void **state)
{
    (void)state;
    /* A field in a single-member oneof falls back to the oneof's comment. */
    char *c = cli_symbol_comment("herald.v1.GenerateDraftRequest.seed");
    assert_non_null(c);
    assert_non_null(strstr(c, "seed"));
    assert_null(strstr(c, "See seed_opt"));
    free(c);
    char *f = cli_first_sentence("Lists posts, e.g. drafts. More text.\nSecond line.");
    assert_string_equal(f, "Lists posts, e.g. drafts.");
    free(f);
    bool cs, ss;
    const registry_service *s = NULL;
    const ProtobufCMethodDescriptor *m = NULL;
    assert_true(registry_method_find("grpc.health.v1.Health/Watch", &s, &m));
    cli_method_kind(s->desc, m, &cs, &ss);
    assert_false(cs);
    assert_true(ss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names),
        cmocka_unit_test(enum_values),
        cmocka_unit_test(durations_and_uuids),
        cmocka_unit_test(flags_from_descriptors),
        cmocka_unit_test(flags_build_json),
        cmocka_unit_test(tables),
        cmocka_unit_test(registry_lookups),
        cmocka_unit_test(comments),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    descset_api_release();
    return rc;
}
