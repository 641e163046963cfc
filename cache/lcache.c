/* lcache.c - the in-process LRU (see lcache.h): a chained hash table for
 * lookups and a doubly linked list in recency order (head = most recent),
 * both under one mutex. */
#include "lcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct lc_entry {
    struct lc_entry *chain;       /* next in the bucket */
    struct lc_entry *prev, *next; /* recency list */
    uint64_t hash;
    int64_t expires_us;
    size_t len;
    size_t cost;
    uint8_t *val;
    char key[];
} lc_entry;

struct lcache {
    /* mu protects everything below but the counters */
    pthread_mutex_t mu;
    lc_entry **buckets;
    size_t nbuckets; /* a power of two */
    lc_entry *head, *tail;
    size_t bytes;
    size_t max_bytes;
    size_t n;
    atomic_uint_fast64_t hits, misses, evictions;
};

static uint64_t hash_of(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

lcache *lcache_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    lcache *lc = xcalloc(1, sizeof *lc);
    lc->max_bytes = max_bytes;
    /* about one bucket per 1 KiB of bound: replies are a few hundred bytes
     * to a few KiB */
    lc->nbuckets = 64;
    while (lc->nbuckets < max_bytes / 1024 && lc->nbuckets < ((size_t)1 << 20))
        lc->nbuckets <<= 1;
    lc->buckets = xcalloc(lc->nbuckets, sizeof *lc->buckets);
    pthread_mutex_init(&lc->mu, NULL);
    return lc;
}

static void list_unlink(lcache *lc, lc_entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        lc->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        lc->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(lcache *lc, lc_entry *e)
{
    e->prev = NULL;
    e->next = lc->head;
    if (lc->head != NULL)
        lc->head->prev = e;
    lc->head = e;
    if (lc->tail == NULL)
        lc->tail = e;
}

static lc_entry **slot_of(lcache *lc, const char *key, uint64_t h)
{
    lc_entry **p = &lc->buckets[h & (lc->nbuckets - 1)];
    while (*p != NULL && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->chain;
    return p;
}

/* Unlinks *slot's entry from its bucket and the list, and frees it. */
static void remove_at(lcache *lc, lc_entry **slot)
{
    lc_entry *e = *slot;
    *slot = e->chain;
    list_unlink(lc, e);
    lc->bytes -= e->cost;
    lc->n--;
    free(e->val);
    free(e);
}

static void remove_entry(lcache *lc, lc_entry *e)
{
    remove_at(lc, slot_of(lc, e->key, e->hash));
}

void lcache_free(lcache *lc)
{
    if (lc == NULL)
        return;
    lcache_clear(lc);
    free(lc->buckets);
    pthread_mutex_destroy(&lc->mu);
    free(lc);
}

bool lcache_get(lcache *lc, const char *key, int64_t now_us, uint8_t **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (lc == NULL || key == NULL)
        return false;
    uint64_t h = hash_of(key);
    bool hit = false;
    pthread_mutex_lock(&lc->mu);
    lc_entry **slot = slot_of(lc, key, h);
    lc_entry *e = *slot;
    if (e != NULL && now_us >= e->expires_us) {
        remove_at(lc, slot);
    } else if (e != NULL) {
        uint8_t *copy = xmalloc(e->len + 1);
        memcpy(copy, e->val, e->len);
        copy[e->len] = '\0';
        *val = copy;
        *len = e->len;
        if (lc->head != e) {
            list_unlink(lc, e);
            list_push_front(lc, e);
        }
        hit = true;
    }
    pthread_mutex_unlock(&lc->mu);
    atomic_fetch_add(hit ? &lc->hits : &lc->misses, 1);
    return hit;
}

void lcache_put(lcache *lc, const char *key, const void *val, size_t len, int64_t expires_us)
{
    if (lc == NULL || key == NULL || (val == NULL && len > 0))
        return;
    size_t klen = strlen(key);
    size_t cost = LCACHE_ENTRY_OVERHEAD + klen + len;
    if (cost > lc->max_bytes / 8)
        return;
    lc_entry *e = xmalloc(sizeof *e + klen + 1);
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen + 1);
    e->hash = hash_of(key);
    e->expires_us = expires_us;
    e->len = len;
    e->cost = cost;
    e->val = xmalloc(len ? len : 1);
    if (len)
        memcpy(e->val, val, len);

    pthread_mutex_lock(&lc->mu);
    lc_entry **slot = slot_of(lc, key, e->hash);
    if (*slot != NULL)
        remove_at(lc, slot);
    while (lc->tail != NULL && lc->bytes + cost > lc->max_bytes) {
        remove_entry(lc, lc->tail);
        atomic_fetch_add(&lc->evictions, 1);
    }
    size_t b = e->hash & (lc->nbuckets - 1);
    e->chain = lc->buckets[b];
    lc->buckets[b] = e;
    list_push_front(lc, e);
    lc->bytes += cost;
    lc->n++;
    pthread_mutex_unlock(&lc->mu);
}

void lcache_clear(lcache *lc)
{
    if (lc == NULL)
        return;
    pthread_mutex_lock(&lc->mu);
    while (lc->head != NULL)
        remove_entry(lc, lc->head);
    pthread_mutex_unlock(&lc->mu);
}

void lcache_stats_get(lcache *lc, lcache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (lc == NULL)
        return;
    out->hits = atomic_load(&lc->hits);
    out->misses = atomic_load(&lc->misses);
    out->evictions = atomic_load(&lc->evictions);
    pthread_mutex_lock(&lc->mu);
    out->entries = lc->n;
    out->bytes = lc->bytes;
    pthread_mutex_unlock(&lc->mu);
    out->max_bytes = lc->max_bytes;
}
