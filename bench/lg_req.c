/* lg_req.c - see lg_req.h.
 *
 * Fast path: the JSON is encoded once with each placeholder replaced by a
 * marker of the final length ("~lg~U00001~~..." for the n-th {{uuid}},
 * "~lg~S~~~~~~~" for {{seq}}); string fields carry their bytes verbatim in
 * the protobuf encoding, so the markers are found in the encoded bytes and
 * their offsets kept. Each marker must be found exactly as often as its
 * placeholder was written, else the template takes the slow path. */
#include "lg_req.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "pbjson.h"
#include "util.h"

#define UUID_LEN 36
#define SEQ_LEN 12

typedef enum { PH_NONE = 0, PH_UUID, PH_SEQ, PH_RUN } ph_kind;

typedef struct lg_patch {
    size_t off;
    ph_kind kind;
} lg_patch;

struct lg_tmpl {
    const ProtobufCMessageDescriptor *d;
    bool fast;
    bool is_static;
    uint8_t *bytes; /* fast and static: the encoded template */
    size_t len;
    lg_patch *patches;
    size_t n_patches;
    char *json; /* slow path: the JSON with {{run}} already substituted */
    size_t json_len;
};

/* ---------------------------------------------------------------- random */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void lg_rng_seed(lg_rng *r, uint64_t salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
    }
    r->s = seed ^ (salt * 0x9e3779b97f4a7c15ULL);
}

uint64_t lg_rng_next(lg_rng *r)
{
    return splitmix(&r->s);
}

void lg_uuid(lg_rng *r, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t a = lg_rng_next(r), c = lg_rng_next(r);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 15];
    }
    *p = '\0';
}

static char run_id[9];
static pthread_once_t run_once = PTHREAD_ONCE_INIT;

static void run_init(void)
{
    lg_rng r;
    lg_rng_seed(&r, 0x72756e);
    (void)snprintf(run_id, sizeof run_id, "%08" PRIx32, (uint32_t)lg_rng_next(&r));
}

const char *lg_run_id(void)
{
    pthread_once(&run_once, run_init);
    return run_id;
}

/* ---------------------------------------------------------------- placeholders */

static ph_kind ph_at(const char *s, size_t left, size_t *skip)
{
    static const struct {
        const char *text;
        ph_kind kind;
    } names[] = { { "{{uuid}}", PH_UUID }, { "{{seq}}", PH_SEQ }, { "{{run}}", PH_RUN } };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i].text);
        if (left >= n && memcmp(s, names[i].text, n) == 0) {
            *skip = n;
            return names[i].kind;
        }
    }
    return PH_NONE;
}

static void marker_uuid(unsigned idx, char out[UUID_LEN + 1])
{
    char head[16];
    int n = snprintf(head, sizeof head, "~lg~U%05u", idx % 100000u);
    memset(out, '~', UUID_LEN);
    memcpy(out, head, (size_t)n);
    out[UUID_LEN] = '\0';
}

static const char seq_marker[SEQ_LEN + 1] = "~lg~S~~~~~~~";

/* How the text is substituted: markers (fast-path discovery), real values, or
 * only {{run}} (the stored slow-path JSON). */
typedef enum { SUB_MARKERS, SUB_VALUES, SUB_RUN_ONLY } sub_mode;

/* Substitutes the placeholders of text; counts them per kind. */
static char *substitute(const char *text, size_t len, sub_mode mode, lg_rng *r, uint64_t seq,
                        size_t *out_len, size_t *n_uuid, size_t *n_seq)
{
    strbuf b = { 0 };
    char val[64];
    size_t nu = 0, ns = 0;
    for (size_t i = 0; i < len;) {
        size_t skip = 0;
        ph_kind k = text[i] == '{' ? ph_at(text + i, len - i, &skip) : PH_NONE;
        if (k == PH_NONE) {
            strbuf_append(&b, text + i, 1);
            i++;
            continue;
        }
        if (k == PH_RUN) {
            strbuf_puts(&b, lg_run_id());
        } else if (mode == SUB_RUN_ONLY) {
            strbuf_append(&b, text + i, skip);
        } else if (k == PH_UUID) {
            if (mode == SUB_MARKERS)
                marker_uuid((unsigned)nu, val);
            else
                lg_uuid(r, val);
            strbuf_puts(&b, val);
            nu++;
        } else {
            if (mode == SUB_MARKERS)
                strbuf_puts(&b, seq_marker);
            else
                strbuf_printf(&b, "%012" PRIu64, (uint64_t)(seq % 1000000000000ULL));
            ns++;
        }
        i += skip;
    }
    if (n_uuid != NULL)
        *n_uuid = nu;
    if (n_seq != NULL)
        *n_seq = ns;
    if (b.data == NULL)
        strbuf_puts(&b, "");
    *out_len = b.len;
    return strbuf_take(&b);
}

static uint8_t *encode_json(const char *json, size_t len, const ProtobufCMessageDescriptor *d,
                            size_t *out_len, char **err)
{
    ProtobufCMessage *msg = NULL;
    if (pbjson_decode_string(json, len, d, NULL, &msg, err) != ST_OK)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = xmalloc(n ? n : 1);
    protobuf_c_message_pack(msg, buf);
    protobuf_c_message_free_unpacked(msg, NULL);
    *out_len = n;
    return buf;
}

static size_t count_occurrences(const uint8_t *hay, size_t n, const char *needle, size_t m,
                                size_t *first)
{
    size_t count = 0;
    for (size_t i = 0; i + m <= n; i++) {
        if (hay[i] == (uint8_t)needle[0] && memcmp(hay + i, needle, m) == 0) {
            if (count == 0 && first != NULL)
                *first = i;
            count++;
            i += m - 1;
        }
    }
    return count;
}

/* Finds every marker in t->bytes; false when a marker is not where the fast
 * path needs it. */
static bool find_patches(lg_tmpl *t, size_t n_uuid, size_t n_seq)
{
    t->patches = xcalloc(n_uuid + n_seq + 1, sizeof *t->patches);
    char m[UUID_LEN + 1];
    for (size_t u = 0; u < n_uuid; u++) {
        size_t off = 0;
        marker_uuid((unsigned)u, m);
        if (n_uuid > 100000 || count_occurrences(t->bytes, t->len, m, UUID_LEN, &off) != 1)
            return false;
        t->patches[t->n_patches++] = (lg_patch){ off, PH_UUID };
    }
    if (count_occurrences(t->bytes, t->len, seq_marker, SEQ_LEN, NULL) != n_seq)
        return false;
    for (size_t i = 0; i + SEQ_LEN <= t->len; i++) {
        if (memcmp(t->bytes + i, seq_marker, SEQ_LEN) == 0) {
            t->patches[t->n_patches++] = (lg_patch){ i, PH_SEQ };
            i += SEQ_LEN - 1;
        }
    }
    return true;
}

lg_tmpl *lg_tmpl_from_json(const char *json, size_t len, const ProtobufCMessageDescriptor *d,
                           char **err)
{
    lg_tmpl *t = xcalloc(1, sizeof *t);
    size_t n_uuid = 0, n_seq = 0, mlen = 0;
    *err = NULL;
    t->d = d;
    t->json = substitute(json, len, SUB_RUN_ONLY, NULL, 0, &t->json_len, NULL, NULL);

    char *marked = substitute(json, len, SUB_MARKERS, NULL, 0, &mlen, &n_uuid, &n_seq);
    char *merr = NULL;
    t->bytes = encode_json(marked, mlen, d, &t->len, &merr);
    free(marked);
    if (t->bytes != NULL && n_uuid + n_seq == 0) {
        t->is_static = t->fast = true;
        free(merr);
        return t;
    }
    if (t->bytes != NULL && find_patches(t, n_uuid, n_seq)) {
        t->fast = true;
        free(merr);
        return t;
    }
    /* slow path: it must at least encode with real values */
    free(t->bytes);
    t->bytes = NULL;
    free(t->patches);
    t->patches = NULL;
    t->n_patches = 0;
    lg_rng r;
    lg_rng_seed(&r, 1);
    size_t rlen = 0;
    char *real = substitute(json, len, SUB_VALUES, &r, 0, &rlen, NULL, NULL);
    size_t n = 0;
    uint8_t *probe = encode_json(real, rlen, d, &n, err);
    free(real);
    free(merr);
    if (probe == NULL) {
        lg_tmpl_free(t);
        return NULL;
    }
    free(probe);
    t->len = n;
    return t;
}

lg_tmpl *lg_tmpl_from_bytes(const uint8_t *data, size_t len)
{
    lg_tmpl *t = xcalloc(1, sizeof *t);
    t->bytes = xmalloc(len ? len : 1);
    if (len > 0)
        memcpy(t->bytes, data, len);
    t->len = len;
    t->fast = t->is_static = true;
    return t;
}

void lg_tmpl_free(lg_tmpl *t)
{
    if (t == NULL)
        return;
    free(t->bytes);
    free(t->patches);
    free(t->json);
    free(t);
}

bool lg_tmpl_fast(const lg_tmpl *t)
{
    return t->fast;
}

bool lg_tmpl_static(const lg_tmpl *t)
{
    return t->is_static;
}

size_t lg_tmpl_size(const lg_tmpl *t)
{
    return t->len;
}

const uint8_t *lg_tmpl_static_bytes(const lg_tmpl *t, size_t *len)
{
    if (!t->is_static)
        return NULL;
    *len = t->len;
    return t->bytes;
}

uint8_t *lg_tmpl_render(const lg_tmpl *t, lg_rng *r, uint64_t seq, size_t *len, char **err)
{
    *err = NULL;
    if (t->fast) {
        uint8_t *buf = xmalloc(t->len ? t->len : 1);
        if (t->len > 0)
            memcpy(buf, t->bytes, t->len);
        char seqs[SEQ_LEN + 8];
        (void)snprintf(seqs, sizeof seqs, "%012" PRIu64, (uint64_t)(seq % 1000000000000ULL));
        for (size_t i = 0; i < t->n_patches; i++) {
            if (t->patches[i].kind == PH_UUID) {
                char u[UUID_LEN + 1];
                lg_uuid(r, u);
                memcpy(buf + t->patches[i].off, u, UUID_LEN);
            } else {
                memcpy(buf + t->patches[i].off, seqs, SEQ_LEN);
            }
        }
        *len = t->len;
        return buf;
    }
    size_t jlen = 0;
    char *json = substitute(t->json, t->json_len, SUB_VALUES, r, seq, &jlen, NULL, NULL);
    uint8_t *out = encode_json(json, jlen, t->d, len, err);
    free(json);
    return out;
}
