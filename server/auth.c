/* auth.c - bearer tokens with scopes (see auth.h).
 *
 * The token list is an immutable table behind an atomic pointer: a check
 * loads it once and never sees a half-built list. A reload publishes a new
 * table and keeps the old one until auth_free, because a check running on
 * another thread may still be reading it and the names it handed out stay
 * valid (a reload is an operator's SIGHUP: a few hundred bytes each). */
#include "auth.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db.h" /* db_sha256 */
#include "util.h"

#define AUTH_DOMAIN "herald.v1"
#define HERALD_PREFIX "herald.v1."

typedef struct auth_token {
    char name[AUTH_NAME_MAX + 1];
    uint8_t hash[32];
    unsigned scopes; /* closed under the implications */
} auth_token;

typedef struct auth_table {
    struct auth_table *retired_next; /* list of replaced tables, freed by auth_free */
    size_t n;
    auth_token tokens[]; /* n of them */
} auth_table;

typedef struct auth_method {
    char *path; /* "/herald.v1.OpsService/GetProfile" */
    unsigned scope;
} auth_method;

struct auth {
    auth_reflection refl;
    auth_method *methods; /* sorted by path */
    size_t n_methods;
    _Atomic(auth_table *) table; /* NULL: auth off */
    pthread_mutex_t reload_mu;   /* protects retired (reloads only) */
    auth_table *retired;
};

/* ---- scopes ---- */

unsigned auth_scope_parse(const char *word, size_t len)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        { "read", AUTH_SCOPE_READ },
        { "write", AUTH_SCOPE_WRITE },
        { "executor", AUTH_SCOPE_EXECUTOR },
        { "admin", AUTH_SCOPE_ADMIN },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, word, len) == 0)
            return names[i].bit;
    return 0;
}

unsigned auth_scope_closure(unsigned s)
{
    if (s & AUTH_SCOPE_ADMIN)
        s |= AUTH_SCOPE_READ | AUTH_SCOPE_WRITE | AUTH_SCOPE_EXECUTOR;
    if (s & (AUTH_SCOPE_WRITE | AUTH_SCOPE_EXECUTOR))
        s |= AUTH_SCOPE_READ;
    return s;
}

const char *auth_scope_name(unsigned scope)
{
    switch (scope) {
    case AUTH_SCOPE_READ:
        return "read";
    case AUTH_SCOPE_WRITE:
        return "write";
    case AUTH_SCOPE_EXECUTOR:
        return "executor";
    case AUTH_SCOPE_ADMIN:
        return "admin";
    default:
        return "open";
    }
}

/* ---- the method table ---- */

static int method_cmp(const void *a, const void *b)
{
    return strcmp(((const auth_method *)a)->path, ((const auth_method *)b)->path);
}

/* The scope word of the last "Scope: word" line of a doc comment. */
static unsigned comment_scope(const char *comment)
{
    unsigned found = 0;
    for (const char *line = comment; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
        while (n > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            n--;
        }
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            n--;
        if (n > 7 && memcmp(line, "Scope: ", 7) == 0)
            found = auth_scope_parse(line + 7, n - 7);
        line = end != NULL ? end + 1 : NULL;
    }
    return found;
}

static bool build_methods(auth *a, const descset *ds, char **err)
{
    size_t cap = 0;
    for (size_t i = 0; i < descset_service_count(ds); i++) {
        const descset_symbol *svc = descset_service_at(ds, i);
        if (strncmp(svc->name, HERALD_PREFIX, strlen(HERALD_PREFIX)) != 0)
            continue;
        const Google__Protobuf__ServiceDescriptorProto *sp = svc->proto;
        for (size_t j = 0; j < sp->n_method; j++) {
            const char *mname = sp->method[j]->name;
            char *sym = xasprintf("%s.%s", svc->name, mname);
            unsigned scope = comment_scope(descset_comment(ds, sym));
            free(sym);
            if (scope == 0) {
                *err = xasprintf("%s.%s: its doc comment has no \"Scope: "
                                 "read|write|executor|admin\" line",
                                 svc->name, mname);
                return false;
            }
            if (a->n_methods == cap) {
                cap = cap ? 2 * cap : 64;
                a->methods = xrealloc(a->methods, cap * sizeof *a->methods);
            }
            a->methods[a->n_methods].path = xasprintf("/%s/%s", svc->name, mname);
            a->methods[a->n_methods].scope = scope;
            a->n_methods++;
        }
    }
    if (a->n_methods == 0) {
        *err = xstrdup("the descriptor set has no herald.v1 service");
        return false;
    }
    qsort(a->methods, a->n_methods, sizeof *a->methods, method_cmp);
    return true;
}

unsigned auth_required_scope(const auth *a, const char *path)
{
    if (strncmp(path, "/grpc.health.v1.Health/", 23) == 0)
        return AUTH_SCOPE_OPEN;
    if (strncmp(path, "/grpc.reflection.v1.ServerReflection/", 37) == 0 ||
        strncmp(path, "/grpc.reflection.v1alpha.ServerReflection/", 42) == 0)
        return a->refl == AUTH_REFLECTION_OPEN ? AUTH_SCOPE_OPEN : AUTH_SCOPE_READ;
    auth_method key = { (char *)path, 0 };
    const auth_method *m = bsearch(&key, a->methods, a->n_methods, sizeof *a->methods, method_cmp);
    return m != NULL ? m->scope : AUTH_SCOPE_ADMIN;
}

/* ---- parsing the token list ---- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static bool token_syntax_ok(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && (name_char(t[i]) || t[i] == '~' || t[i] == '+' || t[i] == '/'))
        i++;
    if (i == 0)
        return false;
    while (i < n && t[i] == '=')
        i++;
    return i == n;
}

static bool entry_sep(char c)
{
    return c == '\n' || c == '\r' || c == ',' || c == ' ' || c == '\t';
}

/* Wipes a buffer that held token text, so a core dump is less revealing.
 * The volatile pointer keeps the compiler from dropping the stores. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* Parses one entry e[0..n) into *t. On failure *err names the entry by its
 * position and, when it is well formed, its name; never the token. */
static bool parse_entry(const char *e, size_t n, size_t pos, auth_token *t, char **err)
{
    const char *c1 = memchr(e, ':', n);
    const char *c2 = c1 != NULL ? memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - e)) : NULL;
    if (c2 == NULL) {
        *err = xasprintf("token entry %zu: expected name:scope[+scope...]:token", pos);
        return false;
    }
    size_t name_len = (size_t)(c1 - e);
    bool name_ok = name_len >= 1 && name_len <= AUTH_NAME_MAX;
    for (size_t i = 0; name_ok && i < name_len; i++)
        name_ok = name_char(e[i]);
    if (!name_ok) {
        *err = xasprintf("token entry %zu: the name must be 1..%d of [A-Za-z0-9_.-]", pos,
                         AUTH_NAME_MAX);
        return false;
    }
    memcpy(t->name, e, name_len);
    t->name[name_len] = '\0';

    unsigned scopes = 0;
    for (const char *s = c1 + 1; s != NULL;) {
        const char *plus = memchr(s, '+', (size_t)(c2 - s));
        const char *end = plus != NULL ? plus : c2;
        unsigned bit = auth_scope_parse(s, (size_t)(end - s));
        if (bit == 0) {
            *err = xasprintf("token entry %zu (%s): unknown scope \"%.*s\"; allowed: read, "
                             "write, executor, admin joined by '+'",
                             pos, t->name, (int)((end - s) > 16 ? 16 : (end - s)), s);
            return false;
        }
        scopes |= bit;
        s = plus != NULL ? plus + 1 : NULL; /* "read+" ends in an empty, unknown scope */
    }
    t->scopes = auth_scope_closure(scopes);

    const char *tok = c2 + 1;
    size_t tok_len = n - (size_t)(tok - e);
    if (tok_len < AUTH_TOKEN_MIN || tok_len > AUTH_TOKEN_MAX || !token_syntax_ok(tok, tok_len)) {
        *err = xasprintf("token entry %zu (%s): the token must be %d..%d characters of "
                         "[A-Za-z0-9-._~+/] followed by any '='",
                         pos, t->name, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX);
        return false;
    }
    db_sha256(tok, tok_len, t->hash);
    return true;
}

/* Parses the list; *out NULL when it holds no entry. */
static bool parse_tokens(const char *text, auth_table **out, char **err)
{
    *out = NULL;
    if (text == NULL)
        return true;
    size_t cap = 0, n = 0, pos = 0;
    auth_token *toks = NULL;
    bool ok = true;
    const char *p = text;
    while (ok && *p != '\0') {
        if (entry_sep(*p)) {
            p++;
            continue;
        }
        if (*p == '#') {
            while (*p != '\0' && *p != '\n')
                p++;
            continue;
        }
        const char *start = p;
        while (*p != '\0' && !entry_sep(*p))
            p++;
        pos++;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            toks = xrealloc(toks, cap * sizeof *toks);
        }
        ok = parse_entry(start, (size_t)(p - start), pos, &toks[n], err);
        for (size_t i = 0; ok && i < n; i++) {
            if (strcmp(toks[i].name, toks[n].name) == 0) {
                *err = xasprintf("token entry %zu (%s): the name is used twice", pos, toks[n].name);
                ok = false;
            } else if (memcmp(toks[i].hash, toks[n].hash, 32) == 0) {
                *err = xasprintf("token entry %zu (%s): the same token as entry %s", pos,
                                 toks[n].name, toks[i].name);
                ok = false;
            }
        }
        n++;
    }
    if (ok && n > 0) {
        auth_table *t = xcalloc(1, sizeof *t + n * sizeof t->tokens[0]);
        t->n = n;
        memcpy(t->tokens, toks, n * sizeof *toks);
        *out = t;
    }
    if (toks != NULL)
        wipe(toks, cap * sizeof *toks);
    free(toks);
    return ok;
}

/* ---- lifecycle ---- */

auth *auth_new(const descset *ds, const char *tokens, auth_reflection refl, char **err)
{
    *err = NULL;
    auth *a = xcalloc(1, sizeof *a);
    a->refl = refl;
    pthread_mutex_init(&a->reload_mu, NULL);
    atomic_init(&a->table, NULL);
    auth_table *t = NULL;
    if (!build_methods(a, ds, err) || !parse_tokens(tokens, &t, err)) {
        auth_free(a);
        return NULL;
    }
    atomic_store(&a->table, t);
    return a;
}

static void table_free(auth_table *t)
{
    if (t == NULL)
        return;
    wipe(t->tokens, t->n * sizeof t->tokens[0]);
    free(t);
}

void auth_free(auth *a)
{
    if (a == NULL)
        return;
    table_free(atomic_load(&a->table));
    while (a->retired != NULL) {
        auth_table *next = a->retired->retired_next;
        table_free(a->retired);
        a->retired = next;
    }
    for (size_t i = 0; i < a->n_methods; i++)
        free(a->methods[i].path);
    free(a->methods);
    pthread_mutex_destroy(&a->reload_mu);
    free(a);
}

bool auth_enabled(const auth *a)
{
    return a != NULL && atomic_load(&((auth *)a)->table) != NULL;
}

size_t auth_token_count(const auth *a)
{
    const auth_table *t = a != NULL ? atomic_load(&((auth *)a)->table) : NULL;
    return t != NULL ? t->n : 0;
}

status auth_reload(auth *a, const char *tokens, char **err)
{
    auth_table *t = NULL;
    *err = NULL;
    if (!parse_tokens(tokens, &t, err))
        return ST_INVALID;
    pthread_mutex_lock(&a->reload_mu);
    auth_table *old = atomic_load(&a->table);
    if (t == NULL && old != NULL) {
        pthread_mutex_unlock(&a->reload_mu);
        *err = xstrdup("the new token list is empty; turning authentication off needs a restart");
        return ST_INVALID;
    }
    atomic_store(&a->table, t);
    if (old != NULL) {
        old->retired_next = a->retired;
        a->retired = old;
    }
    pthread_mutex_unlock(&a->reload_mu);
    return ST_OK;
}

/* ---- the decision ---- */

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? (char)(b[i] + 32) : b[i];
        if (x != y)
            return false;
    }
    return true;
}

/* The token of "Bearer <token>" (scheme case-insensitive, blanks around
 * the token allowed); false when the value has another shape. */
static bool bearer_token(const char *v, size_t len, const char **tok, size_t *tok_len)
{
    if (v == NULL || len < 7 || !ascii_ieq(v, "bearer", 6) || (v[6] != ' ' && v[6] != '\t'))
        return false;
    size_t i = 7;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    if (end == i || end - i > AUTH_TOKEN_MAX)
        return false;
    *tok = v + i;
    *tok_len = end - i;
    return true;
}

/* The entry whose hash equals h, or NULL. Every entry is compared in full
 * whatever matches, and the match is selected with masks rather than a
 * branch on secret data. */
static const auth_token *table_match(const auth_table *t, const uint8_t h[32])
{
    uintptr_t found = 0;
    for (size_t i = 0; i < t->n; i++) {
        unsigned diff = 0;
        for (size_t k = 0; k < 32; k++)
            diff |= (unsigned)(t->tokens[i].hash[k] ^ h[k]);
        /* diff == 0 -> mask all ones, else 0, without a branch */
        uintptr_t mask = (uintptr_t)0 - (uintptr_t)(((diff | (0u - diff)) >> 31) ^ 1u);
        found |= mask & (uintptr_t)&t->tokens[i];
    }
    return (const auth_token *)found;
}

status auth_decide(const auth *a, const char *path, const char *authorization, size_t len,
                   const char **who, const char **reason)
{
    if (who != NULL)
        *who = NULL;
    if (reason != NULL)
        *reason = NULL;
    if (a == NULL)
        return ST_OK;
    const auth_table *t = atomic_load(&((auth *)a)->table);
    if (t == NULL)
        return ST_OK;
    unsigned need = auth_required_scope(a, path);
    if (need == AUTH_SCOPE_OPEN)
        return ST_OK;

    const char *tok = NULL;
    size_t tok_len = 0;
    if (!bearer_token(authorization, len, &tok, &tok_len)) {
        if (reason != NULL)
            *reason = authorization == NULL ? "TOKEN_MISSING" : "TOKEN_INVALID";
        return ST_UNAUTHENTICATED;
    }
    uint8_t h[32];
    db_sha256(tok, tok_len, h);
    const auth_token *m = table_match(t, h);
    wipe(h, sizeof h);
    if (m == NULL) {
        if (reason != NULL)
            *reason = "TOKEN_INVALID";
        return ST_UNAUTHENTICATED;
    }
    if (who != NULL)
        *who = m->name;
    if ((m->scopes & need) == 0) {
        if (reason != NULL)
            *reason = "SCOPE_MISSING";
        return ST_PERMISSION_DENIED;
    }
    return ST_OK;
}

status auth_check(const auth *a, rpc_call *call, const char **who)
{
    const char *name = NULL;
    const char *reason = NULL;
    if (who != NULL)
        *who = NULL;
    if (!auth_enabled(a))
        return ST_OK;
    const char *path = rpc_call_path(call);
    size_t len = 0;
    const char *v = rpc_call_metadata(call, "authorization", &len);
    status st = auth_decide(a, path, v, len, &name, &reason);
    if (who != NULL)
        *who = name;
    if (st == ST_OK)
        return st;
    rpc_call_set_error_info(call, reason, AUTH_DOMAIN);
    if (st == ST_PERMISSION_DENIED) {
        rpc_call_set_status(call, st, "token %s lacks scope %s for %s", name,
                            auth_scope_name(auth_required_scope(a, path)), path);
    } else if (v == NULL) {
        rpc_call_add_trailer(call, "www-authenticate", "Bearer", 6);
        rpc_call_set_status(call, st, "missing bearer token (authorization: Bearer <token>)");
    } else {
        rpc_call_add_trailer(call, "www-authenticate", "Bearer error=\"invalid_token\"",
                             strlen("Bearer error=\"invalid_token\""));
        rpc_call_set_status(call, st, "invalid bearer token");
    }
    return st;
}
