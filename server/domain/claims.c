/* claims.c - claim-safety rules over word tokens (see claims.h).
 *
 * Pattern language, one element per space-separated item:
 *   word|word    a token equal to any alternative
 *   @class       a member of a class below (members may be several words)
 *   #            a number token
 *   x?  x*  x+   optional, 0-4 times, 1-4 times
 *   ~N           skip 0..N tokens
 *   !a|b         (first item only) the token before the match is not a or b
 * A match never spans a sentence end (. ! ? ; or a line break between two
 * of its tokens). */
#include "claims.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "util.h"

#define MAX_ELEMS 16
#define MAX_ENDS 8

typedef struct klass {
    const char *name;
    const char *const *members;
} klass;

/* clang-format off */
static const char *const cls_prof[] = {
    "doctor", "physician", "nurse", "nutritionist", "dietitian", "dietician", "pharmacist",
    "psychologist", "psychiatrist", "therapist", "cardiologist", "neurologist", "surgeon",
    "dentist", "dermatologist", "endocrinologist", "gastroenterologist", "gp", "md",
    "medical doctor", "health professional", "medical professional", "healthcare professional",
    "health care professional", "clinician", "naturopath", "chiropractor", "physiotherapist",
    "physical therapist", "personal trainer", "health coach", "sleep specialist",
    "sleep doctor", "specialist", "practitioner", "paediatrician", "pediatrician", "midwife",
    "paramedic", "nutrition coach", "osteopath", "counsellor", "counselor", NULL,
};
/* prof plus titles that are only claims when someone says they are one */
static const char *const cls_prof_any[] = {
    "doctor", "physician", "nurse", "nutritionist", "dietitian", "dietician", "pharmacist",
    "psychologist", "psychiatrist", "therapist", "cardiologist", "neurologist", "surgeon",
    "dentist", "dermatologist", "endocrinologist", "gastroenterologist", "gp", "md",
    "medical doctor", "health professional", "medical professional", "healthcare professional",
    "clinician", "naturopath", "chiropractor", "physiotherapist", "physical therapist",
    "personal trainer", "health coach", "sleep specialist", "specialist", "practitioner",
    "scientist", "neuroscientist", "researcher", "medical researcher", "expert", "phd",
    "health expert", "nutrition expert", "sleep expert", "biochemist", "epidemiologist",
    "pediatrician", "paediatrician", "midwife", "paramedic", "osteopath", NULL,
};
static const char *const cls_cred_adj[] = {
    "certified", "licensed", "registered", "board", "qualified", "practising", "practicing",
    "trained", "medical", "former", "retired", "experienced", "professional", "clinical",
    "family", "holistic", "functional", "integrative", "accredited", "sports", "senior",
    "practicing", "working", NULL,
};
static const char *const cls_carer[] = {
    "doctor", "doctors", "physician", "gp", "therapist", "cardiologist", "nutritionist",
    "dietitian", "dietician", "psychiatrist", "psychologist", "endocrinologist", "neurologist",
    "dermatologist", "nurse", "specialist", "surgeon", "dentist", "pharmacist", "naturopath",
    "chiropractor", "physio", "physiotherapist", "oncologist", "gastroenterologist",
    "doc", "consultant", NULL,
};
static const char *const cls_cond[] = {
    "adhd", "autism", "depression", "anxiety", "an anxiety disorder", "diabetes",
    "type 2 diabetes", "type 1 diabetes", "prediabetes", "insulin resistance",
    "hypothyroidism", "hyperthyroidism", "a thyroid problem", "thyroid problems",
    "sleep apnea", "sleep apnoea", "apnea", "apnoea", "insomnia", "ibs", "leaky gut",
    "adrenal fatigue", "candida", "cancer", "dementia", "alzheimer's", "bipolar",
    "bipolar disorder", "ocd", "ptsd", "a deficiency", "vitamin d deficiency", "iron deficiency",
    "a vitamin deficiency", "b12 deficiency", "a magnesium deficiency", "anemia", "anaemia",
    "an eating disorder", "hypertension", "high blood pressure", "heart disease", "celiac",
    "coeliac", "celiac disease", "coeliac disease", "gluten intolerance", "lactose intolerance",
    "fibromyalgia", "chronic fatigue", "long covid", "chronic inflammation", "inflammation",
    "a disorder", "an infection", "sibo", "pcos", "arthritis", "asthma", "migraines", "migraine",
    "burnout", "acne", "eczema", "psoriasis", "obesity", "endometriosis", "narcolepsy",
    "restless legs", "high cholesterol", "gerd", "acid reflux", "a concussion", "dyslexia",
    "tinnitus", "a hormone imbalance", "hormonal imbalance", "low testosterone", "gut dysbiosis",
    "dysbiosis", NULL,
};
static const char *const cls_cond_adj[] = {
    "depressed", "diabetic", "prediabetic", "pre diabetic", "anemic", "anaemic", "deficient",
    "hypothyroid", "insulin resistant", "autistic", "bipolar", "dehydrated", "gluten intolerant",
    "lactose intolerant", "burnt out", "burned out", "sick", "ill", NULL,
};
/* what "my ..." must not be followed by in a health post */
static const char *const cls_health[] = {
    "adhd", "autism", "depression", "anxiety", "diabetes", "prediabetes", "insomnia", "ibs",
    "sleep apnea", "sleep apnoea", "apnea", "cancer", "dementia", "bipolar", "ocd", "ptsd",
    "deficiency", "anemia", "anaemia", "eating disorder", "hypertension", "heart disease",
    "celiac", "coeliac", "fibromyalgia", "chronic fatigue", "long covid", "inflammation",
    "infection", "sibo", "pcos", "arthritis", "asthma", "migraines", "migraine", "burnout",
    "acne", "eczema", "psoriasis", "blood pressure", "cholesterol", "blood sugar", "glucose",
    "a1c", "symptoms", "pain", "chronic pain", "back pain", "gut", "gut health", "sleep",
    "weight", "weight loss", "metabolism", "hormones", "testosterone", "cortisol",
    "mental health", "health", "heart rate", "illness", "disease", "condition", "diagnosis",
    "prescription", "medication", "medications", "meds", "treatment", "recovery", "bloodwork",
    "blood work", "lab results", "test results", "surgery", "therapy", "tinnitus", NULL,
};
static const char *const cls_unit[] = {
    "mg", "milligram", "milligrams", "mcg", "µg", "ug", "microgram", "micrograms", "g", "gram",
    "grams", "iu", "ius", "ml", "millilitre", "millilitres", "milliliter", "milliliters",
    "drop", "drops", "pill", "pills", "tablet", "tablets", "capsule", "capsules", "caps",
    "scoop", "scoops", "tsp", "teaspoon", "teaspoons", "tbsp", "tablespoon", "tablespoons",
    "units", "gummies", "softgels", "doses", NULL,
};
static const char *const cls_supp[] = {
    "melatonin", "magnesium", "vitamin", "vitamins", "zinc", "iron", "ashwagandha", "creatine",
    "fish oil", "omega 3", "omega", "b12", "folate", "folic acid", "valerian", "l theanine",
    "theanine", "cbd", "5 htp", "htp", "berberine", "curcumin", "turmeric", "probiotic",
    "probiotics", "collagen", "glycine", "gaba", "ibuprofen", "paracetamol", "acetaminophen",
    "aspirin", "metformin", "statins", "insulin", "nmn", "resveratrol", "quercetin", NULL,
};
static const char *const cls_med[] = {
    "medication", "medications", "meds", "pills", "supplements", "supplement", "melatonin",
    "magnesium", "vitamin", "vitamins", "ashwagandha", "creatine", "antidepressants", "statins",
    "insulin", "metformin", "ozempic", "probiotics", "tablets", "capsules", "prescription",
    "painkillers", "sleeping pills", "cbd", NULL,
};

static const klass classes[] = {
    { "prof", cls_prof },       { "prof_any", cls_prof_any }, { "cred_adj", cls_cred_adj },
    { "carer", cls_carer },     { "cond", cls_cond },         { "cond_adj", cls_cond_adj },
    { "health", cls_health },   { "unit", cls_unit },         { "supp", cls_supp },
    { "med", cls_med },
};

typedef struct rule {
    claim_kind kind;
    const char *pattern;
} rule;

static const rule rules[] = {
    /* invented credentials */
    { CLAIM_CREDENTIAL, "as a|an @cred_adj* @prof" },
    { CLAIM_CREDENTIAL, "as your @prof" },
    { CLAIM_CREDENTIAL, "speaking as a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i'm|im a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i am|was a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i've|ive been a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i have|had been a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i work|worked as a|an @cred_adj* @prof_any" },
    { CLAIM_CREDENTIAL, "i'm|im board|certified|licensed|registered|qualified|accredited" },
    { CLAIM_CREDENTIAL, "i am board|certified|licensed|registered|qualified|accredited" },
    { CLAIM_CREDENTIAL, "my|our patients|patient|clinic" },
    { CLAIM_CREDENTIAL, "in my|our clinical|medical|private? practice|clinic|office" },
    { CLAIM_CREDENTIAL, "my|our clinical|medical experience|training|expertise|background" },
    { CLAIM_CREDENTIAL, "i|we diagnose|prescribe" },
    { CLAIM_CREDENTIAL, "i treat|see patients|clients" },
    /* first-person health experience */
    { CLAIM_FIRST_PERSON, "cured|healed|reversed|fixed|beat|overcame|eliminated|conquered|"
                          "banished|resolved|treated ~2 my|our" },
    { CLAIM_FIRST_PERSON, "got rid of my|our" },
    { CLAIM_FIRST_PERSON, "my|our own? @carer" },
    { CLAIM_FIRST_PERSON, "my own? @health" },
    { CLAIM_FIRST_PERSON, "i|we|i've|ive|we've|i'm|im|i'd ~2 diagnosed" },
    { CLAIM_FIRST_PERSON, "diagnosed me|us" },
    { CLAIM_FIRST_PERSON, "i|we suffer|suffered|struggle|struggled|live|lived|battle|battled|"
                          "deal|dealt ~1 with|from @cond" },
    { CLAIM_FIRST_PERSON, "i|we have|had|got|developed @cond" },
    { CLAIM_FIRST_PERSON, "i|we lost|dropped|shed|gained ~1 # pounds|lbs|lb|kg|kilos|kilograms|"
                          "stone" },
    { CLAIM_FIRST_PERSON, "i|we|i've|ive|i'm|im ~2 take|took|taking ~2 @med|#" },
    { CLAIM_FIRST_PERSON, "worked|works for me" },
    /* diagnosing the reader */
    { CLAIM_DIAGNOSIS, "!if|when|whether|unless you ~1 have|got|suffer ~1 @cond" },
    { CLAIM_DIAGNOSIS, "!if|when|whether|unless you're|youre|you ~1 are|re? ~1 @cond_adj" },
    { CLAIM_DIAGNOSIS, "signs|sign|symptoms|symptom that? you|you're|youre" },
    { CLAIM_DIAGNOSIS, "this|that|it means you|you're|youre" },
    { CLAIM_DIAGNOSIS, "diagnose|diagnosing yourself" },
    { CLAIM_DIAGNOSIS, "self diagnose|diagnosis|diagnosing" },
    { CLAIM_DIAGNOSIS, "you ~1 need|needs ~1 medication|meds|antidepressants|insulin|statins|"
                       "surgery" },
    /* dosing and medication instructions */
    { CLAIM_DOSING, "take|use|try|swallow|supplement|dose|pop|start ~3 # @unit" },
    { CLAIM_DOSING, "taking|takes ~2 # @unit" },
    { CLAIM_DOSING, "# @unit of @supp" },
    { CLAIM_DOSING, "recommended|optimal|ideal|right|best|correct|effective|starting|"
                    "maximum|minimum|safe|proper dose|dosage|dosing" },
    { CLAIM_DOSING, "dosage" },
    { CLAIM_DOSING, "stop|quit|skip|double|halve|increase|reduce|lower|adjust|change|cut|"
                    "ditch ~2 your ~1 medication|medications|meds|dose|dosage|insulin|"
                    "prescription|pills|antidepressants|statins" },
    { CLAIM_DOSING, "instead of your ~1 medication|medications|meds|prescription|pills" },
    /* cure promises */
    { CLAIM_CURE, "cures|heals|reverses|eliminates @cond" },
    { CLAIM_CURE, "guaranteed to ~2 cure|heal|fix|reverse|eliminate" },
};
/* clang-format on */

/* ---- compiled rules ---------------------------------------------------------
 * The table above is compiled once (pthread_once) into word arrays so that a
 * check is only token comparisons: no parsing and no strlen per call. The
 * compiled form lives for the whole process and is never written again. */

#define MAX_WORDS 4
#define MAX_ALTS 16

typedef struct cword {
    const char *s; /* points into the static tables; not NUL-terminated */
    size_t len;
} cword;

typedef struct cseq {
    cword w[MAX_WORDS];
    int n;
} cseq;

typedef struct cclass {
    cseq *members;
    int n;
} cclass;

typedef enum { ALT_SEQ, ALT_NUM, ALT_CLASS } alt_kind;

typedef struct calt {
    alt_kind kind;
    cseq seq;
    const cclass *cls;
} calt;

typedef struct celem {
    calt alts[MAX_ALTS];
    int nalts;
    int min;
    int max;
    int skip; /* >= 0 for "~N" */
} celem;

typedef struct crule {
    claim_kind kind;
    celem e[MAX_ELEMS];
    int n;
    celem not_before; /* nalts == 0: none */
} crule;

#define NCLASSES (sizeof(classes) / sizeof(classes[0]))
#define NRULES (sizeof(rules) / sizeof(rules[0]))

static cclass compiled_classes[NCLASSES];
static crule compiled_rules[NRULES];
static pthread_once_t compile_once = PTHREAD_ONCE_INIT;

/* "a b c" (len bytes) -> words */
static void seq_compile(const char *s, size_t len, cseq *out)
{
    const char *end = s + len;
    out->n = 0;
    while (s < end) {
        const char *sp = memchr(s, ' ', (size_t)(end - s));
        size_t n = sp ? (size_t)(sp - s) : (size_t)(end - s);
        assert(out->n < MAX_WORDS);
        out->w[out->n].s = s;
        out->w[out->n].len = n;
        out->n++;
        s += n + (sp ? 1 : 0);
    }
}

static const cclass *class_by_name(const char *name, size_t n)
{
    for (size_t k = 0; k < NCLASSES; k++)
        if (strlen(classes[k].name) == n && memcmp(classes[k].name, name, n) == 0)
            return &compiled_classes[k];
    return NULL;
}

/* "a|@cls|#" -> alternatives */
static void elem_compile(const char *s, size_t len, celem *e)
{
    const char *end = s + len;
    e->nalts = 0;
    while (s < end) {
        const char *bar = memchr(s, '|', (size_t)(end - s));
        size_t n = bar ? (size_t)(bar - s) : (size_t)(end - s);
        assert(e->nalts < MAX_ALTS);
        calt *a = &e->alts[e->nalts++];
        if (n == 1 && s[0] == '#') {
            a->kind = ALT_NUM;
        } else if (n > 1 && s[0] == '@') {
            a->kind = ALT_CLASS;
            a->cls = class_by_name(s + 1, n - 1);
            assert(a->cls != NULL);
        } else {
            a->kind = ALT_SEQ;
            seq_compile(s, n, &a->seq);
        }
        s += n + (bar ? 1 : 0);
    }
}

static void compile_all(void)
{
    for (size_t k = 0; k < NCLASSES; k++) {
        int n = 0;
        while (classes[k].members[n] != NULL)
            n++;
        compiled_classes[k].members = xcalloc((size_t)n, sizeof(cseq));
        compiled_classes[k].n = n;
        for (int m = 0; m < n; m++)
            seq_compile(classes[k].members[m], strlen(classes[k].members[m]),
                        &compiled_classes[k].members[m]);
    }
    for (size_t r = 0; r < NRULES; r++) {
        crule *cr = &compiled_rules[r];
        const char *p = rules[r].pattern;
        cr->kind = rules[r].kind;
        while (*p != '\0') {
            while (*p == ' ')
                p++;
            if (*p == '\0')
                break;
            const char *s = p;
            while (*p != '\0' && *p != ' ')
                p++;
            size_t len = (size_t)(p - s);
            if (s[0] == '!' && cr->n == 0) {
                elem_compile(s + 1, len - 1, &cr->not_before);
                continue;
            }
            assert(cr->n < MAX_ELEMS);
            celem *e = &cr->e[cr->n++];
            e->min = 1;
            e->max = 1;
            e->skip = -1;
            if (s[0] == '~') {
                e->skip = s[1] - '0';
                continue;
            }
            char last = s[len - 1];
            if (last == '?' || last == '*' || last == '+') {
                e->min = last == '+' ? 1 : 0;
                e->max = last == '?' ? 1 : 4;
                len--;
            }
            elem_compile(s, len, e);
        }
    }
}

typedef struct matcher {
    const char *text;
    const textscan_tokens *t;
    const crule *rule;
    size_t start; /* token where the current attempt began */
} matcher;

const char *claims_kind_name(claim_kind k)
{
    switch (k) {
    case CLAIM_NONE:
        return "none";
    case CLAIM_CREDENTIAL:
        return "invented credential";
    case CLAIM_FIRST_PERSON:
        return "first-person health experience";
    case CLAIM_DIAGNOSIS:
        return "diagnosis";
    case CLAIM_DOSING:
        return "dosing or medication instruction";
    case CLAIM_CURE:
        return "cure claim";
    }
    return "claim";
}

/* True when a sentence ends between tokens a and a+1. */
static bool sentence_gap(const matcher *m, size_t a)
{
    size_t from = m->t->v[a].off + m->t->v[a].len;
    size_t to = m->t->v[a + 1].off;
    for (size_t k = from; k < to; k++) {
        char ch = m->text[k];
        if (ch == '.' || ch == '!' || ch == '?' || ch == ';' || ch == '\n')
            return true;
    }
    return false;
}

static bool token_is(const matcher *m, size_t at, const cword *w)
{
    const textscan_token *tok = &m->t->v[at];
    return tok->norm_len == w->len && memcmp(m->t->norm.data + tok->norm_off, w->s, w->len) == 0;
}

/* The words of seq match tokens from ti: returns the end index, or 0. */
static size_t match_seq(const matcher *m, const cseq *seq, size_t ti)
{
    size_t at = ti;
    for (int k = 0; k < seq->n; k++, at++) {
        if (at >= m->t->n)
            return 0;
        if (at > m->start && sentence_gap(m, at - 1))
            return 0;
        if (!token_is(m, at, &seq->w[k]))
            return 0;
    }
    return at;
}

/* All end positions where one occurrence of e starting at ti can end
 * (several when class members have different lengths). */
static int match_elem(const matcher *m, const celem *e, size_t ti, size_t ends[MAX_ENDS])
{
    int n = 0;
    if (ti >= m->t->n)
        return 0;
    if (ti > m->start && sentence_gap(m, ti - 1))
        return 0;
    for (int k = 0; k < e->nalts && n < MAX_ENDS; k++) {
        const calt *a = &e->alts[k];
        if (a->kind == ALT_NUM) {
            if (m->t->v[ti].number)
                ends[n++] = ti + 1;
        } else if (a->kind == ALT_SEQ) {
            size_t end = match_seq(m, &a->seq, ti);
            if (end)
                ends[n++] = end;
        } else {
            for (int j = 0; j < a->cls->n && n < MAX_ENDS; j++) {
                /* cheap first-word test before the full member */
                if (!token_is(m, ti, &a->cls->members[j].w[0]))
                    continue;
                size_t end = match_seq(m, &a->cls->members[j], ti);
                if (end)
                    ends[n++] = end;
            }
        }
    }
    return n;
}

static bool match_from(const matcher *m, int ei, size_t ti, int reps, size_t *end);

static bool match_next(const matcher *m, int ei, size_t ti, size_t *end)
{
    if (ei == m->rule->n) {
        *end = ti;
        return true;
    }
    return match_from(m, ei, ti, 0, end);
}

static bool match_from(const matcher *m, int ei, size_t ti, int reps, size_t *end)
{
    const celem *e = &m->rule->e[ei];

    if (e->skip >= 0) {
        for (int s = 0; s <= e->skip; s++) {
            size_t at = ti + (size_t)s;
            if (s > 0) {
                size_t skipped = at - 1; /* joins the match: no sentence end before it */
                if (skipped >= m->t->n)
                    break;
                if (skipped > m->start && sentence_gap(m, skipped - 1))
                    break;
            }
            if (match_next(m, ei + 1, at, end))
                return true;
        }
        return false;
    }
    if (reps >= e->min && match_next(m, ei + 1, ti, end))
        return true;
    if (reps >= e->max)
        return false;
    size_t ends[MAX_ENDS];
    int n = match_elem(m, e, ti, ends);
    for (int k = 0; k < n; k++)
        if (match_from(m, ei, ends[k], reps + 1, end))
            return true;
    return false;
}

static bool rule_at(matcher *m, size_t ti, size_t *end)
{
    size_t ends[MAX_ENDS];

    m->start = ti;
    if (m->rule->not_before.nalts > 0 && ti > 0 && !sentence_gap(m, ti - 1)) {
        m->start = ti - 1;
        bool excluded = match_elem(m, &m->rule->not_before, ti - 1, ends) > 0;
        m->start = ti;
        if (excluded)
            return false;
    }
    return match_from(m, 0, ti, 0, end) && *end > ti;
}

bool claims_check(const char *text, const textscan_tokens *t, claims_hit *hit)
{
    matcher m = { .text = text, .t = t };
    size_t best_start = (size_t)-1, best_end = 0;
    claim_kind best_kind = CLAIM_NONE;

    pthread_once(&compile_once, compile_all);
    memset(hit, 0, sizeof(*hit));
    for (size_t r = 0; r < NRULES; r++) {
        m.rule = &compiled_rules[r];
        for (size_t ti = 0; ti < t->n && ti < best_start; ti++) {
            size_t end;
            if (rule_at(&m, ti, &end)) {
                best_start = ti;
                best_end = end;
                best_kind = compiled_rules[r].kind;
                break;
            }
        }
    }
    if (best_kind == CLAIM_NONE)
        return true;
    hit->kind = best_kind;
    textscan_span_excerpt(text, t, best_start, best_end - 1, hit->excerpt, sizeof(hit->excerpt));
    return false;
}
