/* textscan.c - UTF-8 decoding and word tokens (see textscan.h). */
#include "textscan.h"

#include <stdlib.h>
#include <string.h>

uint32_t textscan_next_cp(const char *str, size_t len, size_t *i)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t at = *i;
    unsigned char c = s[at];
    size_t need;
    uint32_t cp;

    if (c < 0x80) {
        *i = at + 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        cp = c & 0x07;
    } else {
        *i = at + 1;
        return 0xFFFD;
    }
    if (len - at <= need) {
        *i = at + 1;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= need; k++) {
        if ((s[at + k] & 0xC0) != 0x80) {
            *i = at + 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[at + k] & 0x3F);
    }
    *i = at + need + 1;
    return cp;
}

void textscan_put_cp(strbuf *b, uint32_t cp)
{
    char out[4];
    size_t n;

    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    strbuf_append(b, out, n);
}

uint32_t textscan_fold_cp(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp < 0x80)
        return cp;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
        return cp + 32;
    /* Latin Extended-A pairs upper/lower as even/odd, except for a run
     * around U+0138-U+0148 and U+0178-U+017E that pairs odd/even. */
    if (cp >= 0x100 && cp <= 0x137)
        return cp | 1;
    if (cp >= 0x139 && cp <= 0x148)
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x14A && cp <= 0x177)
        return cp | 1;
    if (cp >= 0x179 && cp <= 0x17E)
        return (cp & 1) ? cp + 1 : cp;
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) /* Greek capitals */
        return cp + 32;
    if (cp >= 0x410 && cp <= 0x42F) /* Cyrillic capitals */
        return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    if (cp == 0x2019 || cp == 0x2018 || cp == 0x02BC)
        return '\'';
    return cp;
}

bool textscan_is_word_cp(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    if (cp == 0xB5 || cp == 0xAA || cp == 0xBA)
        return true;
    if (cp >= 0xC0 && cp <= 0x24F)
        return cp != 0xD7 && cp != 0xF7;
    if (cp >= 0x370 && cp <= 0x1FFF) /* Greek, Cyrillic, ..., Latin Extended Additional */
        return true;
    if (cp >= 0x3040 && cp <= 0x9FFF) /* kana, CJK */
        return true;
    if (cp >= 0xAC00 && cp <= 0xD7AF) /* Hangul */
        return true;
    if (cp >= 0xFF10 && cp <= 0xFF19) /* full-width digits */
        return true;
    if ((cp >= 0xFF21 && cp <= 0xFF3A) || (cp >= 0xFF41 && cp <= 0xFF5A))
        return true;
    return false;
}

static bool is_digit_cp(uint32_t cp)
{
    return cp >= '0' && cp <= '9';
}

static bool is_apostrophe(uint32_t cp)
{
    return cp == '\'' || cp == 0x2019 || cp == 0x02BC;
}

void textscan_tokens_init(textscan_tokens *t)
{
    memset(t, 0, sizeof(*t));
    strbuf_init(&t->norm);
}

void textscan_tokens_fini(textscan_tokens *t)
{
    if (t == NULL)
        return;
    free(t->v);
    strbuf_fini(&t->norm);
    memset(t, 0, sizeof(*t));
}

static void tokens_push(textscan_tokens *t, const textscan_token *tok)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 32;
        t->v = xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    t->v[t->n++] = *tok;
}

status textscan_tokenize(const char *text, size_t len, textscan_tokens *t)
{
    size_t i = 0;

    t->n = 0;
    strbuf_reset(&t->norm);
    if (text == NULL || !utf8_valid(text, len))
        return ST_INVALID;

    while (i < len) {
        size_t start = i;
        uint32_t cp = textscan_next_cp(text, len, &i);
        if (!textscan_is_word_cp(cp))
            continue;

        bool number = is_digit_cp(cp);
        textscan_token tok = { .off = start, .norm_off = t->norm.len, .number = number };
        textscan_put_cp(&t->norm, textscan_fold_cp(cp));
        size_t end = i;
        while (i < len) {
            size_t j = i;
            uint32_t c = textscan_next_cp(text, len, &j);
            if (textscan_is_word_cp(c)) {
                /* letters and digits split: "500mg" -> "500" "mg" */
                if (is_digit_cp(c) != number)
                    break;
                textscan_put_cp(&t->norm, textscan_fold_cp(c));
                i = j;
                end = j;
                continue;
            }
            /* an inner joiner: "i'm", "1,000", "2.5" */
            if (j < len) {
                size_t k = j;
                uint32_t next = textscan_next_cp(text, len, &k);
                bool joins =
                    number ? ((c == ',' || c == '.') && is_digit_cp(next))
                           : (is_apostrophe(c) && textscan_is_word_cp(next) && !is_digit_cp(next));
                if (joins) {
                    textscan_put_cp(&t->norm, number ? c : '\'');
                    textscan_put_cp(&t->norm, textscan_fold_cp(next));
                    i = k;
                    end = k;
                    continue;
                }
            }
            break;
        }
        tok.len = end - start;
        tok.norm_len = t->norm.len - tok.norm_off;
        strbuf_putc(&t->norm, '\0');
        tokens_push(t, &tok);
    }
    return ST_OK;
}

const char *textscan_word(const textscan_tokens *t, size_t i)
{
    return t->norm.data + t->v[i].norm_off;
}

bool textscan_word_is(const textscan_tokens *t, size_t i, const char *word)
{
    size_t n = strlen(word);
    return t->v[i].norm_len == n && memcmp(t->norm.data + t->v[i].norm_off, word, n) == 0;
}

bool textscan_phrase_at(const textscan_tokens *t, size_t at, const textscan_tokens *phrase)
{
    if (phrase->n == 0 || at + phrase->n > t->n)
        return false;
    for (size_t k = 0; k < phrase->n; k++) {
        const textscan_token *a = &t->v[at + k];
        const textscan_token *b = &phrase->v[k];
        if (a->norm_len != b->norm_len ||
            memcmp(t->norm.data + a->norm_off, phrase->norm.data + b->norm_off, a->norm_len) != 0)
            return false;
    }
    return true;
}

char *textscan_excerpt(const char *text, size_t len, size_t max_bytes, char *buf, size_t cap)
{
    size_t n = len;

    if (cap == 0)
        return buf;
    if (n > max_bytes)
        n = max_bytes;
    if (n > cap - 1)
        n = cap - 1;
    /* back off to the start of a UTF-8 sequence */
    while (n > 0 && n < len && ((unsigned char)text[n] & 0xC0) == 0x80)
        n--;
    memcpy(buf, text, n);
    buf[n] = '\0';
    return buf;
}

char *textscan_span_excerpt(const char *text, const textscan_tokens *t, size_t first, size_t last,
                            char *buf, size_t cap)
{
    size_t off = t->v[first].off;
    size_t end = t->v[last].off + t->v[last].len;
    size_t len = end - off;

    if (cap < 8) {
        if (cap > 0)
            buf[0] = '\0';
        return buf;
    }
    if (len <= cap - 1)
        return textscan_excerpt(text + off, len, len, buf, cap);
    textscan_excerpt(text + off, len, cap - 4, buf, cap - 3);
    strcat(buf, "...");
    return buf;
}
