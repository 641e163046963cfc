/* llm_parse.c - chat-completions response parsing (see llm_parse.h). */
#include "llm_parse.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "util.h"

static status fail(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static status fail(char *err, size_t errcap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (err != NULL && errcap > 0)
        (void)vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
    return ST_INTERNAL;
}

/* Parses a whole buffer as one JSON value; trailing white space only. */
static json_object *parse_json(const char *body, size_t len, char *err, size_t errcap)
{
    json_tokener *tok = NULL;
    json_object *root = NULL;

    if (len > INT_MAX) {
        fail(err, errcap, "response too large to parse");
        return NULL;
    }
    tok = json_tokener_new_ex(LLM_PARSE_MAX_DEPTH);
    if (tok == NULL)
        abort(); /* out of memory, as xmalloc */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (root == NULL || jerr != json_tokener_success) {
        if (jerr == json_tokener_continue)
            fail(err, errcap, "malformed JSON: unexpected end of data after %zu bytes", len);
        else
            fail(err, errcap, "malformed JSON at byte %zu: %s", end, json_tokener_error_desc(jerr));
        json_object_put(root);
        root = NULL;
    } else {
        while (end < len && isspace((unsigned char)body[end]))
            end++;
        if (end < len) {
            fail(err, errcap, "malformed JSON: trailing data at byte %zu", end);
            json_object_put(root);
            root = NULL;
        }
    }
    json_tokener_free(tok);
    return root;
}

/* A JSON string's bytes, refusing embedded NULs. NULL when obj is not a
 * string. */
static const char *json_str(json_object *obj, size_t *len)
{
    if (obj == NULL || !json_object_is_type(obj, json_type_string))
        return NULL;
    const char *s = json_object_get_string(obj);
    *len = (size_t)json_object_get_string_len(obj);
    return s;
}

static bool starts_with_ci(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && strncasecmp(s, prefix, n) == 0;
}

size_t llm_clean_text(char *s, size_t len)
{
    size_t a = 0, b = len;

    for (int round = 0; round < 2; round++) {
        while (a < b && isspace((unsigned char)s[a]))
            a++;
        while (b > a && isspace((unsigned char)s[b - 1]))
            b--;
        if (round == 1)
            break;
        /* A label some models put first. */
        static const char *const labels[] = { "post:", "tweet:", "text:" };
        for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
            if (starts_with_ci(s + a, b - a, labels[i])) {
                a += strlen(labels[i]);
                break;
            }
        }
        while (a < b && isspace((unsigned char)s[a]))
            a++;
        /* One pair of quotes wrapping everything (and none inside). */
        static const struct {
            const char *open, *close;
        } quotes[] = { { "\"", "\"" }, { "'", "'" }, { "\xe2\x80\x9c", "\xe2\x80\x9d" } };
        for (size_t i = 0; i < sizeof quotes / sizeof quotes[0]; i++) {
            size_t ol = strlen(quotes[i].open), cl = strlen(quotes[i].close);
            if (b - a < ol + cl || memcmp(s + a, quotes[i].open, ol) != 0 ||
                memcmp(s + b - cl, quotes[i].close, cl) != 0)
                continue;
            bool inner = false;
            for (size_t k = a + ol; k + cl <= b - cl && !inner; k++)
                inner = memcmp(s + k, quotes[i].open, ol) == 0 ||
                        memcmp(s + k, quotes[i].close, cl) == 0;
            if (!inner) {
                a += ol;
                b -= cl;
            }
            break;
        }
    }
    memmove(s, s + a, b - a);
    s[b - a] = '\0';
    return b - a;
}

/* Joins the "text" members of a content-parts array into b. */
static bool join_parts(json_object *arr, strbuf *b)
{
    size_t n = json_object_array_length(arr);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        json_object *part = json_object_array_get_idx(arr, i);
        json_object *t = NULL;
        size_t tl = 0;
        const char *ts;
        if (!json_object_is_type(part, json_type_object) ||
            !json_object_object_get_ex(part, "text", &t) || (ts = json_str(t, &tl)) == NULL)
            continue;
        strbuf_append(b, ts, tl);
        any = true;
    }
    return any;
}

status llm_parse_response(const char *body, size_t len, llm_parsed *out, char *err, size_t errcap)
{
    status st = ST_INTERNAL;
    json_object *root = NULL, *choices = NULL, *choice = NULL, *msg = NULL, *content = NULL;
    json_object *v = NULL;
    strbuf text = { 0 };
    const char *s;
    size_t sl = 0;

    memset(out, 0, sizeof *out);
    if (err != NULL && errcap > 0)
        err[0] = '\0';
    if (len == 0)
        return fail(err, errcap, "empty response body");
    root = parse_json(body, len, err, errcap);
    if (root == NULL)
        goto out;
    if (!json_object_is_type(root, json_type_object)) {
        fail(err, errcap, "response is not a JSON object");
        goto out;
    }
    if (!json_object_object_get_ex(root, "choices", &choices) ||
        !json_object_is_type(choices, json_type_array)) {
        fail(err, errcap, "response has no choices array");
        goto out;
    }
    if (json_object_array_length(choices) == 0) {
        fail(err, errcap, "response has an empty choices array");
        goto out;
    }
    choice = json_object_array_get_idx(choices, 0);
    if (!json_object_is_type(choice, json_type_object) ||
        !json_object_object_get_ex(choice, "message", &msg) ||
        !json_object_is_type(msg, json_type_object)) {
        fail(err, errcap, "response has no choices[0].message");
        goto out;
    }
    if (!json_object_object_get_ex(msg, "content", &content) || content == NULL) {
        json_object *refusal = NULL;
        size_t rl = 0;
        if (json_object_object_get_ex(msg, "refusal", &refusal) && json_str(refusal, &rl) != NULL &&
            rl > 0)
            fail(err, errcap, "the model refused to write the post");
        else
            fail(err, errcap, "response has no choices[0].message.content");
        goto out;
    }
    if ((s = json_str(content, &sl)) != NULL) {
        strbuf_append(&text, s, sl);
    } else if (json_object_is_type(content, json_type_array)) {
        if (!join_parts(content, &text)) {
            fail(err, errcap, "choices[0].message.content has no text parts");
            goto out;
        }
    } else {
        fail(err, errcap, "choices[0].message.content is not a string");
        goto out;
    }
    if (text.len == 0 || memchr(text.data, '\0', text.len) != NULL) {
        fail(err, errcap,
             text.len == 0 ? "choices[0].message.content is empty"
                           : "choices[0].message.content holds a NUL character");
        goto out;
    }
    if (!utf8_valid(text.data, text.len)) {
        fail(err, errcap, "choices[0].message.content is not valid UTF-8");
        goto out;
    }
    text.len = llm_clean_text(text.data, text.len);
    if (text.len == 0) {
        fail(err, errcap, "choices[0].message.content is blank");
        goto out;
    }

    if (json_object_object_get_ex(root, "model", &v) && (s = json_str(v, &sl)) != NULL && sl > 0 &&
        sl <= 256 && memchr(s, '\0', sl) == NULL && utf8_valid(s, sl))
        out->model = xstrndup(s, sl);
    if (json_object_object_get_ex(choice, "finish_reason", &v) && (s = json_str(v, &sl)) != NULL &&
        sl > 0 && sl <= 64 && memchr(s, '\0', sl) == NULL && utf8_valid(s, sl))
        out->finish_reason = xstrndup(s, sl);
    out->len = text.len;
    out->text = strbuf_take(&text);
    st = ST_OK;
out:
    strbuf_fini(&text);
    json_object_put(root);
    return st;
}

void llm_parsed_fini(llm_parsed *p)
{
    if (p == NULL)
        return;
    free(p->text);
    free(p->model);
    free(p->finish_reason);
    memset(p, 0, sizeof *p);
}

/* Length of the UTF-8 sequence a lead byte starts; 0 for a stray byte. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

char *llm_parse_error_message(const char *body, size_t len, const char *secret, size_t max)
{
    json_object *root = NULL, *e = NULL, *m = NULL;
    const char *s = NULL;
    size_t sl = 0;
    char *res = NULL;
    strbuf raw = { 0 }, clean = { 0 };

    if (len == 0 || max < 4)
        return NULL;
    root = parse_json(body, len, NULL, 0);
    if (root == NULL || !json_object_is_type(root, json_type_object))
        goto out;
    if (json_object_object_get_ex(root, "error", &e)) {
        if ((s = json_str(e, &sl)) == NULL && json_object_is_type(e, json_type_object) &&
            json_object_object_get_ex(e, "message", &m))
            s = json_str(m, &sl);
    } else if (json_object_object_get_ex(root, "message", &m)) {
        s = json_str(m, &sl);
    }
    if (s == NULL || sl == 0)
        goto out;

    /* Make it printable first, then mask: dropping broken bytes could join
     * the pieces of a key that the upstream split with them (found by
     * fuzzing). */
    for (size_t i = 0; i < sl;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = seq_len(c);
        if (n == 0 || i + n > sl || !utf8_valid(s + i, n)) {
            i++; /* drop a broken byte */
            continue;
        }
        if (n == 1 && (c < 0x20 || c == 0x7f))
            strbuf_putc(&raw, ' ');
        else
            strbuf_append(&raw, s + i, n);
        i += n;
    }
    size_t kl = secret != NULL ? strlen(secret) : 0;
    if (kl > 0) {
        /* "***" could complete a key holding '*': repeat until none is left. */
        for (int pass = 0; raw.len > 0 && strstr(raw.data, secret) != NULL; pass++) {
            if (pass == 4)
                goto out;
            strbuf_reset(&clean);
            for (size_t i = 0; i < raw.len;) {
                if (i + kl <= raw.len && memcmp(raw.data + i, secret, kl) == 0) {
                    strbuf_puts(&clean, "***");
                    i += kl;
                } else {
                    strbuf_putc(&clean, raw.data[i++]);
                }
            }
            strbuf_reset(&raw);
            strbuf_append(&raw, clean.data != NULL ? clean.data : "", clean.len);
        }
    }
    strbuf_reset(&clean);
    strbuf_append(&clean, raw.data != NULL ? raw.data : "", raw.len);
    if (clean.len == 0)
        goto out;
    if (clean.len > max) {
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)clean.data[cut] & 0xc0) == 0x80)
            cut--;
        /* Never end on the first characters of the key. */
        for (size_t k = kl < cut ? kl : cut; k >= 1 && kl > 0; k--) {
            if (memcmp(clean.data + cut - k, secret, k) == 0) {
                cut -= k;
                break;
            }
        }
        clean.len = cut;
        strbuf_puts(&clean, "...");
    }
    res = strbuf_take(&clean);
out:
    strbuf_fini(&raw);
    strbuf_fini(&clean);
    json_object_put(root);
    return res;
}
