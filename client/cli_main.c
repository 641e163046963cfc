/* cli_main.c - the herald command: argument parsing, commands, exit codes.
 *
 * herald [flags] COMMAND [ARGS] [flags]. Common flags may come before or
 * after the command; after a method, a request field flag of the same name
 * wins over a common flag. Exit status: 0 OK, 1 operational error, 2 usage
 * error (with a "Try 'herald ... --help'" hint on stderr), 64 + the gRPC code
 * when the RPC fails; `health` uses grpc-health-probe's codes instead.
 *
 * Threads: the main thread does everything; a signal thread (SIGINT,
 * SIGTERM) only triggers the herald_cancel token of the running call. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pbjson.h"
#include "util.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "0.0.0"
#endif
#ifndef HERALD_COMMIT
#define HERALD_COMMIT "unknown"
#endif

enum { MAX_INPUT_BYTES = 64 * 1024 * 1024 };

typedef enum {
    GF_ADDR,
    GF_TIMEOUT,
    GF_CONNECT_TIMEOUT,
    GF_TOKEN,
    GF_HEADER,
    GF_PLAINTEXT,
    GF_TLS,
    GF_CACERT,
    GF_CERT,
    GF_KEY,
    GF_SERVERNAME,
    GF_INSECURE,
    GF_OUTPUT,
    GF_DATA,
    GF_EMIT_DEFAULTS,
    GF_VERBOSE,
    GF_HELP,
    GF_VERSION,
    /* grpc-health-probe's names, for `herald health` */
    GF_SERVICE,
    GF_RPC_TIMEOUT,
    GF_TLS_CA_CERT,
    GF_TLS_CLIENT_CERT,
    GF_TLS_CLIENT_KEY,
    GF_TLS_NO_VERIFY,
    GF_TLS_SERVER_NAME,
    GF_WATCH,
} gflag_id;

typedef struct gflag {
    const char *name;
    char short_name;
    bool value;
    gflag_id id;
    bool health; /* only after `health` */
    const char *metavar;
    const char *help;
} gflag;

/* clang-format off */
static const gflag gflags[] = {
    { "addr", 0, true, GF_ADDR, false, "HOST:PORT",
      "server address (env HERALD_ADDR; default " HERALD_DEFAULT_TARGET ")" },
    { "data", 'd', true, GF_DATA, false, "JSON|@FILE|@-",
      "request as JSON; @FILE reads a file, @- (or @) stdin; flags override it" },
    { "output", 'o', true, GF_OUTPUT, false, "json|table",
      "output format (default: table on a terminal, JSON otherwise)" },
    { "timeout", 0, true, GF_TIMEOUT, false, "DURATION", "deadline of the call (default 10s; 0 = none)" },
    { "connect-timeout", 0, true, GF_CONNECT_TIMEOUT, false, "DURATION",
      "time allowed to connect (default 10s; health: 1s)" },
    { "token", 0, true, GF_TOKEN, false, "TOKEN",
      "bearer token (env HERALD_TOKEN, or the file named by HERALD_TOKEN_FILE)" },
    { "header", 'H', true, GF_HEADER, false, "'KEY: VALUE'", "extra request metadata (repeatable)" },
    { "plaintext", 0, false, GF_PLAINTEXT, false, NULL, "no TLS (the default)" },
    { "tls", 0, false, GF_TLS, false, NULL, "use TLS, trusting the system's roots" },
    { "cacert", 0, true, GF_CACERT, false, "FILE", "TLS: trusted CA certificates (PEM)" },
    { "cert", 0, true, GF_CERT, false, "FILE", "TLS: client certificate (PEM), with --key" },
    { "key", 0, true, GF_KEY, false, "FILE", "TLS: client private key (PEM)" },
    { "servername", 0, true, GF_SERVERNAME, false, "NAME",
      "TLS: server name to verify in its certificate" },
    { "insecure", 0, false, GF_INSECURE, false, NULL,
      "TLS without verifying the server (testing only)" },
    { "emit-defaults", 0, false, GF_EMIT_DEFAULTS, false, NULL,
      "print fields that hold their default value" },
    { "verbose", 'v', false, GF_VERBOSE, false, NULL,
      "print the request, metadata and timing on stderr" },
    { "help", 'h', false, GF_HELP, false, NULL, "help for any command" },
    { "version", 0, false, GF_VERSION, false, NULL, "print the version" },
    { "service", 0, true, GF_SERVICE, true, "NAME", "service to check (default \"\": the server)" },
    { "rpc-timeout", 0, true, GF_RPC_TIMEOUT, true, "DURATION", "deadline of the check (default 1s)" },
    { "tls-ca-cert", 0, true, GF_TLS_CA_CERT, true, "FILE", "as --cacert" },
    { "tls-client-cert", 0, true, GF_TLS_CLIENT_CERT, true, "FILE", "as --cert" },
    { "tls-client-key", 0, true, GF_TLS_CLIENT_KEY, true, "FILE", "as --key" },
    { "tls-no-verify", 0, false, GF_TLS_NO_VERIFY, true, NULL, "as --insecure" },
    { "tls-server-name", 0, true, GF_TLS_SERVER_NAME, true, "NAME", "as --servername" },
    { "watch", 0, false, GF_WATCH, true, NULL, "stream status changes (Health/Watch)" },
};
/* clang-format on */

const char *const cli_global_flag_names[] = {
    "--addr",    "--data",   "--output",     "--timeout",  "--connect-timeout",
    "--token",   "--header", "--plaintext",  "--tls",      "--cacert",
    "--cert",    "--key",    "--servername", "--insecure", "--emit-defaults",
    "--verbose", "--help",   "--version",    NULL,
};

typedef enum {
    CMD_NONE = 0,
    CMD_HELP,
    CMD_VERSION,
    CMD_LIST,
    CMD_DESCRIBE,
    CMD_CALL,
    CMD_VERB, /* a friendly API verb */
    CMD_HEALTH,
    CMD_COMPLETION,
} command;

typedef struct flag_use {
    const field_flag *ff;
    const char *value;
} flag_use;

typedef struct invocation {
    command cmd;
    const char *verb; /* the command word */
    char **pos;       /* positional arguments after the command word */
    size_t n_pos;
    /* the method, once known */
    const registry_service *svc;
    const ProtobufCMethodDescriptor *method;
    flag_set fs;
    bool have_fs;
    flag_use *uses;
    size_t n_uses;
    /* common flags */
    const char *addr;
    int64_t timeout_ms;
    bool timeout_set;
    int64_t connect_timeout_ms;
    bool connect_timeout_set;
    const char *token;
    herald_metadata *md;
    size_t n_md;
    bool plaintext, tls, insecure;
    const char *cacert, *cert, *key, *servername;
    int out; /* -1 auto, else out_format */
    const char *data;
    bool emit_defaults, verbose, help, version;
    /* health */
    const char *service;
    int64_t rpc_timeout_ms;
    bool rpc_timeout_set, watch;
    char *error; /* first usage error */
} invocation;

static char *inv_context(const invocation *inv);
static int report_usage(invocation *inv);

static void usage_error(invocation *inv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void usage_error(invocation *inv, const char *fmt, ...)
{
    if (inv->error)
        return;
    va_list ap;
    va_start(ap, fmt);
    inv->error = xvasprintf(fmt, ap);
    va_end(ap);
}

/* ---- the command line ---- */

static command command_of(const char *w)
{
    static const struct {
        const char *name;
        command cmd;
    } table[] = {
        { "help", CMD_HELP },
        { "version", CMD_VERSION },
        { "list", CMD_LIST },
        { "describe", CMD_DESCRIBE },
        { "call", CMD_CALL },
        { "health", CMD_HEALTH },
        { "completion", CMD_COMPLETION },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, w) == 0)
            return table[i].cmd;
    }
    return cli_find_verb(w) ? CMD_VERB : CMD_NONE;
}

/* Learns the method once the positionals name one, and builds its flags. */
static void resolve_method(invocation *inv)
{
    if (inv->have_fs || inv->error)
        return;
    if (inv->cmd == CMD_VERB && inv->n_pos >= 1) {
        inv->method = cli_find_verb_method(inv->svc, inv->pos[0]);
        if (!inv->method) {
            char *v = cli_service_verb(inv->svc->desc);
            usage_error(inv, "\"%s\" is not a method of '%s' (see 'herald %s --help')", inv->pos[0],
                        v, v);
            free(v);
            return;
        }
    } else if (inv->cmd == CMD_CALL && inv->n_pos >= 1) {
        if (!registry_method_find(inv->pos[0], &inv->svc, &inv->method)) {
            usage_error(inv, "unknown method \"%s\" (see 'herald list')", inv->pos[0]);
            return;
        }
    } else {
        return;
    }
    flag_set_build(&inv->fs, inv->method->input);
    inv->have_fs = true;
}

static bool parse_header(invocation *inv, const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) {
        usage_error(inv, "-H wants 'key: value', got \"%s\"", h);
        return false;
    }
    char *key = xstrndup(h, (size_t)(colon - h));
    for (char *p = key; *p; p++) {
        *p = (char)tolower((unsigned char)*p);
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.')) {
            usage_error(inv, "-H: invalid character in metadata key \"%s\"", key);
            free(key);
            return false;
        }
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vlen = strlen(v);
    while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
        vlen--;
    char *value = NULL;
    size_t klen = strlen(key);
    if (klen > 4 && strcmp(key + klen - 4, "-bin") == 0) {
        uint8_t *bin = NULL;
        size_t blen = 0;
        if (!pbjson_base64_decode(v, vlen, &bin, &blen)) {
            usage_error(inv, "-H %s: a -bin value must be base64", key);
            free(key);
            return false;
        }
        value = xmalloc(blen + 1);
        if (blen)
            memcpy(value, bin, blen);
        value[blen] = '\0';
        free(bin);
        vlen = blen;
    } else {
        for (size_t i = 0; i < vlen; i++) {
            if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f) {
                usage_error(inv, "-H %s: the value must be printable ASCII", key);
                free(key);
                return false;
            }
        }
        value = xstrndup(v, vlen);
    }
    inv->md = xrealloc(inv->md, (inv->n_md + 1) * sizeof *inv->md);
    inv->md[inv->n_md].key = key;
    inv->md[inv->n_md].value = value;
    inv->md[inv->n_md].value_len = vlen;
    inv->n_md++;
    return true;
}

static void duration_flag(invocation *inv, const char *name, const char *v, int64_t *ms, bool *set)
{
    if (!cli_parse_duration_ms(v, ms))
        usage_error(inv, "--%s: expected a duration like 10s, 500ms or 2m, got \"%s\"", name, v);
    else if (set)
        *set = true;
}

static void apply_gflag(invocation *inv, const gflag *g, const char *v)
{
    if (!v)
        v = ""; /* boolean flags have none; the others always get one */
    switch (g->id) {
    case GF_ADDR:
        inv->addr = v;
        break;
    case GF_TIMEOUT:
        duration_flag(inv, g->name, v, &inv->timeout_ms, &inv->timeout_set);
        break;
    case GF_CONNECT_TIMEOUT:
        duration_flag(inv, g->name, v, &inv->connect_timeout_ms, &inv->connect_timeout_set);
        break;
    case GF_RPC_TIMEOUT:
        duration_flag(inv, g->name, v, &inv->rpc_timeout_ms, &inv->rpc_timeout_set);
        break;
    case GF_TOKEN:
        inv->token = v;
        break;
    case GF_HEADER:
        parse_header(inv, v);
        break;
    case GF_PLAINTEXT:
        inv->plaintext = true;
        break;
    case GF_TLS:
        inv->tls = true;
        break;
    case GF_CACERT:
    case GF_TLS_CA_CERT:
        inv->cacert = v;
        break;
    case GF_CERT:
    case GF_TLS_CLIENT_CERT:
        inv->cert = v;
        break;
    case GF_KEY:
    case GF_TLS_CLIENT_KEY:
        inv->key = v;
        break;
    case GF_SERVERNAME:
    case GF_TLS_SERVER_NAME:
        inv->servername = v;
        break;
    case GF_INSECURE:
    case GF_TLS_NO_VERIFY:
        inv->insecure = true;
        break;
    case GF_OUTPUT:
        if (strcmp(v, "json") == 0)
            inv->out = OUT_JSON;
        else if (strcmp(v, "table") == 0)
            inv->out = OUT_TABLE;
        else
            usage_error(inv, "-o: expected json or table, got \"%s\"", v);
        break;
    case GF_DATA:
        if (inv->data)
            usage_error(inv, "-d given twice");
        inv->data = v;
        break;
    case GF_EMIT_DEFAULTS:
        inv->emit_defaults = true;
        break;
    case GF_VERBOSE:
        inv->verbose = true;
        break;
    case GF_HELP:
        inv->help = true;
        break;
    case GF_VERSION:
        inv->version = true;
        break;
    case GF_SERVICE:
        inv->service = v;
        break;
    case GF_WATCH:
        inv->watch = true;
        break;
    }
}

static const gflag *gflag_long(const invocation *inv, const char *name)
{
    for (size_t i = 0; i < sizeof gflags / sizeof gflags[0]; i++) {
        if (strcmp(gflags[i].name, name) == 0 && (!gflags[i].health || inv->cmd == CMD_HEALTH))
            return &gflags[i];
    }
    return NULL;
}

static const gflag *gflag_short(char c)
{
    for (size_t i = 0; i < sizeof gflags / sizeof gflags[0]; i++) {
        if (gflags[i].short_name == c)
            return &gflags[i];
    }
    return NULL;
}

static void unknown_flag(invocation *inv, const char *arg)
{
    const char *suggest = NULL;
    if (inv->have_fs) {
        const char *name = arg;
        while (*name == '-')
            name++;
        char *bare = xstrndup(name, strcspn(name, "="));
        suggest = flag_set_suggest(&inv->fs, bare);
        free(bare);
    }
    if (suggest)
        usage_error(inv, "unknown flag '%s' (did you mean --%s?)", arg, suggest);
    else
        usage_error(inv, "unknown flag '%s'", arg);
}

/* One "--name[=value]" / "-x [value]" argument at argv[*i]. */
static void parse_flag(invocation *inv, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    const char *name = arg + 1;
    bool dashdash = arg[1] == '-';
    if (dashdash)
        name = arg + 2;
    const char *eq = strchr(name, '=');
    char *bare = xstrndup(name, eq ? (size_t)(eq - name) : strlen(name));
    const char *inline_value = eq ? eq + 1 : NULL;

    /* A request field flag (after the method) wins over a common flag. */
    const field_flag *ff = (dashdash && inv->have_fs) ? flag_set_find(&inv->fs, bare) : NULL;
    const gflag *g = NULL;
    if (!ff && (dashdash || strlen(bare) > 1))
        g = gflag_long(inv, bare);
    if (!ff && !g && !dashdash) {
        /* Short flags, with the value attached (-dJSON) or next. */
        g = gflag_short(name[0]);
        if (g) {
            inline_value = (name[1] != '\0') ? name + 1 : NULL;
            if (!g->value && inline_value) {
                g = NULL;
            }
        }
    }
    if (ff) {
        const char *v = inline_value;
        if (!v && ff->kind == FF_BOOL) {
            /* --flag alone means true; --flag false is also accepted. */
            if (*i + 1 < argc &&
                (strcmp(argv[*i + 1], "true") == 0 || strcmp(argv[*i + 1], "false") == 0))
                v = argv[++*i];
            else
                v = "true";
        }
        if (!v) {
            if (*i + 1 >= argc) {
                usage_error(inv, "flag --%s needs a value", ff->name);
                free(bare);
                return;
            }
            v = argv[++*i];
        }
        inv->uses = xrealloc(inv->uses, (inv->n_uses + 1) * sizeof *inv->uses);
        inv->uses[inv->n_uses].ff = ff;
        inv->uses[inv->n_uses].value = v;
        inv->n_uses++;
    } else if (g) {
        const char *v = inline_value;
        if (g->value && !v) {
            if (*i + 1 >= argc) {
                usage_error(inv, "flag %s needs a value (%s)", arg, g->metavar);
                free(bare);
                return;
            }
            v = argv[++*i];
        } else if (!g->value && v) {
            usage_error(inv, "flag --%s takes no value", g->name);
            free(bare);
            return;
        }
        apply_gflag(inv, g, v);
    } else {
        unknown_flag(inv, arg);
    }
    free(bare);
}

static void parse_args(invocation *inv, int argc, char **argv)
{
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!flags_done && strcmp(a, "--") == 0) {
            flags_done = true;
            continue;
        }
        if (!flags_done && a[0] == '-' && a[1] != '\0') {
            parse_flag(inv, argc, argv, &i);
            continue;
        }
        if (inv->cmd == CMD_NONE) {
            inv->cmd = command_of(a);
            inv->verb = a;
            if (inv->cmd == CMD_NONE)
                usage_error(inv, "unknown command \"%s\"", a);
            if (inv->cmd == CMD_VERB)
                inv->svc = cli_find_verb(a);
            continue;
        }
        inv->pos = xrealloc(inv->pos, (inv->n_pos + 1) * sizeof *inv->pos);
        inv->pos[inv->n_pos++] = argv[i];
        resolve_method(inv);
    }
}

/* ---- help ---- */

static void wrap(strbuf *b, const char *text, size_t col, size_t indent)
{
    /* Words onto lines of at most 100 columns, continuing at indent. */
    const char *p = text;
    size_t at = col;
    bool first = true;
    while (*p) {
        while (*p == ' ' || *p == '\n')
            p++;
        size_t n = strcspn(p, " \n");
        if (n == 0)
            break;
        if (!first && at + 1 + n > 100) {
            strbuf_printf(b, "\n%*s", (int)indent, "");
            at = indent;
        } else if (!first) {
            strbuf_putc(b, ' ');
            at++;
        }
        strbuf_append(b, p, n);
        at += n;
        p += n;
        first = false;
    }
    strbuf_putc(b, '\n');
}

static void help_row(strbuf *b, const char *left, const char *text)
{
    size_t w = 30;
    strbuf_printf(b, "  %s", left);
    size_t col = 2 + strlen(left);
    if (col + 2 > w) {
        strbuf_printf(b, "\n%*s", (int)w, "");
    } else {
        strbuf_printf(b, "%*s", (int)(w - col), "");
    }
    wrap(b, text ? text : "", w, w);
}

static void help_common_flags(strbuf *b, bool health)
{
    strbuf_puts(b, health ? "\nFlags (grpc-health-probe's names):\n" : "\nFlags:\n");
    for (size_t i = 0; i < sizeof gflags / sizeof gflags[0]; i++) {
        const gflag *g = &gflags[i];
        bool shared = g->id == GF_ADDR || g->id == GF_OUTPUT || g->id == GF_TOKEN ||
                      g->id == GF_HEADER || g->id == GF_CONNECT_TIMEOUT || g->id == GF_TLS ||
                      g->id == GF_VERBOSE;
        if (health ? !(g->health || shared) : g->health)
            continue;
        char *left = g->short_name ? xasprintf("-%c, --%s%s%s", g->short_name, g->name,
                                               g->metavar ? " " : "", g->metavar ? g->metavar : "")
                                   : xasprintf("--%s%s%s", g->name, g->metavar ? " " : "",
                                               g->metavar ? g->metavar : "");
        help_row(b, left, g->help);
        free(left);
    }
}

static void help_top(strbuf *b)
{
    strbuf_puts(b, "Usage: herald [flags] COMMAND [ARGS] [flags]\n\n"
                   "herald talks to a Herald control-plane server over gRPC. Its commands and\n"
                   "flags come from the API's descriptors: every RPC is a command.\n\n"
                   "Commands:\n");
    help_row(b, "list [SERVICE]", "list the services, or the methods of SERVICE");
    help_row(b, "describe [SYMBOL]",
             "show a service, method, message or enum with its documentation");
    help_row(b, "call METHOD", "call pkg.Service/Method; the request comes from -d and flags");
    help_row(b, "health", "check grpc.health.v1 (grpc-health-probe exit codes)");
    help_row(b, "completion bash", "print a bash completion script");
    help_row(b, "version", "print the version");
    strbuf_puts(b, "\nAPI commands ('herald COMMAND --help' lists the methods):\n");
    for (size_t i = 0; i < registry_n_services; i++) {
        if (!registry_services[i].api)
            continue;
        char *verb = cli_service_verb(registry_services[i].desc);
        char *c = cli_symbol_comment(registry_services[i].desc->name);
        char *first = c ? cli_first_sentence(c) : xstrdup(registry_services[i].desc->name);
        help_row(b, verb, first);
        free(first);
        free(c);
        free(verb);
    }
    help_common_flags(b, false);
    strbuf_puts(
        b, "\nExit status: 0 OK; 1 operational error (cannot connect, unreadable file);\n"
           "2 usage error; 64+CODE when the RPC fails with gRPC status CODE (69 NOT_FOUND,\n"
           "76 UNIMPLEMENTED, 78 UNAVAILABLE). 'herald health' exits like grpc-health-probe.\n");
}

static void help_service(strbuf *b, const registry_service *rs)
{
    char *verb = cli_service_verb(rs->desc);
    strbuf_printf(b, "Usage: herald %s METHOD [flags]\n\n", verb);
    char *c = cli_symbol_comment(rs->desc->name);
    strbuf_printf(b, "%s", rs->desc->name);
    if (c) {
        strbuf_puts(b, ": ");
        wrap(b, c, strlen(rs->desc->name) + 2, 0);
    } else {
        strbuf_putc(b, '\n');
    }
    free(c);
    strbuf_puts(b, "\nMethods:\n");
    for (unsigned i = 0; i < rs->desc->n_methods; i++) {
        const ProtobufCMethodDescriptor *m = &rs->desc->methods[i];
        char *k = cli_kebab_from_camel(m->name);
        char *full = xasprintf("%s.%s", rs->desc->name, m->name);
        char *mc = cli_symbol_comment(full);
        char *first = mc ? cli_first_sentence(mc) : xstrdup("");
        help_row(b, k, first);
        free(first);
        free(mc);
        free(full);
        free(k);
    }
    strbuf_printf(b, "\nRun 'herald %s METHOD --help' for a method's flags.\n", verb);
    free(verb);
}

static void help_method(strbuf *b, const invocation *inv)
{
    const ProtobufCServiceDescriptor *sd = inv->svc->desc;
    const ProtobufCMethodDescriptor *m = inv->method;
    char *ctx = inv_context(inv);
    strbuf_printf(b, "Usage: %s [flags]\n\n", ctx);
    free(ctx);
    char *full = xasprintf("%s.%s", sd->name, m->name);
    char *c = cli_symbol_comment(full);
    if (c) {
        strbuf_puts(b, c);
        strbuf_puts(b, "\n\n");
    }
    free(c);
    free(full);
    bool cs, ss;
    cli_method_kind(sd, m, &cs, &ss);
    strbuf_printf(b, "RPC:      %s/%s (%s)\n", sd->name, m->name,
                  cs && ss ? "bidi streaming"
                  : cs     ? "client streaming"
                  : ss     ? "server streaming"
                           : "unary");
    strbuf_printf(b, "Request:  %s\nResponse: %s\n", m->input->name, m->output->name);
    strbuf_printf(b, "\nRequest flags (fields of %s):\n", m->input->name);
    for (size_t i = 0; i < inv->fs.n; i++) {
        const field_flag *ff = &inv->fs.flags[i];
        char *left =
            xasprintf("--%s %s%s", ff->name, field_flag_type(ff), ff->repeated ? "..." : "");
        char *sym = xasprintf("%s.%s", ff->owner->name, ff->field->name);
        char *fc = cli_symbol_comment(sym);
        strbuf text = { 0 };
        strbuf_puts(&text, "");
        if (fc) {
            char *first = cli_first_sentence(fc);
            strbuf_puts(&text, first);
            free(first);
        }
        if (ff->kind == FF_ENUM ||
            (ff->kind == FF_MAP && ff->field->descriptor &&
             ((const ProtobufCMessageDescriptor *)ff->field->descriptor)->fields[1].type ==
                 PROTOBUF_C_TYPE_ENUM)) {
            char *ch = field_flag_enum_choices(ff);
            strbuf_printf(&text, "%s[%s]", text.len ? " " : "", ch);
            free(ch);
        }
        if (ff->depth == 1 && strcmp(ff->field->name, "request_id") == 0 &&
            ff->field->type == PROTOBUF_C_TYPE_STRING)
            strbuf_printf(&text, "%s(a UUIDv4 is generated when not given)", text.len ? " " : "");
        help_row(b, left, text.data);
        strbuf_fini(&text);
        free(fc);
        free(sym);
        free(left);
    }
    strbuf_puts(b,
                "\nRepeated fields take the flag once per value; nested fields use dotted flags\n"
                "or their parent's flag with JSON. Times: RFC 3339, a date, or now[+-]DURATION.\n"
                "-d JSON is read first and the flags are set over it.\n"
                "Common flags: see 'herald --help'.\n");
}

static void help_health(strbuf *b)
{
    strbuf_puts(b,
                "Usage: herald health [--service NAME] [--watch] [flags]\n\n"
                "Calls grpc.health.v1.Health/Check (or Watch) like grpc-health-probe and prints\n"
                "the status. Exit status: 0 SERVING, 1 bad arguments, 2 connection failed,\n"
                "3 RPC failed (including an unknown service), 4 not SERVING.\n");
    help_common_flags(b, true);
}

static void help_call(strbuf *b)
{
    strbuf_puts(b, "Usage: herald call METHOD [-d JSON|@FILE|@-] [field flags]\n\n"
                   "Calls METHOD (pkg.Service/Method or pkg.Service.Method; see 'herald list').\n"
                   "The request is the proto3 JSON of -d, with field flags set over it; a\n"
                   "client-streaming method reads one JSON value per message from -d. Server\n"
                   "streams print one message per line (JSON) or per table.\n"
                   "'herald call METHOD --help' lists the method's field flags.\n");
}

static void print_help(const invocation *inv)
{
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    switch (inv->cmd) {
    case CMD_VERB:
        if (inv->method)
            help_method(&b, inv);
        else
            help_service(&b, inv->svc);
        break;
    case CMD_CALL:
        if (inv->method)
            help_method(&b, inv);
        else
            help_call(&b);
        break;
    case CMD_HEALTH:
        help_health(&b);
        break;
    case CMD_LIST:
        strbuf_puts(&b, "Usage: herald list [SERVICE]\n\nLists the services of the API "
                        "(from the embedded descriptors), or the methods of SERVICE.\n");
        break;
    case CMD_DESCRIBE:
        strbuf_puts(&b, "Usage: herald describe [SYMBOL...]\n\nShows a service, method, "
                        "message, enum or field with its documentation; with no\nSYMBOL, "
                        "every service.\n");
        break;
    case CMD_COMPLETION:
        strbuf_puts(&b, "Usage: herald completion bash\n\nPrints a bash completion script: "
                        "source <(herald completion bash)\n");
        break;
    default:
        help_top(&b);
        break;
    }
    (void)fwrite(b.data, 1, b.len, stdout);
    strbuf_fini(&b);
}

/* "herald ops get-profile", "herald call X", "herald health", "herald". */
static char *inv_context(const invocation *inv)
{
    switch (inv->cmd) {
    case CMD_VERB: {
        char *verb = cli_service_verb(inv->svc ? inv->svc->desc : NULL);
        char *r;
        if (inv->method) {
            char *k = cli_kebab_from_camel(inv->method->name);
            r = xasprintf("herald %s %s", verb, k);
            free(k);
        } else {
            r = xasprintf("herald %s", verb);
        }
        free(verb);
        return r;
    }
    case CMD_CALL:
        return inv->method ? xasprintf("herald call %s/%s", inv->svc->desc->name, inv->method->name)
                           : xstrdup("herald call");
    case CMD_HEALTH:
        return xstrdup("herald health");
    case CMD_LIST:
        return xstrdup("herald list");
    case CMD_DESCRIBE:
        return xstrdup("herald describe");
    case CMD_COMPLETION:
        return xstrdup("herald completion");
    default:
        return xstrdup("herald");
    }
}

/* ---- I/O helpers ---- */

/* Reads a whole file ("-" = stdin). NULL with *err on failure. */
static char *read_all(const char *path, size_t *len, char **err)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!fp) {
        *err = xasprintf("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    strbuf b = { 0 };
    strbuf_puts(&b, "");
    char chunk[65536];
    size_t n;
    bool too_big = false;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0) {
        if (b.len + n > MAX_INPUT_BYTES) {
            too_big = true;
            break;
        }
        strbuf_append(&b, chunk, n);
    }
    bool failed = ferror(fp) != 0;
    if (fp != stdin)
        (void)fclose(fp);
    if (failed || too_big) {
        *err = too_big ? xasprintf("%s is larger than %d bytes", path, MAX_INPUT_BYTES)
                       : xasprintf("cannot read %s", path);
        strbuf_fini(&b);
        return NULL;
    }
    *len = b.len;
    return strbuf_take(&b);
}

/* ---- requests ---- */

static bool request_has_key(json_object *root, const char *proto_name)
{
    char *jn = pbjson_json_name(proto_name);
    bool has = json_object_object_get_ex(root, jn, NULL) ||
               json_object_object_get_ex(root, proto_name, NULL);
    free(jn);
    return has;
}

/* Mutations carry request_id: fill a UUIDv4 when the user gave none. */
static void fill_request_id(ProtobufCMessage *m, json_object *root, bool verbose)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "request_id");
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED ||
        request_has_key(root, "request_id"))
        return;
    char **slot = (char **)(void *)((char *)m + f->offset);
    if (*slot && (*slot)[0] != '\0')
        return;
    char uuid[37];
    cli_uuid4(uuid);
    if (*slot && *slot != f->default_value)
        free(*slot);
    *slot = xstrdup(uuid);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)(void *)((char *)m + f->quantifier_offset) = f->id;
    if (verbose)
        (void)fprintf(stderr, "> request_id: %s (generated)\n", uuid);
}

/* Builds the request messages: one, or for client streaming one per JSON
 * value in -d. Returns CLI_EXIT_OK or a usage/operational exit code. */
static int build_requests(invocation *inv, bool client_streaming, ProtobufCMessage ***out,
                          size_t *n_out)
{
    int rc = CLI_EXIT_OK;
    char *text = NULL;
    size_t len = 0;
    char *err = NULL;
    json_object **roots = NULL;
    size_t n_roots = 0;
    ProtobufCMessage **msgs = NULL;
    size_t n_msgs = 0;
    json_tokener *tok = NULL;

    if (inv->data) {
        if (inv->data[0] == '@') {
            text = read_all(inv->data[1] ? inv->data + 1 : "-", &len, &err);
            if (!text) {
                (void)fprintf(stderr, "herald: -d: %s\n", err);
                rc = CLI_EXIT_OPERATIONAL;
                goto out;
            }
        } else {
            text = xstrdup(inv->data);
            len = strlen(text);
        }
        if (!utf8_valid(text, len)) {
            usage_error(inv, "-d: the request is not valid UTF-8 text");
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        /* A stream of JSON values (client streaming) or exactly one. */
        tok = json_tokener_new_ex(64);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
        size_t at = 0;
        for (int guard = 0; guard < 1000000; guard++) {
            while (at < len && isspace((unsigned char)text[at]))
                at++;
            if (at >= len)
                break;
            json_tokener_reset(tok);
            /* Include the terminating NUL so a final bare number ends. */
            json_object *j = json_tokener_parse_ex(tok, text + at, (int)(len - at + 1));
            if (json_tokener_get_error(tok) != json_tokener_success) {
                usage_error(inv, "-d: invalid JSON at byte %zu: %s",
                            at + json_tokener_get_parse_end(tok),
                            json_tokener_error_desc(json_tokener_get_error(tok)));
                rc = CLI_EXIT_USAGE;
                goto out;
            }
            roots = xrealloc(roots, (n_roots + 1) *
                                        sizeof *roots); /* NOLINT(bugprone-sizeof-expression) */
            roots[n_roots++] = j;
            at += json_tokener_get_parse_end(tok);
        }
        if (n_roots == 0) {
            usage_error(inv, "-d: no JSON given");
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        if (n_roots > 1 && !client_streaming) {
            usage_error(inv, "-d: %zu JSON values given; this method takes one request", n_roots);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
    } else {
        roots = xmalloc(sizeof *roots); /* NOLINT(bugprone-sizeof-expression) */
        roots[n_roots++] = json_object_new_object();
    }

    msgs = xcalloc(n_roots, sizeof *msgs); /* NOLINT(bugprone-sizeof-expression) */
    for (size_t r = 0; r < n_roots; r++) {
        if (!json_object_is_type(roots[r], json_type_object)) {
            usage_error(inv, "-d: the request must be a JSON object");
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        /* Flags over -d, in command-line order; repeated ones append. */
        for (size_t u = 0; u < inv->n_uses; u++) {
            size_t seen = 0;
            for (size_t k = 0; k < u; k++)
                seen += inv->uses[k].ff == inv->uses[u].ff;
            if (!field_flag_apply(inv->uses[u].ff, inv->uses[u].value, seen, roots[r], &err)) {
                usage_error(inv, "%s", err);
                rc = CLI_EXIT_USAGE;
                goto out;
            }
        }
        pbjson_options o = { .resolve = registry_resolve };
        if (pbjson_decode(roots[r], inv->method->input, &o, &msgs[r], &err) != ST_OK) {
            usage_error(inv, "invalid request: %s", err);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        n_msgs++;
        fill_request_id(msgs[r], roots[r], inv->verbose);
    }
    *out = msgs;
    *n_out = n_msgs;
    msgs = NULL;
    n_msgs = 0;
out:
    for (size_t i = 0; i < n_msgs; i++)
        protobuf_c_message_free_unpacked(msgs[i], NULL);
    free(msgs);
    for (size_t i = 0; i < n_roots; i++)
        json_object_put(roots[i]);
    free(roots);
    if (tok)
        json_tokener_free(tok);
    free(err);
    free(text);
    return rc;
}

/* ---- channel ---- */

typedef struct conn {
    herald_channel *ch;
    char *ca, *cert, *key, *token;
    const char *target;
    char *service_config; /* retry policy for the one method called, or NULL */
} conn;

static void conn_close(conn *c)
{
    herald_channel_close(c->ch);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c->token);
    free(c->service_config);
    memset(c, 0, sizeof *c);
}

static char *read_pem(const char *path, char **err)
{
    size_t len;
    char *e = NULL;
    char *s = read_all(path, &len, &e);
    if (!s) {
        *err = e;
        return NULL;
    }
    return s;
}

/* Opens the channel; returns CLI_EXIT_OK, or prints why and returns
 * CLI_EXIT_OPERATIONAL (files) / CLI_EXIT_USAGE (conflicting flags). */
static int conn_open(invocation *inv, conn *c)
{
    char *err = NULL;
    herald_channel_options o;
    herald_channel_options_init(&o);
    c->target = inv->addr ? inv->addr : getenv("HERALD_ADDR");
    if (!c->target || !*c->target)
        c->target = HERALD_DEFAULT_TARGET;
    bool tls = inv->tls || inv->cacert || inv->cert || inv->key || inv->insecure || inv->servername;
    if (tls && inv->plaintext) {
        usage_error(inv, "--plaintext contradicts the TLS flags");
        return CLI_EXIT_USAGE;
    }
    if ((inv->cert == NULL) != (inv->key == NULL)) {
        usage_error(inv, "--cert and --key go together");
        return CLI_EXIT_USAGE;
    }
    o.target = c->target;
    o.tls = tls;
    o.insecure_skip_verify = inv->insecure;
    o.server_name = inv->servername;
    if (inv->cacert && !(c->ca = read_pem(inv->cacert, &err)))
        goto fail;
    if (inv->cert && !(c->cert = read_pem(inv->cert, &err)))
        goto fail;
    if (inv->key && !(c->key = read_pem(inv->key, &err)))
        goto fail;
    o.ca_pem = c->ca;
    o.cert_pem = c->cert;
    o.key_pem = c->key;
    const char *tok = inv->token ? inv->token : getenv("HERALD_TOKEN");
    const char *tok_file = getenv("HERALD_TOKEN_FILE");
    if ((!tok || !*tok) && tok_file && *tok_file) {
        size_t len;
        c->token = read_all(tok_file, &len, &err);
        if (!c->token)
            goto fail;
        while (len > 0 && isspace((unsigned char)c->token[len - 1]))
            c->token[--len] = '\0';
        tok = c->token;
    }
    if (tok && *tok)
        o.token = tok;
    o.user_agent = "herald-cli/" HERALD_VERSION;
    o.service_config_json = c->service_config;
    if (!herald_channel_open(&o, &c->ch, &err))
        goto fail;
    return CLI_EXIT_OK;
fail:
    (void)fprintf(stderr, "herald: %s\n", err ? err : "cannot create the channel");
    free(err);
    return CLI_EXIT_OPERATIONAL;
}

/* Retrying is safe for reads (no request_id) and for keyed mutations; a
 * mutation sent with an empty key is never retried (conventions §4). The
 * policy follows the server's: UNAVAILABLE only, honouring
 * grpc-retry-pushback-ms, within the call's deadline. */
static char *retry_config(const ProtobufCServiceDescriptor *s, const ProtobufCMethodDescriptor *m,
                          ProtobufCMessage *const *reqs, size_t n_reqs)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->input, "request_id");
    if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED) {
        for (size_t i = 0; i < n_reqs; i++) {
            const char *key = *(char *const *)(const void *)((const char *)reqs[i] + f->offset);
            if (!key || !key[0])
                return NULL;
        }
    }
    return xasprintf("{\"methodConfig\":[{\"name\":[{\"service\":\"%s\",\"method\":\"%s\"}],"
                     "\"retryPolicy\":{\"maxAttempts\":3,\"initialBackoff\":\"0.2s\","
                     "\"maxBackoff\":\"2s\",\"backoffMultiplier\":2,"
                     "\"retryableStatusCodes\":[\"UNAVAILABLE\"]}}]}",
                     s->name, m->name);
}

/* ---- signals ---- */

typedef struct sigctx {
    pthread_t thread;
    bool running;
    herald_cancel *cancel;
    atomic_bool interrupted;
} sigctx;

static void *signal_thread(void *arg)
{
    sigctx *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2);
    /* Bounded by the main thread's SIGUSR2 at exit. */
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR2)
            return NULL;
        atomic_store(&s->interrupted, true);
        herald_cancel_trigger(s->cancel);
    }
}

/* Blocks the signals in every thread (gRPC's inherit the mask) and starts
 * the thread that turns them into a cancellation. */
static void signals_start(sigctx *s)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    s->cancel = herald_cancel_new();
    atomic_init(&s->interrupted, false);
    s->running = pthread_create(&s->thread, NULL, signal_thread, s) == 0;
}

static void signals_stop(sigctx *s)
{
    if (s->running) {
        pthread_kill(s->thread, SIGUSR2);
        pthread_join(s->thread, NULL);
    }
    herald_cancel_free(s->cancel);
}

/* ---- commands that call ---- */

static out_format resolve_out(const invocation *inv)
{
    if (inv->out >= 0)
        return (out_format)inv->out;
    return isatty(STDOUT_FILENO) ? OUT_TABLE : OUT_JSON;
}

static bool print_one(const invocation *inv, const ProtobufCMessage *m, bool stream, size_t index)
{
    char *err = NULL;
    out_format f = resolve_out(inv);
    if (stream && f == OUT_TABLE && index > 0)
        (void)fputc('\n', stdout);
    if (!out_message(m, f, stream, inv->emit_defaults, &err)) {
        (void)fprintf(stderr, "herald: cannot print the response: %s\n", err);
        free(err);
        return false;
    }
    return true;
}

static int connect_or_fail(invocation *inv, conn *c, int64_t timeout_ms, int fail_code,
                           const char *what)
{
    int64_t t0 = now_mono_ms();
    herald_connect_result r = herald_channel_connect(c->ch, timeout_ms, true);
    if (r == HERALD_CONNECT_READY) {
        if (inv->verbose)
            (void)fprintf(stderr, "* connected to %s in %" PRId64 " ms\n", c->target,
                          now_mono_ms() - t0);
        return CLI_EXIT_OK;
    }
    if (r == HERALD_CONNECT_TIMEOUT)
        (void)fprintf(stderr, "%s: cannot connect to %s: timed out after %" PRId64 " ms\n", what,
                      c->target, timeout_ms);
    else
        (void)fprintf(stderr, "%s: cannot connect to %s: connection failed\n", what, c->target);
    return fail_code;
}

static int rpc_exit(const herald_status *st, const sigctx *sig)
{
    if (st->code == 0)
        return CLI_EXIT_OK;
    if (atomic_load(&((sigctx *)sig)->interrupted)) {
        (void)fprintf(stderr, "herald: interrupted\n");
        return CLI_EXIT_INTERRUPTED;
    }
    out_rpc_error(st);
    return CLI_EXIT_RPC_BASE + st->code;
}

static int run_call(invocation *inv)
{
    int rc;
    ProtobufCMessage **reqs = NULL;
    size_t n_reqs = 0;
    conn c = { 0 };
    sigctx sig = { 0 };
    herald_status st;
    herald_status_init(&st);
    bool cs = false, ss = false;
    char path[512];

    cli_method_kind(inv->svc->desc, inv->method, &cs, &ss);
    rc = build_requests(inv, cs, &reqs, &n_reqs);
    if (rc != CLI_EXIT_OK)
        goto out_noinit;
    (void)snprintf(path, sizeof path, "/%s/%s", inv->svc->desc->name, inv->method->name);
    if (inv->verbose) {
        (void)fprintf(stderr, "> %s (%s)\n", path,
                      cs && ss ? "bidi"
                      : cs     ? "client stream"
                      : ss     ? "server stream"
                               : "unary");
        for (size_t i = 0; i < n_reqs; i++) {
            char *err = NULL;
            pbjson_options o = { .resolve = registry_resolve };
            char *j = pbjson_encode_string(reqs[i], &o, JSON_C_TO_STRING_PLAIN, &err);
            (void)fprintf(stderr, "> %s\n", j ? j : err);
            free(j);
            free(err);
        }
    }

    c.service_config = retry_config(inv->svc->desc, inv->method, reqs, n_reqs);
    if (inv->verbose)
        (void)fprintf(stderr, "* retries: %s\n",
                      c.service_config ? "up to 3 attempts on UNAVAILABLE"
                                       : "none (no request_id)");
    signals_start(&sig);
    herald_client_init();
    rc = conn_open(inv, &c);
    if (rc != CLI_EXIT_OK)
        goto out;
    rc = connect_or_fail(inv, &c, inv->connect_timeout_ms, CLI_EXIT_OPERATIONAL, "herald");
    if (rc != CLI_EXIT_OK)
        goto out;

    herald_call_options co = {
        .timeout_ms = inv->timeout_ms,
        .metadata = inv->md,
        .n_metadata = inv->n_md,
        .cancel = sig.cancel,
    };
    int64_t t0 = now_mono_us();
    if (!cs && !ss) {
        ProtobufCMessage *resp = NULL;
        herald_call_unary(c.ch, path, reqs[0], inv->method->output, &co, &resp, &st);
        if (inv->verbose)
            out_metadata(&st);
        if (st.code == 0 && !print_one(inv, resp, false, 0))
            rc = CLI_EXIT_OPERATIONAL;
        if (resp)
            protobuf_c_message_free_unpacked(resp, NULL);
    } else {
        char *err = NULL;
        herald_call *call = herald_call_start(c.ch, path, &co, &err);
        if (!call) {
            (void)fprintf(stderr, "herald: %s\n", err);
            free(err);
            rc = CLI_EXIT_OPERATIONAL;
            goto out;
        }
        bool sent = true;
        for (size_t i = 0; i < n_reqs && sent; i++)
            sent = herald_call_send(call, reqs[i]);
        if (sent)
            herald_call_close_send(call);
        /* Bounded by the server ending the stream, the deadline or ^C. */
        for (size_t index = 0;; index++) {
            ProtobufCMessage *m = NULL;
            if (herald_call_recv(call, inv->method->output, &m) <= 0)
                break;
            bool ok = print_one(inv, m, true, index);
            protobuf_c_message_free_unpacked(m, NULL);
            if (!ok) {
                herald_call_cancel(call);
                rc = CLI_EXIT_OPERATIONAL;
                break;
            }
        }
        herald_call_finish(call, &st);
        herald_call_free(call);
        if (inv->verbose)
            out_metadata(&st);
    }
    if (inv->verbose)
        (void)fprintf(stderr, "* %s %s in %.1f ms\n", path, herald_code_name(st.code),
                      (double)(now_mono_us() - t0) / 1000.0);
    if (rc == CLI_EXIT_OK)
        rc = rpc_exit(&st, &sig);
out:
    herald_status_fini(&st);
    conn_close(&c);
    herald_client_shutdown();
    signals_stop(&sig);
out_noinit:
    for (size_t i = 0; i < n_reqs; i++)
        protobuf_c_message_free_unpacked(reqs[i], NULL);
    free(reqs);
    return rc;
}

enum {
    HEALTH_OK = 0,
    HEALTH_BAD_ARGS = 1,
    HEALTH_CONNECT_FAILED = 2,
    HEALTH_RPC_FAILED = 3,
    HEALTH_UNHEALTHY = 4,
};

static int health_exit_for(const ProtobufCMessage *resp)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, "status");
    int v = f ? *(const int *)(const void *)((const char *)resp + f->offset) : 0;
    return v == 1 ? HEALTH_OK : HEALTH_UNHEALTHY; /* 1 = SERVING */
}

static int run_health(invocation *inv)
{
    int rc = HEALTH_OK;
    conn c = { 0 };
    sigctx sig = { 0 };
    herald_status st;
    herald_status_init(&st);
    ProtobufCMessage *req = NULL;
    ProtobufCMessage *resp = NULL;
    const registry_service *hs = NULL;
    const ProtobufCMethodDescriptor *hm = NULL;

    if (!registry_method_find(
            inv->watch ? "grpc.health.v1.Health/Watch" : "grpc.health.v1.Health/Check", &hs, &hm)) {
        (void)fprintf(stderr, "herald: grpc.health.v1.Health is missing from the registry\n");
        return CLI_EXIT_OPERATIONAL;
    }
    /* The request: {"service": NAME}. */
    json_object *root = json_object_new_object();
    json_object_object_add(root, "service",
                           json_object_new_string(inv->service ? inv->service : ""));
    char *err = NULL;
    if (pbjson_decode(root, hm->input, NULL, &req, &err) != ST_OK) {
        (void)fprintf(stderr, "error: %s\n", err);
        free(err);
        json_object_put(root);
        return HEALTH_BAD_ARGS;
    }
    json_object_put(root);

    signals_start(&sig);
    herald_client_init();
    if (conn_open(inv, &c) != CLI_EXIT_OK) {
        rc = inv->error ? report_usage(inv) : HEALTH_BAD_ARGS;
        goto out;
    }
    int64_t connect_ms = inv->connect_timeout_set ? inv->connect_timeout_ms : 1000;
    if (connect_or_fail(inv, &c, connect_ms, HEALTH_CONNECT_FAILED, "error") != CLI_EXIT_OK) {
        rc = HEALTH_CONNECT_FAILED;
        goto out;
    }
    int64_t rpc_ms = inv->rpc_timeout_set ? inv->rpc_timeout_ms
                     : inv->timeout_set   ? inv->timeout_ms
                     : inv->watch         ? 0
                                          : 1000;
    herald_call_options co = {
        .timeout_ms = rpc_ms,
        .metadata = inv->md,
        .n_metadata = inv->n_md,
        .cancel = sig.cancel,
    };
    const char *path = inv->watch ? "/grpc.health.v1.Health/Watch" : "/grpc.health.v1.Health/Check";
    if (!inv->watch) {
        herald_call_unary(c.ch, path, req, hm->output, &co, &resp, &st);
        if (inv->verbose)
            out_metadata(&st);
        if (st.code != 0) {
            (void)fprintf(stderr, "error: health rpc failed: %s: %s\n", herald_code_name(st.code),
                          st.message);
            rc = HEALTH_RPC_FAILED;
            goto out;
        }
        print_one(inv, resp, false, 0);
        rc = health_exit_for(resp);
        if (rc != HEALTH_OK)
            (void)fprintf(stderr, "error: service unhealthy\n");
        goto out;
    }
    /* Watch: print each status until the stream ends, the deadline or ^C;
     * the exit status follows the last status seen. */
    herald_call *call = herald_call_start(c.ch, path, &co, &err);
    if (!call) {
        (void)fprintf(stderr, "error: %s\n", err);
        free(err);
        rc = HEALTH_RPC_FAILED;
        goto out;
    }
    herald_call_send(call, req);
    herald_call_close_send(call);
    int last = -1;
    for (size_t index = 0;; index++) {
        ProtobufCMessage *m = NULL;
        if (herald_call_recv(call, hm->output, &m) <= 0)
            break;
        print_one(inv, m, true, index);
        last = health_exit_for(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    herald_call_finish(call, &st);
    herald_call_free(call);
    if (last < 0 || (st.code != 0 && st.code != 4 /* DEADLINE_EXCEEDED ends a bounded watch */ &&
                     !atomic_load(&sig.interrupted))) {
        (void)fprintf(stderr, "error: health rpc failed: %s: %s\n", herald_code_name(st.code),
                      st.message);
        rc = HEALTH_RPC_FAILED;
    } else {
        rc = last;
    }
out:
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    protobuf_c_message_free_unpacked(req, NULL);
    herald_status_fini(&st);
    conn_close(&c);
    herald_client_shutdown();
    signals_stop(&sig);
    return rc;
}

/* ---- main ---- */

static void inv_fini(invocation *inv)
{
    if (inv->have_fs)
        flag_set_fini(&inv->fs);
    for (size_t i = 0; i < inv->n_md; i++) {
        free((char *)inv->md[i].key);
        free((char *)inv->md[i].value);
    }
    free(inv->md);
    free(inv->uses);
    free(inv->pos);
    free(inv->error);
}

static int report_usage(invocation *inv)
{
    char *ctx = inv_context(inv);
    (void)fprintf(stderr, "herald: %s\nTry '%s --help'.\n", inv->error, ctx);
    free(ctx);
    return inv->cmd == CMD_HEALTH ? HEALTH_BAD_ARGS : CLI_EXIT_USAGE;
}

int cli_main(int argc, char **argv)
{
    invocation inv = { 0 };
    int rc = CLI_EXIT_OK;
    inv.out = -1;
    inv.timeout_ms = 10000;
    inv.connect_timeout_ms = 10000;
    inv.rpc_timeout_ms = 1000;

    parse_args(&inv, argc, argv);

    if (inv.version || inv.cmd == CMD_VERSION) {
        (void)printf("herald %s (commit %s), libherald_client %s\n", HERALD_VERSION, HERALD_COMMIT,
                     HERALD_CLIENT_VERSION);
        goto out;
    }
    if (inv.help || inv.cmd == CMD_HELP || (inv.cmd == CMD_NONE && !inv.error && argc <= 1)) {
        if (inv.cmd == CMD_HELP && inv.n_pos > 0) {
            /* herald help ops [get-profile] */
            char **args = xcalloc((size_t)inv.n_pos + 3, sizeof *args);
            args[0] = argv[0];
            for (size_t i = 0; i < inv.n_pos; i++)
                args[i + 1] = inv.pos[i];
            args[inv.n_pos + 1] = "--help";
            invocation sub = { 0 };
            sub.out = -1;
            parse_args(&sub, (int)inv.n_pos + 2, args);
            if (sub.error) {
                rc = report_usage(&sub);
            } else {
                print_help(&sub);
            }
            inv_fini(&sub);
            free(args);
            goto out;
        }
        if (inv.error && !(inv.cmd == CMD_VERB || inv.cmd == CMD_CALL)) {
            rc = report_usage(&inv);
            goto out;
        }
        print_help(&inv);
        goto out;
    }
    if (inv.error) {
        rc = report_usage(&inv);
        goto out;
    }
    switch (inv.cmd) {
    case CMD_NONE:
        usage_error(&inv, "no command given");
        rc = report_usage(&inv);
        break;
    case CMD_LIST:
        if (inv.n_pos > 1) {
            usage_error(&inv, "list takes at most one SERVICE");
            rc = report_usage(&inv);
            break;
        }
        rc = cli_cmd_list((int)inv.n_pos, inv.pos);
        break;
    case CMD_DESCRIBE:
        rc = cli_cmd_describe((int)inv.n_pos, inv.pos);
        break;
    case CMD_COMPLETION:
        if (inv.n_pos != 1) {
            usage_error(&inv, "completion wants a shell: bash");
            rc = report_usage(&inv);
            break;
        }
        rc = cli_cmd_completion(inv.pos[0]);
        if (rc == CLI_EXIT_USAGE) {
            usage_error(&inv, "no completion for shell \"%s\" (only bash)", inv.pos[0]);
            rc = report_usage(&inv);
        }
        break;
    case CMD_VERB:
    case CMD_CALL:
        if (!inv.method) {
            if (inv.cmd == CMD_CALL)
                usage_error(&inv, "call wants a METHOD (pkg.Service/Method; see 'herald list')");
            else
                usage_error(&inv, "a method is required (one of the list in --help)");
            rc = report_usage(&inv);
            break;
        }
        if (inv.n_pos > 1) {
            usage_error(&inv, "unexpected argument \"%s\"", inv.pos[1]);
            rc = report_usage(&inv);
            break;
        }
        rc = run_call(&inv);
        if (rc == CLI_EXIT_USAGE && inv.error)
            rc = report_usage(&inv);
        break;
    case CMD_HEALTH:
        if (inv.n_pos > 0) {
            usage_error(&inv, "unexpected argument \"%s\"", inv.pos[0]);
            rc = report_usage(&inv);
            break;
        }
        rc = run_health(&inv);
        break;
    case CMD_HELP:
    case CMD_VERSION:
        break;
    }
out:
    inv_fini(&inv);
    return rc;
}
