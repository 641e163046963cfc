/* textsim.c - normalised-text hash and trigram Jaccard (see textsim.h). */
#include "textsim.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "textscan.h"

#define FP_VERSION 1

/* True when text[i..] starts a URL we drop whole. */
static bool url_at(const char *text, size_t len, size_t i)
{
    static const char *const prefixes[] = { "https://", "http://", "www." };

    if (i > 0) {
        size_t j = i - 1;
        /* only at a word start: "awww.x" is not a URL */
        unsigned char c = (unsigned char)text[j];
        if (c < 0x80 &&
            ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    for (size_t k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
        size_t n = strlen(prefixes[k]);
        if (len - i >= n && strncasecmp(text + i, prefixes[k], n) == 0)
            return true;
    }
    return false;
}

static bool is_space_cp(uint32_t cp)
{
    return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' ||
           cp == 0xA0 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x3000;
}

status textsim_normalize(const char *text, size_t len, strbuf *out)
{
    size_t i = 0;
    bool pending_space = false;
    size_t start_len = out->len;

    if (text == NULL || !utf8_valid(text, len))
        return ST_INVALID;
    while (i < len) {
        if (url_at(text, len, i)) {
            while (i < len) {
                size_t j = i;
                if (is_space_cp(textscan_next_cp(text, len, &j)))
                    break;
                i = j;
            }
            pending_space = true;
            continue;
        }
        uint32_t cp = textscan_fold_cp(textscan_next_cp(text, len, &i));
        if (cp == '\'')
            continue; /* "don't" and "dont" normalise alike */
        if (!textscan_is_word_cp(cp)) {
            pending_space = true;
            continue;
        }
        if (pending_space && out->len > start_len)
            strbuf_putc(out, ' ');
        pending_space = false;
        textscan_put_cp(out, cp);
    }
    if (out->data == NULL)
        strbuf_append(out, "", 0);
    return ST_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void textsim_fp_fini(textsim_fp *fp)
{
    if (fp == NULL)
        return;
    free(fp->grams);
    memset(fp, 0, sizeof(*fp));
}

status textsim_fp_compute(const char *text, size_t len, textsim_fp *out)
{
    status st;
    strbuf norm = { 0 };
    uint32_t *cps = NULL;
    uint64_t *grams = NULL;

    textsim_fp_fini(out);
    st = textsim_normalize(text, len, &norm);
    if (st != ST_OK)
        goto out;

    /* FNV-1a 64 of the normalised bytes */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t k = 0; k < norm.len; k++) {
        h ^= (unsigned char)norm.data[k];
        h *= 0x100000001b3ULL;
    }

    /* code points of " " + norm + " " */
    size_t ncp = 0;
    cps = xmalloc((norm.len + 2) * sizeof(*cps));
    cps[ncp++] = ' ';
    for (size_t k = 0; k < norm.len;)
        cps[ncp++] = textscan_next_cp(norm.data, norm.len, &k);
    cps[ncp++] = ' ';

    size_t n = 0;
    if (ncp >= 3) {
        grams = xmalloc((ncp - 2) * sizeof(*grams));
        for (size_t k = 0; k + 2 < ncp; k++)
            grams[n++] = ((uint64_t)cps[k] << 42) | ((uint64_t)cps[k + 1] << 21) | cps[k + 2];
        qsort(grams, n, sizeof(*grams), cmp_u64);
        size_t w = 0;
        for (size_t k = 0; k < n; k++)
            if (w == 0 || grams[w - 1] != grams[k])
                grams[w++] = grams[k];
        n = w;
    }
    out->hash = h;
    out->grams = grams;
    out->n = n;
    grams = NULL;
    st = ST_OK;
out:
    free(grams);
    free(cps);
    strbuf_fini(&norm);
    return st;
}

double textsim_similarity(const textsim_fp *a, const textsim_fp *b)
{
    size_t i = 0, j = 0, both = 0;

    if (a->hash == b->hash && a->n == b->n)
        return 1.0;
    if (a->n == 0 && b->n == 0)
        return 1.0;
    /* branch-free merge: the comparison outcomes are unpredictable */
    const uint64_t *x = a->grams, *y = b->grams;
    while (i < a->n && j < b->n) {
        uint64_t u = x[i], v = y[j];
        both += u == v;
        i += u <= v;
        j += v <= u;
    }
    size_t either = a->n + b->n - both;
    return either ? (double)both / (double)either : 1.0;
}

double textsim_compare(const char *a, size_t alen, const char *b, size_t blen)
{
    textsim_fp fa = { 0 }, fb = { 0 };
    double score = -1.0;

    if (textsim_fp_compute(a, alen, &fa) == ST_OK && textsim_fp_compute(b, blen, &fb) == ST_OK)
        score = textsim_similarity(&fa, &fb);
    textsim_fp_fini(&fa);
    textsim_fp_fini(&fb);
    return score;
}

static void put_u64(strbuf *out, uint64_t v)
{
    char b[8];
    for (int k = 0; k < 8; k++)
        b[k] = (char)(v >> (8 * k));
    strbuf_append(out, b, 8);
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

void textsim_fp_encode(const textsim_fp *fp, strbuf *out)
{
    strbuf_putc(out, FP_VERSION);
    put_u64(out, fp->hash);
    put_u64(out, fp->n);
    for (size_t k = 0; k < fp->n; k++)
        put_u64(out, fp->grams[k]);
}

status textsim_fp_decode(const void *data, size_t len, textsim_fp *out)
{
    const unsigned char *p = data;

    textsim_fp_fini(out);
    if (p == NULL || len < 17 || p[0] != FP_VERSION)
        return ST_INVALID;
    uint64_t n = get_u64(p + 9);
    if (n > (len - 17) / 8 || len != 17 + n * 8)
        return ST_INVALID;
    uint64_t *grams = n ? xmalloc(n * sizeof(*grams)) : NULL;
    for (uint64_t k = 0; k < n; k++) {
        grams[k] = get_u64(p + 17 + 8 * k);
        if (k > 0 && grams[k] <= grams[k - 1]) { /* must stay a sorted set */
            free(grams);
            return ST_INVALID;
        }
    }
    out->hash = get_u64(p + 1);
    out->grams = grams;
    out->n = (size_t)n;
    return ST_OK;
}

typedef struct ix_entry {
    char *id;
    char *excerpt;
    textsim_fp fp;
    int64_t created_ms;
} ix_entry;

struct textsim_index {
    ix_entry *v;
    size_t n;
    size_t cap;
};

textsim_index *textsim_index_new(void)
{
    return xcalloc(1, sizeof(textsim_index));
}

void textsim_index_free(textsim_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t k = 0; k < ix->n; k++) {
        free(ix->v[k].id);
        free(ix->v[k].excerpt);
        textsim_fp_fini(&ix->v[k].fp);
    }
    free(ix->v);
    free(ix);
}

static ix_entry *ix_push(textsim_index *ix)
{
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 16;
        ix->v = xrealloc(ix->v, ix->cap * sizeof(*ix->v));
    }
    ix_entry *e = &ix->v[ix->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

status textsim_index_add(textsim_index *ix, const char *id, const char *text, size_t len,
                         int64_t created_ms)
{
    textsim_fp fp = { 0 };
    char excerpt[TEXTSIM_EXCERPT_BYTES + 1];

    if (id == NULL || id[0] == '\0')
        return ST_INVALID;
    if (textsim_fp_compute(text, len, &fp) != ST_OK)
        return ST_INVALID;
    textscan_excerpt(text, len, TEXTSIM_EXCERPT_BYTES, excerpt, sizeof(excerpt));
    ix_entry *e = ix_push(ix);
    e->id = xstrdup(id);
    e->excerpt = xstrdup(excerpt);
    e->fp = fp; /* moved */
    e->created_ms = created_ms;
    return ST_OK;
}

status textsim_index_add_fp(textsim_index *ix, const char *id, const textsim_fp *fp,
                            const char *excerpt, int64_t created_ms)
{
    if (id == NULL || id[0] == '\0' || fp == NULL)
        return ST_INVALID;
    ix_entry *e = ix_push(ix);
    e->id = xstrdup(id);
    e->excerpt = xstrdup(excerpt ? excerpt : "");
    e->fp.hash = fp->hash;
    e->fp.n = fp->n;
    if (fp->n) {
        e->fp.grams = xmalloc(fp->n * sizeof(*fp->grams));
        memcpy(e->fp.grams, fp->grams, fp->n * sizeof(*fp->grams));
    }
    e->created_ms = created_ms;
    return ST_OK;
}

size_t textsim_index_count(const textsim_index *ix)
{
    return ix ? ix->n : 0;
}

bool textsim_index_nearest(const textsim_index *ix, const textsim_fp *fp, int64_t since_ms,
                           const char *exclude_id, textsim_match *out)
{
    const ix_entry *best = NULL;
    double best_score = -1.0;

    memset(out, 0, sizeof(*out));
    for (size_t k = 0; ix != NULL && k < ix->n; k++) {
        const ix_entry *e = &ix->v[k];
        if (e->created_ms < since_ms)
            continue;
        if (exclude_id != NULL && strcmp(e->id, exclude_id) == 0)
            continue;
        /* Jaccard <= min/max of the set sizes: skip what cannot beat best */
        size_t lo = e->fp.n < fp->n ? e->fp.n : fp->n;
        size_t hi = e->fp.n < fp->n ? fp->n : e->fp.n;
        if (best != NULL && e->fp.hash != fp->hash && hi > 0 &&
            (double)lo / (double)hi < best_score)
            continue;
        double s = textsim_similarity(&e->fp, fp);
        if (s > best_score ||
            (s == best_score && best != NULL && e->created_ms > best->created_ms)) {
            best = e;
            best_score = s;
        }
    }
    if (best == NULL)
        return false;
    out->id = best->id;
    out->excerpt = best->excerpt;
    out->score = best_score;
    out->exact = best->fp.hash == fp->hash && best->fp.n == fp->n;
    out->created_ms = best->created_ms;
    return true;
}
