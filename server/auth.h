/* auth.h - bearer tokens with scopes, checked before every handler.
 *
 * Tokens. The operator configures a list of entries
 *
 *     name:scope[+scope...]:token
 *
 * separated by newlines, commas or blanks; '#' starts a comment that runs to
 * the end of the line. heraldd reads the list from the secret config row
 * auth.tokens (HERALD_TOKENS, or the file named by HERALD_TOKENS_FILE with
 * one entry per line). For example:
 *
 *     # name      scopes         token (openssl rand -base64 32)
 *     dashboard:read:Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0
 *     runner-1:executor:8Jx3x2kq0bq7Q9m1A7cC4eEXAMPLE0000
 *     ops-alice:admin:Q1bkq9m3eXAMPLEeXAMPLEeXAMPLE00000
 *
 *   name   1..64 of [A-Za-z0-9_.-], unique. It is what logs and error
 *          messages show: the token itself is never logged or echoed.
 *   scopes read, write, executor, admin joined by '+'. admin implies every
 *          scope; write and executor each imply read.
 *   token  16..512 characters of RFC 6750's b64token alphabet
 *          ([A-Za-z0-9-._~+/] then '='*), unique.
 * Only the SHA-256 of each token is kept in memory (the text is wiped after
 * parsing); a presented token is hashed and compared against every stored
 * hash with a constant-time loop, so neither which token matched nor how
 * many bytes did shows in the timing.
 *
 * Scopes of methods. Every herald.v1 method's doc comment in the embedded
 * descriptor set ends with a line "Scope: read|write|executor|admin";
 * auth_new parses them once into a table and fails when any herald.v1
 * method lacks one. grpc.health.v1 is always open (probes carry no token).
 * The reflection services are open or need a valid token (any scope), per
 * auth_reflection. Any other registered method needs admin (fail closed).
 *
 * Off. With no tokens configured auth is off (the quick start): every call
 * passes. heraldd logs one line at start-up saying so.
 *
 * Outcome (conventions §3): no or malformed authorization metadata, or an
 * unknown token -> UNAUTHENTICATED; a known token without the method's scope
 * -> PERMISSION_DENIED. Both carry an ErrorInfo (domain "herald.v1", reasons
 * TOKEN_MISSING, TOKEN_INVALID, SCOPE_MISSING).
 *
 * Threads. An auth is shared by every worker: auth_check and auth_decide may
 * run on any thread at once; auth_reload swaps the token list under a
 * read-write lock. auth_new and auth_free run on one thread, with no check
 * in progress. */
#ifndef HERALD_AUTH_H
#define HERALD_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "descset.h"
#include "rpc.h"
#include "status.h"

typedef struct auth auth;

/* Scope bits. A token's set is closed under the implications above. */
enum {
    AUTH_SCOPE_READ = 1u << 0,
    AUTH_SCOPE_WRITE = 1u << 1,
    AUTH_SCOPE_EXECUTOR = 1u << 2,
    AUTH_SCOPE_ADMIN = 1u << 3,
    AUTH_SCOPE_OPEN = 0, /* what auth_required_scope says of open methods */
};

typedef enum {
    AUTH_REFLECTION_OPEN = 0, /* reflection answers without a token */
    AUTH_REFLECTION_TOKEN,    /* reflection needs a valid token (any scope) */
} auth_reflection;

/* Longest token accepted, and the shortest. */
enum { AUTH_TOKEN_MIN = 16, AUTH_TOKEN_MAX = 512, AUTH_NAME_MAX = 64 };

/* Builds the method table from ds (borrowed; must outlive the auth) and
 * parses tokens (NULL or blank: auth off). On failure returns NULL and sets
 * *err (caller frees) to a message naming the entry by position and name
 * (never the token) or the method without a Scope line. */
auth *auth_new(const descset *ds, const char *tokens, auth_reflection refl, char **err);
void auth_free(auth *a); /* NULL is a no-op */

/* True when at least one token is configured. */
bool auth_enabled(const auth *a);
size_t auth_token_count(const auth *a);

/* Replaces the token list (SIGHUP). ST_INVALID with *err when tokens do not
 * parse, or would turn auth off while it is on (restart to do that); the
 * old list stays in force then. */
status auth_reload(auth *a, const char *tokens, char **err);

/* The scope bit a method path ("/herald.v1.OpsService/GetProfile") needs:
 * AUTH_SCOPE_OPEN for health (and reflection when open), AUTH_SCOPE_READ
 * for reflection when token-gated, the table's value for herald.v1 methods,
 * AUTH_SCOPE_ADMIN for anything else. */
unsigned auth_required_scope(const auth *a, const char *path);

/* The pure decision, for tests and fuzzing: authorization is the value of
 * the "authorization" metadata (NULL when absent; len bytes, may hold
 * anything). Returns ST_OK, ST_UNAUTHENTICATED or ST_PERMISSION_DENIED.
 * *who (may be NULL) gets the matched token's name (NULL when none matched
 * or auth is off), valid until auth_free (reloads keep old names alive);
 * *reason (may be NULL) gets the ErrorInfo reason on failure, else NULL. */
status auth_decide(const auth *a, const char *path, const char *authorization, size_t len,
                   const char **who, const char **reason);

/* The interceptor's check: reads the call's authorization metadata and
 * decides. On failure the call's status is set (message naming the method
 * and, for PERMISSION_DENIED, the token's name and the missing scope; an
 * ErrorInfo) and the status is returned: the interceptor returns it as is.
 * *who as in auth_decide. Runs on the call's thread. a NULL: ST_OK. */
status auth_check(const auth *a, rpc_call *call, const char **who);

/* Parses one scope word ("write"); 0 when unknown. */
unsigned auth_scope_parse(const char *word, size_t len);
/* The set a token with these scope bits holds once the implications apply. */
unsigned auth_scope_closure(unsigned scopes);
/* "read", "write", "executor", "admin" for one bit; "open" for 0. */
const char *auth_scope_name(unsigned scope);

#endif
