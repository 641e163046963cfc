/* catalog.c - the in-memory content catalog (see catalog.h). */
#include "catalog.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "catalog_priv.h"
#include "util.h"

#define KIND_SLOTS 4 /* indexed by catalog_kind; slot 0 unused */

typedef struct entry_vec {
    catalog_entry *v;
    size_t n;
    size_t cap;
} entry_vec;

struct catalog {
    arena *strings; /* every string the catalog owns */
    entry_vec entries[KIND_SLOTS];
    catalog_fact *facts;
    size_t nfacts;
    size_t facts_cap;
    catalog_phrase *phrases;
    textscan_tokens *phrase_tokens; /* one per phrase, after finish */
    size_t nphrases;
    size_t phrases_cap;
    /* per topic (same index as entries[CATALOG_TOPIC]): first fact, count */
    size_t *topic_first;
    size_t *topic_nfacts;
    bool finished;
    char err[256];
};

static status fail(catalog *c, status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static status fail(catalog *c, status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return st;
}

catalog *catalog_new(void)
{
    catalog *c = xcalloc(1, sizeof(*c));
    c->strings = arena_new(0);
    return c;
}

void catalog_free(catalog *c)
{
    if (c == NULL)
        return;
    for (int k = 0; k < KIND_SLOTS; k++)
        free(c->entries[k].v);
    free(c->facts);
    for (size_t k = 0; c->phrase_tokens != NULL && k < c->nphrases; k++)
        textscan_tokens_fini(&c->phrase_tokens[k]);
    free(c->phrase_tokens);
    free(c->phrases);
    free(c->topic_first);
    free(c->topic_nfacts);
    arena_free(c->strings);
    free(c);
}

const char *catalog_errmsg(const catalog *c)
{
    return c->err;
}

void catalog_set_errmsg(catalog *c, const char *msg)
{
    snprintf(c->err, sizeof(c->err), "%s", msg);
}

bool catalog_key_valid(const char *key)
{
    size_t n;

    if (key == NULL || !(key[0] >= 'a' && key[0] <= 'z'))
        return false;
    for (n = 0; key[n] != '\0'; n++) {
        char ch = key[n];
        bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (ch == '_') {
            /* no "__" and no trailing "_" */
            if (key[n + 1] == '_' || key[n + 1] == '\0')
                return false;
        } else if (!alnum) {
            return false;
        }
    }
    return n <= 64;
}

status catalog_key_normalize(const char *in, char *out, size_t cap)
{
    size_t n;

    if (in == NULL || cap == 0)
        return ST_INVALID;
    for (n = 0; in[n] != '\0'; n++) {
        if (n + 1 >= cap)
            return ST_INVALID;
        char ch = in[n];
        if (ch == '-')
            ch = '_';
        else if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        out[n] = ch;
    }
    out[n] = '\0';
    return catalog_key_valid(out) ? ST_OK : ST_INVALID;
}

static bool text_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    return n > 0 && utf8_valid(s, n) && utf8_count(s, n) <= max;
}

static const char *own(catalog *c, const char *s)
{
    return arena_strdup(c->strings, s ? s : "");
}

static const char *kind_name(catalog_kind kind)
{
    switch (kind) {
    case CATALOG_CONTENT_TYPE:
        return "content type";
    case CATALOG_VOICE_STYLE:
        return "voice style";
    case CATALOG_TOPIC:
        return "topic";
    }
    return "entry";
}

static bool kind_ok(catalog_kind kind)
{
    return kind == CATALOG_CONTENT_TYPE || kind == CATALOG_VOICE_STYLE || kind == CATALOG_TOPIC;
}

status catalog_add_entry(catalog *c, catalog_kind kind, const catalog_entry *e)
{
    if (c->finished)
        return fail(c, ST_FAILED_PRECONDITION, "catalog is finished");
    if (!kind_ok(kind))
        return fail(c, ST_INVALID, "unknown catalog kind %d", (int)kind);
    if (!catalog_key_valid(e->key))
        return fail(c, ST_INVALID, "%s key \"%s\" is not lower snake case (1-64 chars)",
                    kind_name(kind), e->key ? e->key : "(null)");
    if (!text_ok(e->display_name, 80))
        return fail(c, ST_INVALID, "%s %s: display name must be 1-80 characters", kind_name(kind),
                    e->key);
    if (!text_ok(e->description, 500))
        return fail(c, ST_INVALID, "%s %s: description must be 1-500 characters", kind_name(kind),
                    e->key);
    if (e->min_chars < 0 || e->max_chars < 1 || e->max_chars > 10000 || e->min_chars > e->max_chars)
        return fail(c, ST_INVALID, "%s %s: length bounds %d..%d out of order or range",
                    kind_name(kind), e->key, e->min_chars, e->max_chars);
    if (!(e->prior_weight > 0.0))
        return fail(c, ST_INVALID, "%s %s: prior weight must be > 0", kind_name(kind), e->key);
    if (catalog_find(c, kind, e->key) != NULL)
        return fail(c, ST_ALREADY_EXISTS, "%s %s already exists", kind_name(kind), e->key);

    entry_vec *vec = &c->entries[kind];
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 8;
        vec->v = xrealloc(vec->v, vec->cap * sizeof(*vec->v));
    }
    catalog_entry *dst = &vec->v[vec->n++];
    *dst = *e;
    dst->key = own(c, e->key);
    dst->display_name = own(c, e->display_name);
    dst->description = own(c, e->description);
    return ST_OK;
}

status catalog_add_fact(catalog *c, const catalog_fact *f)
{
    if (c->finished)
        return fail(c, ST_FAILED_PRECONDITION, "catalog is finished");
    if (!catalog_key_valid(f->key))
        return fail(c, ST_INVALID, "fact key \"%s\" is not lower snake case",
                    f->key ? f->key : "(null)");
    if (!catalog_key_valid(f->topic_key))
        return fail(c, ST_INVALID, "fact %s: topic key is not lower snake case", f->key);
    if (!text_ok(f->fact, 240) || !text_ok(f->myth, 200) || !text_ok(f->takeaway, 240) ||
        !text_ok(f->source, 120))
        return fail(c, ST_INVALID,
                    "fact %s: fact (1-240), myth (1-200), takeaway (1-240) and source "
                    "(1-120 chars) are required",
                    f->key);
    if (f->year < 1900 || f->year > 2100)
        return fail(c, ST_INVALID, "fact %s: year %d outside 1900-2100", f->key, f->year);
    if (catalog_find_fact(c, f->key) != NULL)
        return fail(c, ST_ALREADY_EXISTS, "fact %s already exists", f->key);

    if (c->nfacts == c->facts_cap) {
        c->facts_cap = c->facts_cap ? c->facts_cap * 2 : 64;
        c->facts = xrealloc(c->facts, c->facts_cap * sizeof(*c->facts));
    }
    catalog_fact *dst = &c->facts[c->nfacts++];
    *dst = *f;
    dst->key = own(c, f->key);
    dst->topic_key = own(c, f->topic_key);
    dst->fact = own(c, f->fact);
    dst->myth = own(c, f->myth);
    dst->takeaway = own(c, f->takeaway);
    dst->source = own(c, f->source);
    return ST_OK;
}

status catalog_add_phrase(catalog *c, const catalog_phrase *p)
{
    if (c->finished)
        return fail(c, ST_FAILED_PRECONDITION, "catalog is finished");
    if (!text_ok(p->phrase, 100))
        return fail(c, ST_INVALID, "banned phrase must be 1-100 characters of UTF-8");
    if (!catalog_key_valid(p->category))
        return fail(c, ST_INVALID, "banned phrase \"%s\": category is not lower snake case",
                    p->phrase);
    for (size_t k = 0; k < c->nphrases; k++)
        if (strcmp(c->phrases[k].phrase, p->phrase) == 0)
            return fail(c, ST_ALREADY_EXISTS, "banned phrase \"%s\" already exists", p->phrase);

    if (c->nphrases == c->phrases_cap) {
        c->phrases_cap = c->phrases_cap ? c->phrases_cap * 2 : 64;
        c->phrases = xrealloc(c->phrases, c->phrases_cap * sizeof(*c->phrases));
    }
    catalog_phrase *dst = &c->phrases[c->nphrases++];
    *dst = *p;
    dst->phrase = own(c, p->phrase);
    dst->category = own(c, p->category);
    return ST_OK;
}

static ptrdiff_t topic_index(const catalog *c, const char *key)
{
    const entry_vec *t = &c->entries[CATALOG_TOPIC];
    for (size_t k = 0; k < t->n; k++)
        if (strcmp(t->v[k].key, key) == 0)
            return (ptrdiff_t)k;
    return -1;
}

status catalog_finish(catalog *c)
{
    status st;
    catalog_fact *sorted = NULL;
    textscan_tokens *toks = NULL;
    size_t ntopics = c->entries[CATALOG_TOPIC].n;
    size_t *first = NULL, *count = NULL;

    if (c->finished)
        return fail(c, ST_FAILED_PRECONDITION, "catalog is already finished");

    first = xcalloc(ntopics + 1, sizeof(*first));
    count = xcalloc(ntopics + 1, sizeof(*count));
    for (size_t k = 0; k < c->nfacts; k++) {
        ptrdiff_t t = topic_index(c, c->facts[k].topic_key);
        if (t < 0) {
            st = fail(c, ST_NOT_FOUND, "fact %s: unknown topic %s", c->facts[k].key,
                      c->facts[k].topic_key);
            goto out;
        }
        count[t]++;
    }
    /* a stable counting sort by topic */
    for (size_t t = 1; t < ntopics; t++)
        first[t] = first[t - 1] + count[t - 1];
    sorted = xmalloc((c->nfacts ? c->nfacts : 1) * sizeof(*sorted));
    {
        size_t *fill = xcalloc(ntopics + 1, sizeof(*fill));
        for (size_t k = 0; k < c->nfacts; k++) {
            size_t t = (size_t)topic_index(c, c->facts[k].topic_key);
            sorted[first[t] + fill[t]++] = c->facts[k];
        }
        free(fill);
    }

    toks = xcalloc(c->nphrases ? c->nphrases : 1, sizeof(*toks));
    for (size_t k = 0; k < c->nphrases; k++) {
        textscan_tokens_init(&toks[k]);
        const char *ph = c->phrases[k].phrase;
        if (textscan_tokenize(ph, strlen(ph), &toks[k]) != ST_OK || toks[k].n == 0) {
            for (size_t j = 0; j <= k; j++)
                textscan_tokens_fini(&toks[j]);
            st = fail(c, ST_INVALID, "banned phrase \"%s\" has no words", ph);
            goto out;
        }
    }

    free(c->facts);
    c->facts = sorted;
    c->facts_cap = c->nfacts;
    sorted = NULL;
    c->phrase_tokens = toks;
    toks = NULL;
    c->topic_first = first;
    c->topic_nfacts = count;
    first = count = NULL;
    c->finished = true;
    st = ST_OK;
out:
    free(toks);
    free(sorted);
    free(first);
    free(count);
    return st;
}

bool catalog_finished(const catalog *c)
{
    return c->finished;
}

size_t catalog_count(const catalog *c, catalog_kind kind)
{
    return kind_ok(kind) ? c->entries[kind].n : 0;
}

const catalog_entry *catalog_entry_at(const catalog *c, catalog_kind kind, size_t i)
{
    if (!kind_ok(kind) || i >= c->entries[kind].n)
        return NULL;
    return &c->entries[kind].v[i];
}

const catalog_entry *catalog_find(const catalog *c, catalog_kind kind, const char *key)
{
    if (!kind_ok(kind) || key == NULL)
        return NULL;
    const entry_vec *vec = &c->entries[kind];
    for (size_t k = 0; k < vec->n; k++)
        if (strcmp(vec->v[k].key, key) == 0)
            return &vec->v[k];
    return NULL;
}

size_t catalog_fact_count(const catalog *c)
{
    return c->nfacts;
}

const catalog_fact *catalog_fact_at(const catalog *c, size_t i)
{
    return i < c->nfacts ? &c->facts[i] : NULL;
}

const catalog_fact *catalog_find_fact(const catalog *c, const char *key)
{
    if (key == NULL)
        return NULL;
    for (size_t k = 0; k < c->nfacts; k++)
        if (strcmp(c->facts[k].key, key) == 0)
            return &c->facts[k];
    return NULL;
}

const catalog_fact *catalog_topic_facts(const catalog *c, const char *topic_key, size_t *n)
{
    *n = 0;
    if (!c->finished || topic_key == NULL)
        return NULL;
    ptrdiff_t t = topic_index(c, topic_key);
    if (t < 0 || c->topic_nfacts[t] == 0)
        return NULL;
    *n = c->topic_nfacts[t];
    return &c->facts[c->topic_first[t]];
}

size_t catalog_phrase_count(const catalog *c)
{
    return c->nphrases;
}

const catalog_phrase *catalog_phrase_at(const catalog *c, size_t i)
{
    return i < c->nphrases ? &c->phrases[i] : NULL;
}

const textscan_tokens *catalog_phrase_tokens(const catalog *c, size_t i)
{
    if (!c->finished || i >= c->nphrases)
        return NULL;
    return &c->phrase_tokens[i];
}
