/* status.c - status vocabulary <-> gRPC codes. */
#include "status.h"

int status_to_grpc(status st)
{
    /* No default: -Wswitch flags any status without a mapping. */
    switch (st) {
    case ST_OK:
        return GRPC_CODE_OK;
    case ST_INVALID:
        return GRPC_CODE_INVALID_ARGUMENT;
    case ST_NOT_FOUND:
        return GRPC_CODE_NOT_FOUND;
    case ST_ALREADY_EXISTS:
        return GRPC_CODE_ALREADY_EXISTS;
    case ST_FAILED_PRECONDITION:
        return GRPC_CODE_FAILED_PRECONDITION;
    case ST_CONFLICT:
        return GRPC_CODE_ABORTED;
    case ST_UNAVAILABLE:
        return GRPC_CODE_UNAVAILABLE;
    case ST_TIMEOUT:
        return GRPC_CODE_DEADLINE_EXCEEDED;
    case ST_EXHAUSTED:
        return GRPC_CODE_RESOURCE_EXHAUSTED;
    case ST_UNAUTHENTICATED:
        return GRPC_CODE_UNAUTHENTICATED;
    case ST_PERMISSION_DENIED:
        return GRPC_CODE_PERMISSION_DENIED;
    case ST_UNIMPLEMENTED:
        return GRPC_CODE_UNIMPLEMENTED;
    case ST_CANCELLED:
        return GRPC_CODE_CANCELLED;
    case ST_INTERNAL:
        return GRPC_CODE_INTERNAL;
    }
    return GRPC_CODE_UNKNOWN;
}

static const char *const code_names[GRPC_CODE_COUNT] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static const char *const go_names[GRPC_CODE_COUNT] = {
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
};

const char *status_grpc_code_name(int code)
{
    return code >= 0 && code < GRPC_CODE_COUNT ? code_names[code] : "UNKNOWN";
}

const char *status_grpc_code_go_name(int code)
{
    return code >= 0 && code < GRPC_CODE_COUNT ? go_names[code] : "Unknown";
}

const char *status_name(status st)
{
    switch (st) {
    case ST_OK:
        return "ok";
    case ST_INVALID:
        return "invalid";
    case ST_NOT_FOUND:
        return "not_found";
    case ST_ALREADY_EXISTS:
        return "already_exists";
    case ST_FAILED_PRECONDITION:
        return "failed_precondition";
    case ST_CONFLICT:
        return "conflict";
    case ST_UNAVAILABLE:
        return "unavailable";
    case ST_TIMEOUT:
        return "timeout";
    case ST_EXHAUSTED:
        return "exhausted";
    case ST_UNAUTHENTICATED:
        return "unauthenticated";
    case ST_PERMISSION_DENIED:
        return "permission_denied";
    case ST_UNIMPLEMENTED:
        return "unimplemented";
    case ST_CANCELLED:
        return "cancelled";
    case ST_INTERNAL:
        return "internal";
    }
    return "unknown";
}
