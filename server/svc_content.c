/* svc_content.c - herald.v1.ContentService handlers (proto/herald/v1/content.proto).
 *
 * Drafts and review: issue 5; the catalog: issue 5.
 * Every slot below is NULL until the issue that builds the method fills it;
 * the runtime answers UNIMPLEMENTED for a NULL slot. Handlers follow the
 * contract in rpc.h and run on worker threads. */
#include <stddef.h>

#include "herald/v1/content.pb-c.h"
#include "svc.h"

/* clang-format off */
static Herald__V1__ContentService_Service svc = {
    .base = HERALD__V1__CONTENT_SERVICE__BASE_INIT,
    .generate_draft = NULL,
    .generate_batch = NULL,
    .validate_text = NULL,
    .adapt_for_platform = NULL,
    .generate_reply = NULL,
    .get_post = NULL,
    .list_posts = NULL,
    .update_draft = NULL,
    .approve_post = NULL,
    .reject_post = NULL,
    .cancel_post = NULL,
    .list_catalog = NULL,
    .update_catalog_entry = NULL,
};
/* clang-format on */

ProtobufCService *svc_content_service(void)
{
    return &svc.base;
}
