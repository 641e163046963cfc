/* catalog_priv.h - shared between catalog.c and catalog_seed.c only. */
#ifndef HERALD_CATALOG_PRIV_H
#define HERALD_CATALOG_PRIV_H

#include "catalog.h"

/* Replaces the message catalog_errmsg() returns. */
void catalog_set_errmsg(catalog *c, const char *msg);

#endif
