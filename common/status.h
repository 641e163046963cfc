/* status.h - the one status vocabulary of Herald, and its gRPC mapping.
 * Pure functions; any thread. Modules return a status and keep the reason
 * on their handle; the layer that answers the caller maps it to a gRPC code. */
#ifndef HERALD_STATUS_H
#define HERALD_STATUS_H

typedef enum {
    ST_OK = 0,
    ST_INVALID,             /* bad input from the caller -> INVALID_ARGUMENT */
    ST_NOT_FOUND,           /* no such object -> NOT_FOUND */
    ST_ALREADY_EXISTS,      /* create conflict -> ALREADY_EXISTS */
    ST_FAILED_PRECONDITION, /* wrong state for this operation -> FAILED_PRECONDITION */
    ST_CONFLICT,            /* lost race, serialization failure -> ABORTED */
    ST_UNAVAILABLE,         /* dependency down; retry is safe -> UNAVAILABLE */
    ST_TIMEOUT,             /* deadline or statement_timeout hit -> DEADLINE_EXCEEDED */
    ST_EXHAUSTED,           /* our limit or the caller's quota -> RESOURCE_EXHAUSTED */
    ST_UNAUTHENTICATED,     /* no or bad credentials -> UNAUTHENTICATED */
    ST_PERMISSION_DENIED,   /* known caller lacking a scope -> PERMISSION_DENIED */
    ST_UNIMPLEMENTED,       /* not built (yet) -> UNIMPLEMENTED */
    ST_CANCELLED,           /* the caller went away -> CANCELLED */
    ST_INTERNAL,            /* bug or broken invariant -> INTERNAL */
} status;

/* gRPC status code numbers (identical to grpc_status_code; repeated here so
 * that modules other than the rpc runtime never include <grpc/grpc.h>). */
enum {
    GRPC_CODE_OK = 0,
    GRPC_CODE_CANCELLED = 1,
    GRPC_CODE_UNKNOWN = 2,
    GRPC_CODE_INVALID_ARGUMENT = 3,
    GRPC_CODE_DEADLINE_EXCEEDED = 4,
    GRPC_CODE_NOT_FOUND = 5,
    GRPC_CODE_ALREADY_EXISTS = 6,
    GRPC_CODE_PERMISSION_DENIED = 7,
    GRPC_CODE_RESOURCE_EXHAUSTED = 8,
    GRPC_CODE_FAILED_PRECONDITION = 9,
    GRPC_CODE_ABORTED = 10,
    GRPC_CODE_OUT_OF_RANGE = 11,
    GRPC_CODE_UNIMPLEMENTED = 12,
    GRPC_CODE_INTERNAL = 13,
    GRPC_CODE_UNAVAILABLE = 14,
    GRPC_CODE_DATA_LOSS = 15,
    GRPC_CODE_UNAUTHENTICATED = 16,
    GRPC_CODE_COUNT = 17,
};

/* The gRPC code for st (a GRPC_CODE_* value). */
int status_to_grpc(status st);

/* Canonical upper-case name ("INVALID_ARGUMENT") of a gRPC code; "UNKNOWN"
 * for values out of range. Static storage. */
const char *status_grpc_code_name(int code);

/* Go spelling used by Prometheus metrics ("InvalidArgument", "Canceled"). */
const char *status_grpc_code_go_name(int code);

/* Short name of a status for logs ("invalid"). Static storage. */
const char *status_name(status st);

#endif
