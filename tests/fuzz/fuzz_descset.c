/* fuzz_descset.c - a hostile FileDescriptorSet (common/descset.h).
 *
 * The CLI loads protosets given with --protoset and heraldd parses its
 * embedded set with the same code, and the reflection handler and the auth
 * table read what it indexes. Input: serialized FileDescriptorSet bytes.
 * When descset_new accepts them: every indexed symbol is found again by its
 * name, every file's dependency walk visits the file last and each file
 * once, comments and streaming flags can be read, reflection answers a
 * list_services and a file_containing_symbol for the first symbol, and
 * auth_new either builds its table or fails with a message. */
#include <string.h>

#include "auth.h"
#include "descset.h"
#include "fuzz.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "reflection.h"
#include "util.h"

typedef struct walk {
    const descset *ds;
    const descset_file *root;
    size_t n;
    size_t cap;
    bool *seen;
    bool root_last;
} walk;

static bool visit(const descset_file *f, void *user)
{
    walk *w = user;
    size_t i = descset_file_index(w->ds, f);
    FUZZ_CHECK(i < w->cap);
    FUZZ_CHECK(!w->seen[i]);
    w->seen[i] = true;
    w->n++;
    w->root_last = f == w->root;
    return true;
}

static void ask(const reflection *r, reflection_sent *sent, const char *symbol)
{
    Grpc__Reflection__V1__ServerReflectionRequest req =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    if (symbol == NULL) {
        req.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
        req.list_services = "*";
    } else {
        req.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
        req.file_containing_symbol = (char *)symbol;
    }
    size_t len = grpc__reflection__v1__server_reflection_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    FUZZ_CHECK(buf != NULL);
    grpc__reflection__v1__server_reflection_request__pack(&req, buf);
    uint8_t *out = NULL;
    size_t out_len = 0;
    status st = reflection_answer(r, sent, buf, len, &out, &out_len);
    if (st != ST_OK)
        fprintf(stderr, "reflection_answer(%s) = %s\n", symbol != NULL ? symbol : "list_services",
                status_name(st));
    FUZZ_CHECK(st == ST_OK);
    free(out);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *err = NULL;
    descset *ds = descset_new(data, size, &err);
    if (ds == NULL) {
        FUZZ_CHECK(err != NULL);
        free(err);
        return 0;
    }
    FUZZ_CHECK(err == NULL);
    size_t nf = descset_file_count(ds);
    for (size_t i = 0; i < nf; i++) {
        const descset_file *f = descset_file_at(ds, i);
        FUZZ_CHECK(descset_file_by_name(ds, f->name) != NULL);
        walk w = { ds, f, 0, nf, calloc(nf ? nf : 1, sizeof(bool)), false };
        FUZZ_CHECK(w.seen != NULL);
        descset_walk_deps(ds, f, visit, &w);
        FUZZ_CHECK(w.n >= 1 && w.root_last);
        free(w.seen);
    }
    size_t ns = descset_symbol_count(ds);
    for (size_t i = 0; i < ns; i++) {
        const descset_symbol *s = descset_symbol_at(ds, i);
        FUZZ_CHECK(s != NULL && s->name != NULL);
        if (i > 0)
            FUZZ_CHECK(strcmp(descset_symbol_at(ds, i - 1)->name, s->name) <= 0);
        const descset_symbol *again = descset_symbol_find(ds, s->name);
        FUZZ_CHECK(again != NULL);
        (void)descset_comment(ds, s->name);
    }
    for (size_t i = 0; i < descset_service_count(ds); i++) {
        const descset_symbol *svc = descset_service_at(ds, i);
        const Google__Protobuf__ServiceDescriptorProto *sp = svc->proto;
        for (size_t j = 0; sp != NULL && j < sp->n_method; j++) {
            bool cs = false, ss = false;
            if (sp->method[j]->name != NULL)
                (void)descset_method_streaming(ds, svc->name, sp->method[j]->name, &cs, &ss);
        }
    }

    reflection *r = reflection_new(ds);
    reflection_sent *sent = reflection_sent_new();
    ask(r, sent, NULL);
    /* (reflection refuses a request that is not valid UTF-8: ask only for
     * names a client could send) */
    const char *last = ns > 0 ? descset_symbol_at(ds, ns - 1)->name : NULL;
    if (last != NULL && utf8_valid(last, strlen(last)))
        ask(r, sent, last);
    reflection_sent_free(sent);
    reflection_free(r);

    auth *a = auth_new(ds, NULL, AUTH_REFLECTION_OPEN, &err);
    FUZZ_CHECK((a == NULL) == (err != NULL));
    free(err);
    auth_free(a);
    descset_free(ds);
    return 0;
}
