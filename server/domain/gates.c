/* gates.c - the content quality gates (see gates.h). */
#include "gates.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "claims.h"
#include "textscan.h"
#include "util.h"

static void verdict_init(gate_verdict *v, gate_id g)
{
    memset(v, 0, sizeof(*v));
    v->gate = g;
}

static void verdict_pass(gate_verdict *v)
{
    v->pass = true;
    v->reason[0] = '\0';
}

static void verdict_fail(gate_verdict *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void verdict_fail(gate_verdict *v, const char *fmt, ...)
{
    va_list ap;
    v->pass = false;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
}

/* The common fail-closed precondition of every gate. */
static bool text_checkable(const char *text, size_t len, gate_verdict *v)
{
    if (text == NULL) {
        verdict_fail(v, "no text");
        return false;
    }
    if (len > GATES_MAX_TEXT_BYTES) {
        verdict_fail(v, "text of %zu bytes is over the %d-byte limit for checking", len,
                     GATES_MAX_TEXT_BYTES);
        return false;
    }
    if (!utf8_valid(text, len)) {
        verdict_fail(v, "text is not valid UTF-8 (or holds a NUL byte)");
        return false;
    }
    return true;
}

const char *gate_name(gate_id g)
{
    switch (g) {
    case GATE_LENGTH:
        return "length";
    case GATE_HASHTAGS:
        return "hashtags";
    case GATE_BANNED_PHRASES:
        return "banned_phrases";
    case GATE_THREAD_MARKERS:
        return "thread_markers";
    case GATE_EMOJI:
        return "emoji";
    case GATE_CLAIM_SAFETY:
        return "claim_safety";
    case GATE_DUPLICATE:
        return "duplicate";
    }
    return "unknown";
}

void gates_config_default(gates_config *cfg)
{
    cfg->dup_threshold = TEXTSIM_DEFAULT_THRESHOLD;
    cfg->dup_window_days = TEXTSIM_DEFAULT_WINDOW_DAYS;
    cfg->max_emoji = 1;
}

/* ---- length ------------------------------------------------------------ */

void gates_check_length(const char *text, size_t len, platform_id platform, int min_chars,
                        int max_chars, gate_verdict *v)
{
    verdict_init(v, GATE_LENGTH);
    if (!text_checkable(text, len, v))
        return;
    int limit = platform_max_chars(platform);
    if (limit <= 0) {
        verdict_fail(v, "unknown platform %d: no length limit to check against", (int)platform);
        return;
    }
    const char *why = platform_key(platform);
    if (max_chars > 0 && max_chars < limit) {
        limit = max_chars;
        why = "content bounds";
    }
    size_t chars = utf8_count(text, len);
    v->has_score = true;
    v->score = (double)chars;
    v->has_threshold = true;
    v->threshold = limit;

    bool blank = true;
    for (size_t k = 0; k < len && blank; k++)
        blank = text[k] == ' ' || text[k] == '\n' || text[k] == '\t' || text[k] == '\r';
    if (blank) {
        verdict_fail(v, "text is empty");
    } else if (chars > (size_t)limit) {
        verdict_fail(v, "%zu characters, over the %d-character limit (%s)", chars, limit, why);
    } else if (min_chars > 0 && chars < (size_t)min_chars) {
        verdict_fail(v, "%zu characters, under the %d-character minimum", chars, min_chars);
    } else {
        verdict_pass(v);
    }
}

/* ---- hashtags ---------------------------------------------------------- */

static void check_hashtags(const char *text, size_t len, gate_verdict *v)
{
    size_t i = 0, count = 0;
    uint32_t prev = ' ';
    char first[64] = "";

    while (i < len) {
        size_t at = i;
        uint32_t cp = textscan_next_cp(text, len, &i);
        if ((cp == '#' || cp == 0xFF03) && i < len) {
            /* not after a word character, "/" (URL fragment) or "&" (entity) */
            bool starts = !(textscan_is_word_cp(prev) || prev == '_' || prev == '/' ||
                            prev == '&' || prev == '#');
            /* the tag itself: letters, digits, "_"; needs a non-digit */
            size_t j = i;
            bool nondigit = false;
            size_t end = i;
            while (j < len) {
                size_t k = j;
                uint32_t c = textscan_next_cp(text, len, &k);
                if (!(textscan_is_word_cp(c) || c == '_'))
                    break;
                if (!(c >= '0' && c <= '9'))
                    nondigit = true;
                j = k;
                end = k;
            }
            if (starts && end > i && nondigit) {
                if (count++ == 0)
                    textscan_excerpt(text + at, len - at, end - at < 60 ? end - at : 60, first,
                                     sizeof(first));
            }
        }
        prev = cp;
    }
    if (count == 0)
        verdict_pass(v);
    else if (count == 1)
        verdict_fail(v, "hashtag \"%s\"", first);
    else
        verdict_fail(v, "%zu hashtags, the first \"%s\"", count, first);
}

void gates_check_hashtags(const char *text, size_t len, gate_verdict *v)
{
    verdict_init(v, GATE_HASHTAGS);
    if (text_checkable(text, len, v))
        check_hashtags(text, len, v);
}

/* ---- banned phrases ------------------------------------------------------ */

static void check_banned(const char *text, const textscan_tokens *t, const catalog *cat,
                         gate_verdict *v)
{
    if (cat == NULL || !catalog_finished(cat)) {
        verdict_fail(v, "banned-phrase list unavailable");
        return;
    }
    for (size_t ti = 0; ti < t->n; ti++) {
        for (size_t p = 0; p < catalog_phrase_count(cat); p++) {
            const catalog_phrase *ph = catalog_phrase_at(cat, p);
            const textscan_tokens *pt = catalog_phrase_tokens(cat, p);
            if (!ph->enabled || pt == NULL || !textscan_phrase_at(t, ti, pt))
                continue;
            char seen[96];
            textscan_span_excerpt(text, t, ti, ti + pt->n - 1, seen, sizeof(seen));
            verdict_fail(v, "banned phrase \"%s\" (%s): \"%s\"", ph->phrase, ph->category, seen);
            return;
        }
    }
    verdict_pass(v);
}

void gates_check_banned(const char *text, size_t len, const catalog *cat, gate_verdict *v)
{
    textscan_tokens t;

    verdict_init(v, GATE_BANNED_PHRASES);
    if (!text_checkable(text, len, v))
        return;
    textscan_tokens_init(&t);
    if (textscan_tokenize(text, len, &t) != ST_OK)
        verdict_fail(v, "text could not be tokenised");
    else
        check_banned(text, &t, cat, v);
    textscan_tokens_fini(&t);
}

/* ---- thread markers ------------------------------------------------------ */

static bool is_space_byte(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* Only whitespace (and, at the end, closing punctuation) between text[from]
 * and the edge. */
static bool blank_before(const char *text, size_t at)
{
    for (size_t k = 0; k < at; k++)
        if (!is_space_byte(text[k]))
            return false;
    return true;
}

static bool blank_after(const char *text, size_t len, size_t at)
{
    for (size_t k = at; k < len; k++)
        if (!is_space_byte(text[k]) && text[k] != '.' && text[k] != '!' && text[k] != ')' &&
            text[k] != ']')
            return false;
    return true;
}

static bool is_digit_byte(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alpha_byte(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Numbered markers "n/m", "n/", "n/n", "(n of m)". Returns true with the
 * marker in buf when one is found. */
static bool find_number_marker(const char *text, size_t len, char *buf, size_t cap)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_digit_byte(text[i]) ||
            (i > 0 && (is_digit_byte(text[i - 1]) || is_alpha_byte(text[i - 1]) ||
                       text[i - 1] == '/' || text[i - 1] == '.' || text[i - 1] == ',')))
            continue;
        size_t j = i;
        long n = 0;
        while (j < len && is_digit_byte(text[j]) && j - i < 4)
            n = n * 10 + (text[j++] - '0');
        if (j < len && is_digit_byte(text[j]))
            continue;
        char open = i > 0 ? text[i - 1] : ' ';

        /* "(1 of 3)" */
        if ((open == '(' || open == '[') && len - j > 4 && memcmp(text + j, " of ", 4) == 0) {
            size_t k = j + 4;
            size_t d = k;
            while (k < len && is_digit_byte(text[k]))
                k++;
            if (k > d && k < len && (text[k] == ')' || text[k] == ']')) {
                textscan_excerpt(text + i - 1, len - i + 1, k - i + 2, buf, cap);
                return true;
            }
        }
        if (j >= len || text[j] != '/')
            continue;
        size_t k = j + 1;
        long m = 0;
        size_t mstart = k;
        while (k < len && is_digit_byte(text[k]) && k - mstart < 4)
            m = m * 10 + (text[k++] - '0');
        bool has_m = k > mstart;
        if (k < len && (is_digit_byte(text[k]) || text[k] == '/'))
            continue; /* a date such as 1/5/2024 */
        size_t end = k;
        bool marker = false;
        if (!has_m) {
            if (k < len && (text[k] == 'n' || text[k] == 'N') &&
                (k + 1 >= len || !is_alpha_byte(text[k + 1]))) {
                marker = true; /* "1/n" */
                end = k + 1;
            } else if (k >= len || is_space_byte(text[k]) || text[k] == ')' || text[k] == ']') {
                marker = blank_before(text, i) || blank_after(text, len, k) ||
                         (k < len && text[k] == '\n') || (i > 0 && text[i - 1] == '\n');
                if (open == '(' || open == '[')
                    marker = true;
            }
        } else if (n >= 1 && m >= 2 && n <= m && !(k < len && is_alpha_byte(text[k]))) {
            if ((open == '(' || open == '[') && k < len && (text[k] == ')' || text[k] == ']'))
                marker = true; /* "(1/3)" */
            else if (blank_after(text, len, k))
                marker = true; /* "... 2/5" at the end */
            else if (blank_before(text, i) && !(len - k > 4 && memcmp(text + k, " of ", 4) == 0))
                marker = true; /* "1/5 ..." at the start, unless "1/3 of" */
            else if ((k < len && text[k] == '\n') || (i > 0 && text[i - 1] == '\n'))
                marker = true; /* on a line edge */
        }
        if (marker) {
            size_t from = (open == '(' || open == '[') ? i - 1 : i;
            size_t to = end < len && (text[end] == ')' || text[end] == ']') ? end + 1 : end;
            textscan_excerpt(text + from, len - from, to - from, buf, cap);
            return true;
        }
    }
    return false;
}

static void check_thread_markers(const char *text, size_t len, const textscan_tokens *t,
                                 gate_verdict *v)
{
    char buf[64];

    /* U+1F9F5 anywhere */
    for (size_t i = 0; i < len;) {
        if (textscan_next_cp(text, len, &i) == 0x1F9F5) {
            verdict_fail(v, "thread emoji U+1F9F5");
            return;
        }
    }
    /* a pointing-down emoji or arrow at the very end: "more below" */
    {
        size_t i = 0;
        uint32_t last = 0;
        while (i < len) {
            uint32_t cp = textscan_next_cp(text, len, &i);
            if (cp != 0xFE0F && cp != ' ' && cp != '\n' && cp != '\t' && cp != '\r' &&
                !(cp >= 0x1F3FB && cp <= 0x1F3FF))
                last = cp;
        }
        if (last == 0x1F447 || last == 0x2B07 || last == 0x2935) {
            verdict_fail(v, "continuation pointer at the end of the post");
            return;
        }
    }
    if (find_number_marker(text, len, buf, sizeof(buf))) {
        verdict_fail(v, "thread marker \"%s\"", buf);
        return;
    }
    /* "/end", "end/" */
    for (size_t i = 0; i + 4 <= len; i++) {
        bool slash_end = text[i] == '/' && strncasecmp(text + i + 1, "end", 3) == 0 &&
                         (i + 4 >= len || !is_alpha_byte(text[i + 4])) &&
                         (i == 0 || !is_alpha_byte(text[i - 1]));
        bool end_slash = strncasecmp(text + i, "end/", 4) == 0 &&
                         (i == 0 || !is_alpha_byte(text[i - 1])) &&
                         (i + 4 >= len || !is_alpha_byte(text[i + 4]));
        if (slash_end || end_slash) {
            verdict_fail(v, "thread marker \"%.4s\"", text + i);
            return;
        }
    }
    /* words */
    for (size_t ti = 0; ti < t->n; ti++) {
        const textscan_token *tok = &t->v[ti];
        bool is_thread = textscan_word_is(t, ti, "thread") || textscan_word_is(t, ti, "thread's");
        if (is_thread) {
            size_t after = tok->off + tok->len;
            while (after < len && text[after] == ' ')
                after++;
            char before = tok->off > 0 ? text[tok->off - 1] : ' ';
            bool colon = after < len && text[after] == ':';
            bool bracketed = (before == '(' || before == '[') && after < len &&
                             (text[after] == ')' || text[after] == ']');
            bool a_thread =
                ti > 0 &&
                (textscan_word_is(t, ti - 1, "a") || textscan_word_is(t, ti - 1, "this") ||
                 textscan_word_is(t, ti - 1, "mega") || textscan_word_is(t, ti - 1, "full"));
            bool below = ti + 1 < t->n && (textscan_word_is(t, ti + 1, "below") ||
                                           textscan_word_is(t, ti + 1, "continues"));
            if (colon || bracketed || a_thread || below) {
                textscan_span_excerpt(text, t, a_thread ? ti - 1 : ti, below ? ti + 1 : ti, buf,
                                      sizeof(buf));
                verdict_fail(v, "thread marker \"%s%s\"", buf, colon ? ":" : "");
                return;
            }
        }
        /* "part 2 of 3", "(part 2)", "cont'd", "to be continued" */
        if (textscan_word_is(t, ti, "part") && ti + 1 < t->n && t->v[ti + 1].number &&
            ((ti + 3 < t->n && textscan_word_is(t, ti + 2, "of") && t->v[ti + 3].number) ||
             (tok->off > 0 && text[tok->off - 1] == '('))) {
            textscan_span_excerpt(text, t, ti, ti + 1, buf, sizeof(buf));
            verdict_fail(v, "thread marker \"%s\"", buf);
            return;
        }
        if (textscan_word_is(t, ti, "cont'd") || textscan_word_is(t, ti, "contd") ||
            (textscan_word_is(t, ti, "to") && ti + 2 < t->n && textscan_word_is(t, ti + 1, "be") &&
             textscan_word_is(t, ti + 2, "continued"))) {
            verdict_fail(v, "thread marker \"%s\"", textscan_word(t, ti));
            return;
        }
    }
    verdict_pass(v);
}

void gates_check_thread_markers(const char *text, size_t len, gate_verdict *v)
{
    textscan_tokens t;

    verdict_init(v, GATE_THREAD_MARKERS);
    if (!text_checkable(text, len, v))
        return;
    textscan_tokens_init(&t);
    if (textscan_tokenize(text, len, &t) != ST_OK)
        verdict_fail(v, "text could not be tokenised");
    else
        check_thread_markers(text, len, &t, v);
    textscan_tokens_fini(&t);
}

/* ---- emoji --------------------------------------------------------------- */

/* Emoji_Presentation code points in the BMP (they are emoji without FE0F). */
static bool bmp_emoji_presentation(uint32_t cp)
{
    /* clang-format off */
    static const uint32_t ranges[][2] = {
        { 0x231A, 0x231B }, { 0x23E9, 0x23EC }, { 0x23F0, 0x23F0 }, { 0x23F3, 0x23F3 },
        { 0x25FD, 0x25FE }, { 0x2614, 0x2615 }, { 0x2648, 0x2653 }, { 0x267F, 0x267F },
        { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 }, { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE },
        { 0x26C4, 0x26C5 }, { 0x26CE, 0x26CE }, { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA },
        { 0x26F2, 0x26F3 }, { 0x26F5, 0x26F5 }, { 0x26FA, 0x26FA }, { 0x26FD, 0x26FD },
        { 0x2705, 0x2705 }, { 0x270A, 0x270B }, { 0x2728, 0x2728 }, { 0x274C, 0x274C },
        { 0x274E, 0x274E }, { 0x2753, 0x2755 }, { 0x2757, 0x2757 }, { 0x2795, 0x2797 },
        { 0x27B0, 0x27B0 }, { 0x27BF, 0x27BF }, { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 },
        { 0x2B55, 0x2B55 },
    };
    /* clang-format on */
    for (size_t k = 0; k < sizeof(ranges) / sizeof(ranges[0]); k++)
        if (cp >= ranges[k][0] && cp <= ranges[k][1])
            return true;
    return false;
}

/* Pictographs that are text by default and emoji when followed by FE0F. */
static bool bmp_text_pictograph(uint32_t cp)
{
    return cp == 0xA9 || cp == 0xAE || cp == 0x203C || cp == 0x2049 || cp == 0x2122 ||
           cp == 0x2139 || (cp >= 0x2194 && cp <= 0x2199) || cp == 0x21A9 || cp == 0x21AA ||
           (cp >= 0x2300 && cp <= 0x23FF) || cp == 0x24C2 || (cp >= 0x25AA && cp <= 0x25FE) ||
           (cp >= 0x2600 && cp <= 0x27BF) || cp == 0x2934 || cp == 0x2935 ||
           (cp >= 0x2B05 && cp <= 0x2B55) || cp == 0x3030 || cp == 0x303D || cp == 0x3297 ||
           cp == 0x3299;
}

static bool smp_emoji(uint32_t cp)
{
    return (cp >= 0x1F000 && cp <= 0x1FAFF && !(cp >= 0x1F1E6 && cp <= 0x1F1FF) &&
            !(cp >= 0x1F3FB && cp <= 0x1F3FF)) ||
           (cp >= 0x1FC00 && cp <= 0x1FFFD);
}

static bool emoji_extender(uint32_t cp)
{
    return cp == 0xFE0F || cp == 0xFE0E || cp == 0x20E3 || (cp >= 0x1F3FB && cp <= 0x1F3FF) ||
           (cp >= 0xE0020 && cp <= 0xE007F);
}

int gates_count_emoji(const char *text, size_t len)
{
    size_t i = 0;
    int count = 0;
    bool in_emoji = false;  /* inside a sequence that ZWJ or modifiers extend */
    bool after_zwj = false; /* the previous code point was U+200D in a sequence */
    bool pending_ri = false;

    if (text == NULL || !utf8_valid(text, len))
        return -1;
    while (i < len) {
        uint32_t cp = textscan_next_cp(text, len, &i);
        size_t peek_at = i;
        uint32_t next = i < len ? textscan_next_cp(text, len, &peek_at) : 0;
        uint32_t next2 = peek_at < len ? textscan_next_cp(text, len, &peek_at) : 0;

        if (cp == 0x200D) {
            after_zwj = in_emoji;
            continue;
        }
        if (cp >= 0x1F1E6 && cp <= 0x1F1FF) { /* regional indicators pair into flags */
            if (!pending_ri)
                count++;
            pending_ri = !pending_ri;
            in_emoji = true;
            after_zwj = false;
            continue;
        }
        pending_ri = false;
        if (emoji_extender(cp)) {
            /* a lone skin-tone swatch is an emoji of its own */
            if (!in_emoji && cp >= 0x1F3FB && cp <= 0x1F3FF) {
                count++;
                in_emoji = true;
            }
            after_zwj = false;
            continue;
        }
        bool keycap = (cp == '#' || cp == '*' || (cp >= '0' && cp <= '9')) &&
                      (next == 0x20E3 || (next == 0xFE0F && next2 == 0x20E3));
        bool emoji = smp_emoji(cp) || bmp_emoji_presentation(cp) || keycap ||
                     (bmp_text_pictograph(cp) && (next == 0xFE0F || after_zwj));
        if (emoji) {
            if (!after_zwj)
                count++;
            in_emoji = true;
        } else {
            in_emoji = false;
        }
        after_zwj = false;
    }
    return count;
}

static void check_emoji(const char *text, size_t len, int max_emoji, gate_verdict *v)
{
    int n = gates_count_emoji(text, len);
    v->has_score = true;
    v->score = n;
    v->has_threshold = true;
    v->threshold = max_emoji;
    if (n < 0)
        verdict_fail(v, "text is not valid UTF-8");
    else if (max_emoji < 0)
        verdict_fail(v, "invalid emoji limit %d", max_emoji);
    else if (n > max_emoji)
        verdict_fail(v, "%d emoji, more than the %d allowed", n, max_emoji);
    else
        verdict_pass(v);
}

void gates_check_emoji(const char *text, size_t len, int max_emoji, gate_verdict *v)
{
    verdict_init(v, GATE_EMOJI);
    if (text_checkable(text, len, v))
        check_emoji(text, len, max_emoji, v);
}

/* ---- claim safety -------------------------------------------------------- */

static void check_claims(const char *text, const textscan_tokens *t, gate_verdict *v)
{
    claims_hit hit;
    if (claims_check(text, t, &hit))
        verdict_pass(v);
    else
        verdict_fail(v, "%s: \"%s\"", claims_kind_name(hit.kind), hit.excerpt);
}

void gates_check_claims(const char *text, size_t len, gate_verdict *v)
{
    textscan_tokens t;

    verdict_init(v, GATE_CLAIM_SAFETY);
    if (!text_checkable(text, len, v))
        return;
    textscan_tokens_init(&t);
    if (textscan_tokenize(text, len, &t) != ST_OK)
        verdict_fail(v, "text could not be tokenised");
    else
        check_claims(text, &t, v);
    textscan_tokens_fini(&t);
}

/* ---- near duplicates ----------------------------------------------------- */

void gates_check_duplicate(const char *text, size_t len, const textsim_index *recent,
                           const gates_config *cfg, int64_t now_ms, const char *exclude_id,
                           gate_verdict *v, textsim_match *nearest, bool *has_nearest)
{
    gates_config dflt;
    textsim_fp fp = { 0 };
    textsim_match m;
    bool found = false;

    verdict_init(v, GATE_DUPLICATE);
    if (nearest != NULL)
        memset(nearest, 0, sizeof(*nearest));
    if (has_nearest != NULL)
        *has_nearest = false;
    if (cfg == NULL) {
        gates_config_default(&dflt);
        cfg = &dflt;
    }
    v->has_threshold = true;
    v->threshold = cfg->dup_threshold;
    if (!text_checkable(text, len, v))
        goto out;
    if (!(cfg->dup_threshold > 0.0 && cfg->dup_threshold <= 1.0)) {
        verdict_fail(v, "invalid duplicate threshold %.3f (must be in (0, 1])", cfg->dup_threshold);
        goto out;
    }
    if (recent == NULL) {
        verdict_fail(v, "recent posts unavailable: cannot rule out a duplicate");
        goto out;
    }
    if (textsim_fp_compute(text, len, &fp) != ST_OK) {
        verdict_fail(v, "text could not be fingerprinted");
        goto out;
    }
    if (now_ms == 0)
        now_ms = now_real_ms();
    int64_t since = INT64_MIN;
    if (cfg->dup_window_days > 0)
        since = now_ms - (int64_t)cfg->dup_window_days * 86400000;
    found = textsim_index_nearest(recent, &fp, since, exclude_id, &m);
    v->has_score = true;
    v->score = found ? m.score : 0.0;
    if (found && m.exact)
        verdict_fail(v, "same normalised text as post %s", m.id);
    else if (found && m.score >= cfg->dup_threshold)
        verdict_fail(v, "near-duplicate of post %s (similarity %.3f >= %.2f)", m.id, m.score,
                     cfg->dup_threshold);
    else
        verdict_pass(v);
    if (found && nearest != NULL)
        *nearest = m;
    if (has_nearest != NULL)
        *has_nearest = found;
out:
    textsim_fp_fini(&fp);
}

/* ---- all gates ----------------------------------------------------------- */

void gates_validate_all(const gates_input *in, const gates_config *cfg, gates_report *out)
{
    gates_config dflt;
    textscan_tokens t;
    bool tokens_ok;

    memset(out, 0, sizeof(*out));
    if (cfg == NULL) {
        gates_config_default(&dflt);
        cfg = &dflt;
    }
    for (int k = 0; k < GATE_COUNT; k++)
        verdict_init(&out->verdicts[k], (gate_id)(k + 1));

    textscan_tokens_init(&t);
    const char *text = in->text;
    size_t len = in->len;
    tokens_ok =
        text != NULL && len <= GATES_MAX_TEXT_BYTES && textscan_tokenize(text, len, &t) == ST_OK;

    gates_check_length(text, len, in->platform, in->min_chars, in->max_chars,
                       &out->verdicts[GATE_LENGTH - 1]);
    gates_check_hashtags(text, len, &out->verdicts[GATE_HASHTAGS - 1]);
    gates_check_emoji(text, len, cfg->max_emoji, &out->verdicts[GATE_EMOJI - 1]);

    gate_verdict *banned = &out->verdicts[GATE_BANNED_PHRASES - 1];
    gate_verdict *thread = &out->verdicts[GATE_THREAD_MARKERS - 1];
    gate_verdict *claims = &out->verdicts[GATE_CLAIM_SAFETY - 1];
    if (tokens_ok) {
        check_banned(text, &t, in->cat, banned);
        check_thread_markers(text, len, &t, thread);
        check_claims(text, &t, claims);
    } else {
        /* the same precondition messages the single gates give */
        if (text_checkable(text, len, banned))
            verdict_fail(banned, "text could not be tokenised");
        if (text_checkable(text, len, thread))
            verdict_fail(thread, "text could not be tokenised");
        if (text_checkable(text, len, claims))
            verdict_fail(claims, "text could not be tokenised");
    }
    gates_check_duplicate(text, len, in->recent, cfg, in->now_ms, in->exclude_id,
                          &out->verdicts[GATE_DUPLICATE - 1], &out->nearest, &out->has_nearest);

    out->pass = true;
    for (int k = 0; k < GATE_COUNT; k++)
        out->pass = out->pass && out->verdicts[k].pass;
    textscan_tokens_fini(&t);
}
