/* fake_receiver.c - a local publish target for the publisher's tests (see
 * fake_receiver.h). */
#include "fake_receiver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"

enum { HDR_MAX = 16384, BODY_MAX = 1 << 20, IDLE_MS = 30000, MAX_CONNS = 256 };

typedef struct fr_post {
    char id[40];
    int requests;
    int accepted;
    int64_t first_ms, last_ms;
} fr_post;

typedef struct fr_conn {
    fake_receiver *r;
    int fd;
    pthread_t thread;
    bool done;
} fr_conn;

struct fake_receiver {
    int lfd;
    int port;
    pthread_t accept_thread;
    pthread_mutex_t mu; /* protects everything below */
    bool stop;
    fr_rule rule;
    void *user;
    char *secret;
    fr_post *posts;
    size_t n_posts, cap_posts;
    fr_totals totals;
    fr_conn *conns[MAX_CONNS];
    size_t n_conns;
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static bool stopping(fake_receiver *r)
{
    pthread_mutex_lock(&r->mu);
    bool s = r->stop;
    pthread_mutex_unlock(&r->mu);
    return s;
}

static fr_post *post_get(fake_receiver *r, const char *id)
{
    for (size_t i = 0; i < r->n_posts; i++)
        if (strcmp(r->posts[i].id, id) == 0)
            return &r->posts[i];
    if (r->n_posts == r->cap_posts) {
        r->cap_posts = r->cap_posts ? 2 * r->cap_posts : 64;
        r->posts = xrealloc(r->posts, r->cap_posts * sizeof *r->posts);
    }
    fr_post *p = &r->posts[r->n_posts++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    r->totals.posts++;
    return p;
}

/* Reads until the buffer holds n bytes; false on close, error, stop or idle. */
static bool read_more(fake_receiver *r, int fd, char *buf, size_t *have, size_t want)
{
    int64_t idle_until = now_mono_ms() + IDLE_MS;
    while (*have < want) {
        struct pollfd pf = { fd, POLLIN, 0 };
        int n = poll(&pf, 1, 100);
        if (stopping(r) || now_mono_ms() > idle_until)
            return false;
        if (n <= 0)
            continue;
        ssize_t got = read(fd, buf + *have, want - *have);
        if (got <= 0)
            return false;
        *have += (size_t)got;
        idle_until = now_mono_ms() + IDLE_MS;
    }
    return true;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* The value of header name in the header block (a copy into out). */
static bool header(const char *hdrs, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(hdrs, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
        l += 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e != NULL ? (size_t)(e - v) : strlen(v);
            if (len >= cap)
                len = cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

static bool signature_ok(const char *secret, const char *body, size_t len, const char *sig)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (strncmp(sig, "sha256=", 7) != 0)
        return false;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
             &mlen) == NULL)
        return false;
    for (unsigned i = 0; i < mlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return strlen(sig + 7) == 2 * mlen && CRYPTO_memcmp(hex, sig + 7, 2 * mlen) == 0;
}

static void reply(int fd, int status, int retry_after, const char *body)
{
    char head[512];
    const char *text = status == 200   ? "OK"
                       : status == 429 ? "Too Many Requests"
                       : status >= 500 ? "Server Error"
                                       : "Client Error";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\n",
                     status, text, strlen(body));
    if (retry_after > 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Retry-After: %d\r\n", retry_after);
    snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    write_all(fd, head, strlen(head));
    write_all(fd, body, strlen(body));
}

/* The end of the header block ("\r\n\r\n") in buf[0..n), or NULL. */
static char *find_crlfcrlf(char *buf, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i;
    return NULL;
}

/* Serves one request; false when the connection is over. */
static bool serve_one(fake_receiver *r, int fd, char *buf, size_t *have)
{
    char *end = NULL;
    while ((end = find_crlfcrlf(buf, *have)) == NULL) {
        if (*have >= HDR_MAX)
            return false;
        size_t before = *have;
        if (!read_more(r, fd, buf, have, before + 1))
            return false;
        /* read whatever else is there */
        struct pollfd pf = { fd, POLLIN, 0 };
        while (*have < HDR_MAX && poll(&pf, 1, 0) > 0) {
            ssize_t got = read(fd, buf + *have, HDR_MAX - *have);
            if (got <= 0)
                break;
            *have += (size_t)got;
        }
    }
    size_t hlen = (size_t)(end - buf) + 4;
    char hdrs[HDR_MAX + 1];
    memcpy(hdrs, buf, hlen);
    hdrs[hlen] = '\0';
    char val[256], post_id[40] = "", sig[200] = "";
    size_t clen = 0;
    if (header(hdrs, "Content-Length", val, sizeof val))
        clen = (size_t)strtoul(val, NULL, 10);
    if (clen > BODY_MAX)
        return false;
    if (header(hdrs, "Idempotency-Key", val, sizeof val) ||
        header(hdrs, "X-Herald-Post-Id", val, sizeof val))
        snprintf(post_id, sizeof post_id, "%.39s", val);
    (void)header(hdrs, "X-Herald-Signature", sig, sizeof sig);

    /* the rule, before the body: FR_CLOSE_EARLY never reads it */
    pthread_mutex_lock(&r->mu);
    fr_rule rule = r->rule;
    void *user = r->user;
    int n = 0;
    if (post_id[0] != '\0') {
        fr_post *p = post_get(r, post_id);
        n = ++p->requests;
        p->last_ms = now_mono_ms();
        if (p->first_ms == 0)
            p->first_ms = p->last_ms;
    } else {
        r->totals.no_post_id++;
    }
    r->totals.requests++;
    pthread_mutex_unlock(&r->mu);
    fr_action act = { .kind = FR_OK };
    if (rule != NULL)
        act = rule(post_id, n, user);
    if (act.kind == FR_CLOSE_EARLY)
        return false;

    char *body = xmalloc(clen + 1);
    size_t bhave = *have - hlen < clen ? *have - hlen : clen;
    memcpy(body, buf + hlen, bhave);
    size_t rest = *have - hlen - bhave;
    memmove(buf, buf + hlen + bhave, rest);
    *have = rest;
    if (!read_more(r, fd, body, &bhave, clen)) {
        free(body);
        return false;
    }
    body[clen] = '\0';

    pthread_mutex_lock(&r->mu);
    bool bad = r->secret != NULL && !signature_ok(r->secret, body, clen, sig);
    if (bad)
        r->totals.bad_signatures++;
    bool accept = !bad && (act.kind == FR_OK || act.kind == FR_DELAYED_OK);
    if (accept) {
        r->totals.accepted++;
        if (post_id[0] != '\0') {
            fr_post *p = post_get(r, post_id);
            p->accepted++;
            if (p->accepted > r->totals.max_accepted)
                r->totals.max_accepted = p->accepted;
        }
    }
    pthread_mutex_unlock(&r->mu);
    free(body);

    if (bad) {
        reply(fd, 401, 0, "{\"error\":\"bad signature\"}");
        return true;
    }
    char receipt[256];
    snprintf(receipt, sizeof receipt,
             "{\"id\":\"rcv-%s\",\"url\":\"https://receiver.example/p/%s\"}", post_id, post_id);
    switch (act.kind) {
    case FR_OK:
        reply(fd, 200, 0, receipt);
        return true;
    case FR_DELAYED_OK:
        for (int waited = 0; waited < act.delay_ms && !stopping(r); waited += 50)
            sleep_ms(50);
        reply(fd, 200, 0, receipt);
        return true;
    case FR_STATUS:
        for (int waited = 0; waited < act.delay_ms && !stopping(r); waited += 50)
            sleep_ms(50);
        reply(fd, act.status, act.retry_after_s, "{\"error\":\"scripted failure\"}");
        return true;
    case FR_RESET: {
        struct linger lg = { 1, 0 };
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        return false;
    }
    case FR_CLOSE_EARLY:
        break;
    }
    return false;
}

static void *conn_main(void *arg)
{
    fr_conn *c = arg;
    char *buf = xmalloc(HDR_MAX + 1);
    size_t have = 0;
    while (serve_one(c->r, c->fd, buf, &have))
        ;
    free(buf);
    close(c->fd);
    pthread_mutex_lock(&c->r->mu);
    c->done = true;
    pthread_mutex_unlock(&c->r->mu);
    return NULL;
}

/* Joins finished connection threads (under no lock). */
static void reap(fake_receiver *r, bool all)
{
    for (;;) {
        fr_conn *c = NULL;
        pthread_mutex_lock(&r->mu);
        for (size_t i = 0; i < r->n_conns; i++) {
            if (all || r->conns[i]->done) {
                c = r->conns[i];
                r->conns[i] = r->conns[--r->n_conns];
                break;
            }
        }
        pthread_mutex_unlock(&r->mu);
        if (c == NULL)
            return;
        pthread_join(c->thread, NULL);
        free(c);
    }
}

static void *accept_main(void *arg)
{
    fake_receiver *r = arg;
    while (!stopping(r)) {
        struct pollfd pf = { r->lfd, POLLIN, 0 };
        reap(r, false);
        if (poll(&pf, 1, 100) <= 0)
            continue;
        int fd = accept(r->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&r->mu);
        bool room = r->n_conns < MAX_CONNS;
        pthread_mutex_unlock(&r->mu);
        if (!room) {
            close(fd);
            continue;
        }
        fr_conn *c = xcalloc(1, sizeof *c);
        c->r = r;
        c->fd = fd;
        if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
            close(fd);
            free(c);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        r->conns[r->n_conns++] = c;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

fake_receiver *fake_receiver_start(void)
{
    fake_receiver *r = xcalloc(1, sizeof *r);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    pthread_mutex_init(&r->mu, NULL);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(r->lfd, 128) != 0 || getsockname(r->lfd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "fake_receiver: %s\n", strerror(errno));
        if (r->lfd >= 0)
            close(r->lfd);
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    if (pthread_create(&r->accept_thread, NULL, accept_main, r) != 0) {
        close(r->lfd);
        free(r);
        return NULL;
    }
    return r;
}

void fake_receiver_stop(fake_receiver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->accept_thread, NULL);
    reap(r, true);
    close(r->lfd);
    free(r->posts);
    free(r->secret);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int fake_receiver_port(const fake_receiver *r)
{
    return r->port;
}

const char *fake_receiver_url(const fake_receiver *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%d/publish", r->port);
    return buf;
}

void fake_receiver_set_rule(fake_receiver *r, fr_rule rule, void *user)
{
    pthread_mutex_lock(&r->mu);
    r->rule = rule;
    r->user = user;
    pthread_mutex_unlock(&r->mu);
}

void fake_receiver_set_secret(fake_receiver *r, const char *secret)
{
    pthread_mutex_lock(&r->mu);
    free(r->secret);
    r->secret = secret != NULL ? xstrdup(secret) : NULL;
    pthread_mutex_unlock(&r->mu);
}

fr_post_stats fake_receiver_post(fake_receiver *r, const char *post_id)
{
    fr_post_stats s = { 0, 0, 0, 0 };
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_posts; i++) {
        if (strcmp(r->posts[i].id, post_id) == 0) {
            s.requests = r->posts[i].requests;
            s.accepted = r->posts[i].accepted;
            s.first_ms = r->posts[i].first_ms;
            s.last_ms = r->posts[i].last_ms;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return s;
}

fr_totals fake_receiver_totals(fake_receiver *r)
{
    pthread_mutex_lock(&r->mu);
    fr_totals t = r->totals;
    pthread_mutex_unlock(&r->mu);
    return t;
}

int fake_receiver_post_ids(fake_receiver *r, char (*ids)[40], int cap)
{
    pthread_mutex_lock(&r->mu);
    int n = (int)r->n_posts;
    for (int i = 0; i < n && i < cap; i++)
        snprintf(ids[i], 40, "%s", r->posts[i].id);
    pthread_mutex_unlock(&r->mu);
    return n;
}
