/* platform.c - platform limits and names (see platform.h). */
#include "platform.h"

#include <stddef.h>
#include <strings.h>

int platform_max_chars(platform_id p)
{
    switch (p) {
    case PLATFORM_X:
        return 280;
    case PLATFORM_THREADS:
        return 500;
    case PLATFORM_BLUESKY:
        return 300;
    case PLATFORM_LINKEDIN:
        return 3000;
    case PLATFORM_UNSPECIFIED:
        return 0;
    }
    return 0;
}

const char *platform_key(platform_id p)
{
    switch (p) {
    case PLATFORM_X:
        return "x";
    case PLATFORM_THREADS:
        return "threads";
    case PLATFORM_BLUESKY:
        return "bluesky";
    case PLATFORM_LINKEDIN:
        return "linkedin";
    case PLATFORM_UNSPECIFIED:
        return "unspecified";
    }
    return "unspecified";
}

platform_id platform_from_key(const char *key)
{
    static const struct {
        const char *key;
        platform_id id;
    } names[] = {
        { "x", PLATFORM_X },
        { "twitter", PLATFORM_X },
        { "threads", PLATFORM_THREADS },
        { "bluesky", PLATFORM_BLUESKY },
        { "linkedin", PLATFORM_LINKEDIN },
    };

    if (key == NULL)
        return PLATFORM_UNSPECIFIED;
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (strcasecmp(key, names[k].key) == 0)
            return names[k].id;
    return PLATFORM_UNSPECIFIED;
}
