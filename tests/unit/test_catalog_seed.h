/* test_catalog_seed.h - loads the real catalog (the seed migration) for the
 * content unit tests and the generator benchmark. HERALD_SEED_SQL is the path
 * of migrations/0001_catalog.up.sql, set by tests/content.cmake. */
#ifndef HERALD_TEST_CATALOG_SEED_H
#define HERALD_TEST_CATALOG_SEED_H

#include <stdio.h>
#include <stdlib.h>

#include "catalog.h"

/* Reads a whole file; NULL on failure. The caller frees. */
static inline char *seed_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    *len = 0;
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The finished seed catalog, or NULL (with the reason on stderr). */
static inline catalog *seed_catalog_load(void)
{
    size_t len;
    char *sql = seed_read_file(HERALD_SEED_SQL, &len);
    catalog *c = catalog_new();

    if (sql == NULL) {
        fprintf(stderr, "cannot read %s\n", HERALD_SEED_SQL);
        catalog_free(c);
        return NULL;
    }
    if (catalog_load_seed_sql(c, sql, len) != ST_OK || catalog_finish(c) != ST_OK) {
        fprintf(stderr, "seed catalog: %s\n", catalog_errmsg(c));
        catalog_free(c);
        c = NULL;
    }
    free(sql);
    return c;
}

#endif
