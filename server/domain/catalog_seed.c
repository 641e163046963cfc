/* catalog_seed.c - loads the catalog seed migration's INSERT rows into a
 * catalog (catalog_load_seed_sql in catalog.h). The format is deliberately
 * narrow: it reads exactly what migrations/0001_catalog.up.sql is written
 * in, and refuses anything else with the line number, so a seed edit that
 * the loader would misread fails the unit tests instead of passing quietly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "catalog_priv.h"
#include "util.h"

#define MAX_COLS 12

typedef enum { V_STR, V_NUM, V_BOOL, V_NULL } vkind;

typedef struct value {
    vkind kind;
    char *s; /* V_STR: owned, unescaped */
    double num;
    bool b;
} value;

typedef struct insert_hdr {
    char table[64];
    char cols[MAX_COLS][64];
    int ncols;
} insert_hdr;

typedef struct seed_ctx {
    catalog *cat;
    int line;
    char err[200];
} seed_ctx;

static void values_clear(value *v, int n)
{
    for (int k = 0; k < n; k++) {
        free(v[k].s);
        v[k].s = NULL;
    }
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static bool is_ident_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
}

/* Reads [a-z0-9_]+ into out. */
static const char *read_ident(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    while (p < end && is_ident_char(*p)) {
        if (n + 1 >= cap)
            return NULL;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return n ? p : NULL;
}

/* "INSERT INTO table (c1, c2, ...) VALUES" */
static bool parse_header(const char *p, const char *end, insert_hdr *h)
{
    static const char kw[] = "INSERT INTO ";

    memset(h, 0, sizeof(*h));
    if ((size_t)(end - p) < sizeof(kw) - 1 || memcmp(p, kw, sizeof(kw) - 1) != 0)
        return false;
    p = read_ident(p + sizeof(kw) - 1, end, h->table, sizeof(h->table));
    if (p == NULL)
        return false;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '(')
        return false;
    for (;;) {
        if (h->ncols == MAX_COLS)
            return false;
        p = read_ident(skip_ws(p, end), end, h->cols[h->ncols], sizeof(h->cols[0]));
        if (p == NULL)
            return false;
        h->ncols++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ')') {
            p++;
            break;
        }
        return false;
    }
    p = skip_ws(p, end);
    return (size_t)(end - p) == 6 && memcmp(p, "VALUES", 6) == 0;
}

/* One value at p; returns the position after it or NULL. */
static const char *parse_value(const char *p, const char *end, value *v)
{
    memset(v, 0, sizeof(*v));
    if (p < end && *p == '\'') {
        strbuf b = { 0 };
        p++;
        for (;;) {
            if (p >= end) {
                strbuf_fini(&b);
                return NULL;
            }
            if (*p == '\'') {
                if (p + 1 < end && p[1] == '\'') {
                    strbuf_putc(&b, '\'');
                    p += 2;
                    continue;
                }
                p++;
                break;
            }
            strbuf_putc(&b, *p++);
        }
        v->kind = V_STR;
        v->s = b.data ? strbuf_take(&b) : xstrdup("");
        return p;
    }
    const char *start = p;
    while (p < end && *p != ',' && *p != ')' && *p != ' ')
        p++;
    size_t n = (size_t)(p - start);
    if (n == 4 && memcmp(start, "true", 4) == 0) {
        v->kind = V_BOOL;
        v->b = true;
        return p;
    }
    if (n == 5 && memcmp(start, "false", 5) == 0) {
        v->kind = V_BOOL;
        return p;
    }
    if (n == 4 && memcmp(start, "NULL", 4) == 0) {
        v->kind = V_NULL;
        return p;
    }
    if (n == 0 || n > 30)
        return NULL;
    char num[32];
    memcpy(num, start, n);
    num[n] = '\0';
    for (size_t k = 0; k < n; k++) {
        char ch = num[k];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || (ch == '-' && k == 0)))
            return NULL;
    }
    char *numend;
    v->num = strtod(num, &numend);
    if (*numend != '\0')
        return NULL;
    v->kind = V_NUM;
    return p;
}

/* "(v1, v2, ...)," or "...);" -> values; *last set on ';'. */
static bool parse_row(const char *p, const char *end, value *vals, int *nvals, bool *last)
{
    int n = 0;

    *nvals = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '(')
        return false;
    for (;;) {
        if (n == MAX_COLS)
            goto bad;
        p = parse_value(skip_ws(p, end), end, &vals[n]);
        if (p == NULL)
            goto bad;
        n++;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ')') {
            p++;
            break;
        }
        goto bad;
    }
    if (p + 1 != end || (*p != ',' && *p != ';'))
        goto bad;
    *last = *p == ';';
    *nvals = n;
    return true;
bad:
    values_clear(vals, n);
    return false;
}

static int col_index(const insert_hdr *h, const char *name)
{
    for (int k = 0; k < h->ncols; k++)
        if (strcmp(h->cols[k], name) == 0)
            return k;
    return -1;
}

/* Every column of the header must be one the table knows. */
static bool cols_known(const insert_hdr *h, const char *const *known)
{
    for (int k = 0; k < h->ncols; k++) {
        bool ok = false;
        for (const char *const *q = known; *q != NULL; q++)
            ok = ok || strcmp(h->cols[k], *q) == 0;
        if (!ok)
            return false;
    }
    return true;
}

static const char *get_str(const insert_hdr *h, const value *v, const char *col)
{
    int i = col_index(h, col);
    return i >= 0 && v[i].kind == V_STR ? v[i].s : NULL;
}

/* Numeric column: the value, or dflt when the column is absent; false when
 * present with the wrong type. */
static bool get_num(const insert_hdr *h, const value *v, const char *col, double dflt, double *out)
{
    int i = col_index(h, col);
    *out = dflt;
    if (i < 0)
        return true;
    if (v[i].kind != V_NUM)
        return false;
    *out = v[i].num;
    return true;
}

static bool get_bool(const insert_hdr *h, const value *v, const char *col, bool dflt, bool *out)
{
    int i = col_index(h, col);
    *out = dflt;
    if (i < 0)
        return true;
    if (v[i].kind != V_BOOL)
        return false;
    *out = v[i].b;
    return true;
}

static status add_row(seed_ctx *x, const insert_hdr *h, const value *v)
{
    static const char *const entry_cols[] = { "key",          "display_name",
                                              "description",  "enabled",
                                              "min_chars",    "max_chars",
                                              "prior_weight", NULL };
    static const char *const fact_cols[] = { "key",    "topic_key", "fact",    "myth", "takeaway",
                                             "source", "year",      "enabled", NULL };
    static const char *const phrase_cols[] = { "phrase", "category", "enabled", NULL };
    catalog_kind kind = 0;
    status st;

    if (strcmp(h->table, "content_types") == 0)
        kind = CATALOG_CONTENT_TYPE;
    else if (strcmp(h->table, "voice_styles") == 0)
        kind = CATALOG_VOICE_STYLE;
    else if (strcmp(h->table, "topics") == 0)
        kind = CATALOG_TOPIC;

    if (kind != 0) {
        catalog_entry e = { 0 };
        double mn, mx, w;
        if (!cols_known(h, entry_cols))
            goto badcols;
        e.key = get_str(h, v, "key");
        e.display_name = get_str(h, v, "display_name");
        e.description = get_str(h, v, "description");
        if (!get_bool(h, v, "enabled", true, &e.enabled) || !get_num(h, v, "min_chars", 0, &mn) ||
            !get_num(h, v, "max_chars", 3000, &mx) || !get_num(h, v, "prior_weight", 1.0, &w))
            goto badtype;
        e.min_chars = (int)mn;
        e.max_chars = (int)mx;
        e.prior_weight = w;
        st = catalog_add_entry(x->cat, kind, &e);
    } else if (strcmp(h->table, "topic_facts") == 0) {
        catalog_fact f = { 0 };
        double year;
        if (!cols_known(h, fact_cols))
            goto badcols;
        f.key = get_str(h, v, "key");
        f.topic_key = get_str(h, v, "topic_key");
        f.fact = get_str(h, v, "fact");
        f.myth = get_str(h, v, "myth");
        f.takeaway = get_str(h, v, "takeaway");
        f.source = get_str(h, v, "source");
        if (!get_num(h, v, "year", 0, &year) || !get_bool(h, v, "enabled", true, &f.enabled))
            goto badtype;
        f.year = (int)year;
        st = catalog_add_fact(x->cat, &f);
    } else if (strcmp(h->table, "banned_phrases") == 0) {
        catalog_phrase p = { 0 };
        if (!cols_known(h, phrase_cols))
            goto badcols;
        p.phrase = get_str(h, v, "phrase");
        p.category = get_str(h, v, "category");
        if (!get_bool(h, v, "enabled", true, &p.enabled))
            goto badtype;
        st = catalog_add_phrase(x->cat, &p);
    } else {
        snprintf(x->err, sizeof(x->err), "unknown table %s", h->table);
        return ST_INVALID;
    }
    if (st != ST_OK)
        snprintf(x->err, sizeof(x->err), "%s", catalog_errmsg(x->cat));
    return st;
badcols:
    snprintf(x->err, sizeof(x->err), "unknown column in INSERT INTO %s", h->table);
    return ST_INVALID;
badtype:
    snprintf(x->err, sizeof(x->err), "wrong value type in %s row", h->table);
    return ST_INVALID;
}

status catalog_load_seed_sql(catalog *c, const char *sql, size_t len)
{
    seed_ctx x = { .cat = c };
    insert_hdr hdr;
    bool in_insert = false;
    const char *p = sql;
    const char *end = sql + len;
    value vals[MAX_COLS];
    status st = ST_OK;

    if (sql == NULL || !utf8_valid(sql, len)) {
        snprintf(x.err, sizeof(x.err), "seed is not valid UTF-8");
        st = ST_INVALID;
        goto out;
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *next = eol ? eol + 1 : end;
        x.line++;
        /* trim */
        const char *a = skip_ws(p, line_end);
        const char *b = line_end;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;

        if (!in_insert) {
            if ((size_t)(b - a) >= 7 && memcmp(a, "INSERT ", 7) == 0) {
                if (!parse_header(a, b, &hdr)) {
                    snprintf(x.err, sizeof(x.err), "malformed INSERT header");
                    st = ST_INVALID;
                    goto out;
                }
                in_insert = true;
            }
            /* anything else outside an INSERT (DDL, comments) is skipped */
        } else {
            int n = 0;
            bool last = false;
            if (!parse_row(a, b, vals, &n, &last)) {
                snprintf(x.err, sizeof(x.err), "malformed row (one row per line expected)");
                st = ST_INVALID;
                goto out;
            }
            if (n != hdr.ncols) {
                values_clear(vals, n);
                snprintf(x.err, sizeof(x.err), "row has %d values for %d columns", n, hdr.ncols);
                st = ST_INVALID;
                goto out;
            }
            st = add_row(&x, &hdr, vals);
            values_clear(vals, n);
            if (st != ST_OK)
                goto out;
            in_insert = !last;
        }
        p = next;
    }
    if (in_insert) {
        snprintf(x.err, sizeof(x.err), "INSERT INTO %s not terminated by ';'", hdr.table);
        st = ST_INVALID;
    }
out:
    if (st != ST_OK) {
        char msg[256];
        snprintf(msg, sizeof(msg), "seed line %d: %s", x.line, x.err);
        /* keep the message on the catalog like every other failure */
        catalog_set_errmsg(c, msg);
    }
    return st;
}
