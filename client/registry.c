/* registry.c - lookups over the generated descriptor lists.
 * The message and enum tables are built once (pthread_once) by walking every
 * field of every message reachable from the services and the extra list. */
#include "registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const ProtobufCMessageDescriptor **msgs; /* sorted by name */
static size_t n_msgs;
static const ProtobufCEnumDescriptor **enums; /* sorted by name */
static size_t n_enums;
static pthread_once_t built = PTHREAD_ONCE_INIT;

typedef struct ptrset {
    const void **items;
    size_t n, cap;
} ptrset;

static bool ptrset_add(ptrset *s, const void *p)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i] == p)
            return false;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->items = xrealloc(s->items, s->cap * sizeof *s->items);
    }
    s->items[s->n++] = p;
    return true;
}

static void walk_message(ptrset *ms, ptrset *es, const ProtobufCMessageDescriptor *d)
{
    if (!ptrset_add(ms, d))
        return;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            walk_message(ms, es, f->descriptor);
        else if (f->type == PROTOBUF_C_TYPE_ENUM)
            ptrset_add(es, f->descriptor);
    }
}

static int cmp_msg(const void *a, const void *b)
{
    const ProtobufCMessageDescriptor *const *x = a;
    const ProtobufCMessageDescriptor *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static int cmp_enum(const void *a, const void *b)
{
    const ProtobufCEnumDescriptor *const *x = a;
    const ProtobufCEnumDescriptor *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

static void build(void)
{
    ptrset ms = { 0 }, es = { 0 };
    for (size_t i = 0; i < registry_n_services; i++) {
        const ProtobufCServiceDescriptor *s = registry_services[i].desc;
        for (unsigned m = 0; m < s->n_methods; m++) {
            walk_message(&ms, &es, s->methods[m].input);
            walk_message(&ms, &es, s->methods[m].output);
        }
    }
    for (size_t i = 0; i < registry_n_messages; i++)
        walk_message(&ms, &es, registry_messages[i]);
    msgs = (const ProtobufCMessageDescriptor **)ms.items;
    n_msgs = ms.n;
    enums = (const ProtobufCEnumDescriptor **)es.items;
    n_enums = es.n;
    if (n_msgs)
        qsort(msgs, n_msgs, sizeof *msgs, cmp_msg); /* NOLINT(bugprone-sizeof-expression) */
    if (n_enums)
        qsort(enums, n_enums, sizeof *enums, cmp_enum); /* NOLINT(bugprone-sizeof-expression) */
}

const registry_service *registry_service_find(const char *full_name)
{
    for (size_t i = 0; i < registry_n_services; i++) {
        if (strcmp(registry_services[i].desc->name, full_name) == 0)
            return &registry_services[i];
    }
    return NULL;
}

bool registry_method_find(const char *spec, const registry_service **svc,
                          const ProtobufCMethodDescriptor **method)
{
    *svc = NULL;
    *method = NULL;
    if (spec[0] == '/')
        spec++;
    const char *sep = strrchr(spec, '/');
    if (!sep)
        sep = strrchr(spec, '.');
    if (!sep || sep == spec || sep[1] == '\0')
        return false;
    char *sname = xstrndup(spec, (size_t)(sep - spec));
    const registry_service *s = registry_service_find(sname);
    free(sname);
    if (!s)
        return false;
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(s->desc, sep + 1);
    if (!m)
        return false;
    *svc = s;
    *method = m;
    return true;
}

size_t registry_message_count(void)
{
    pthread_once(&built, build);
    return n_msgs;
}

const ProtobufCMessageDescriptor *registry_message_at(size_t i)
{
    pthread_once(&built, build);
    return i < n_msgs ? msgs[i] : NULL;
}

const ProtobufCMessageDescriptor *registry_message_find(const char *full_name)
{
    pthread_once(&built, build);
    if (full_name[0] == '.')
        full_name++;
    size_t lo = 0, hi = n_msgs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(msgs[mid]->name, full_name);
        if (c == 0)
            return msgs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const ProtobufCEnumDescriptor *registry_enum_find(const char *full_name)
{
    pthread_once(&built, build);
    if (full_name[0] == '.')
        full_name++;
    for (size_t i = 0; i < n_enums; i++) {
        if (strcmp(enums[i]->name, full_name) == 0)
            return enums[i];
    }
    return NULL;
}

const ProtobufCMessageDescriptor *registry_resolve(const char *full_name, void *user)
{
    (void)user;
    return registry_message_find(full_name);
}
