/* fake_receiver.h - a local HTTP/1.1 publish target for the built-in
 * publisher's tests: it plays a webhook (or X API v2) endpoint that
 * "publishes" what it receives, and records, per post id, every request and
 * every post it accepted, so a test can prove that no post went out twice.
 *
 * It listens on 127.0.0.1 at a free port; one thread accepts, one thread
 * serves each connection (keep-alive). What a request gets is decided by a
 * rule the test installs (per post id and attempt), else 200 with a JSON
 * receipt {"id": "rcv-<post id>", "url": ...}.
 *
 * "Accepted" is the receiver's view of the platform: a request is accepted
 * (the post is on the account) when the rule's action accepts it, counted at
 * the moment it arrives, before any reply is written (a DELAYED_OK that the
 * client gives up on was still published, as on a real platform).
 *
 * The post id is the Idempotency-Key header (webhooks) or, failing that,
 * X-Herald-Post-Id; with a secret set, the X-Herald-Signature header
 * (sha256=<hex HMAC-SHA256 of the body>) is verified with OpenSSL and
 * requests that fail count as bad signatures (and get 401).
 *
 * Threads: every function may be called from any thread. */
#ifndef HERALD_FAKE_RECEIVER_H
#define HERALD_FAKE_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_receiver fake_receiver;

typedef enum {
    FR_OK = 0,      /* 200 + receipt; accepted */
    FR_STATUS,      /* reply status (429, 500, 400...) with retry_after; not accepted */
    FR_RESET,       /* read the request, then close with a TCP reset; not accepted */
    FR_DELAYED_OK,  /* accepted at once, 200 + receipt after delay_ms */
    FR_CLOSE_EARLY, /* close before reading the whole request; not accepted */
} fr_kind;

typedef struct fr_action {
    fr_kind kind;
    int status;        /* FR_STATUS */
    int retry_after_s; /* FR_STATUS: > 0 adds Retry-After */
    int delay_ms;      /* FR_DELAYED_OK; also a delay before FR_STATUS replies */
} fr_action;

/* Decides the action for a post's n-th request (n from 1). NULL = FR_OK. */
typedef fr_action (*fr_rule)(const char *post_id, int n, void *user);

fake_receiver *fake_receiver_start(void);  /* NULL on failure (reason on stderr) */
void fake_receiver_stop(fake_receiver *r); /* joins every thread; NULL ok */

int fake_receiver_port(const fake_receiver *r);
/* "http://127.0.0.1:PORT/publish" into buf. */
const char *fake_receiver_url(const fake_receiver *r, char *buf, size_t cap);

void fake_receiver_set_rule(fake_receiver *r, fr_rule rule, void *user);
/* The HMAC key to verify signatures with (copied); NULL: do not verify. */
void fake_receiver_set_secret(fake_receiver *r, const char *secret);

typedef struct fr_post_stats {
    int requests;     /* requests for this post id (headers read) */
    int accepted;     /* of which accepted (published) */
    int64_t first_ms; /* now_mono_ms() of the first and the last request; 0: none */
    int64_t last_ms;
} fr_post_stats;

/* Per post id; zeroes when unknown. */
fr_post_stats fake_receiver_post(fake_receiver *r, const char *post_id);

typedef struct fr_totals {
    int requests;
    int accepted;
    int bad_signatures;
    int posts;        /* distinct post ids seen */
    int max_accepted; /* the most acceptances of one post id (must stay <= 1) */
    int no_post_id;   /* requests without a post id */
} fr_totals;

fr_totals fake_receiver_totals(fake_receiver *r);

/* Copies the post ids seen (at most cap) into ids[i] (37 bytes each);
 * returns how many there are in all. */
int fake_receiver_post_ids(fake_receiver *r, char (*ids)[40], int cap);

#endif
