/* herald_client.c - channels, calls and typed stubs over gRPC C core.
 *
 * Every call gets its own pluck completion queue (grpc-c-core.md §2): the
 * thread that runs the call is the only one waiting on it, so any number of
 * threads can run calls on one shared channel without coordination. The only
 * shared mutable state is a herald_cancel token's list of running calls,
 * guarded by its mutex.
 *
 * The library is self-contained (gRPC core, protobuf-c and libc) so that it
 * can be installed and linked on its own. */
#include "herald_client.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

/* ---- small private helpers (no dependency on Herald's common/) ---- */

static void *hc_alloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        (void)fputs("herald_client: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *hc_strndup(const char *s, size_t n)
{
    char *p = hc_alloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *hc_strdup(const char *s)
{
    return s ? hc_strndup(s, strlen(s)) : NULL;
}

/* a + b + c + d + e, any of them NULL for nothing: a new string. */
static char *hc_concat(const char *a, const char *b, const char *c, const char *d, const char *e)
{
    const char *parts[] = { a, b, c, d, e };
    size_t n = 0;
    for (size_t i = 0; i < 5; i++)
        n += parts[i] ? strlen(parts[i]) : 0;
    char *out = hc_alloc(n + 1);
    size_t at = 0;
    for (size_t i = 0; i < 5; i++) {
        size_t len = parts[i] ? strlen(parts[i]) : 0;
        if (len)
            memcpy(out + at, parts[i], len);
        at += len;
    }
    out[at] = '\0';
    return out;
}

static const char *const code_names[] = {
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

const char *herald_code_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof code_names / sizeof code_names[0])
        return "UNKNOWN";
    return code_names[code];
}

void herald_client_init(void)
{
    grpc_init(); /* reference counted by core */
}

void herald_client_shutdown(void)
{
    grpc_shutdown_blocking(); /* P7: wait for core's threads */
}

/* ---- status ---- */

void herald_status_init(herald_status *st)
{
    memset(st, 0, sizeof *st);
}

static void md_list_free(herald_metadata *md, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)md[i].key);
        free((char *)md[i].value);
    }
    free(md);
}

void herald_status_fini(herald_status *st)
{
    if (!st)
        return;
    free(st->message);
    md_list_free(st->headers, st->n_headers);
    md_list_free(st->trailers, st->n_trailers);
    for (size_t i = 0; i < st->n_details; i++) {
        free(st->details[i].type_url);
        free(st->details[i].value);
    }
    free(st->details);
    free(st->debug_error);
    herald_status_init(st);
}

static const char *md_find(const herald_metadata *md, size_t n, const char *key, size_t *len)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(md[i].key, key) == 0) {
            if (len)
                *len = md[i].value_len;
            return md[i].value;
        }
    }
    return NULL;
}

const char *herald_status_metadata(const herald_status *st, const char *key, size_t *len)
{
    const char *v = md_find(st->trailers, st->n_trailers, key, len);
    return v ? v : md_find(st->headers, st->n_headers, key, len);
}

static void md_copy(const grpc_metadata_array *a, herald_metadata **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (a->count == 0)
        return;
    herald_metadata *md = hc_alloc(a->count * sizeof *md);
    for (size_t i = 0; i < a->count; i++) {
        const grpc_slice *k = &a->metadata[i].key;
        const grpc_slice *v = &a->metadata[i].value;
        md[i].key = hc_strndup((const char *)GRPC_SLICE_START_PTR(*k), GRPC_SLICE_LENGTH(*k));
        md[i].value = hc_strndup((const char *)GRPC_SLICE_START_PTR(*v), GRPC_SLICE_LENGTH(*v));
        md[i].value_len = GRPC_SLICE_LENGTH(*v);
    }
    *out = md;
    *n = a->count;
}

/* Minimal protobuf wire reader for google.rpc.Status / google.protobuf.Any:
 * the library must not depend on generated code. */
typedef struct wire {
    const uint8_t *p;
    const uint8_t *end;
} wire;

static bool wire_varint(wire *w, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (w->p >= w->end)
            return false;
        uint8_t b = *w->p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Next field: number, wire type and, for length-delimited ones, the bytes. */
static bool wire_next(wire *w, uint32_t *field, const uint8_t **data, size_t *len)
{
    uint64_t key, v;
    if (!wire_varint(w, &key))
        return false;
    *field = (uint32_t)(key >> 3);
    *data = NULL;
    *len = 0;
    switch (key & 7) {
    case 0:
        return wire_varint(w, &v);
    case 1:
        if (w->end - w->p < 8)
            return false;
        w->p += 8;
        return true;
    case 5:
        if (w->end - w->p < 4)
            return false;
        w->p += 4;
        return true;
    case 2:
        if (!wire_varint(w, &v) || v > (uint64_t)(w->end - w->p))
            return false;
        *data = w->p;
        *len = (size_t)v;
        w->p += v;
        return true;
    default:
        return false;
    }
}

static void details_parse(herald_status *st, const char *bin, size_t len)
{
    wire w = { (const uint8_t *)bin, (const uint8_t *)bin + len };
    uint32_t field;
    const uint8_t *data;
    size_t dlen;
    while (w.p < w.end && wire_next(&w, &field, &data, &dlen)) {
        if (field != 3 || !data)
            continue;
        herald_status_detail d = { 0 };
        wire a = { data, data + dlen };
        uint32_t af;
        const uint8_t *ad;
        size_t alen;
        while (a.p < a.end && wire_next(&a, &af, &ad, &alen)) {
            if (af == 1 && ad) {
                free(d.type_url);
                d.type_url = hc_strndup((const char *)ad, alen);
            } else if (af == 2 && ad) {
                free(d.value);
                d.value = hc_alloc(alen);
                memcpy(d.value, ad, alen);
                d.value_len = alen;
            }
        }
        if (!d.type_url)
            d.type_url = hc_strdup("");
        st->details = realloc(st->details, (st->n_details + 1) * sizeof *st->details);
        if (!st->details)
            abort();
        st->details[st->n_details++] = d;
    }
}

static void status_fill(herald_status *st, grpc_status_code code, const grpc_slice *details,
                        const grpc_metadata_array *init_md, const grpc_metadata_array *trail_md,
                        const char *error_string)
{
    herald_status_fini(st);
    st->code = (int)code;
    st->message = details ? hc_strndup((const char *)GRPC_SLICE_START_PTR(*details),
                                       GRPC_SLICE_LENGTH(*details))
                          : hc_strdup("");
    if (init_md)
        md_copy(init_md, &st->headers, &st->n_headers);
    if (trail_md)
        md_copy(trail_md, &st->trailers, &st->n_trailers);
    size_t blen = 0;
    const char *bin = md_find(st->trailers, st->n_trailers, "grpc-status-details-bin", &blen);
    if (bin)
        details_parse(st, bin, blen);
    if (error_string && code != GRPC_STATUS_OK)
        st->debug_error = hc_strdup(error_string);
}

static void status_local(herald_status *st, int code, const char *msg)
{
    herald_status_fini(st);
    st->code = code;
    st->message = hc_strdup(msg);
}

/* ---- cancellation tokens ---- */

typedef struct cancel_link {
    grpc_call *call;
    struct cancel_link *next;
} cancel_link;

struct herald_cancel {
    pthread_mutex_t mu; /* protects calls; triggered is written under it */
    cancel_link *calls; /* calls running with this token */
    atomic_bool triggered;
};

herald_cancel *herald_cancel_new(void)
{
    herald_cancel *c = hc_alloc(sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    atomic_init(&c->triggered, false);
    return c;
}

void herald_cancel_free(herald_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void herald_cancel_trigger(herald_cancel *c)
{
    pthread_mutex_lock(&c->mu);
    atomic_store(&c->triggered, true);
    for (cancel_link *l = c->calls; l; l = l->next)
        grpc_call_cancel(l->call, NULL); /* thread-safe in core */
    pthread_mutex_unlock(&c->mu);
}

bool herald_cancel_triggered(const herald_cancel *c)
{
    return c && atomic_load(&((herald_cancel *)c)->triggered);
}

/* Registers call with c; false when c was already triggered. */
static bool cancel_register(herald_cancel *c, grpc_call *call, cancel_link *link)
{
    if (!c)
        return true;
    pthread_mutex_lock(&c->mu);
    bool ok = !atomic_load(&c->triggered);
    if (ok) {
        link->call = call;
        link->next = c->calls;
        c->calls = link;
    }
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static void cancel_unregister(herald_cancel *c, cancel_link *link)
{
    if (!c || !link->call)
        return;
    pthread_mutex_lock(&c->mu);
    for (cancel_link **pp = &c->calls; *pp; pp = &(*pp)->next) {
        if (*pp == link) {
            *pp = link->next;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    link->call = NULL;
}

/* ---- channels ---- */

struct herald_channel {
    grpc_channel *ch;
    char *auth; /* "Bearer <token>" or NULL */
};

void herald_channel_options_init(herald_channel_options *o)
{
    memset(o, 0, sizeof *o);
}

static grpc_channel_credentials *tls_noverify_creds(const herald_channel_options *o)
{
    grpc_tls_credentials_options *opts = grpc_tls_credentials_options_create();
    grpc_tls_identity_pairs *pairs = NULL;
    if (o->cert_pem) {
        pairs = grpc_tls_identity_pairs_create();
        grpc_tls_identity_pairs_add_pair(pairs, o->key_pem, o->cert_pem);
    }
    /* The provider takes ownership of pairs. Core asserts that a static
     * provider has something to provide: none at all without a CA or a
     * client certificate (the default roots then apply, unused). */
    grpc_tls_certificate_provider *prov = NULL;
    if (o->ca_pem || pairs) {
        prov = grpc_tls_certificate_provider_static_data_create(o->ca_pem, pairs);
        grpc_tls_credentials_options_set_certificate_provider(opts, prov);
    }
    if (o->ca_pem)
        grpc_tls_credentials_options_watch_root_certs(opts);
    if (o->cert_pem)
        grpc_tls_credentials_options_watch_identity_key_cert_pairs(opts);
    grpc_tls_credentials_options_set_verify_server_cert(opts, 0);
    grpc_tls_certificate_verifier *v = grpc_tls_certificate_verifier_no_op_create();
    grpc_tls_credentials_options_set_certificate_verifier(opts, v);
    grpc_tls_credentials_options_set_check_call_host(opts, 0);
    grpc_channel_credentials *creds = grpc_tls_credentials_create(opts); /* owns opts */
    grpc_tls_certificate_verifier_release(v);
    if (prov)
        grpc_tls_certificate_provider_release(prov);
    return creds;
}

bool herald_channel_open(const herald_channel_options *o, herald_channel **out, char **err)
{
    herald_channel *ch = NULL;
    grpc_channel_credentials *creds = NULL;
    char *ua = NULL;
    bool ok = false;

    *out = NULL;
    *err = NULL;
    if ((o->cert_pem == NULL) != (o->key_pem == NULL)) {
        *err = hc_strdup("a client certificate needs its key, and a key its certificate");
        goto out;
    }
    if (!o->tls && (o->ca_pem || o->cert_pem || o->insecure_skip_verify)) {
        *err = hc_strdup("TLS options given for a plaintext channel");
        goto out;
    }
    if (o->token) {
        for (const char *p = o->token; *p; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                *err = hc_strdup("the token holds characters not allowed in a header");
                goto out;
            }
        }
    }

    if (!o->tls) {
        creds = grpc_insecure_credentials_create();
    } else if (o->insecure_skip_verify) {
        creds = tls_noverify_creds(o);
    } else {
        grpc_ssl_pem_key_cert_pair pair = { o->key_pem, o->cert_pem };
        creds = grpc_ssl_credentials_create(o->ca_pem, o->cert_pem ? &pair : NULL, NULL, NULL);
    }
    if (!creds) {
        *err = hc_strdup("cannot create channel credentials");
        goto out;
    }

    grpc_arg args[6];
    size_t n = 0;
    ua = o->user_agent ? hc_strdup(o->user_agent)
                       : hc_strdup("herald-client/" HERALD_CLIENT_VERSION);
    args[n].type = GRPC_ARG_STRING;
    args[n].key = GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[n++].value.string = ua;
    if (o->max_recv_bytes > 0) {
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[n++].value.integer = o->max_recv_bytes;
    }
    if (o->tls && o->server_name) {
        args[n].type = GRPC_ARG_STRING;
        args[n].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[n++].value.string = (char *)o->server_name;
    }
    if (o->service_config_json) {
        args[n].type = GRPC_ARG_STRING;
        args[n].key = GRPC_ARG_SERVICE_CONFIG;
        args[n++].value.string = (char *)o->service_config_json;
        args[n].type = GRPC_ARG_INTEGER;
        args[n].key = GRPC_ARG_ENABLE_RETRIES;
        args[n++].value.integer = 1;
    }
    grpc_channel_args cargs = { n, args };

    ch = hc_alloc(sizeof *ch);
    ch->ch = grpc_channel_create(o->target ? o->target : HERALD_DEFAULT_TARGET, creds, &cargs);
    if (!ch->ch) {
        *err = hc_strdup("cannot create channel");
        goto out;
    }
    if (o->token)
        ch->auth = hc_concat("Bearer ", o->token, NULL, NULL, NULL);
    *out = ch;
    ch = NULL;
    ok = true;
out:
    if (creds)
        grpc_channel_credentials_release(creds);
    free(ua);
    herald_channel_close(ch);
    return ok;
}

void herald_channel_close(herald_channel *ch)
{
    if (!ch)
        return;
    if (ch->ch)
        grpc_channel_destroy(ch->ch);
    free(ch->auth);
    free(ch);
}

static void cq_destroy(grpc_completion_queue *cq)
{
    if (!cq)
        return;
    grpc_completion_queue_shutdown(cq);
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
    }
    grpc_completion_queue_destroy(cq);
}

herald_connect_result herald_channel_connect(herald_channel *ch, int64_t timeout_ms, bool fail_fast)
{
    herald_connect_result res = HERALD_CONNECT_TIMEOUT;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
    int tag = 0;
    /* Bounded: each round waits for a state change or the deadline. */
    for (int round = 0; round < 1000; round++) {
        grpc_connectivity_state s = grpc_channel_check_connectivity_state(ch->ch, 1);
        if (s == GRPC_CHANNEL_READY) {
            res = HERALD_CONNECT_READY;
            break;
        }
        if (s == GRPC_CHANNEL_SHUTDOWN || (s == GRPC_CHANNEL_TRANSIENT_FAILURE && fail_fast)) {
            res = HERALD_CONNECT_FAILED;
            break;
        }
        grpc_channel_watch_connectivity_state(ch->ch, s, deadline, cq, &tag);
        grpc_event ev =
            grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
            res = HERALD_CONNECT_TIMEOUT;
            break;
        }
    }
    cq_destroy(cq);
    return res;
}

/* ---- calls: shared pieces ---- */

static gpr_timespec call_deadline(const herald_call_options *o)
{
    if (!o || o->timeout_ms <= 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(o->timeout_ms, GPR_TIMESPAN));
}

/* Request metadata: the caller's entries plus authorization. Slices point
 * at borrowed memory that outlives the (synchronous) batch. */
static grpc_metadata *md_build(const herald_channel *ch, const herald_call_options *o, size_t *n)
{
    size_t cap = (o ? o->n_metadata : 0) + 1;
    grpc_metadata *md = hc_alloc(cap * sizeof *md);
    size_t k = 0;
    for (size_t i = 0; o && i < o->n_metadata; i++) {
        const herald_metadata *m = &o->metadata[i];
        md[k].key = grpc_slice_from_static_string(m->key);
        md[k].value = grpc_slice_from_static_buffer(
            m->value, m->value_len ? m->value_len : (m->value ? strlen(m->value) : 0));
        k++;
    }
    if (ch->auth) {
        md[k].key = grpc_slice_from_static_string("authorization");
        md[k].value = grpc_slice_from_static_string(ch->auth);
        k++;
    }
    *n = k;
    return md;
}

static grpc_byte_buffer *pack_buffer(const uint8_t *data, size_t len)
{
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)data, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s); /* P5: the buffer holds its own ref */
    return bb;
}

static grpc_byte_buffer *pack_message(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = hc_alloc(len);
    protobuf_c_message_pack(msg, buf);
    grpc_byte_buffer *bb = pack_buffer(buf, len);
    free(buf);
    return bb;
}

/* Decodes a received buffer; NULL when it does not parse. */
static ProtobufCMessage *unpack_buffer(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d)
{
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb))
        return NULL;
    grpc_slice s = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    ProtobufCMessage *m =
        protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    return m;
}

static const char *call_error_name(grpc_call_error e)
{
    switch (e) {
    case GRPC_CALL_OK:
        return "ok";
    case GRPC_CALL_ERROR_INVALID_METADATA:
        return "invalid metadata";
    case GRPC_CALL_ERROR_TOO_MANY_OPERATIONS:
        return "too many operations";
    default:
        return "call error";
    }
}

/* ---- unary ---- */

int herald_call_unary(herald_channel *ch, const char *path, const ProtobufCMessage *req,
                      const ProtobufCMessageDescriptor *resp_desc, const herald_call_options *o,
                      ProtobufCMessage **resp, herald_status *st)
{
    grpc_completion_queue *cq = NULL;
    grpc_call *call = NULL;
    grpc_byte_buffer *send_bb = NULL;
    grpc_byte_buffer *recv_bb = NULL;
    grpc_metadata *md = NULL;
    grpc_metadata_array init_md, trail_md;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    cancel_link link = { 0 };
    herald_cancel *cancel = o ? o->cancel : NULL;
    size_t n_md = 0;

    *resp = NULL;
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);
    cq = grpc_completion_queue_create_for_pluck(NULL);
    call =
        grpc_channel_create_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                 grpc_slice_from_static_string(path), NULL, call_deadline(o), NULL);
    if (!call) {
        status_local(st, GRPC_STATUS_INTERNAL, "cannot create call");
        goto out;
    }
    if (!cancel_register(cancel, call, &link)) {
        status_local(st, GRPC_STATUS_CANCELLED, "cancelled");
        goto out;
    }
    md = md_build(ch, o, &n_md);
    send_bb = pack_message(req);

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[0].flags = (o && o->wait_for_ready) ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    grpc_call_error e = grpc_call_start_batch(call, ops, 6, &link, NULL);
    if (e != GRPC_CALL_OK) {
        char *msg = hc_concat("cannot start call: ", call_error_name(e), NULL, NULL, NULL);
        status_local(st, GRPC_STATUS_INTERNAL, msg);
        free(msg);
        goto out;
    }
    grpc_completion_queue_pluck(cq, &link, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    status_fill(st, code, &details, &init_md, &trail_md, error_string);
    if (code == GRPC_STATUS_OK) {
        if (!recv_bb) {
            status_local(st, GRPC_STATUS_INTERNAL, "no message returned for a unary call");
        } else {
            *resp = unpack_buffer(recv_bb, resp_desc);
            if (!*resp) {
                char *msg =
                    hc_concat("cannot parse the response as ", resp_desc->name, NULL, NULL, NULL);
                status_local(st, GRPC_STATUS_INTERNAL, msg);
                free(msg);
            }
        }
    }
out:
    cancel_unregister(cancel, &link);
    if (send_bb)
        grpc_byte_buffer_destroy(send_bb);
    if (recv_bb)
        grpc_byte_buffer_destroy(recv_bb);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_slice_unref(details);
    gpr_free((void *)error_string);
    free(md);
    if (call)
        grpc_call_unref(call);
    cq_destroy(cq);
    return st->code;
}

/* ---- general streaming calls ---- */

struct herald_call {
    herald_channel *ch;
    grpc_completion_queue *cq;
    grpc_call *call;
    herald_cancel *cancel;
    cancel_link link;
    grpc_metadata_array init_md;
    bool got_init_md; /* RECV_INITIAL_METADATA has run */
    bool over;        /* a batch failed: the call is done for the transport */
    bool send_closed;
    bool finished;
    bool cancelled_early; /* the token fired before the call started */
};

/* Runs one batch and waits for it. false when the batch failed. */
static bool call_batch(herald_call *c, grpc_op *ops, size_t n)
{
    int tag = 0;
    if (grpc_call_start_batch(c->call, ops, n, &tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev =
        grpc_completion_queue_pluck(c->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

herald_call *herald_call_start(herald_channel *ch, const char *path, const herald_call_options *o,
                               char **err)
{
    herald_call *c = hc_alloc(sizeof *c);
    grpc_metadata *md = NULL;
    size_t n_md = 0;

    *err = NULL;
    c->ch = ch;
    c->cancel = o ? o->cancel : NULL;
    grpc_metadata_array_init(&c->init_md);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    c->call =
        grpc_channel_create_call(ch->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                 grpc_slice_from_static_string(path), NULL, call_deadline(o), NULL);
    if (!c->call) {
        *err = hc_strdup("cannot create call");
        herald_call_free(c);
        return NULL;
    }
    if (!cancel_register(c->cancel, c->call, &c->link)) {
        c->cancelled_early = true;
        c->over = true;
        grpc_call_cancel(c->call, NULL);
        return c;
    }
    md = md_build(ch, o, &n_md);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.data.send_initial_metadata.count = n_md;
    op.data.send_initial_metadata.metadata = md;
    op.flags = (o && o->wait_for_ready) ? GRPC_INITIAL_METADATA_WAIT_FOR_READY : 0;
    if (!call_batch(c, &op, 1))
        c->over = true;
    free(md);
    return c;
}

bool herald_call_send_raw(herald_call *c, const uint8_t *data, size_t len)
{
    if (c->over || c->send_closed)
        return false;
    grpc_byte_buffer *bb = pack_buffer(data, len);
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    bool ok = call_batch(c, &op, 1);
    grpc_byte_buffer_destroy(bb);
    if (!ok)
        c->over = true;
    return ok;
}

bool herald_call_send(herald_call *c, const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = hc_alloc(len);
    protobuf_c_message_pack(msg, buf);
    bool ok = herald_call_send_raw(c, buf, len);
    free(buf);
    return ok;
}

bool herald_call_close_send(herald_call *c)
{
    if (c->over || c->send_closed)
        return !c->over;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    c->send_closed = true;
    if (!call_batch(c, &op, 1)) {
        c->over = true;
        return false;
    }
    return true;
}

int herald_call_recv(herald_call *c, const ProtobufCMessageDescriptor *d, ProtobufCMessage **msg)
{
    *msg = NULL;
    if (c->cancelled_early)
        return 0;
    grpc_byte_buffer *bb = NULL;
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->got_init_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
        c->got_init_md = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &bb;
    bool ok = call_batch(c, ops, n);
    if (!ok || !bb) {
        if (bb)
            grpc_byte_buffer_destroy(bb);
        return 0;
    }
    *msg = unpack_buffer(bb, d);
    grpc_byte_buffer_destroy(bb);
    if (!*msg) {
        char *why = hc_concat("cannot parse a response message as ", d->name, NULL, NULL, NULL);
        grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, why, NULL);
        free(why);
        return -1;
    }
    return 1;
}

int herald_call_finish(herald_call *c, herald_status *st)
{
    grpc_metadata_array trail_md;
    grpc_slice details = grpc_empty_slice();
    const char *error_string = NULL;
    grpc_status_code code = GRPC_STATUS_UNKNOWN;

    if (c->cancelled_early) {
        status_local(st, GRPC_STATUS_CANCELLED, "cancelled");
        c->finished = true;
        return st->code;
    }
    grpc_metadata_array_init(&trail_md);
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!c->got_init_md) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &c->init_md;
        c->got_init_md = true;
    }
    ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[n].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[n].data.recv_status_on_client.status = &code;
    ops[n].data.recv_status_on_client.status_details = &details;
    ops[n++].data.recv_status_on_client.error_string = &error_string;
    if (call_batch(c, ops, n))
        status_fill(st, code, &details, &c->init_md, &trail_md, error_string);
    else
        status_local(st, GRPC_STATUS_INTERNAL, "cannot receive the call status");
    c->finished = true;
    grpc_metadata_array_destroy(&trail_md);
    grpc_slice_unref(details);
    gpr_free((void *)error_string);
    return st->code;
}

void herald_call_cancel(herald_call *c)
{
    if (c && c->call)
        grpc_call_cancel(c->call, NULL);
}

void herald_call_free(herald_call *c)
{
    if (!c)
        return;
    cancel_unregister(c->cancel, &c->link);
    if (c->call) {
        if (!c->finished) {
            /* Receive the status so that the call releases cleanly. */
            grpc_call_cancel(c->call, NULL);
            herald_status st;
            herald_status_init(&st);
            c->cancelled_early = false;
            herald_call_finish(c, &st);
            herald_status_fini(&st);
        }
        grpc_call_unref(c->call);
    }
    grpc_metadata_array_destroy(&c->init_md);
    cq_destroy(c->cq);
    free(c);
}

int herald_call_server_stream(herald_channel *ch, const char *path, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *resp_desc,
                              const herald_call_options *o, herald_message_fn fn, void *user,
                              herald_status *st)
{
    char *err = NULL;
    herald_call *c = herald_call_start(ch, path, o, &err);
    if (!c) {
        status_local(st, GRPC_STATUS_INTERNAL, err);
        free(err);
        return st->code;
    }
    if (herald_call_send(c, req) && herald_call_close_send(c)) {
        /* Bounded by the server ending the stream, the deadline or a cancel. */
        for (;;) {
            ProtobufCMessage *m = NULL;
            int r = herald_call_recv(c, resp_desc, &m);
            if (r <= 0)
                break;
            bool more = fn(m, user);
            protobuf_c_message_free_unpacked(m, NULL);
            if (!more) {
                herald_call_cancel(c);
                break;
            }
        }
    }
    herald_call_finish(c, st);
    herald_call_free(c);
    return st->code;
}

/* ---- typed stubs ---- */

struct herald_stub {
    ProtobufCService base; /* first: the generated wrappers see only this */
    herald_channel *ch;
    char **paths; /* "/pkg.Svc/Method" per method index */
    herald_call_options opts;
    herald_metadata *md; /* deep copy of opts.metadata */
    herald_status status;
};

static void stub_invoke(ProtobufCService *service, unsigned method_index,
                        const ProtobufCMessage *input, ProtobufCClosure closure, void *closure_data)
{
    herald_stub *s = (herald_stub *)service;
    const ProtobufCServiceDescriptor *d = service->descriptor;
    const ProtobufCMessageDescriptor *out_desc = d->methods[method_index].output;
    char *err = NULL;

    herald_status_fini(&s->status);
    herald_call *c = herald_call_start(s->ch, s->paths[method_index], &s->opts, &err);
    if (!c) {
        status_local(&s->status, GRPC_STATUS_INTERNAL, err);
        free(err);
        closure(NULL, closure_data);
        return;
    }
    /* One shape for unary and server-streaming methods (protoc-c does not
     * tell them apart): send, half-close, hand over every reply. */
    if (herald_call_send(c, input) && herald_call_close_send(c)) {
        for (;;) {
            ProtobufCMessage *m = NULL;
            if (herald_call_recv(c, out_desc, &m) <= 0)
                break;
            closure(m, closure_data);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    herald_call_finish(c, &s->status);
    herald_call_free(c);
    if (s->status.code != GRPC_STATUS_OK)
        closure(NULL, closure_data);
}

static void stub_destroy(ProtobufCService *service)
{
    herald_stub_free((herald_stub *)service);
}

herald_stub *herald_stub_new(herald_channel *ch, const ProtobufCServiceDescriptor *d)
{
    herald_stub *s = hc_alloc(sizeof *s);
    s->base.descriptor = d;
    s->base.invoke = stub_invoke;
    s->base.destroy = stub_destroy;
    s->ch = ch;
    s->paths = hc_alloc((d->n_methods ? d->n_methods : 1) * sizeof *s->paths);
    for (unsigned i = 0; i < d->n_methods; i++)
        s->paths[i] = hc_concat("/", d->name, "/", d->methods[i].name, NULL);
    herald_status_init(&s->status);
    return s;
}

static void stub_clear_options(herald_stub *s)
{
    md_list_free(s->md, s->opts.n_metadata);
    s->md = NULL;
    memset(&s->opts, 0, sizeof s->opts);
}

void herald_stub_free(herald_stub *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->base.descriptor->n_methods; i++)
        free(s->paths[i]);
    free(s->paths);
    stub_clear_options(s);
    herald_status_fini(&s->status);
    free(s);
}

ProtobufCService *herald_stub_service(herald_stub *s)
{
    return &s->base;
}

void herald_stub_set_options(herald_stub *s, const herald_call_options *o)
{
    stub_clear_options(s);
    if (!o)
        return;
    s->opts = *o;
    if (o->n_metadata) {
        s->md = hc_alloc(o->n_metadata * sizeof *s->md);
        for (size_t i = 0; i < o->n_metadata; i++) {
            const herald_metadata *m = &o->metadata[i];
            size_t len = m->value_len ? m->value_len : (m->value ? strlen(m->value) : 0);
            s->md[i].key = hc_strdup(m->key);
            s->md[i].value = hc_strndup(m->value ? m->value : "", len);
            s->md[i].value_len = len;
        }
    }
    s->opts.metadata = s->md;
}

const herald_status *herald_stub_status(const herald_stub *s)
{
    return &s->status;
}
