/* fake_llm.c - a scripted chat-completions server for tests (see fake_llm.h).
 *
 * One thread, poll() over non-blocking sockets. Each connection is a small
 * state machine: READ a request, WAIT for its reply's delay (still watching
 * the socket so that a client closing it is seen at once), SEND the reply
 * (large bodies are produced piece by piece), then READ again. */
#include "fake_llm.h"

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
#include <unistd.h>

#include "util.h"

#define MAX_CONNS 128
#define MAX_RECORDS 4096
#define MAX_REQUEST_BYTES (8u << 20)
#define FILLER_PIECE 65536

typedef struct reply {
    fake_llm_reply r; /* strings below are owned copies */
    char *headers, *body, *content;
} reply;

typedef struct rnode {
    reply rep;
    struct rnode *next;
} rnode;

typedef struct record {
    char *line;    /* "POST /path" */
    char *headers; /* raw header block */
    char *body;
    int64_t t_ms;
} record;

typedef enum { C_READ, C_WAIT, C_SEND } cstate;

typedef struct conn {
    int fd;
    cstate st;
    strbuf in;
    reply rep;  /* the reply being waited for or sent */
    int req_no; /* of the request being answered, from 1 */
    int64_t send_at;
    strbuf out;
    size_t out_off;
    size_t filler_left; /* filler bytes still to produce */
    bool final_chunk;   /* chunked filler: the terminating chunk is queued */
} conn;

struct fake_llm {
    int lfd;
    int port;
    int wake[2];
    pthread_t th;

    pthread_mutex_t mu; /* protects everything below */
    pthread_cond_t cv;  /* signalled on every abort and request */
    rnode *qhead, *qtail;
    reply dflt;
    record *rec;
    int n_rec;
    int pending, max_pending;
    int aborts;
    int64_t abort_times[MAX_RECORDS];
    int open_conns;

    /* thread only */
    conn *conns[MAX_CONNS];
    int n_conns;
};

static char filler[FILLER_PIECE];

static void reply_copy(reply *dst, const fake_llm_reply *src)
{
    memset(dst, 0, sizeof *dst);
    dst->r = *src;
    dst->headers = src->headers != NULL ? xstrdup(src->headers) : NULL;
    dst->body = src->body != NULL ? xstrdup(src->body) : NULL;
    dst->content = src->content != NULL ? xstrdup(src->content) : NULL;
    dst->r.headers = dst->headers;
    dst->r.body = dst->body;
    dst->r.content = dst->content;
}

static void reply_fini(reply *r)
{
    free(r->headers);
    free(r->body);
    free(r->content);
    memset(r, 0, sizeof *r);
}

static void record_abort(fake_llm *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->aborts < MAX_RECORDS)
        f->abort_times[f->aborts] = now_mono_ms();
    f->aborts++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void conn_close(fake_llm *f, int i, bool abort_if_pending)
{
    conn *c = f->conns[i];
    bool pending = c->st != C_READ;
    close(c->fd);
    strbuf_fini(&c->in);
    strbuf_fini(&c->out);
    reply_fini(&c->rep);
    free(c);
    f->conns[i] = f->conns[--f->n_conns];
    pthread_mutex_lock(&f->mu);
    f->open_conns--;
    if (pending)
        f->pending--;
    pthread_mutex_unlock(&f->mu);
    if (pending && abort_if_pending)
        record_abort(f);
}

/* ---- requests ---- */

static const char *find_crlf2(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return s + i;
    return NULL;
}

/* The value of header name within a raw block, as a new string, or NULL. */
static char *header_value(const char *block, const char *name)
{
    size_t nl = strlen(name);
    const char *p = block;
    while (p != NULL && *p != '\0') {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return xstrndup(v, len - (size_t)(v - p));
        }
        p = eol != NULL ? eol + 2 : NULL;
    }
    return NULL;
}

/* Takes one complete request off c->in, if there is one. */
static bool take_request(fake_llm *f, conn *c)
{
    if (c->in.len == 0)
        return false;
    const char *end = find_crlf2(c->in.data, c->in.len);
    if (end == NULL)
        return false;
    size_t head_len = (size_t)(end - c->in.data) + 4;
    const char *eol = strstr(c->in.data, "\r\n");
    char *line = xstrndup(c->in.data, (size_t)(eol - c->in.data));
    char *block = xstrndup(eol + 2, (size_t)(end - eol)); /* header lines incl. last CRLF */
    char *cl = header_value(block, "content-length");
    size_t body_len = cl != NULL ? (size_t)strtoull(cl, NULL, 10) : 0;
    free(cl);
    if (c->in.len < head_len + body_len) {
        free(line);
        free(block);
        return false;
    }
    char *sp = strrchr(line, ' '); /* drop " HTTP/1.1" */
    if (sp != NULL && strncmp(sp, " HTTP/", 6) == 0)
        *sp = '\0';
    char *delay_hdr = header_value(block, "x-fake-delay-ms");
    record r = { line, block, xstrndup(c->in.data + head_len, body_len), now_mono_ms() };
    memmove(c->in.data, c->in.data + head_len + body_len, c->in.len - head_len - body_len);
    c->in.len -= head_len + body_len;
    c->in.data[c->in.len] = '\0';

    int n;
    pthread_mutex_lock(&f->mu);
    if (f->n_rec < MAX_RECORDS) {
        f->rec[f->n_rec] = r;
        r.line = r.headers = r.body = NULL;
    }
    n = ++f->n_rec;
    rnode *q = f->qhead;
    if (q != NULL) {
        f->qhead = q->next;
        if (f->qhead == NULL)
            f->qtail = NULL;
        c->rep = q->rep; /* hand over the owned strings */
        free(q);
    } else {
        reply_copy(&c->rep, &f->dflt.r);
    }
    f->pending++;
    if (f->pending > f->max_pending)
        f->max_pending = f->pending;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    free(r.line);
    free(r.headers);
    free(r.body);

    if (delay_hdr != NULL) {
        c->rep.r.delay_ms = (int)strtol(delay_hdr, NULL, 10);
        free(delay_hdr);
    }
    c->st = C_WAIT;
    c->send_at = now_mono_ms() + c->rep.r.delay_ms;
    c->req_no = n;
    return true;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 401:
        return "Unauthorized";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Builds the head (and a small body) of c's reply into c->out. */
static void build_reply(conn *c)
{
    int n = c->req_no;
    const reply *rp = &c->rep;
    int status = rp->r.status != 0 ? rp->r.status : 200;
    strbuf body = { 0 };

    strbuf_reset(&c->out);
    c->out_off = 0;
    c->filler_left = rp->r.filler_bytes;
    c->final_chunk = false;
    if (c->filler_left == 0) {
        if (rp->body != NULL) {
            strbuf_puts(&body, rp->body);
        } else {
            char dflt[64];
            const char *content = rp->content;
            if (content == NULL) {
                (void)snprintf(dflt, sizeof dflt, "Fake reply %d", n);
                content = dflt;
            }
            strbuf_printf(&body,
                          "{\"id\":\"chatcmpl-%d\",\"object\":\"chat.completion\",\"created\":"
                          "1700000000,\"model\":\"fake-model\",\"choices\":[{\"index\":0,"
                          "\"message\":{\"role\":\"assistant\",\"content\":\"",
                          n);
            strbuf_json_escape(&body, content, strlen(content));
            strbuf_puts(&body, "\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":"
                               "50,\"completion_tokens\":20,\"total_tokens\":70}}");
        }
    }
    strbuf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n", status,
                  reason_phrase(status));
    if (rp->headers != NULL)
        strbuf_puts(&c->out, rp->headers);
    if (rp->r.chunked)
        strbuf_puts(&c->out, "Transfer-Encoding: chunked\r\n\r\n");
    else
        strbuf_printf(&c->out, "Content-Length: %zu\r\n\r\n",
                      c->filler_left > 0 ? c->filler_left : body.len);
    if (c->filler_left == 0) {
        if (rp->r.chunked) {
            if (body.len > 0)
                strbuf_printf(&c->out, "%zx\r\n%s\r\n", body.len, body.data);
            strbuf_puts(&c->out, "0\r\n\r\n");
            c->final_chunk = true;
        } else if (body.len > 0) {
            strbuf_append(&c->out, body.data, body.len);
        }
    }
    strbuf_fini(&body);
}

/* Refills c->out with the next filler piece once it is drained. */
static bool next_piece(conn *c)
{
    if (c->filler_left == 0) {
        if (c->rep.r.chunked && !c->final_chunk && c->rep.r.filler_bytes > 0) {
            strbuf_reset(&c->out);
            c->out_off = 0;
            strbuf_puts(&c->out, "0\r\n\r\n");
            c->final_chunk = true;
            return true;
        }
        return false;
    }
    size_t n = c->filler_left < FILLER_PIECE ? c->filler_left : FILLER_PIECE;
    strbuf_reset(&c->out);
    c->out_off = 0;
    if (c->rep.r.chunked)
        strbuf_printf(&c->out, "%zx\r\n", n);
    strbuf_append(&c->out, filler, n);
    if (c->rep.r.chunked)
        strbuf_puts(&c->out, "\r\n");
    c->filler_left -= n;
    return true;
}

/* ---- the thread ---- */

/* Reads what is there. false when the peer closed or failed. */
static bool conn_read(conn *c)
{
    char buf[16384];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            if (c->in.len + (size_t)r > MAX_REQUEST_BYTES)
                return false;
            strbuf_append(&c->in, buf, (size_t)r);
            continue;
        }
        if (r == 0)
            return false;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}

/* Sends what it can. false when the peer is gone. */
static bool conn_write(conn *c, bool *done)
{
    *done = false;
    for (;;) {
        while (c->out_off < c->out.len) {
            ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                c->out_off += (size_t)w;
                continue;
            }
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return true;
            return false;
        }
        if (!next_piece(c)) {
            *done = true;
            return true;
        }
    }
}

static void *fake_thread(void *arg)
{
    fake_llm *f = arg;
    struct pollfd pfd[MAX_CONNS + 2];

    for (;;) {
        int64_t now = now_mono_ms();
        int timeout = 1000;
        int np = 0;
        pfd[np++] = (struct pollfd){ .fd = f->wake[0], .events = POLLIN };
        pfd[np++] = (struct pollfd){ .fd = f->lfd, .events = POLLIN };
        for (int i = 0; i < f->n_conns; i++) {
            conn *c = f->conns[i];
            short ev = POLLIN;
            if (c->st == C_SEND)
                ev |= POLLOUT;
            if (c->st == C_WAIT) {
                int64_t d = c->send_at - now;
                if (d < timeout)
                    timeout = d < 0 ? 0 : (int)d;
            }
            pfd[np++] = (struct pollfd){ .fd = c->fd, .events = ev };
        }
        int nconn = f->n_conns; /* pfd[2 + i] belongs to conns[i] for i < nconn */
        if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR)
            break;
        if (pfd[0].revents & POLLIN)
            break;
        if (pfd[1].revents & POLLIN) {
            int fd = accept(f->lfd, NULL, NULL);
            if (fd >= 0 && f->n_conns < MAX_CONNS) {
                conn *c = xcalloc(1, sizeof *c);
                c->fd = fd;
                c->st = C_READ;
                f->conns[f->n_conns++] = c;
                pthread_mutex_lock(&f->mu);
                f->open_conns++;
                pthread_mutex_unlock(&f->mu);
            } else if (fd >= 0) {
                close(fd);
            }
        }
        /* Walk backwards: conn_close moves the last connection into slot i. */
        now = now_mono_ms();
        for (int i = nconn - 1; i >= 0; i--) {
            conn *c = f->conns[i];
            short rev = pfd[2 + i].revents;
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                if (!conn_read(c)) {
                    conn_close(f, i, true);
                    continue;
                }
            }
        again:
            if (c->st == C_READ && take_request(f, c) && c->rep.r.close_no_reply) {
                conn_close(f, i, false);
                continue;
            }
            if (c->st == C_WAIT && now >= c->send_at) {
                build_reply(c);
                c->st = C_SEND;
            }
            if (c->st == C_SEND) {
                bool done;
                if (!conn_write(c, &done)) {
                    conn_close(f, i, true);
                    continue;
                }
                if (done) {
                    c->st = C_READ;
                    reply_fini(&c->rep);
                    pthread_mutex_lock(&f->mu);
                    f->pending--;
                    pthread_mutex_unlock(&f->mu);
                    goto again; /* a pipelined request may already be buffered */
                }
            }
        }
    }
    while (f->n_conns > 0)
        conn_close(f, f->n_conns - 1, false);
    return NULL;
}

/* ---- API ---- */

fake_llm *fake_llm_start(void)
{
    fake_llm *f = xcalloc(1, sizeof *f);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;

    memset(filler, 'a', sizeof filler);
    f->lfd = -1;
    f->wake[0] = f->wake[1] = -1;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->rec = xcalloc(MAX_RECORDS, sizeof *f->rec);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(f->lfd, 128) != 0 || getsockname(f->lfd, (struct sockaddr *)&sa, &sl) != 0 ||
        pipe(f->wake) != 0) {
        perror("fake_llm");
        goto fail;
    }
    f->port = ntohs(sa.sin_port);
    if (pthread_create(&f->th, NULL, fake_thread, f) != 0) {
        perror("fake_llm thread");
        goto fail;
    }
    return f;
fail:
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->wake[0] >= 0) {
        close(f->wake[0]);
        close(f->wake[1]);
    }
    free(f->rec);
    free(f);
    return NULL;
}

void fake_llm_stop(fake_llm *f)
{
    if (f == NULL)
        return;
    ssize_t w = write(f->wake[1], "x", 1);
    (void)w;
    pthread_join(f->th, NULL);
    close(f->lfd);
    close(f->wake[0]);
    close(f->wake[1]);
    while (f->qhead != NULL) {
        rnode *q = f->qhead;
        f->qhead = q->next;
        reply_fini(&q->rep);
        free(q);
    }
    reply_fini(&f->dflt);
    int n = f->n_rec < MAX_RECORDS ? f->n_rec : MAX_RECORDS;
    for (int i = 0; i < n; i++) {
        free(f->rec[i].line);
        free(f->rec[i].headers);
        free(f->rec[i].body);
    }
    free(f->rec);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int fake_llm_port(const fake_llm *f)
{
    return f->port;
}

const char *fake_llm_url(const fake_llm *f, char *buf, size_t cap)
{
    (void)snprintf(buf, cap, "http://127.0.0.1:%d/v1/chat/completions", f->port);
    return buf;
}

void fake_llm_push(fake_llm *f, const fake_llm_reply *r)
{
    rnode *q = xcalloc(1, sizeof *q);
    reply_copy(&q->rep, r);
    pthread_mutex_lock(&f->mu);
    if (f->qtail != NULL)
        f->qtail->next = q;
    else
        f->qhead = q;
    f->qtail = q;
    pthread_mutex_unlock(&f->mu);
}

void fake_llm_set_default(fake_llm *f, const fake_llm_reply *r)
{
    reply rep;
    reply_copy(&rep, r);
    pthread_mutex_lock(&f->mu);
    reply_fini(&f->dflt);
    f->dflt = rep;
    pthread_mutex_unlock(&f->mu);
}

int fake_llm_requests(fake_llm *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->n_rec;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static char *record_field(fake_llm *f, int n, int which, const char *name)
{
    char *out = NULL;
    pthread_mutex_lock(&f->mu);
    if (n >= 1 && n <= f->n_rec && n <= MAX_RECORDS) {
        const record *r = &f->rec[n - 1];
        if (which == 0)
            out = r->body != NULL ? xstrdup(r->body) : NULL;
        else if (which == 1)
            out = r->headers != NULL && name != NULL ? header_value(r->headers, name) : NULL;
        else
            out = r->line != NULL ? xstrdup(r->line) : NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return out;
}

char *fake_llm_request_body(fake_llm *f, int n)
{
    return record_field(f, n, 0, NULL);
}

char *fake_llm_request_header(fake_llm *f, int n, const char *name)
{
    return record_field(f, n, 1, name);
}

char *fake_llm_request_line(fake_llm *f, int n)
{
    return record_field(f, n, 2, NULL);
}

int64_t fake_llm_request_time(fake_llm *f, int n)
{
    int64_t t = -1;
    pthread_mutex_lock(&f->mu);
    if (n >= 1 && n <= f->n_rec && n <= MAX_RECORDS)
        t = f->rec[n - 1].t_ms;
    pthread_mutex_unlock(&f->mu);
    return t;
}

int fake_llm_max_pending(fake_llm *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->max_pending;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int fake_llm_aborts(fake_llm *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->aborts;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int fake_llm_open_connections(fake_llm *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->open_conns;
    pthread_mutex_unlock(&f->mu);
    return n;
}

int64_t fake_llm_wait_aborts(fake_llm *f, int n, int timeout_ms)
{
    int64_t end = now_mono_ms() + timeout_ms;
    int64_t t = -1;
    pthread_mutex_lock(&f->mu);
    while (f->aborts < n) {
        int64_t left = end - now_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = left < 20 ? left : 20; /* short steps: immune to clock jumps */
        ts.tv_nsec += (long)(step * 1000000);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cv, &f->mu, &ts);
    }
    if (f->aborts >= n && n >= 1 && n <= MAX_RECORDS)
        t = f->abort_times[n - 1];
    pthread_mutex_unlock(&f->mu);
    return t;
}
