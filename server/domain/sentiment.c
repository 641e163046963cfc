/* sentiment.c - lexicon, negation, intensifiers, emoji, spam and hostility
 * cues; see sentiment.h. Word lists are folded (lower case, ASCII
 * apostrophe) exactly as textscan folds tokens. Multi-word entries are
 * matched on consecutive tokens ("link in bio"). */
#include "sentiment.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "textscan.h"

typedef struct lex_entry {
    const char *text; /* one word, or words separated by single spaces */
    double value;
} lex_entry;

/* Valence of words and phrases. Topic words (pain, stress, sleep) are
 * deliberately absent: in replies to health posts they name the subject,
 * not an opinion. Phrases are tried before words and are not negated
 * (they carry their own negation: "didn't work"). */
/* clang-format off */
static const lex_entry valence[] = {
    /* phrases */
    { "couldn't agree more", 3.0 }, { "could not agree more", 3.0 },
    { "spot on", 2.0 }, { "well explained", 2.0 }, { "well written", 2.0 },
    { "needed this", 1.5 }, { "made my morning", 2.0 }, { "made my day", 2.0 },
    { "keep them coming", 2.0 }, { "keep it up", 2.0 }, { "cleared up", 1.5 },
    { "why i follow you", 1.5 }, { "can confirm", 1.0 }, { "fixed my", 1.5 },
    { "changed my life", 2.0 }, { "changed how i", 1.5 }, { "no idea", 0.0 },
    { "not bad", 1.5 }, { "not wrong", 1.0 }, { "no doubt", 1.0 },
    { "no thanks", -2.0 }, { "did nothing", -2.0 }, { "didn't work", -2.0 },
    { "did not work", -2.0 }, { "doesn't work", -2.0 }, { "does not work", -2.0 },
    { "nothing new", -1.5 }, { "not convinced", -2.0 }, { "don't buy it", -2.0 },
    { "not buying it", -2.0 }, { "not a fan", -2.0 }, { "left out", -1.5 },
    { "hardly matters", -1.5 }, { "tired of", -2.0 }, { "sick of", -2.0 },
    { "fear mongering", -2.0 }, { "cherry picked", -2.5 }, { "cherry picking", -2.5 },
    { "expected better", -1.5 }, { "doesn't match", -1.5 },
    { "not true", -2.0 }, { "not helpful", -2.0 }, { "not what the", -1.0 },
    { "waste of time", -2.5 }, { "so what", -1.0 }, { "oh great", -1.5 },
    { "correlation is not causation", -2.0 }, { "correlation isn't causation", -2.0 },
    { "aged badly", -2.0 }, { "aged poorly", -2.0 }, { "bro science", -2.0 },
    { "big if true", -1.5 }, { "lol no", -2.0 }, { "not sure", -1.0 }, { "not how", -1.5 },
    { "doesn't follow", -1.5 }, { "does not follow", -1.5 }, { "no evidence", -2.0 },
    { "snake oil", -2.0 }, { "what a joke", -2.0 }, { "no fluff", 1.5 }, { "worth it", 1.5 },
    { "learned something", 2.0 }, { "learnt something", 2.0 }, { "top tier", 2.5 },
    { "more of this", 2.0 }, { "this is fire", 2.5 }, { "so true", 2.0 }, { "well said", 2.5 },
    { "well done", 2.5 }, { "good stuff", 2.5 }, { "great stuff", 2.5 }, { "love this", 2.5 },
    { "not accurate", -2.0 }, { "i doubt", -1.5 }, { "i'm sorry but", -1.0 },
    { "sorry but", -1.0 }, { "heavy lifting", -1.0 }, { "come on", -1.0 },
    /* words */
    { "agree", 1.5 }, { "agreed", 1.5 }, { "amazing", 3.0 }, { "annoying", -2.0 },
    { "accessible", 1.5 }, { "actionable", 2.0 }, { "badly", -1.5 }, { "balanced", 1.5 },
    { "banger", 2.5 }, { "blaming", -1.5 }, { "bless", 2.0 }, { "bogus", -2.5 },
    { "bravo", 2.5 }, { "bullshit", -2.5 }, { "calm", 1.0 }, { "cheers", 1.5 },
    { "concise", 1.5 }, { "contradict", -1.5 }, { "contradicts", -1.5 }, { "cool", 1.5 },
    { "cringe", -2.0 }, { "dangerous", -2.0 }, { "dishonest", -2.5 }, { "doubt", -1.5 },
    { "enjoyed", 2.0 }, { "excited", 2.0 }, { "fab", 2.5 }, { "fabulous", 3.0 },
    { "fake", -2.0 }, { "fluff", -1.0 }, { "fun", 1.5 }, { "grateful", 2.5 },
    { "happy", 2.0 }, { "hate", -2.5 }, { "impressive", 2.5 }, { "incorrect", -2.0 },
    { "joke", -2.0 }, { "kudos", 2.5 }, { "lame", -2.0 }, { "legit", 1.5 },
    { "misrepresents", -2.0 }, { "neat", 1.5 }, { "outstanding", 3.0 },
    { "oversimplification", -2.0 }, { "phenomenal", 3.0 }, { "practical", 1.5 },
    { "problematic", -2.0 }, { "props", 2.0 }, { "reckless", -2.5 }, { "respect", 2.0 },
    { "sad", -1.5 }, { "saved", 1.5 }, { "sceptical", -1.5 }, { "sensible", 1.5 },
    { "shady", -2.0 }, { "sigh", -1.5 }, { "sketchy", -2.0 }, { "skeptical", -1.5 },
    { "slaps", 2.5 }, { "smart", 1.5 }, { "stellar", 3.0 }, { "sus", -1.5 },
    { "thoughtful", 2.0 }, { "unclear", -1.5 }, { "unconvinced", -2.0 },
    { "unfortunately", -1.0 }, { "unfollowed", -1.5 }, { "vague", -1.5 },
    { "yay", 2.0 }, { "yes", 1.0 }, { "yikes", -2.0 },
    { "appreciate", 2.0 }, { "appreciated", 2.0 }, { "awesome", 3.0 }, { "awful", -2.5 },
    { "bad", -2.0 }, { "beautiful", 2.0 }, { "best", 2.5 }, { "biased", -2.0 },
    { "boring", -1.5 }, { "brilliant", 3.0 }, { "clear", 1.5 }, { "clearer", 1.5 },
    { "clicked", 1.0 }, { "clickbait", -2.0 }, { "confusing", -1.5 }, { "debunked", -1.5 },
    { "disagree", -1.5 }, { "disappointed", -2.0 }, { "disappointing", -2.0 },
    { "doubtful", -1.5 }, { "dubious", -2.0 }, { "exaggerated", -2.0 }, { "excellent", 3.0 },
    { "false", -1.5 }, { "fantastic", 3.0 }, { "fascinating", 2.5 }, { "flawed", -2.0 },
    { "garbage", -2.5 }, { "glad", 2.0 }, { "gold", 2.0 }, { "good", 2.0 }, { "great", 2.5 },
    { "harmful", -2.0 }, { "helpful", 2.0 }, { "honest", 1.5 }, { "horrible", -2.5 },
    { "hype", -1.0 }, { "ignores", -1.5 }, { "ignoring", -1.5 }, { "inaccurate", -2.0 },
    { "incredible", 2.5 }, { "informative", 2.0 }, { "insightful", 2.5 },
    { "inspiring", 2.5 }, { "interesting", 0.8 }, { "irresponsible", -2.5 },
    { "junk", -2.0 }, { "love", 2.5 }, { "loved", 2.5 }, { "lovely", 2.5 }, { "meh", -1.5 },
    { "misinformation", -2.5 }, { "misleading", -2.0 }, { "myths", -1.0 }, { "nice", 2.0 },
    { "nonsense", -2.0 }, { "nope", -1.5 }, { "nuance", 1.0 }, { "nuanced", 1.5 },
    { "outdated", -2.0 }, { "overblown", -2.0 }, { "oversimplified", -2.0 },
    { "overstated", -1.5 }, { "overstates", -1.5 }, { "perfect", 2.5 }, { "pointless", -2.0 },
    { "poor", -2.0 }, { "poorly", -2.0 }, { "pseudoscience", -2.5 }, { "questionable", -1.5 },
    { "refreshing", 2.0 }, { "ridiculous", -2.0 }, { "simplistic", -1.5 }, { "solid", 1.5 },
    { "superb", 3.0 }, { "terrible", -2.5 }, { "thank", 2.0 }, { "thankful", 2.0 },
    { "thanks", 2.0 }, { "thx", 2.0 }, { "ugh", -1.5 }, { "underrated", 1.0 },
    { "unhelpful", -2.0 }, { "unscientific", -2.0 }, { "useful", 2.0 }, { "useless", -2.5 },
    { "valuable", 2.0 }, { "weak", -1.5 }, { "weaker", -1.0 }, { "wonderful", 3.0 },
    { "worse", -1.5 }, { "worst", -2.5 }, { "wow", 1.5 }, { "wrong", -2.0 },
};

/* Insults and abuse: each match is 1 unit of hostility. */
static const lex_entry hostile[] = {
    { "shut up", 1 }, { "shut your mouth", 1 }, { "f off", 1 }, { "get lost", 1 },
    { "go away", 1 }, { "delete your account", 1 }, { "touch grass", 1 },
    { "nobody asked", 1 }, { "get a real job", 1 }, { "ashamed of yourself", 1 },
    { "nobody cares", 1 }, { "get a life", 1 }, { "shut it", 1 }, { "fuck you", 1 },
    { "fuck off", 1 }, { "screw you", 1 }, { "stop lying", 1 }, { "you're a joke", 1 },
    { "you are a joke", 1 }, { "you're a hack", 1 }, { "you're trash", 1 },
    { "piece of shit", 1 }, { "brain dead", 1 }, { "cope harder", 1 }, { "kys", 1 },
    { "asshole", 1 }, { "bastard", 1 }, { "braindead", 1 }, { "clowns", 1 }, { "dimwit", 1 },
    { "dumbass", 1 }, { "fool", 1 }, { "halfwit", 1 }, { "hypocrite", 1 }, { "idiotic", 1 },
    { "moronic", 1 }, { "muppet", 1 }, { "parasite", 1 }, { "prick", 1 }, { "scum", 1 },
    { "twat", 1 },
    { "brainless", 1 }, { "clown", 1 }, { "clueless", 1 }, { "crap", 1 }, { "cretin", 1 },
    { "disgusting", 1 }, { "dumb", 1 }, { "dumbest", 1 }, { "fraud", 1 }, { "grifter", 1 },
    { "idiot", 1 }, { "idiots", 1 }, { "imbecile", 1 }, { "jerk", 1 }, { "liar", 1 },
    { "liars", 1 }, { "loser", 1 }, { "losers", 1 }, { "moron", 1 }, { "morons", 1 },
    { "pathetic", 1 }, { "scammer", 1 }, { "shill", 1 }, { "stfu", 1 }, { "stupid", 1 },
};

/* Promotion: each match is spam evidence (2 = spam on its own). */
static const lex_entry promo[] = {
    { "link in bio", 2 }, { "link in my bio", 2 }, { "check out my", 2 }, { "check my page", 2 },
    { "check my profile", 2 }, { "visit my profile", 2 }, { "visit my page", 2 },
    { "dm me", 2 }, { "dm us", 2 }, { "dm for", 2 }, { "dm now", 2 }, { "check your dms", 2 },
    { "message me", 2 }, { "message her", 2 }, { "message him", 2 }, { "follow me", 2 },
    { "follow back", 2 }, { "follow for follow", 2 }, { "click here", 2 },
    { "click the link", 2 }, { "click my link", 2 }, { "buy now", 2 }, { "order now", 2 },
    { "order our", 2 }, { "use code", 2 }, { "free shipping", 2 }, { "limited offer", 2 },
    { "guaranteed returns", 2 }, { "investment opportunity", 2 }, { "brand ambassador", 2 },
    { "brand ambassadors", 2 }, { "promote your", 2 }, { "boost posts", 2 },
    { "real followers", 2 }, { "one simple trick", 2 }, { "one weird trick", 2 },
    { "sugar daddy", 2 }, { "grow your income", 2 }, { "from home", 1 }, { "like and share", 2 },
    { "dot com", 2 }, { "book today", 1 }, { "win an", 1 }, { "join my", 1 }, { "giveaway", 2 },
    { "crypto", 2 }, { "bitcoin", 2 }, { "forex", 2 }, { "telegram", 2 }, { "whatsapp", 2 },
    { "onlyfans", 2 }, { "promo", 1 }, { "discount", 1 },
    { "check dm", 2 }, { "check dms", 2 }, { "check my dm", 2 }, { "passive income", 2 },
    { "ask me how", 2 }, { "contact now", 2 }, { "contact me", 2 }, { "without prescription", 2 },
    { "my website", 2 }, { "order via", 2 }, { "get verified", 2 }, { "subscribe", 2 },
    { "my channel", 2 }, { "my new video", 2 }, { "watch my", 2 }, { "singles in your area", 2 },
    { "download the app", 2 }, { "paid promotion", 2 }, { "collab", 2 },
    { "grow your account", 2 }, { "launching soon", 2 }, { "get in early", 2 },
    { "link on my profile", 2 }, { "link in my profile", 2 }, { "my profile", 1 },
    { "airdrop", 2 }, { "nft", 2 }, { "earn", 1 }, { "income", 1 }, { "click", 1 },
    { "shipping", 1 }, { "i sell", 1 }, { "we sell", 1 }, { "dm", 1 }, { "dms", 1 },
};

/* A negator flips the valence of a word within the next three words. */
static const char *const negators[] = {
    "ain't", "aren't", "barely", "can't", "cannot", "cant", "couldn't", "didn't", "didnt",
    "doesn't", "doesnt", "don't", "dont", "hadn't", "hardly", "hasn't", "haven't", "isn't",
    "isnt", "neither", "never", "no", "nobody", "none", "nor", "not", "nothing", "shouldn't",
    "wasn't", "weren't", "without", "won't", "wont", "wouldn't",
};

/* Scales the valence of the next word. */
static const lex_entry intensifiers[] = {
    { "absolutely", 1.6 }, { "especially", 1.3 }, { "extremely", 1.8 }, { "genuinely", 1.3 },
    { "highly", 1.5 }, { "incredibly", 1.7 }, { "kinda", 0.6 }, { "pretty", 1.2 },
    { "quite", 1.2 }, { "really", 1.4 }, { "slightly", 0.5 }, { "so", 1.4 },
    { "somewhat", 0.6 }, { "such", 1.4 }, { "super", 1.5 }, { "totally", 1.4 },
    { "truly", 1.4 }, { "very", 1.5 }, { "kind of", 0.6 }, { "sort of", 0.6 }, { "a bit", 0.6 },
};

/* First word of a sentence ending in '?' that makes it a real question. */
static const char *const interrogatives[] = {
    "any", "anybody", "anyone", "are", "aren't", "can", "can't", "could", "did", "didn't", "do",
    "does", "doesn't", "don't", "has", "have", "how", "how's", "is", "isn't", "may", "might",
    "must", "shall", "should", "shouldn't", "was", "were", "what", "what's", "when", "where",
    "where's", "which", "who", "who's", "whom", "whose", "why", "will", "won't", "would",
    "wouldn't",
};

/* Auxiliaries that open a question even without a '?' ("does this work
 * for kids"). */
static const char *const auxiliaries[] = {
    "are", "can", "could", "did", "do", "does", "has", "have", "is", "should", "was", "were",
    "will", "would",
};

/* Words skipped before the first word of a question ("So, does ..."). */
static const char *const question_fillers[] = {
    "also", "and", "btw", "but", "curious", "genuinely", "hey", "hi", "hm", "hmm", "honest",
    "honestly", "just", "oh", "ok", "okay", "question", "quick", "so", "sorry", "then", "uh",
    "um", "wait", "well",
};

/* Top-level domains that make "word.tld" a link. */
static const char *const tlds[] = {
    "app", "biz", "clinic", "co", "com", "info", "io", "link", "ly", "me", "net", "online",
    "org", "shop", "site", "store", "xyz",
};

typedef struct emoji_entry {
    uint32_t cp;
    double valence;
    double hostile;
    double spam;
} emoji_entry;

static const emoji_entry emoji[] = {
    { 0x2764, 2.0, 0, 0 },   /* red heart */
    { 0x2728, 1.0, 0, 0 },   /* sparkles */
    { 0x1F381, 0, 0, 0.5 },  /* wrapped gift */
    { 0x1F389, 2.0, 0, 0 },  /* party popper */
    { 0x1F44C, 1.5, 0, 0 },  /* OK hand */
    { 0x1F44D, 1.5, 0, 0 },  /* thumbs up */
    { 0x1F44E, -2.0, 0, 0 }, /* thumbs down */
    { 0x1F44F, 2.0, 0, 0 },  /* clapping hands */
    { 0x1F48B, 0, 0, 0.5 },  /* kiss mark */
    { 0x1F4A9, -2.0, 1, 0 }, /* pile of poo */
    { 0x1F4AA, 1.0, 0, 0 },  /* flexed biceps */
    { 0x1F4AF, 1.5, 0, 0 },  /* hundred points */
    { 0x1F4B0, 0, 0, 0.5 },  /* money bag */
    { 0x1F4B8, 0, 0, 0.5 },  /* money with wings */
    { 0x1F4C8, 0, 0, 0.5 },  /* chart increasing */
    { 0x1F525, 1.5, 0, 0 },  /* fire */
    { 0x1F595, -2.0, 1, 0 }, /* middle finger */
    { 0x1F602, 1.0, 0, 0 },  /* tears of joy */
    { 0x1F60A, 2.0, 0, 0 },  /* smiling eyes */
    { 0x1F601, 2.0, 0, 0 },  /* beaming */
    { 0x1F605, 0.5, 0, 0 },  /* sweat smile */
    { 0x1F60D, 2.5, 0, 0 },  /* heart eyes */
    { 0x1F612, -1.5, 0, 0 }, /* unamused */
    { 0x1F618, 0, 0, 0.5 },  /* blowing a kiss */
    { 0x1F61E, -1.5, 0, 0 }, /* disappointed */
    { 0x1F620, -2.0, 0, 0 }, /* angry */
    { 0x1F622, -1.0, 0, 0 }, /* crying */
    { 0x1F644, -2.0, 0, 0 }, /* rolling eyes */
    { 0x1F64C, 2.0, 0, 0 },  /* raising hands */
    { 0x1F64F, 1.0, 0, 0 },  /* folded hands */
    { 0x1F680, 0, 0, 0.5 },  /* rocket */
    { 0x1F921, -1.0, 1, 0 }, /* clown face */
    { 0x1F926, -1.5, 0, 0 }, /* facepalm */
    { 0x1F92C, -2.5, 1, 0 }, /* symbols on mouth */
    { 0x1F929, 2.5, 0, 0 },  /* star-struck */
    { 0x1F970, 2.5, 0, 0 },  /* smiling with hearts */
};
/* clang-format on */

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
#define NEGATION_SCOPE 3
#define NEGATION_FACTOR -0.75
#define POLARITY_THRESHOLD 1.0
#define SPAM_THRESHOLD 2.0
#define HOSTILE_THRESHOLD 1.0
/* Same emoji (or '!') this many times in a row looks like a bot. */
#define RUN_SPAM 3

static const char *const label_names[] = {
    [SENTIMENT_POSITIVE] = "positive", [SENTIMENT_NEUTRAL] = "neutral",
    [SENTIMENT_QUESTION] = "question", [SENTIMENT_NEGATIVE] = "negative",
    [SENTIMENT_HOSTILE] = "hostile",   [SENTIMENT_SPAM] = "spam",
};

const char *sentiment_label_name(sentiment_label l)
{
    if ((int)l < SENTIMENT_POSITIVE || (int)l > SENTIMENT_SPAM)
        return NULL;
    return label_names[l];
}

bool sentiment_label_parse(const char *name, sentiment_label *out)
{
    for (int l = SENTIMENT_POSITIVE; l <= SENTIMENT_SPAM; l++) {
        if (name != NULL && strcmp(name, label_names[l]) == 0) {
            *out = (sentiment_label)l;
            return true;
        }
    }
    return false;
}

static bool in_list(const char *w, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(w, list[i]) == 0)
            return true;
    }
    return false;
}

/* Number of tokens the phrase matches at token i (0: no match). */
static size_t phrase_len_at(const textscan_tokens *t, size_t i, const char *phrase)
{
    size_t k = 0;
    const char *p = phrase;
    while (*p != '\0') {
        const char *sp = strchr(p, ' ');
        size_t len = sp != NULL ? (size_t)(sp - p) : strlen(p);
        if (i + k >= t->n)
            return 0;
        const char *w = textscan_word(t, i + k);
        if (strlen(w) != len || memcmp(w, p, len) != 0)
            return 0;
        k++;
        p += len;
        if (*p == ' ')
            p++;
    }
    return k;
}

/* The longest entry of list matching at token i: its index, or -1. */
static int match_at(const textscan_tokens *t, size_t i, const lex_entry *list, size_t n,
                    size_t *len)
{
    int best = -1;
    size_t best_len = 0;
    char first = i < t->n ? textscan_word(t, i)[0] : '\0';
    for (size_t e = 0; e < n; e++) {
        if (list[e].text[0] != first) /* cheap reject before the full compare */
            continue;
        size_t l = phrase_len_at(t, i, list[e].text);
        if (l > best_len) {
            best_len = l;
            best = (int)e;
        }
    }
    *len = best_len;
    return best;
}

/* True when the source text between tokens a and b (a < b) holds
 * punctuation that ends a clause. */
static bool clause_break(const char *text, const textscan_tokens *t, size_t a, size_t b)
{
    size_t from = t->v[a].off + t->v[a].len;
    size_t to = t->v[b].off;
    for (size_t i = from; i < to; i++) {
        if (strchr(".,;:!?\n", text[i]) != NULL)
            return true;
    }
    return false;
}

/* Multiplier of intensifiers right before token i (skipping one article). */
static double intensity_before(const textscan_tokens *t, size_t i)
{
    size_t j = i;
    if (j > 0 && (textscan_word_is(t, j - 1, "a") || textscan_word_is(t, j - 1, "an") ||
                  textscan_word_is(t, j - 1, "the")))
        j--;
    for (size_t back = 2; back >= 1; back--) {
        if (j < back)
            continue;
        size_t len;
        int e = match_at(t, j - back, intensifiers, N_OF(intensifiers), &len);
        if (e >= 0 && len == back)
            return intensifiers[e].value;
    }
    return 1.0;
}

/* True when a negator precedes token i within the scope, in the same
 * clause. */
static bool negated(const char *text, const textscan_tokens *t, size_t i)
{
    for (size_t back = 1; back <= NEGATION_SCOPE && back <= i; back++) {
        if (clause_break(text, t, i - back, i - back + 1))
            return false;
        if (in_list(textscan_word(t, i - back), negators, N_OF(negators)))
            return true;
    }
    return false;
}

static bool ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool is_alnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Spam cues in the raw text: links, shop domains, "% off", "$<digits>",
 * runs of '!' and stretched words. */
static double raw_spam(const char *s, size_t len)
{
    double spam = 0.0;
    bool link = false, money = false, off = false, bang = false, stretch = false;
    bool ticker = false;
    size_t bang_run = 0, letter_run = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!link && ((len - i >= 7 && ascii_ieq(s + i, "http://", 7)) ||
                      (len - i >= 8 && ascii_ieq(s + i, "https://", 8)) ||
                      (len - i >= 4 && ascii_ieq(s + i, "www.", 4))))
            link = true;
        if (!link && c == '.' && i > 0 && is_alnum_ascii(s[i - 1])) {
            size_t j = i + 1;
            while (j < len && is_alnum_ascii(s[j]))
                j++;
            for (size_t k = 0; k < N_OF(tlds) && !link; k++) {
                size_t n = strlen(tlds[k]);
                if (j - (i + 1) == n && ascii_ieq(s + i + 1, tlds[k], n))
                    link = true;
            }
        }
        if (c == '$' && i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9')
            money = true;
        if (c == '$' && i + 2 < len && s[i + 1] >= 'A' && s[i + 1] <= 'Z' && s[i + 2] >= 'A' &&
            s[i + 2] <= 'Z')
            ticker = true; /* "$HEALTH": a coin or token */
        if (c == '%' && i + 4 < len && s[i + 1] == ' ' && ascii_ieq(s + i + 2, "off", 3))
            off = true;
        bang_run = c == '!' ? bang_run + 1 : 0;
        if (bang_run >= RUN_SPAM)
            bang = true;
        if (i > 0 && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) &&
            (c | 0x20) == (s[i - 1] | 0x20))
            letter_run++;
        else
            letter_run = 1;
        if (letter_run >= 4)
            stretch = true;
    }
    spam += link ? 2.0 : 0.0;
    spam += off ? 2.0 : 0.0;
    spam += money ? 1.0 : 0.0;
    spam += ticker ? 2.0 : 0.0;
    spam += bang ? 0.5 : 0.0;
    spam += stretch ? 0.5 : 0.0;
    return spam;
}

/* Emoji valence, hostility and spam cues (runs of one emoji). */
static void scan_emoji(const char *s, size_t len, double *val, double *host, double *spam)
{
    uint32_t prev = 0;
    size_t run = 0;
    bool run_seen = false;
    double emoji_spam = 0.0;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = textscan_next_cp(s, len, &i);
        if (cp == 0xFE0F || cp == 0x200D || (cp >= 0x1F3FB && cp <= 0x1F3FF))
            continue; /* variation selector, joiner, skin tones */
        bool is_emoji = cp >= 0x2600;
        if (is_emoji && cp == prev) {
            run++;
        } else {
            run = 1;
        }
        prev = is_emoji ? cp : 0;
        if (is_emoji && run >= RUN_SPAM)
            run_seen = true;
        if (!is_emoji || run > 3) /* a long run counts three times at most */
            continue;
        for (size_t e = 0; e < N_OF(emoji); e++) {
            if (emoji[e].cp == cp) {
                *val += emoji[e].valence;
                *host += emoji[e].hostile;
                emoji_spam += emoji[e].spam;
                break;
            }
        }
    }
    *spam += fmin(emoji_spam, 1.0) + (run_seen ? 1.0 : 0.0);
}

/* First token at or after k that is not a question filler and starts
 * before byte end; t->n when none. */
static size_t skip_fillers(const textscan_tokens *t, size_t k, size_t end)
{
    while (k < t->n && t->v[k].off < end &&
           in_list(textscan_word(t, k), question_fillers, N_OF(question_fillers)))
        k++;
    return k < t->n && t->v[k].off < end ? k : t->n;
}

/* True when the reply holds a genuine question: a sentence ending in '?'
 * that opens with an interrogative or auxiliary, or is one or two words
 * ("Source?", "Why though?"); or a reply without '?' that opens with an
 * auxiliary and has no sentence break ("does this work for kids"). */
static bool has_question(const char *s, size_t len, const textscan_tokens *t)
{
    size_t start = 0, tok = 0;
    bool any_mark = false, any_break = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c != '.' && c != '!' && c != '?' && c != '\n')
            continue;
        /* "bit.ly" and "2.5" do not end a sentence */
        if (c == '.' && i + 1 < len && s[i + 1] != ' ' && s[i + 1] != '\n')
            continue;
        while (tok < t->n && t->v[tok].off < start)
            tok++;
        if (c == '?') {
            any_mark = true;
            size_t k = skip_fillers(t, tok, i);
            if (k < t->n && in_list(textscan_word(t, k), interrogatives, N_OF(interrogatives)))
                return true;
            size_t words = 0;
            for (size_t j = tok; j < t->n && t->v[j].off < i; j++)
                words++;
            if (words >= 1 && words <= 2)
                return true;
        } else if (i + 1 < len) {
            any_break = true;
        }
        start = i + 1;
    }
    if (any_mark || any_break || t->n < 3)
        return false;
    size_t k = skip_fillers(t, 0, len);
    return k < t->n && in_list(textscan_word(t, k), auxiliaries, N_OF(auxiliaries));
}

status sentiment_score(const char *text, size_t len, sentiment_result *out)
{
    status st;
    textscan_tokens t;

    memset(out, 0, sizeof(*out));
    out->label = SENTIMENT_NEUTRAL;
    textscan_tokens_init(&t);
    st = textscan_tokenize(text, len, &t);
    if (st != ST_OK)
        goto out;

    double val = 0.0, host = 0.0, spam = raw_spam(text, len);
    scan_emoji(text, len, &val, &host, &spam);
    for (size_t i = 0; i < t.n;) {
        size_t plen;
        int e = match_at(&t, i, promo, N_OF(promo), &plen);
        if (e >= 0)
            spam += promo[e].value;
        e = match_at(&t, i, hostile, N_OF(hostile), &plen);
        if (e >= 0)
            host += hostile[e].value;
        e = match_at(&t, i, valence, N_OF(valence), &plen);
        if (e < 0) {
            i++;
            continue;
        }
        double v = valence[e].value;
        if (plen == 1) {
            v *= intensity_before(&t, i);
            if (negated(text, &t, i))
                v *= NEGATION_FACTOR;
        }
        val += v;
        i += plen;
    }

    out->valence = val;
    out->spam = spam;
    out->hostile = host;
    out->question = has_question(text, len, &t);
    out->score = val / sqrt(val * val + 15.0);
    if (spam >= SPAM_THRESHOLD) {
        out->label = SENTIMENT_SPAM;
        out->score = 0.0;
    } else if (host >= HOSTILE_THRESHOLD) {
        out->label = SENTIMENT_HOSTILE;
        out->score = fmin(out->score, -0.5);
    } else if (out->question) {
        out->label = SENTIMENT_QUESTION;
    } else if (val >= POLARITY_THRESHOLD) {
        out->label = SENTIMENT_POSITIVE;
    } else if (val <= -POLARITY_THRESHOLD) {
        out->label = SENTIMENT_NEGATIVE;
    }
    st = ST_OK;
out:
    textscan_tokens_fini(&t);
    return st;
}

void sentiment_summary_add(sentiment_summary *s, const sentiment_result *r)
{
    s->reply_count++;
    if ((int)r->label >= SENTIMENT_POSITIVE && (int)r->label <= SENTIMENT_SPAM)
        s->counts[r->label]++;
    s->score_sum += r->score;
}

bool sentiment_summary_mean(const sentiment_summary *s, double *mean)
{
    *mean = 0.0;
    if (s->reply_count <= 0)
        return false;
    *mean = s->score_sum / (double)s->reply_count;
    return true;
}
