/* catalog.h - the in-memory content catalog: content types, voice styles,
 * topics with their sourced facts, and the banned-phrase list.
 *
 * The database (migrations/0001_catalog.up.sql) is the source of truth. The
 * store layer builds a catalog from rows with catalog_add_* and then
 * catalog_finish(); tests and offline tools can build one from the seed SQL
 * with catalog_load_seed_sql(). The generator and the gates only read it.
 *
 * Ownership: every string passed in is copied; pointers handed out (entries,
 * facts, phrases and their strings) are owned by the catalog and valid until
 * catalog_free.
 *
 * Threads: building is single-threaded. After catalog_finish() returns ST_OK
 * the catalog is immutable and may be shared by any number of threads
 * without locking; to reload, build a new one and swap the pointer. */
#ifndef HERALD_CATALOG_H
#define HERALD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"
#include "textscan.h"

/* Values match herald.v1.CatalogKind. */
typedef enum {
    CATALOG_CONTENT_TYPE = 1,
    CATALOG_VOICE_STYLE = 2,
    CATALOG_TOPIC = 3,
} catalog_kind;

/* A row of content_types, voice_styles or topics. */
typedef struct catalog_entry {
    const char *key; /* lower snake case, 1-64 chars */
    const char *display_name;
    const char *description;
    bool enabled;
    int min_chars; /* length bounds of a post using this entry, code points */
    int max_chars;
    double prior_weight; /* > 0; the learner's prior for this arm */
} catalog_entry;

/* A row of topic_facts. */
typedef struct catalog_fact {
    const char *key;
    const char *topic_key;
    const char *fact;     /* the specific statement, numbers and units */
    const char *myth;     /* the popular belief it corrects or complicates */
    const char *takeaway; /* why it matters (population level, never advice) */
    const char *source;   /* "Authors, Journal" or the study's name */
    int year;
    bool enabled;
} catalog_fact;

/* A row of banned_phrases. */
typedef struct catalog_phrase {
    const char *phrase; /* lower case */
    const char *category;
    bool enabled;
} catalog_phrase;

typedef struct catalog catalog; /* opaque */

catalog *catalog_new(void);
void catalog_free(catalog *c); /* NULL-safe */

/* The reason for the last failure; borrowed until the next call. */
const char *catalog_errmsg(const catalog *c);

/* Builders. ST_INVALID for a malformed row (bad key, empty name, bounds out
 * of order, weight <= 0, invalid UTF-8, year outside 1900-2100),
 * ST_ALREADY_EXISTS for a duplicate key, ST_FAILED_PRECONDITION after
 * catalog_finish. */
status catalog_add_entry(catalog *c, catalog_kind kind, const catalog_entry *e);
status catalog_add_fact(catalog *c, const catalog_fact *f);
status catalog_add_phrase(catalog *c, const catalog_phrase *p);

/* Checks that every fact's topic exists (ST_NOT_FOUND otherwise), groups the
 * facts by topic and prepares the phrase matcher. Call once, after the last
 * add; the catalog is read-only afterwards. */
status catalog_finish(catalog *c);
bool catalog_finished(const catalog *c);

/* Entries of one kind, in insertion order. */
size_t catalog_count(const catalog *c, catalog_kind kind);
const catalog_entry *catalog_entry_at(const catalog *c, catalog_kind kind, size_t i);
/* NULL when absent. key must already be normalised (catalog_key_normalize). */
const catalog_entry *catalog_find(const catalog *c, catalog_kind kind, const char *key);

/* All facts; after catalog_finish grouped by topic, insertion order within a
 * topic. */
size_t catalog_fact_count(const catalog *c);
const catalog_fact *catalog_fact_at(const catalog *c, size_t i);
const catalog_fact *catalog_find_fact(const catalog *c, const char *key);
/* The facts of one topic (enabled or not) as a contiguous array of *n; NULL
 * with *n = 0 for an unknown topic or before catalog_finish. */
const catalog_fact *catalog_topic_facts(const catalog *c, const char *topic_key, size_t *n);

/* Banned phrases, in insertion order, and each one's word tokens (available
 * after catalog_finish; the gates match them against a text's tokens). */
size_t catalog_phrase_count(const catalog *c);
const catalog_phrase *catalog_phrase_at(const catalog *c, size_t i);
const textscan_tokens *catalog_phrase_tokens(const catalog *c, size_t i);

/* True for a valid stored key: ^[a-z][a-z0-9]*(_[a-z0-9]+)*$, at most 64. */
bool catalog_key_valid(const char *key);

/* Normalises a key from the API ('-' becomes '_', upper case folds to lower,
 * as herald.v1 documents) into out (cap bytes). ST_INVALID when the result is
 * not a valid key or does not fit. */
status catalog_key_normalize(const char *in, char *out, size_t cap);

/* Loads the INSERT rows of the catalog seed migration (the exact format
 * documented at the top of migrations/0001_catalog.up.sql: one header line
 * per INSERT, one row per line) into c. DDL and comment lines are skipped.
 * Does not call catalog_finish. ST_INVALID with the line number in
 * catalog_errmsg() on anything it does not understand. */
status catalog_load_seed_sql(catalog *c, const char *sql, size_t len);

#endif
