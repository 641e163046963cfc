/* cli.h - internals of the herald CLI, shared by its modules.
 *
 * cli_main.c   argument parsing, the commands, exit codes
 * cli_flags.c  request flags generated from a request message descriptor
 * cli_out.c    JSON and table output, error rendering
 * cli_describe.c  `list`, `describe` and documentation lookups (descset)
 * cli_complete.c  `completion bash`
 *
 * Everything is driven by protoc-c's descriptors (registry.h) and the
 * embedded descriptor set (descset.h): no code names an RPC. Single-threaded,
 * except for the signal thread in cli_main.c that only triggers a
 * herald_cancel token. */
#ifndef HERALD_CLI_H
#define HERALD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

#include "descset.h"
#include "herald_client.h"
#include "registry.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_OPERATIONAL = 1, /* dial failed, unreadable file, bad descriptor */
    CLI_EXIT_USAGE = 2,       /* bad invocation; "Try 'herald --help'" on stderr */
    CLI_EXIT_RPC_BASE = 64,   /* + the gRPC code of a failed RPC */
    CLI_EXIT_INTERRUPTED = 130,
};

/* The entry point: parses argv, runs the command, returns the exit status. */
int cli_main(int argc, char **argv);

/* ---- names ---- */

/* "ContentService" -> "content"; "GenerateDraft" -> "generate-draft";
 * "content_type" -> "content-type". New strings; the caller frees. */
char *cli_service_verb(const ProtobufCServiceDescriptor *d);
char *cli_kebab_from_camel(const char *camel);
char *cli_kebab_from_snake(const char *snake);

/* Finds the API service whose verb is `verb`, and in it the method whose
 * kebab name is `method` (NULL method: just the service). */
const registry_service *cli_find_verb(const char *verb);
const ProtobufCMethodDescriptor *cli_find_verb_method(const registry_service *s,
                                                      const char *method);

/* ---- request flags (cli_flags.c) ---- */

typedef enum {
    FF_SCALAR = 0, /* numbers and strings */
    FF_BOOL,
    FF_ENUM,
    FF_BYTES,
    FF_WKT,     /* Timestamp, Duration, FieldMask, wrappers: their text form */
    FF_MESSAGE, /* a whole message as JSON text */
    FF_MAP,     /* key=value, repeatable */
} field_flag_kind;

typedef struct field_flag {
    char *name; /* "content-type", "policy.min-gap-minutes" */
    field_flag_kind kind;
    bool repeated;
    const ProtobufCFieldDescriptor *field;   /* the field the flag sets */
    const ProtobufCMessageDescriptor *owner; /* the message holding it */
    const ProtobufCFieldDescriptor *path[8]; /* from the request down to field */
    size_t depth;
} field_flag;

typedef struct flag_set {
    field_flag *flags;
    size_t n;
    const ProtobufCMessageDescriptor *request;
} flag_set;

/* The flags of a request message: one per field (kebab case), dotted ones
 * for the fields of nested messages (three levels, no cycles). */
void flag_set_build(flag_set *fs, const ProtobufCMessageDescriptor *request);
void flag_set_fini(flag_set *fs);
/* Exact match on name; NULL when none. */
const field_flag *flag_set_find(const flag_set *fs, const char *name);
/* The closest flag name within a small edit distance, for "did you mean". */
const char *flag_set_suggest(const flag_set *fs, const char *name);

/* A short type label for help ("string", "int64", "enum", "timestamp"). */
const char *field_flag_type(const field_flag *ff);
/* The accepted values of an enum flag, kebab case ("x|threads|bluesky").
 * New string. */
char *field_flag_enum_choices(const field_flag *ff);

/* Applies one flag value to the request JSON object root (created by the
 * caller; may already hold -d data). Repeated flags append, except that
 * the first use of a flag replaces what -d gave for that field. seen counts
 * earlier uses of this flag. On error returns false with *err (caller
 * frees) naming the flag. */
bool field_flag_apply(const field_flag *ff, const char *value, size_t seen, json_object *root,
                      char **err);

/* Converts a flag-style enum value ("x", "deep-blue", "PLATFORM_X", "3") to
 * the enum's value name; NULL when it matches none. Borrowed from ed. */
const char *cli_enum_value(const ProtobufCEnumDescriptor *ed, const char *text);

/* Parses "10s", "500ms", "1.5m", "2h", "1d" or a bare number of seconds into
 * milliseconds. false on junk or a negative value. */
bool cli_parse_duration_ms(const char *text, int64_t *ms);

/* A random UUIDv4 into buf (>= 37 bytes). */
void cli_uuid4(char *buf);

/* ---- output (cli_out.c) ---- */

typedef enum { OUT_JSON = 0, OUT_TABLE } out_format;

/* Prints one message on stdout: pretty JSON, one compact JSON line (compact
 * = true, for streams), or a table. false (with *err) when the message
 * cannot be encoded. */
bool out_message(const ProtobufCMessage *m, out_format f, bool compact, bool emit_defaults,
                 char **err);
/* Renders a JSON value as a readable table / key-value listing on fp. */
void out_table(FILE *fp, json_object *j);
/* Prints "herald: NOT_FOUND: message" and the decoded status details (as
 * JSON, one per line) on stderr. */
void out_rpc_error(const herald_status *st);
/* Prints headers and trailers of st on stderr (verbose mode). */
void out_metadata(const herald_status *st);

/* ---- documentation (cli_describe.c) ---- */

/* The API descriptor set (NULL only if it does not parse: a build bug). */
const descset *cli_descset(void);
/* Leading comment of a fully-qualified symbol; for a field in a
 * single-member oneof without its own comment, the oneof's comment. NULL
 * when none. New string; the caller frees. */
char *cli_symbol_comment(const char *symbol);
/* The first sentence (or line) of a comment, new string. */
char *cli_first_sentence(const char *comment);
/* Streaming kinds of a method from the descriptor set. */
void cli_method_kind(const ProtobufCServiceDescriptor *s, const ProtobufCMethodDescriptor *m,
                     bool *client_streaming, bool *server_streaming);

int cli_cmd_list(int argc, char **argv);
int cli_cmd_describe(int argc, char **argv);

/* ---- completion (cli_complete.c) ---- */

int cli_cmd_completion(const char *shell);
/* The global flags, for help and completion: NULL-terminated. */
extern const char *const cli_global_flag_names[];

#endif
