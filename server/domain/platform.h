/* platform.h - the social networks Herald writes for and their text rules.
 * Values match herald.v1.Platform. Pure functions; any thread. */
#ifndef HERALD_PLATFORM_H
#define HERALD_PLATFORM_H

typedef enum {
    PLATFORM_UNSPECIFIED = 0,
    PLATFORM_X = 1,        /* 280 characters */
    PLATFORM_THREADS = 2,  /* 500 */
    PLATFORM_BLUESKY = 3,  /* 300 */
    PLATFORM_LINKEDIN = 4, /* 3,000 */
} platform_id;

#define PLATFORM_COUNT 5

/* Maximum post length in Unicode code points (X's special URL counting is
 * ignored); 0 for PLATFORM_UNSPECIFIED or an unknown value. */
int platform_max_chars(platform_id p);

/* "x", "threads", "bluesky", "linkedin"; "unspecified" otherwise. Static. */
const char *platform_key(platform_id p);

/* Parses a key as above, case-insensitively ("twitter" is accepted for X).
 * PLATFORM_UNSPECIFIED when unknown. */
platform_id platform_from_key(const char *key);

#endif
