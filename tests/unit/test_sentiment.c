/* test_sentiment.c - the reply sentiment scorer: rules on small cases, then
 * accuracy on tests/data/replies.tsv (HERALD_TEST_DATA_DIR). Prints the
 * accuracy of the dev and held-out halves and per-label counts; lists the
 * misclassified dev rows only (held-out rows are never shown, so nobody
 * tunes on them by accident). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentiment.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define MAX_ROWS 2000

static sentiment_result score(const char *text)
{
    sentiment_result r;
    assert_int_equal(sentiment_score(text, strlen(text), &r), ST_OK);
    return r;
}

static void negation_flips_polarity(void **state)
{
    (void)state;
    sentiment_result good = score("This is good.");
    sentiment_result not_good = score("This is not good.");
    sentiment_result isnt_good = score("This isn't good.");
    assert_int_equal(good.label, SENTIMENT_POSITIVE);
    assert_true(good.score > 0.0);
    assert_int_equal(not_good.label, SENTIMENT_NEGATIVE);
    assert_true(not_good.score < 0.0);
    assert_int_equal(isnt_good.label, SENTIMENT_NEGATIVE);
    /* and the other way round */
    assert_int_equal(score("Honestly, not bad at all").label, SENTIMENT_POSITIVE);
    assert_int_equal(score("It never gets boring").label, SENTIMENT_POSITIVE);
    /* punctuation ends the negation's scope */
    assert_int_equal(score("No, this is great").label, SENTIMENT_POSITIVE);
    /* a curly apostrophe negates like a straight one */
    assert_int_equal(score("This isn\xe2\x80\x99t helpful").label, SENTIMENT_NEGATIVE);
}

static void intensifiers_scale(void **state)
{
    (void)state;
    sentiment_result plain = score("useful");
    sentiment_result very = score("very useful");
    sentiment_result extremely = score("extremely useful");
    sentiment_result slightly = score("slightly useful");
    assert_true(very.valence > plain.valence);
    assert_true(extremely.valence > very.valence);
    assert_true(slightly.valence < plain.valence && slightly.valence > 0.0);
    /* negated and intensified */
    sentiment_result nvg = score("not very good");
    assert_true(nvg.valence < 0.0);
    assert_true(score("really bad").valence < score("bad").valence);
    /* two-word diminisher across an article */
    assert_true(score("kind of a bad idea").valence > score("a bad idea").valence);
}

static void emoji_count(void **state)
{
    (void)state;
    assert_int_equal(score("\xf0\x9f\x98\x8a\xf0\x9f\x91\x8d").label, SENTIMENT_POSITIVE);
    assert_int_equal(score("another one \xf0\x9f\x99\x84").label, SENTIMENT_NEGATIVE);
    assert_int_equal(score("\xf0\x9f\xa4\xa1").label, SENTIMENT_HOSTILE);
    /* a long run of one emoji is a bot cue, not five times the feeling */
    sentiment_result run = score("\xf0\x9f\x94\xa5\xf0\x9f\x94\xa5\xf0\x9f\x94\xa5\xf0\x9f\x94\xa5"
                                 "\xf0\x9f\x94\xa5\xf0\x9f\x94\xa5");
    assert_true(run.spam >= 1.0);
    assert_true(run.valence <= 3 * 1.5 + 1e-9);
}

static void spam_cues(void **state)
{
    (void)state;
    assert_int_equal(score("Great post! Visit www.example.shop").label, SENTIMENT_SPAM);
    assert_int_equal(score("link in bio for 30% off").label, SENTIMENT_SPAM);
    assert_int_equal(score("DM me to earn $300 a day").label, SENTIMENT_SPAM);
    /* a bare mention of a tld-like word is not a link */
    assert_int_equal(score("I read it in a journal, e.g. the BMJ.").label, SENTIMENT_NEUTRAL);
    /* spam has no polarity */
    assert_true(score("Amazing!!! check my page").score == 0.0);
}

static void questions_and_rhetoric(void **state)
{
    (void)state;
    assert_int_equal(score("Does this hold for older adults?").label, SENTIMENT_QUESTION);
    assert_int_equal(score("Great thread. So, how long did it take?").label, SENTIMENT_QUESTION);
    /* praise then a question: the question is the opening */
    assert_true(score("Love it! Where can I read the paper?").question);
    /* a declarative sentence with '?' is not a question */
    assert_false(score("You call this evidence?").question);
    /* hostility wins over a question */
    assert_int_equal(score("Why are you such an idiot?").label, SENTIMENT_HOSTILE);
}

static void labels_and_summary(void **state)
{
    (void)state;
    for (int l = SENTIMENT_POSITIVE; l <= SENTIMENT_SPAM; l++) {
        sentiment_label back;
        assert_true(sentiment_label_parse(sentiment_label_name((sentiment_label)l), &back));
        assert_int_equal(back, l);
    }
    assert_null(sentiment_label_name((sentiment_label)0));
    sentiment_label dummy;
    assert_false(sentiment_label_parse("angry", &dummy));

    sentiment_result r;
    assert_int_equal(sentiment_score("bad \xff utf8", 10, &r), ST_INVALID);
    assert_int_equal(sentiment_score("a\0b", 3, &r), ST_INVALID);

    sentiment_summary s = { 0 };
    double mean;
    assert_false(sentiment_summary_mean(&s, &mean));
    const char *texts[] = { "great", "terrible", "How?", "you moron" };
    double sum = 0.0;
    for (int i = 0; i < 4; i++) {
        r = score(texts[i]);
        sum += r.score;
        assert_true(r.score >= -1.0 && r.score <= 1.0);
        sentiment_summary_add(&s, &r);
    }
    assert_true(sentiment_summary_mean(&s, &mean));
    assert_true(fabs(mean - sum / 4.0) < 1e-12);
    assert_int_equal(s.reply_count, 4);
    assert_int_equal(s.counts[SENTIMENT_POSITIVE], 1);
    assert_int_equal(s.counts[SENTIMENT_NEGATIVE], 1);
    assert_int_equal(s.counts[SENTIMENT_QUESTION], 1);
    assert_int_equal(s.counts[SENTIMENT_HOSTILE], 1);
}

typedef struct row {
    char id[16];
    bool dev;
    sentiment_label label;
    char *text;
} row;

static size_t load_rows(const char *file, row *rows, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", HERALD_TEST_DATA_DIR, file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[4096];
    size_t n = 0;
    while (n < cap && fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *id = strtok(line, "\t");
        char *split = strtok(NULL, "\t");
        char *label = strtok(NULL, "\t");
        char *text = strtok(NULL, "");
        assert_non_null(text);
        snprintf(rows[n].id, sizeof(rows[n].id), "%s", id);
        rows[n].dev = strcmp(split, "dev") == 0;
        assert_true(rows[n].dev || strcmp(split, "held") == 0 || strcmp(split, "unseen") == 0);
        assert_true(sentiment_label_parse(label, &rows[n].label));
        rows[n].text = strdup(text);
        n++;
    }
    fclose(f);
    return n;
}

static void labelled_set_accuracy(void **state)
{
    (void)state;
    static row rows[MAX_ROWS];
    size_t n = load_rows("replies.tsv", rows, MAX_ROWS);
    assert_true(n >= 100);

    size_t ok[2] = { 0 }, total[2] = { 0 };
    size_t truth[SENTIMENT_LABEL_MAX + 1] = { 0 }, predicted[SENTIMENT_LABEL_MAX + 1] = { 0 };
    size_t correct[SENTIMENT_LABEL_MAX + 1] = { 0 };
    for (size_t i = 0; i < n; i++) {
        sentiment_result r;
        assert_int_equal(sentiment_score(rows[i].text, strlen(rows[i].text), &r), ST_OK);
        int half = rows[i].dev ? 0 : 1;
        total[half]++;
        truth[rows[i].label]++;
        predicted[r.label]++;
        if (r.label == rows[i].label) {
            ok[half]++;
            correct[r.label]++;
        } else if (rows[i].dev) {
            printf("  dev miss %s: want %s got %s (valence %.2f spam %.1f hostile %.1f): %s\n",
                   rows[i].id, sentiment_label_name(rows[i].label), sentiment_label_name(r.label),
                   r.valence, r.spam, r.hostile, rows[i].text);
        }
    }
    printf("sentiment: dev %zu/%zu = %.1f%%, held-out %zu/%zu = %.1f%%, all %zu/%zu = %.1f%%\n",
           ok[0], total[0], 100.0 * (double)ok[0] / (double)total[0], ok[1], total[1],
           100.0 * (double)ok[1] / (double)total[1], ok[0] + ok[1], n,
           100.0 * (double)(ok[0] + ok[1]) / (double)n);
    printf("  %-9s %6s %9s %7s\n", "label", "truth", "predicted", "correct");
    for (int l = SENTIMENT_POSITIVE; l <= SENTIMENT_SPAM; l++)
        printf("  %-9s %6zu %9zu %7zu\n", sentiment_label_name((sentiment_label)l), truth[l],
               predicted[l], correct[l]);
    for (size_t i = 0; i < n; i++)
        free(rows[i].text);
    /* issue 6: >= 80 % on the whole set */
    assert_true((double)(ok[0] + ok[1]) >= 0.8 * (double)n);
}

/* Accuracy on another file, reported and not asserted; with list_misses
 * false its misses are not printed (an unseen set must stay unseen). */
static void report_file(const char *file, const char *what, bool list_misses)
{
    static row rows[MAX_ROWS];
    size_t n = load_rows(file, rows, MAX_ROWS);
    assert_true(n >= 60);
    size_t ok = 0, truth[SENTIMENT_LABEL_MAX + 1] = { 0 }, correct[SENTIMENT_LABEL_MAX + 1] = { 0 };
    for (size_t i = 0; i < n; i++) {
        sentiment_result r;
        assert_int_equal(sentiment_score(rows[i].text, strlen(rows[i].text), &r), ST_OK);
        truth[rows[i].label]++;
        if (r.label == rows[i].label) {
            ok++;
            correct[r.label]++;
        } else if (list_misses) {
            printf("  %s miss %s: want %s got %s: %s\n", what, rows[i].id,
                   sentiment_label_name(rows[i].label), sentiment_label_name(r.label),
                   rows[i].text);
        }
        free(rows[i].text);
    }
    printf("sentiment: %s %zu/%zu = %.1f%%; by label:", what, ok, n,
           100.0 * (double)ok / (double)n);
    for (int l = SENTIMENT_POSITIVE; l <= SENTIMENT_SPAM; l++)
        printf(" %s %zu/%zu", sentiment_label_name((sentiment_label)l), correct[l], truth[l]);
    printf("\n");
}

static void other_sets_accuracy(void **state)
{
    (void)state;
    report_file("replies_round2.tsv", "round-2 dev", true);
    report_file("replies_unseen.tsv", "unseen", false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(negation_flips_polarity),
        cmocka_unit_test(intensifiers_scale),
        cmocka_unit_test(emoji_count),
        cmocka_unit_test(spam_cues),
        cmocka_unit_test(questions_and_rhetoric),
        cmocka_unit_test(labels_and_summary),
        cmocka_unit_test(labelled_set_accuracy),
        cmocka_unit_test(other_sets_accuracy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
