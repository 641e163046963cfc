/* generator.c - the built-in post generator (see generator.h).
 *
 * A post is a list of parts (a style opener, a type lead, the myth, the fact,
 * its source, the takeaway, an aside, a closer...). Each content type has a
 * few shapes, i.e. orders of parts; each part has a drop priority (0 =
 * essential, 1 = kept unless nothing else fits, 2-5 = optional, included with
 * a platform-dependent probability and dropped highest first when the post
 * is too long). Each part picks one of several phrasings with the PRNG.
 *
 * The phrase tables below must keep every draft through the gates: no
 * hashtags, no "thread", no first person, nothing from the banned-phrase
 * list, no emoji. tests/unit/test_generator.c checks 500 drafts against all
 * gates. */
#include "generator.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textsim.h"
#include "util.h"

/* ---- PRNG: xoshiro256** seeded by splitmix64 ------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int k = 0; k < 4; k++)
        r->s[k] = splitmix64(&seed);
}

static uint64_t rng_next(rng *r)
{
    uint64_t result = rotl(r->s[1] * 5, 7) * 9;
    uint64_t t = r->s[1] << 17;
    r->s[2] ^= r->s[0];
    r->s[3] ^= r->s[1];
    r->s[1] ^= r->s[2];
    r->s[0] ^= r->s[3];
    r->s[2] ^= t;
    r->s[3] = rotl(r->s[3], 45);
    return result;
}

/* Uniform in [0, n) (n > 0), by rejection so no index is favoured. */
static size_t rng_below(rng *r, size_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = rng_next(r);
    } while (x >= limit);
    return (size_t)(x % n);
}

/* True with probability pct/100. */
static bool rng_chance(rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h ^ 0xff;
}

/* ---- phrase tables ---------------------------------------------------------
 * Placeholders: {topic} (display name, lower case), {myth}, {takeaway},
 * {src} (the source), {auth} and {jour} (the source split at its first
 * comma), {year}. Lists end with NULL. */

typedef struct style_pack {
    const char *key;
    const char *const *openers;
    const char *const *fact_intros;
    const char *const *take_intros;
    const char *const *closers;
    const char *const *attributions;
} style_pack;

/* clang-format off */
static const char *const re_open[] = {
    "What a study.",
    "This paper is a small gem.",
    "Fascinating result from {topic} research.",
    "A favourite data point on {topic}.",
    "Beautifully designed study, clear result.",
    "Few papers on {topic} are this elegant.",
    "The methods in this one deserve applause.",
    "Lovely piece of {topic} science.",
    "Science delivered something special on {topic}.",
    "Research on {topic} rarely gets cleaner than this.",
    NULL,
};
static const char *const re_fact[] = {
    "Straight from the paper:",
    "The paper's headline result:",
    "What the paper found:",
    "The paper's key number:",
    "The paper's best result:",
    "From the paper, the result:",
    NULL,
};
static const char *const re_take[] = {
    "Why it is exciting:", "What makes it elegant:", "Best detail:", "What it adds:",
    "The bonus finding:", NULL,
};
static const char *const re_close[] = {
    "Science at its most useful.",
    "Papers like this are why {topic} research is worth following.",
    "The full paper rewards a careful read.",
    "More studies like this, please.",
    "Methods this clean are a pleasure.",
    "Data like this never gets old.",
    "Worth reading in full for anyone curious about {topic}.",
    "Good research makes for great conversation.",
    NULL,
};
static const char *const re_attr[] = {
    "Paper: {src}, {year}.",
    "The paper: {auth} in {jour}, {year}.",
    "Paper worth reading: {src} ({year}).",
    NULL,
};

static const char *const ts_open[] = {
    "Claims are cheap; measurements are not.",
    "Strip away the noise on {topic} and this is what remains.",
    "Time for a reality check on {topic}.",
    "Plenty of {topic} advice is folklore. This is not.",
    "Ignore the slogans for a moment.",
    "Here is what was actually measured.",
    "Headlines about {topic} rarely match the data.",
    "No spin, just the measurement.",
    "Before repeating the next {topic} claim, check this.",
    "Opinions about {topic} are everywhere. Data is rarer.",
    NULL,
};
static const char *const ts_fact[] = {
    "What was actually measured:",
    "The measured reality:",
    "Measured, not assumed:",
    "The measurement says:",
    "What the measurement shows:",
    "Measured fact:",
    NULL,
};
static const char *const ts_take[] = {
    "The part headlines skip:", "What this really means:", "The honest reading:",
    "Bottom line:", "Read plainly:", NULL,
};
static const char *const ts_close[] = {
    "Follow the measurements, not the echo.",
    "Check the source before sharing the headline.",
    "Measurements first, opinions second.",
    "Folklore is comfortable; data is more useful.",
    "The truth is usually more specific than the slogan.",
    "Question the claim, then read the study.",
    "Noise fades. Numbers stay.",
    "Scepticism is a habit worth keeping.",
    NULL,
};
static const char *const ts_attr[] = {
    "Check the source: {src}, {year}.",
    "Verifiable source: {src} ({year}).",
    "Source to check: {auth}, {jour}, {year}.",
    NULL,
};

static const char *const po_open[] = {
    "Highest-return fact on {topic} this week.",
    "Low effort, measurable effect.",
    "One number worth knowing about {topic}.",
    "Efficient {topic} knowledge in one post.",
    "The short version, with numbers.",
    "Minimal input, measurable output.",
    "A simple {topic} lever, quantified.",
    "Skip the fluff: here is the effect size.",
    "Maximum signal on {topic}, minimum noise.",
    "The efficient read on {topic}.",
    NULL,
};
static const char *const po_fact[] = {
    "Effect size, in plain numbers:",
    "The effect:",
    "Effect, per the data:",
    "Net effect:",
    "Effect, quantified:",
    "The effect in numbers:",
    NULL,
};
static const char *const po_take[] = {
    "Practical read:", "Why it pays off:", "The useful part:", "Efficiency angle:", "Applied:",
    NULL,
};
static const char *const po_close[] = {
    "Small inputs, compounding returns.",
    "Simple beats complicated when the effect is real.",
    "Effort well spent.",
    "Measure, adjust, repeat.",
    "A good ratio of effort to effect.",
    "Keep the system simple and the data honest.",
    "Efficiency is mostly picking the right levers.",
    "Cheap to know, useful to remember.",
    NULL,
};
static const char *const po_attr[] = {
    "Ref: {src}, {year}.",
    "Ref, {year}: {src}.",
    "Quick ref: {auth}, {jour} ({year}).",
    NULL,
};

static const char *const ci_open[] = {
    "Ever wondered what the data say about {topic}?",
    "A question worth asking about {topic}.",
    "What happens when researchers dig into {topic}?",
    "Something odd turned up in the {topic} research.",
    "Here is a puzzle from the {topic} literature.",
    "Curious what a careful study of {topic} shows?",
    "Why does this not get more attention?",
    "Consider a question about {topic} that rarely gets asked.",
    "How well does intuition about {topic} hold up?",
    "What would a careful look at {topic} reveal?",
    NULL,
};
static const char *const ci_fact[] = {
    "The clue:",
    "First clue:",
    "The key clue:",
    "Clue in the data:",
    "The telling clue:",
    "The clue researchers found:",
    NULL,
};
static const char *const ci_take[] = {
    "The interesting implication:", "What it hints at:", "Where it points:", "The next clue:",
    "Why it is intriguing:", NULL,
};
static const char *const ci_close[] = {
    "What else is hiding in plain sight?",
    "The next question is the interesting one.",
    "Which question would be worth testing next?",
    "Every answer here opens two more questions.",
    "Some mysteries shrink when measured; others grow.",
    "What would a follow-up study find?",
    "Strange how rarely this comes up.",
    "Curiosity is the best reason to read the methods section.",
    NULL,
};
static const char *const ci_attr[] = {
    "Where the clue came from: {src}, {year}.",
    "Found in {jour} ({year}), by {auth}.",
    "Trail of evidence: {src}, {year}.",
    NULL,
};

static const char *const ea_open[] = {
    "The weight of evidence on {topic} deserves a wider audience.",
    "Evidence summary on {topic}.",
    "Public understanding of {topic} lags behind the research.",
    "A finding on {topic} that should be common knowledge.",
    "Good evidence deserves clear communication.",
    "This is what the research supports on {topic}.",
    "Worth sharing for public health literacy.",
    "For anyone who wants {topic} decisions grounded in evidence.",
    "The research record on {topic} is clearer than the public debate.",
    "Solid evidence on {topic}, summarised.",
    NULL,
};
static const char *const ea_fact[] = {
    "What the evidence shows:",
    "The evidence:",
    "Evidence summary:",
    "The evidence base says:",
    "What the evidence says:",
    "The evidence in brief:",
    NULL,
};
static const char *const ea_take[] = {
    "Why it matters for public health:", "The public health angle:", "Why this matters:",
    "In context:", "The broader picture:", NULL,
};
static const char *const ea_close[] = {
    "Policies and habits should follow the data.",
    "Evidence, communicated clearly, is a public good.",
    "Better information leads to better choices.",
    "Sharing sound evidence is a small public service.",
    "One study is a data point; the body of evidence is the guide.",
    "Good science deserves a wider audience.",
    "Health literacy starts with specific numbers.",
    "Evidence-based does not mean certain, but it beats guessing.",
    NULL,
};
static const char *const ea_attr[] = {
    "Evidence source: {src} ({year}).",
    "Reference: {auth}, {jour}, {year}.",
    "Evidence reference: {src}, {year}.",
    NULL,
};

static const char *const st_open[] = {
    "Here is a story told in numbers.",
    "Every data set starts with a question.",
    "Picture the research team behind this {topic} study.",
    "It starts, as good stories do, with a simple question about {topic}.",
    "Some stories are best told with data.",
    "Once upon a time, someone decided to measure {topic} properly.",
    "Behind every figure here is a group of volunteers.",
    "This {topic} story has a setting, a question and a twist.",
    "Gather round for a short story about {topic}.",
    "A tale from the {topic} archives.",
    NULL,
};
static const char *const st_fact[] = {
    "The plot twist:",
    "How the story ends:",
    "The story's turn:",
    "Plot twist:",
    "The twist in the story:",
    "The story's ending:",
    NULL,
};
static const char *const st_take[] = {
    "The moral:", "The lesson of the story:", "What the story teaches:",
    "Why the story matters:", "The ending worth remembering:", NULL,
};
static const char *const st_close[] = {
    "Every number here was once a person living an ordinary day.",
    "Stories stick; this one comes with data.",
    "The best health stories are the carefully measured ones.",
    "That is how a question becomes knowledge.",
    "And the story continues with the next study.",
    "Data is just stories with the details kept.",
    "A good study is a story with a careful ending.",
    "Not every story needs a hero; some need a control group.",
    NULL,
};
static const char *const st_attr[] = {
    "(The story's source: {src}, {year}.)",
    "Source of the story: {src}, {year}.",
    "Where the story comes from: {auth}, {jour} ({year}).",
    NULL,
};

static const style_pack styles[] = {
    { "research_enthusiast", re_open, re_fact, re_take, re_close, re_attr },
    { "truth_seeker", ts_open, ts_fact, ts_take, ts_close, ts_attr },
    { "practical_optimizer", po_open, po_fact, po_take, po_close, po_attr },
    { "curious_investigator", ci_open, ci_fact, ci_take, ci_close, ci_attr },
    { "evidence_based_advocate", ea_open, ea_fact, ea_take, ea_close, ea_attr },
    { "storyteller", st_open, st_fact, st_take, st_close, st_attr },
};


/* Part kinds. */
typedef enum {
    K_OPEN,     /* style opener */
    K_LEAD,     /* type lead */
    K_MYTH,     /* type frame around the myth */
    K_PIVOT,    /* type pivot */
    K_FACT,     /* the fact, maybe introduced, maybe with its source inline */
    K_SRC,      /* the source as its own sentence (skipped when inline) */
    K_TAKE,     /* the takeaway */
    K_ASIDE,    /* type aside */
    K_QUESTION, /* type question */
    K_CAVEAT,   /* type caveat */
    K_TURN,     /* type turn (stories) */
    K_CLOSE,    /* style closer */
} part_kind;

typedef struct shape_part {
    part_kind kind;
    unsigned char prio; /* 0 essential, 1 kept if possible, 2-5 optional */
    bool join;          /* same paragraph as the previous part */
} shape_part;

#define MAX_PARTS 10

typedef struct shape {
    shape_part parts[MAX_PARTS];
    int n;
} shape;

typedef struct type_pack {
    const char *key;
    const char *const *leads;
    const char *const *myth_frames;
    const char *const *pivots;
    const char *const *asides;
    const char *const *questions;
    const char *const *caveats;
    const char *const *turns;
    const char *const *take_frames; /* NULL: the style's take intros */
    bool source_in_lead;            /* the lead names the source */
    shape shapes[3];
} type_pack;

static const char *const mb_myth[] = {
    "Myth: {myth}",
    "The myth: {myth}",
    "A popular myth: {myth}",
    "Myth check: {myth}",
    "Myth under test: {myth}",
    "A stubborn myth: {myth}",
    "Myth of the week: {myth}",
    NULL,
};
static const char *const mb_pivot[] = {
    "Myth, meet data.",
    "The myth does not survive measurement.",
    "The data retire this myth.",
    "Myth busted by measurement.",
    "The evidence busts the myth.",
    "That myth falls apart when measured.",
    "Busted myth.",
    NULL,
};
static const char *const mb_aside[] = {
    "Myths persist because they are simple, not because they are true.",
    "A myth repeated often enough starts to sound like evidence.",
    "Worth retiring this myth.",
    "Popular and wrong are not mutually exclusive; this myth is both.",
    "This myth has outlived the evidence against it.",
    "Correcting a myth takes more words than spreading it.",
    NULL,
};

static const char *const cx_lead[] = {
    "Counterintuitive finding on {topic}.",
    "A counterintuitive {topic} result.",
    "Counterintuitive, but measured.",
    "Intuition gets this {topic} question wrong.",
    "A {topic} finding that runs against intuition.",
    "Counterintuitive {topic} insight.",
    "Against intuition, on {topic}.",
    NULL,
};
static const char *const cx_myth[] = {
    "The intuitive expectation: {myth}",
    "Intuition suggests: {myth}",
    "The intuitive guess: {myth}",
    "What intuition says: {myth}",
    "The intuitive assumption: {myth}",
    NULL,
};
static const char *const cx_aside[] = {
    "Intuition is a poor guide to {topic}.",
    "Counterintuitive results deserve a second look; that is what replication is for.",
    "The gap between intuition and measurement is the interesting part.",
    "Counterintuitive is not the same as unlikely; it is just unfamiliar.",
    "Intuition was built without control groups.",
    "A counterintuitive result is a sign that a belief was never tested.",
    NULL,
};

static const char *const pt_lead[] = {
    "Practical tip on {topic}.",
    "A practical {topic} tip.",
    "Practical tip, backed by data.",
    "Tip for anyone interested in {topic}.",
    "A practical note on {topic}.",
    "Practical {topic} tip, with the evidence.",
    "Everyday practical tip: {topic}.",
    NULL,
};
static const char *const pt_take[] = {
    "In practice: {takeaway}",
    "The practical point: {takeaway}",
    "Practical tip: {takeaway}",
    "Tip: {takeaway}",
    "Practically speaking: {takeaway}",
    NULL,
};
static const char *const pt_aside[] = {
    "Practical tips work best when they are small and repeatable.",
    "Practical note: anyone with a medical condition should talk changes through with a clinician first.",
    "Practical does not mean dramatic.",
    "The most practical change is usually the easiest one that points the right way.",
    "Practical habits beat intense bursts for most people.",
    "Tips work best when they fit an existing routine.",
    NULL,
};

static const char *const rb_lead[] = {
    "Research breakdown: {src} ({year}).",
    "Study breakdown: {src}, {year}.",
    "Research breakdown, {auth}, {jour}, {year}.",
    "Breaking down the study: {src} ({year}).",
    "One study, broken down: {src}, {year}.",
    "Study breakdown: {auth} in {jour} ({year}).",
    NULL,
};
static const char *const rb_take[] = {
    "Why the study matters: {takeaway}",
    "What the study adds: {takeaway}",
    "Study context: {takeaway}",
    "Research context: {takeaway}",
    "Why this research matters: {takeaway}",
    NULL,
};
static const char *const rb_caveat[] = {
    "Caveat: one study is a starting point, not a final word.",
    "Study caveat: populations do not always generalise.",
    "Limitation of the study: effect sizes are averages, and individuals vary.",
    "Caveat: association and causation are different claims.",
    "Research caveat: replication matters more than any single result.",
    "Caveat: the study's numbers describe groups, not individuals.",
    NULL,
};

static const char *const co_lead[] = {
    "Curious detail about {topic}.",
    "A curious {topic} observation.",
    "Curious, and rarely mentioned.",
    "Curious fact about {topic}.",
    "One curious finding on {topic}.",
    "A curious detail from the {topic} research.",
    "File under curious: {topic}.",
    NULL,
};
static const char *const co_question[] = {
    "Curious why this is not better known?",
    "How many other everyday assumptions would fail the same test?",
    "Curious what would change if this were common knowledge?",
    "What else is hiding in the fine print of {topic} research?",
    "Which other numbers would look curious under a closer look?",
    "Curious why the intuitive answer feels so convincing?",
    NULL,
};

static const char *const si_lead[] = {
    "The story begins in {year}, when {auth} set out to answer a question about {topic}, publishing in {jour}.",
    "A story from {year}: {auth}, {jour}, and a question about {topic}.",
    "The story starts in {year}, with researchers ({auth}, {jour}) counting what most people only guess about {topic}.",
    "This story is set in a {year} paper in {jour}, written by {auth}.",
    "The story goes back to {year}, when researchers ({src}) took a careful look at {topic}.",
    "Story time, {year}: a research team, a data set and one question about {topic} ({src}).",
    NULL,
};
static const char *const si_myth[] = {
    "At the time, many assumed: {myth}", "The popular version went like this: {myth}",
    "The conventional wisdom: {myth}", "Most people would have guessed: {myth}", NULL,
};
static const char *const si_turn[] = {
    "Then the story turned on the results.",
    "The story's ending was not the one most people would predict.",
    "Here is how the story turned out.",
    "The twist in this story came in the numbers.",
    "The data told a different story.",
    "What they found changed the story.",
    NULL,
};
static const char *const si_take[] = {
    "The lesson of the story: {takeaway}",
    "The moral of the story: {takeaway}",
    "What the story teaches: {takeaway}",
    "Why the story matters: {takeaway}",
    NULL,
};

/* Compact leads for content types whose lead names the source, used when a
 * short platform has no room for the full one. */
static const char *const rb_short_lead[] = {
    "Study breakdown: {auth}, {year}.",
    "Research breakdown: {auth} ({year}).",
    "Study: {auth}, {year}, broken down.",
    NULL,
};
static const char *const si_short_lead[] = {
    "The story begins in {year}, with {auth}.",
    "A story from {year}, told by {auth}.",
    "Story time: {auth}, {year}.",
    NULL,
};

/* Myth frames that name no myth, for the lean candidates (see
 * compose_once): the catalog's myth sentence is what two drafts of one fact
 * share most, so a draft that only points at it can sit further from the
 * earlier ones while still reading as its content type. */
static const char *const mb_myth_brief[] = {
    "A popular {topic} myth meets the measurement.",
    "Myth check on a common {topic} belief.",
    "One {topic} myth that does not survive the data.",
    "Myth under test: a common belief about {topic}.",
    "A stubborn {topic} myth, checked against the evidence.",
    "Time to retire a popular {topic} myth.",
    "The myth about {topic} that keeps coming back, measured.",
    "Myth versus measurement, on {topic}.",
    NULL,
};
static const char *const cx_myth_brief[] = {
    "The intuitive expectation on {topic} turns out wrong.",
    "Intuition suggests the opposite of what was measured.",
    "What intuition says about {topic} is not what the data show.",
    "The intuitive guess about {topic} misses.",
    "The intuitive answer here would be the wrong one.",
    "Most intuitive assumptions about {topic} point the other way.",
    NULL,
};
static const char *const si_myth_brief[] = {
    "At the time, most people assumed the opposite.",
    "The popular version of this story went the other way.",
    "Conventional wisdom expected a different ending.",
    "Most people would have guessed another outcome.",
    NULL,
};

#define P(k, p, j) { (k), (p), (j) }

static const type_pack types[] = {
    { "myth_busting", NULL, mb_myth, mb_pivot, mb_aside, NULL, NULL, NULL, NULL, false,
      { { { P(K_OPEN, 2, false), P(K_MYTH, 0, false), P(K_PIVOT, 1, true),
            P(K_FACT, 0, false), P(K_SRC, 0, true), P(K_TAKE, 4, false),
            P(K_ASIDE, 5, false), P(K_CLOSE, 1, false) }, 8 },
        { { P(K_MYTH, 0, false), P(K_PIVOT, 1, true), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_ASIDE, 3, false), P(K_CLOSE, 1, false),
            P(K_TAKE, 5, false) }, 7 },
        { { P(K_OPEN, 1, false), P(K_MYTH, 0, false), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_TAKE, 3, false), P(K_ASIDE, 1, false) }, 6 } } },
    { "counterintuitive_insight", cx_lead, cx_myth, NULL, cx_aside, NULL, NULL, NULL, NULL,
      false,
      { { { P(K_LEAD, 0, false), P(K_MYTH, 1, true), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_ASIDE, 4, false), P(K_CLOSE, 1, false) }, 6 },
        { { P(K_OPEN, 1, false), P(K_LEAD, 0, false), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_TAKE, 4, false), P(K_ASIDE, 1, false) }, 6 },
        { { P(K_OPEN, 1, false), P(K_MYTH, 0, false), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_ASIDE, 1, false), P(K_CLOSE, 4, false) }, 6 } } },
    { "practical_tip", pt_lead, NULL, NULL, pt_aside, NULL, NULL, NULL, pt_take, false,
      { { { P(K_LEAD, 0, false), P(K_FACT, 0, false), P(K_SRC, 0, true),
            P(K_TAKE, 1, false), P(K_ASIDE, 4, false), P(K_CLOSE, 1, false) }, 6 },
        { { P(K_OPEN, 1, false), P(K_LEAD, 0, false), P(K_TAKE, 1, false),
            P(K_FACT, 0, false), P(K_SRC, 0, true), P(K_CLOSE, 4, false) }, 6 },
        { { P(K_LEAD, 0, false), P(K_ASIDE, 1, true), P(K_FACT, 0, false),
            P(K_SRC, 0, true), P(K_TAKE, 3, false), P(K_CLOSE, 1, false) }, 6 } } },
    { "research_breakdown", rb_lead, NULL, NULL, NULL, NULL, rb_caveat, NULL, rb_take, true,
      { { { P(K_LEAD, 0, false), P(K_FACT, 0, false), P(K_TAKE, 2, false),
            P(K_CAVEAT, 1, false), P(K_CLOSE, 1, false) }, 5 },
        { { P(K_OPEN, 1, false), P(K_LEAD, 0, false), P(K_FACT, 0, false),
            P(K_CAVEAT, 1, false), P(K_TAKE, 3, false) }, 5 },
        { { P(K_LEAD, 0, false), P(K_FACT, 0, false), P(K_CAVEAT, 1, false),
            P(K_TAKE, 3, false), P(K_CLOSE, 1, false) }, 5 } } },
    { "curious_observation", co_lead, NULL, NULL, NULL, co_question, NULL, NULL, NULL,
      false,
      { { { P(K_LEAD, 0, false), P(K_FACT, 0, false), P(K_SRC, 0, true),
            P(K_QUESTION, 1, false), P(K_CLOSE, 4, false) }, 5 },
        { { P(K_OPEN, 1, false), P(K_FACT, 0, false), P(K_SRC, 0, true),
            P(K_QUESTION, 0, false), P(K_TAKE, 4, false) }, 5 },
        { { P(K_LEAD, 0, false), P(K_FACT, 0, false), P(K_SRC, 0, true),
            P(K_TAKE, 3, false), P(K_QUESTION, 1, false), P(K_CLOSE, 1, false) }, 6 } } },
    { "story_insight", si_lead, si_myth, NULL, NULL, NULL, NULL, si_turn, si_take, true,
      { { { P(K_OPEN, 1, false), P(K_LEAD, 0, false), P(K_MYTH, 4, true),
            P(K_TURN, 1, false), P(K_FACT, 0, true), P(K_TAKE, 2, false),
            P(K_CLOSE, 4, false) }, 7 },
        { { P(K_LEAD, 0, false), P(K_TURN, 1, false), P(K_FACT, 0, true),
            P(K_TAKE, 2, false), P(K_CLOSE, 1, false) }, 5 },
        { { P(K_OPEN, 1, false), P(K_LEAD, 0, false), P(K_FACT, 0, false),
            P(K_TAKE, 1, false), P(K_CLOSE, 4, false) }, 5 } } },
};
/* clang-format on */

#undef P

static size_t list_len(const char *const *list)
{
    size_t n = 0;
    while (list != NULL && list[n] != NULL)
        n++;
    return n;
}

static const char *pick(rng *r, const char *const *list)
{
    size_t n = list_len(list);
    return n ? list[rng_below(r, n)] : NULL;
}

static const style_pack *find_style(const char *key)
{
    for (size_t k = 0; key != NULL && k < sizeof(styles) / sizeof(styles[0]); k++)
        if (strcmp(styles[k].key, key) == 0)
            return &styles[k];
    return NULL;
}

static const type_pack *find_type(const char *key)
{
    for (size_t k = 0; key != NULL && k < sizeof(types) / sizeof(types[0]); k++)
        if (strcmp(types[k].key, key) == 0)
            return &types[k];
    return NULL;
}

bool generator_supports(const char *content_type, const char *voice_style)
{
    return find_type(content_type) != NULL && find_style(voice_style) != NULL;
}

/* ---- rendering ----------------------------------------------------------- */

typedef struct render_ctx {
    char topic[96];
    char auth[128];
    char jour[128];
    char year[8];
    const catalog_fact *fact;
} render_ctx;

static void render(strbuf *out, const char *tmpl, const render_ctx *c)
{
    const char *p = tmpl;
    while (*p != '\0') {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            if (close != NULL) {
                size_t n = (size_t)(close - p - 1);
                const char *val = NULL;
                if (n == 5 && strncmp(p + 1, "topic", 5) == 0)
                    val = c->topic;
                else if (n == 4 && strncmp(p + 1, "myth", 4) == 0)
                    val = c->fact->myth;
                else if (n == 8 && strncmp(p + 1, "takeaway", 8) == 0)
                    val = c->fact->takeaway;
                else if (n == 3 && strncmp(p + 1, "src", 3) == 0)
                    val = c->fact->source;
                else if (n == 4 && strncmp(p + 1, "auth", 4) == 0)
                    val = c->auth;
                else if (n == 4 && strncmp(p + 1, "jour", 4) == 0)
                    val = c->jour;
                else if (n == 4 && strncmp(p + 1, "year", 4) == 0)
                    val = c->year;
                if (val != NULL) {
                    size_t vlen = strlen(val);
                    strbuf_puts(out, val);
                    p = close + 1;
                    if (vlen > 0 && val[vlen - 1] == '.' && *p == '.')
                        p++; /* "et al." at a sentence end */
                    continue;
                }
            }
        }
        strbuf_putc(out, *p++);
    }
}

/* ---- the fact and its optional segments ------------------------------------
 * Most facts carry clauses a short platform can drop without changing the
 * finding: a leading population clause ("In 15 cohorts of 47,471 adults, "),
 * an inner list (", including hearing loss, smoking ...,") and a trailing
 * population clause (", across 16 studies of about 1.38 million people").
 * Dropping a different subset also makes two drafts of one fact differ. */

typedef struct fact_segments {
    size_t lead_end;   /* bytes [0, lead_end) are the leading clause; 0 = none */
    size_t incl_start; /* [incl_start, incl_end) is ", including ..."; 0 = none */
    size_t incl_end;
    size_t trail_start; /* [trail_start, len - 1) is the trailing clause; 0 = none */
} fact_segments;

enum { SEG_LEAD = 1, SEG_INCL = 2, SEG_TRAIL = 4 };

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void fact_segments_find(const char *fact, fact_segments *seg)
{
    static const char *const trail_heads[] = { "across ", "among ",    "in ",
                                               "over ",   "measured ", NULL };
    static const char *const lead_heads[] = { "In ", "Among ", "Across ", NULL };
    size_t len = strlen(fact);

    memset(seg, 0, sizeof(*seg));
    if (len < 2 || fact[len - 1] != '.' || strchr(fact, ';') != NULL)
        return;

    /* leading "In|Among|Across <number> ...," */
    for (int k = 0; lead_heads[k] != NULL; k++) {
        size_t h = strlen(lead_heads[k]);
        const char *comma = strstr(fact, ", ");
        if (starts_with(fact, lead_heads[k]) && fact[h] >= '0' && fact[h] <= '9' && comma != NULL &&
            (size_t)(comma - fact) < len / 2)
            seg->lead_end = (size_t)(comma - fact) + 2;
    }
    /* inner ", including a, b and c," : the list ends at the first comma
     * after its " and " */
    const char *inc = strstr(fact, ", including ");
    const char *and = inc != NULL ? strstr(inc, " and ") : NULL;
    const char *next = and != NULL ? strstr(and, ", ") : NULL;
    if (next != NULL) {
        seg->incl_start = (size_t)(inc - fact);
        seg->incl_end = (size_t)(next - fact) + 1; /* the list and its closing comma */
    }
    /* trailing ", across|among|in|over|measured ... ." with no comma after */
    const char *best = NULL;
    for (const char *q = strstr(fact, ", "); q != NULL; q = strstr(q + 2, ", "))
        for (int k = 0; trail_heads[k] != NULL; k++)
            if (starts_with(q + 2, trail_heads[k]))
                best = q;
    if (best != NULL && strstr(best + 2, ", ") == NULL && (size_t)(best - fact) > seg->incl_end &&
        (size_t)(best - fact) > seg->lead_end)
        seg->trail_start = (size_t)(best - fact);
}

static unsigned fact_segments_mask(const fact_segments *seg)
{
    return (seg->lead_end ? SEG_LEAD : 0u) | (seg->incl_start ? SEG_INCL : 0u) |
           (seg->trail_start ? SEG_TRAIL : 0u);
}

/* The fact without the segments in drop (and without its final period). */
static void fact_render(strbuf *out, const char *fact, const fact_segments *seg, unsigned drop)
{
    size_t len = strlen(fact) - 1; /* without the final '.' */
    size_t from = (drop & SEG_LEAD) ? seg->lead_end : 0;
    size_t to = (drop & SEG_TRAIL) ? seg->trail_start : len;
    size_t at = out->len;

    if (drop & SEG_INCL) {
        strbuf_append(out, fact + from, seg->incl_start - from);
        strbuf_append(out, fact + seg->incl_end, to - seg->incl_end);
    } else {
        strbuf_append(out, fact + from, to - from);
    }
    if (from > 0 && out->data[at] >= 'a' && out->data[at] <= 'z')
        out->data[at] = (char)(out->data[at] - 'a' + 'A');
}

typedef struct part {
    part_kind kind;
    unsigned prio;
    unsigned drop_key; /* optional parts: prio * 10 plus jitter; highest goes first */
    bool join;
    bool on;
    bool picked; /* chosen by the draw; only these are refilled */
    strbuf text;
} part;

typedef struct compose_state {
    part parts[MAX_PARTS];
    int n;
    fact_segments seg;
    unsigned drop;    /* fact segments left out */
    bool compact_src; /* source inline as "(auth, year)" */
    bool inline_src;  /* the source goes inside the fact sentence */
    const char *fact_intro;
    const char *attr; /* separate attribution template */
} compose_state;

static void render_fact(strbuf *out, const compose_state *s, const render_ctx *c)
{
    if (s->fact_intro != NULL) {
        render(out, s->fact_intro, c);
        strbuf_putc(out, ' ');
    }
    fact_render(out, c->fact->fact, &s->seg, s->drop);
    if (s->compact_src)
        strbuf_printf(out, " (%s, %s)", c->auth, c->year);
    else if (s->inline_src)
        strbuf_printf(out, " (%s, %s)", c->fact->source, c->year);
    strbuf_putc(out, '.');
}

/* Renders the on parts into out; returns the length in code points. */
static size_t assemble(strbuf *out, compose_state *s, const render_ctx *c, bool paragraphs)
{
    strbuf_reset(out);
    bool first = true;
    for (int k = 0; k < s->n; k++) {
        part *p = &s->parts[k];
        if (!p->on)
            continue;
        if (p->kind == K_FACT) {
            strbuf_reset(&p->text);
            render_fact(&p->text, s, c);
        }
        if (p->kind == K_SRC && (s->inline_src || s->compact_src))
            continue;
        if (p->text.len == 0)
            continue;
        if (!first)
            strbuf_puts(out, paragraphs && !p->join ? "\n\n" : " ");
        strbuf_append(out, p->text.data, p->text.len);
        first = false;
    }
    if (out->data == NULL)
        strbuf_append(out, "", 0);
    return utf8_count(out->data, out->len);
}

/* The on part with priority >= min_prio and the highest drop key (the
 * last of equals); -1 when none. The jitter in the key lets short platforms
 * keep a different subset of the optional parts from draft to draft. */
static int droppable(const compose_state *s, unsigned min_prio)
{
    int best = -1;
    for (int k = 0; k < s->n; k++) {
        const part *p = &s->parts[k];
        if (p->on && p->prio >= min_prio && (best < 0 || p->drop_key >= s->parts[best].drop_key))
            best = k;
    }
    return best;
}

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (err == NULL || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

status generator_length_bounds(const catalog *cat, const char *content_type,
                               const char *voice_style, const char *topic, platform_id platform,
                               int *min_chars, int *max_chars)
{
    const catalog_entry *e[3] = {
        catalog_find(cat, CATALOG_CONTENT_TYPE, content_type),
        catalog_find(cat, CATALOG_VOICE_STYLE, voice_style),
        catalog_find(cat, CATALOG_TOPIC, topic),
    };
    int mx = platform_max_chars(platform);
    int mn = 0;

    *min_chars = 0;
    *max_chars = 0;
    if (mx <= 0)
        return ST_INVALID;
    for (int k = 0; k < 3; k++) {
        if (e[k] == NULL)
            return ST_NOT_FOUND;
        if (e[k]->max_chars < mx)
            mx = e[k]->max_chars;
        if (e[k]->min_chars > mn)
            mn = e[k]->min_chars;
    }
    *min_chars = mn < mx ? mn : mx;
    *max_chars = mx;
    return ST_OK;
}

void generator_draft_fini(generator_draft *d)
{
    if (d == NULL)
        return;
    free(d->text);
    memset(d, 0, sizeof(*d));
}

/* Per platform: the chance (percent) that an optional part is included, and
 * that each optional fact segment is left out. Short platforms start lean;
 * LinkedIn uses most parts and most of the fact. */
static unsigned optional_pct(platform_id p)
{
    switch (p) {
    case PLATFORM_X:
        return 85;
    case PLATFORM_BLUESKY:
        return 85;
    case PLATFORM_THREADS:
        return 80;
    case PLATFORM_LINKEDIN:
        return 90;
    case PLATFORM_UNSPECIFIED:
        return 0;
    }
    return 0;
}

static unsigned segment_drop_pct(platform_id p)
{
    switch (p) {
    case PLATFORM_X:
        return 100;
    case PLATFORM_BLUESKY:
        return 85;
    case PLATFORM_THREADS:
        return 45;
    case PLATFORM_LINKEDIN:
        return 25;
    case PLATFORM_UNSPECIFIED:
        return 0;
    }
    return 0;
}

static status check_entry(const catalog *cat, catalog_kind kind, const char *key, const char *what,
                          char *err, size_t errcap)
{
    const catalog_entry *e = catalog_find(cat, kind, key);
    if (e == NULL) {
        set_err(err, errcap, "unknown %s \"%s\"", what, key);
        return ST_NOT_FOUND;
    }
    if (!e->enabled) {
        set_err(err, errcap, "%s \"%s\" is disabled", what, key);
        return ST_FAILED_PRECONDITION;
    }
    return ST_OK;
}

static const catalog_fact *choose_fact(const catalog *cat, const generator_request *req, rng *r,
                                       status *st, char *err, size_t errcap)
{
    size_t n = 0, enabled = 0;
    const catalog_fact *facts = catalog_topic_facts(cat, req->topic, &n);

    if (req->fact_key != NULL) {
        const catalog_fact *f = catalog_find_fact(cat, req->fact_key);
        if (f == NULL || strcmp(f->topic_key, req->topic) != 0) {
            set_err(err, errcap, "no fact \"%s\" on topic \"%s\"", req->fact_key, req->topic);
            *st = ST_NOT_FOUND;
            return NULL;
        }
        if (!f->enabled) {
            set_err(err, errcap, "fact \"%s\" is disabled", req->fact_key);
            *st = ST_FAILED_PRECONDITION;
            return NULL;
        }
        return f;
    }
    for (size_t k = 0; k < n; k++)
        enabled += facts[k].enabled;
    if (enabled == 0) {
        set_err(err, errcap, "topic \"%s\" has no enabled facts", req->topic);
        *st = ST_FAILED_PRECONDITION;
        return NULL;
    }
    size_t want = rng_below(r, enabled);
    for (size_t k = 0; k < n; k++) {
        if (!facts[k].enabled)
            continue;
        if (want-- == 0)
            return &facts[k];
    }
    set_err(err, errcap, "fact selection failed");
    *st = ST_INTERNAL;
    return NULL;
}

static void split_source(const char *src, render_ctx *c)
{
    const char *comma = strstr(src, ", ");
    if (comma == NULL) {
        snprintf(c->auth, sizeof(c->auth), "%s", src);
        snprintf(c->jour, sizeof(c->jour), "%s", src);
        return;
    }
    snprintf(c->auth, sizeof(c->auth), "%.*s", (int)(comma - src), src);
    snprintf(c->jour, sizeof(c->jour), "%s", comma + 2);
}

static const char *const *short_leads(const type_pack *tp)
{
    if (strcmp(tp->key, "research_breakdown") == 0)
        return rb_short_lead;
    if (strcmp(tp->key, "story_insight") == 0)
        return si_short_lead;
    return NULL;
}

static const char *const *myth_briefs(const type_pack *tp)
{
    if (strcmp(tp->key, "myth_busting") == 0)
        return mb_myth_brief;
    if (strcmp(tp->key, "counterintuitive_insight") == 0)
        return cx_myth_brief;
    if (strcmp(tp->key, "story_insight") == 0)
        return si_myth_brief;
    return NULL;
}

typedef struct compose_args {
    const catalog *cat;
    const generator_request *req;
    const type_pack *tp;
    const style_pack *sp;
    int min_chars;
    int max_chars;
} compose_args;

/* One attempt with one seed: the whole draw order below is part of the
 * determinism contract. On ST_OK *text holds the post.
 *
 * lean (the later candidates, once the first ones came too close to recent
 * posts): the catalog text two drafts of one fact share is what makes them
 * near-duplicates, so a lean candidate carries less of it and more framing:
 * half the time a myth frame that only points at the myth; an optional
 * takeaway or myth at even odds, every other optional part whenever it
 * fits; the fact's optional segments kept or left out at even odds on every
 * platform; the source inline at even odds. Same parts and phrase tables
 * otherwise, so it still reads as its (type, style); drafts without history
 * are never lean. */
static status compose_once(const compose_args *a, uint64_t seed, bool lean, strbuf *text,
                           const catalog_fact **fact_out, unsigned *shape_out, char *err,
                           size_t errcap)
{
    const generator_request *req = a->req;
    const type_pack *tp = a->tp;
    const style_pack *sp = a->sp;
    compose_state s;
    render_ctx c;
    rng r;
    status st = ST_OK;

    memset(&s, 0, sizeof(s));
    rng_seed(&r, seed);
    const catalog_fact *fact = choose_fact(a->cat, req, &r, &st, err, errcap);
    if (fact == NULL)
        return st;

    memset(&c, 0, sizeof(c));
    c.fact = fact;
    const catalog_entry *topic = catalog_find(a->cat, CATALOG_TOPIC, req->topic);
    snprintf(c.topic, sizeof(c.topic), "%s", topic->display_name);
    for (char *q = c.topic; *q != '\0'; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    snprintf(c.year, sizeof(c.year), "%d", fact->year);
    split_source(fact->source, &c);

    unsigned shape_ix = (unsigned)rng_below(&r, 3);
    const shape *shp = &tp->shapes[shape_ix];
    /* the style's way to introduce the fact is its signature on every
     * platform: always present, dropped only as a last resort */
    s.fact_intro = pick(&r, sp->fact_intros);
    fact_segments_find(fact->fact, &s.seg);
    unsigned seg_pct = lean ? 50 : segment_drop_pct(req->platform);
    for (unsigned bit = SEG_LEAD; bit <= SEG_TRAIL; bit <<= 1)
        if (rng_chance(&r, seg_pct))
            s.drop |= bit;
    s.drop &= fact_segments_mask(&s.seg);
    /* the source: inside the fact sentence one time in five, otherwise as
     * its own sentence in the style's words */
    s.inline_src = !tp->source_in_lead && rng_chance(&r, lean ? 50 : 20);
    s.attr = pick(&r, sp->attributions);
    const char *short_lead = pick(&r, short_leads(tp));
    unsigned pct = optional_pct(req->platform);

    for (int k = 0; k < shp->n; k++) {
        part *p = &s.parts[s.n++];
        p->kind = shp->parts[k].kind;
        p->prio = shp->parts[k].prio;
        p->join = shp->parts[k].join;
        strbuf_init(&p->text);
        bool roll = rng_chance(&r, pct);
        p->on = p->prio <= 1 || roll;
        p->picked = p->on;
        p->drop_key = p->prio * 10 + (unsigned)rng_below(&r, 15);
        const char *tmpl = NULL;
        switch (p->kind) {
        case K_OPEN:
            tmpl = pick(&r, sp->openers);
            break;
        case K_CLOSE:
            tmpl = pick(&r, sp->closers);
            break;
        case K_LEAD:
            tmpl = pick(&r, tp->leads);
            break;
        case K_MYTH:
            tmpl = pick(&r, tp->myth_frames);
            if (lean && myth_briefs(tp) != NULL && rng_chance(&r, 50))
                tmpl = pick(&r, myth_briefs(tp));
            break;
        case K_PIVOT:
            tmpl = pick(&r, tp->pivots);
            break;
        case K_ASIDE:
            tmpl = pick(&r, tp->asides);
            break;
        case K_QUESTION:
            tmpl = pick(&r, tp->questions);
            break;
        case K_CAVEAT:
            tmpl = pick(&r, tp->caveats);
            break;
        case K_TURN:
            tmpl = pick(&r, tp->turns);
            break;
        case K_TAKE:
            if (tp->take_frames != NULL) {
                tmpl = pick(&r, tp->take_frames);
            } else {
                render(&p->text, pick(&r, sp->take_intros), &c);
                tmpl = " {takeaway}";
            }
            break;
        case K_SRC:
            tmpl = tp->source_in_lead ? NULL : s.attr;
            break;
        case K_FACT:
            break; /* rendered by assemble() */
        }
        if (tmpl != NULL)
            render(&p->text, tmpl, &c);
        if (lean && p->prio >= 1) {
            /* the takeaway and the myth at even odds; framing whenever it fits */
            bool catalog_text = p->kind == K_TAKE || (p->kind == K_MYTH && tmpl != NULL &&
                                                      strstr(tmpl, "{myth}") != NULL);
            p->on = p->picked = catalog_text ? rng_chance(&r, 50) : true;
        }
    }

    /* Fit: drop optional parts (highest priority first), then shorten the
     * fact, the source and the lead, then drop the kept-if-possible parts. */
    bool paragraphs = req->platform == PLATFORM_THREADS || req->platform == PLATFORM_LINKEDIN;
    size_t max = (size_t)a->max_chars, min = (size_t)a->min_chars;
    size_t chars = assemble(text, &s, &c, paragraphs);
    int victim;
    while (chars > max && (victim = droppable(&s, 2)) >= 0) {
        s.parts[victim].on = false;
        chars = assemble(text, &s, &c, paragraphs);
    }
    for (unsigned bit = SEG_TRAIL; chars > max && bit >= SEG_LEAD; bit >>= 1) {
        if ((fact_segments_mask(&s.seg) & bit) && !(s.drop & bit)) {
            s.drop |= bit;
            chars = assemble(text, &s, &c, paragraphs);
        }
    }
    if (chars > max && !tp->source_in_lead && !s.compact_src) {
        s.compact_src = true;
        chars = assemble(text, &s, &c, paragraphs);
    }
    for (int k = 0; chars > max && short_lead != NULL && k < s.n; k++) {
        if (s.parts[k].kind == K_LEAD && s.parts[k].on) {
            strbuf_reset(&s.parts[k].text);
            render(&s.parts[k].text, short_lead, &c);
            chars = assemble(text, &s, &c, paragraphs);
        }
    }
    while (chars > max && (victim = droppable(&s, 1)) >= 0) {
        s.parts[victim].on = false;
        chars = assemble(text, &s, &c, paragraphs);
    }
    if (chars > max && s.fact_intro != NULL) {
        s.fact_intro = NULL;
        chars = assemble(text, &s, &c, paragraphs);
    }
    /* Refill: a part dropped above may fit again now that a longer one went;
     * the budget is better spent on framing than left empty. */
    for (unsigned prio = 1; chars <= max && prio <= 5; prio++) {
        for (int k = 0; k < s.n; k++) {
            part *p = &s.parts[k];
            if (p->on || !p->picked || p->prio != prio)
                continue;
            p->on = true;
            size_t with = assemble(text, &s, &c, paragraphs);
            if (with > max)
                p->on = false;
            chars = with > max ? assemble(text, &s, &c, paragraphs) : with;
        }
    }
    /* Too short for the content type's minimum: bring parts back, lowest
     * priority first, while they fit. */
    for (unsigned prio = 1; chars < min && prio <= 5; prio++) {
        for (int k = 0; k < s.n && chars < min; k++) {
            part *p = &s.parts[k];
            if (p->on || p->prio != prio || p->text.len == 0)
                continue;
            p->on = true;
            size_t with = assemble(text, &s, &c, paragraphs);
            if (with > max)
                p->on = false;
            chars = with > max ? assemble(text, &s, &c, paragraphs) : with;
        }
    }
    if (chars > max) {
        set_err(err, errcap, "fact \"%s\" does not fit in %d characters", fact->key, a->max_chars);
        st = ST_FAILED_PRECONDITION;
    }
    for (int k = 0; k < s.n; k++)
        strbuf_fini(&s.parts[k].text);
    *fact_out = fact;
    *shape_out = shape_ix;
    return st;
}

status generator_compose(const catalog *cat, const generator_request *req, generator_draft *out,
                         char *err, size_t errcap)
{
    status st;
    strbuf text = { 0 };
    textsim_fp fp = { 0 };
    compose_args a = { .cat = cat, .req = req };

    memset(out, 0, sizeof(*out));
    set_err(err, errcap, "%s", "");
    if (cat == NULL || !catalog_finished(cat) || req == NULL || req->content_type == NULL ||
        req->voice_style == NULL || req->topic == NULL) {
        set_err(err, errcap, "catalog and all three keys are required");
        return ST_INVALID;
    }
    if (platform_max_chars(req->platform) <= 0) {
        set_err(err, errcap, "unknown platform %d", (int)req->platform);
        return ST_INVALID;
    }
    if ((st = check_entry(cat, CATALOG_CONTENT_TYPE, req->content_type, "content type", err,
                          errcap)) != ST_OK ||
        (st = check_entry(cat, CATALOG_VOICE_STYLE, req->voice_style, "voice style", err,
                          errcap)) != ST_OK ||
        (st = check_entry(cat, CATALOG_TOPIC, req->topic, "topic", err, errcap)) != ST_OK)
        return st;
    a.tp = find_type(req->content_type);
    a.sp = find_style(req->voice_style);
    if (a.tp == NULL || a.sp == NULL) {
        set_err(err, errcap, "no built-in templates for %s \"%s\"",
                a.tp == NULL ? "content type" : "voice style",
                a.tp == NULL ? req->content_type : req->voice_style);
        return ST_UNIMPLEMENTED;
    }
    st = generator_length_bounds(cat, req->content_type, req->voice_style, req->topic,
                                 req->platform, &a.min_chars, &a.max_chars);
    if (st != ST_OK) {
        set_err(err, errcap, "no length bounds for this request");
        return st;
    }
    double threshold = req->max_similarity > 0.0 ? req->max_similarity : TEXTSIM_DEFAULT_THRESHOLD;
    int attempts = req->recent != NULL ? GENERATOR_MAX_ATTEMPTS : 1;

    /* seed: the caller's, mixed with the request so that one seed gives
     * unrelated drafts for different arms */
    uint64_t base = fnv1a(req->seed ^ 0xcbf29ce484222325ULL, req->content_type);
    base = fnv1a(base, req->voice_style);
    base = fnv1a(base, req->topic);
    base ^= (uint64_t)req->platform * 0x9e3779b97f4a7c15ULL;

    double best_score = 2.0;
    for (int attempt = 0; attempt < attempts; attempt++) {
        const catalog_fact *fact = NULL;
        unsigned shape_ix = 0;
        uint64_t seed = base + (uint64_t)attempt * 0xd1b54a32d192ed03ULL;
        strbuf_reset(&text);
        st = compose_once(&a, seed, attempt >= GENERATOR_LEAN_FROM, &text, &fact, &shape_ix, err,
                          errcap);
        if (st != ST_OK)
            continue; /* another seed may pick a fact that fits */
        double score = 0.0;
        if (req->recent != NULL) {
            textsim_match m;
            if (textsim_fp_compute(text.data, text.len, &fp) == ST_OK &&
                textsim_index_nearest(req->recent, &fp, req->since_ms, req->exclude_id, &m))
                score = m.score;
        }
        if (score < best_score) {
            generator_draft_fini(out);
            out->len = text.len;
            out->text = strbuf_take(&text);
            out->chars = utf8_count(out->text, out->len);
            out->fact = fact;
            out->min_chars = a.min_chars;
            out->max_chars = a.max_chars;
            out->shape = shape_ix;
            out->attempts = attempt + 1;
            out->nearest_similarity = score;
            best_score = score;
        }
        if (best_score < threshold)
            break;
    }
    if (out->text != NULL)
        st = ST_OK;
    textsim_fp_fini(&fp);
    strbuf_fini(&text);
    return st;
}
