-- 0001_catalog: the content catalog (content types, voice styles, topics and
-- their facts) and the banned-phrase list the gates read.
--
-- This file is the single source of truth for the catalog's seed data. Keys
-- are lower snake case and are referenced by foreign keys from later
-- migrations (posts, arms, decisions), so they never change once merged.
--
-- Seed format (strict, parsed by server/domain/catalog_seed.c for unit tests
-- and offline tools): each INSERT header "INSERT INTO <table> (<columns>)
-- VALUES" sits on one line, then exactly one row per line, "(v1, v2, ...)"
-- followed by "," or, on the last row, ";". Values are single-quoted strings
-- ('' escapes a quote), integers, decimals, true/false or NULL.
--
-- Facts are written for this project from well-replicated published findings;
-- each names its source (authors and journal, or the study) and year. They are
-- population-level statements, never personal medical advice or dosing.

CREATE TABLE content_types (
    key          text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'
                                         AND char_length(key) <= 64),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 80),
    description  text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    enabled      boolean NOT NULL DEFAULT true,
    min_chars    integer NOT NULL DEFAULT 0 CHECK (min_chars >= 0),
    max_chars    integer NOT NULL DEFAULT 3000 CHECK (max_chars BETWEEN 1 AND 10000),
    prior_weight double precision NOT NULL DEFAULT 1.0 CHECK (prior_weight > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (min_chars <= max_chars)
);

CREATE TABLE voice_styles (
    key          text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'
                                         AND char_length(key) <= 64),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 80),
    description  text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    enabled      boolean NOT NULL DEFAULT true,
    min_chars    integer NOT NULL DEFAULT 0 CHECK (min_chars >= 0),
    max_chars    integer NOT NULL DEFAULT 3000 CHECK (max_chars BETWEEN 1 AND 10000),
    prior_weight double precision NOT NULL DEFAULT 1.0 CHECK (prior_weight > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (min_chars <= max_chars)
);

CREATE TABLE topics (
    key          text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'
                                         AND char_length(key) <= 64),
    display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 80),
    description  text NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    enabled      boolean NOT NULL DEFAULT true,
    min_chars    integer NOT NULL DEFAULT 0 CHECK (min_chars >= 0),
    max_chars    integer NOT NULL DEFAULT 3000 CHECK (max_chars BETWEEN 1 AND 10000),
    prior_weight double precision NOT NULL DEFAULT 1.0 CHECK (prior_weight > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (min_chars <= max_chars)
);

-- One specific, sourced finding per row. fact: the statement, with numbers and
-- units; myth: the popular belief it corrects or complicates; takeaway: why it
-- matters, as a population-level observation (never an instruction to a
-- reader); source: "Authors, Journal" with no comma inside the authors part
-- ("Smith et al., Sleep", "Hamer and Chida, Psychological Medicine"), optionally
-- followed by ", study name"; the generator splits it at the first comma.
CREATE TABLE topic_facts (
    key        text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'
                                       AND char_length(key) <= 64),
    topic_key  text NOT NULL REFERENCES topics (key) ON UPDATE CASCADE,
    fact       text NOT NULL CHECK (char_length(fact) BETWEEN 20 AND 240),
    myth       text NOT NULL CHECK (char_length(myth) BETWEEN 10 AND 200),
    takeaway   text NOT NULL CHECK (char_length(takeaway) BETWEEN 10 AND 240),
    source     text NOT NULL CHECK (char_length(source) BETWEEN 3 AND 120),
    year       integer NOT NULL CHECK (year BETWEEN 1900 AND 2100),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX topic_facts_topic_key_idx ON topic_facts (topic_key);

-- Phrases no post may contain. Matched case-insensitively on word boundaries;
-- spaces and hyphens inside a phrase match either ("game-changer").
CREATE TABLE banned_phrases (
    phrase     text PRIMARY KEY CHECK (phrase = lower(btrim(phrase))
                                       AND char_length(phrase) BETWEEN 2 AND 100),
    category   text NOT NULL CHECK (category ~ '^[a-z][a-z0-9]*(_[a-z0-9]+)*$'),
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO content_types (key, display_name, description, min_chars, max_chars, prior_weight) VALUES
    ('myth_busting', 'Myth busting', 'States a popular belief, then the measured evidence that corrects it.', 120, 1500, 1.0),
    ('counterintuitive_insight', 'Counterintuitive insight', 'A finding that runs against what most people would expect, with the numbers.', 120, 1500, 1.0),
    ('practical_tip', 'Practical tip', 'One concrete, low-risk takeaway grounded in a specific finding; never medical advice or dosing.', 100, 1200, 1.0),
    ('research_breakdown', 'Research breakdown', 'Summarises one study: the finding, why it matters and a caveat.', 140, 2000, 1.0),
    ('curious_observation', 'Curious observation', 'An odd or little-known detail from the evidence, framed as a question worth asking.', 100, 1200, 1.0),
    ('story_insight', 'Story insight', 'A short third-person narrative around a study, ending in its lesson.', 140, 2000, 1.0);

INSERT INTO voice_styles (key, display_name, description, min_chars, max_chars, prior_weight) VALUES
    ('research_enthusiast', 'Research enthusiast', 'Openly delighted by good studies and clever methods; names the paper.', 80, 3000, 1.0),
    ('truth_seeker', 'Truth seeker', 'Sceptical and direct; separates claims from measurements.', 80, 3000, 1.0),
    ('practical_optimizer', 'Practical optimizer', 'Terse and efficient; cares about effect size per unit of effort.', 80, 3000, 1.0),
    ('curious_investigator', 'Curious investigator', 'Asks questions and follows the evidence where it leads.', 80, 3000, 1.0),
    ('evidence_based_advocate', 'Evidence-based advocate', 'Measured and public-minded; weighs the body of evidence.', 80, 3000, 1.0),
    ('storyteller', 'Storyteller', 'Narrates: a setting, a question, a turn and a lesson.', 80, 3000, 1.0);

INSERT INTO topics (key, display_name, description, min_chars, max_chars, prior_weight) VALUES
    ('sleep', 'Sleep', 'Sleep duration, timing, light and alertness.', 0, 3000, 1.0),
    ('nutrition', 'Nutrition', 'Food quality, fibre, processing and dietary patterns.', 0, 3000, 1.0),
    ('exercise', 'Exercise', 'Steps, fitness, strength and everyday movement.', 0, 3000, 1.0),
    ('stress', 'Stress', 'Stress, its appraisal, recovery and the body.', 0, 3000, 1.0),
    ('longevity', 'Longevity', 'Lifespan, healthy habits and what predicts a long life.', 0, 3000, 1.0),
    ('hydration', 'Hydration', 'Water needs, beverages and hydration markers.', 0, 3000, 1.0),
    ('social_connection', 'Social connection', 'Relationships, loneliness and health.', 0, 3000, 1.0),
    ('brain_health', 'Brain health', 'Cognition, brain structure and dementia risk.', 0, 3000, 1.0),
    ('heart_health', 'Heart health', 'Blood pressure, heart rate and cardiovascular risk.', 0, 3000, 1.0),
    ('gut_health', 'Gut health', 'The gut microbiome and what shapes it.', 0, 3000, 1.0),
    ('habits', 'Habits', 'How behaviours form, stick and change.', 0, 3000, 1.0);

INSERT INTO topic_facts (key, topic_key, fact, myth, takeaway, source, year) VALUES
    ('sleep_short_mortality', 'sleep', 'Short sleepers had a 12% higher risk of dying during follow-up than people sleeping 7 to 8 hours a night, across 16 studies of about 1.38 million people.', 'Cutting sleep is a harmless way to win back time.', 'Sleep duration behaves like a health variable, not spare time waiting to be reclaimed.', 'Cappuccio et al., Sleep', 2010),
    ('sleep_restriction_deficit', 'sleep', 'After 14 days of 6 hours in bed per night, volunteers'' attention lapses matched those seen after up to 2 nights of total sleep deprivation.', 'The body adapts to 6 hours of sleep after a few nights.', 'Feeling used to short sleep is not the same as performing normally on it: the volunteers rated themselves only slightly sleepy.', 'Van Dongen et al., Sleep', 2003),
    ('sleep_colds', 'sleep', 'Adults sleeping under 6 hours a night were 4.2 times more likely to catch a cold after virus exposure than those sleeping over 7 hours, among 164 volunteers.', 'Sleep has little to do with how often people catch colds.', 'Sleep measured in the week before exposure predicted infection better than age, stress or smoking did.', 'Prather et al., Sleep', 2015),
    ('sleep_ereader_light', 'sleep', 'E-reader use before bed delayed sleep onset by about 10 minutes and cut evening melatonin by roughly 55% versus a printed book, in a 2-week inpatient study.', 'Screen light before bed is too dim to matter.', 'Evening light shifts the body clock, and the effect showed up after only 5 evenings.', 'Chang et al., PNAS', 2015),
    ('sleep_caffeine_6h', 'sleep', '400 mg of caffeine consumed 6 hours before bedtime still reduced objectively measured sleep by more than 1 hour.', 'Afternoon coffee wears off long before bedtime.', 'Caffeine lingers for hours, so a mid-afternoon cup can still be active at night.', 'Drake et al., Journal of Clinical Sleep Medicine', 2013),
    ('sleep_school_start', 'sleep', 'When Seattle high schools started 55 minutes later, students'' median daily sleep rose by 34 minutes, measured with wrist activity monitors.', 'Teenagers would simply stay up later if school started later.', 'Median grades rose 4.5% in the same study, and attendance improved at one of the schools.', 'Dunster et al., Science Advances', 2018),
    ('sleep_wake_alcohol', 'sleep', 'After 17 to 19 hours without sleep, performance on some tests was equivalent to or worse than at a blood alcohol concentration of 0.05%.', 'Staying awake a bit longer only costs some alertness.', 'Long waking days impair reaction time in ways that resemble alcohol, which matters for anyone behind a wheel.', 'Williamson and Feyer, Occupational and Environmental Medicine', 2000),
    ('nutrition_fibre_mortality', 'nutrition', 'People eating 25 to 29 g of fibre a day had 15 to 30% lower all-cause and cardiovascular mortality than those eating the least, across 185 cohort studies and 58 trials.', 'Fibre matters only for digestion.', 'The benefit kept rising beyond 29 g a day, while most adults eat under 20 g.', 'Reynolds et al., The Lancet', 2019),
    ('nutrition_fruit_veg_800g', 'nutrition', 'Eating about 800 g of fruit and vegetables a day was associated with a 31% lower risk of premature death than eating none, across 95 studies.', 'Five portions is a ceiling; eating more adds nothing.', 'Much of the benefit had arrived by 5 portions, yet risk kept falling up to about 10 portions of 80 g.', 'Aune et al., International Journal of Epidemiology', 2017),
    ('nutrition_predimed', 'nutrition', 'A Mediterranean diet with extra-virgin olive oil or nuts cut major cardiovascular events by about 30% over 4.8 years, among 7,447 adults at high risk.', 'Fat-rich diets are always bad for the heart.', 'The diets in the trial were not calorie-restricted: the change was in food quality, not quantity.', 'Estruch et al., New England Journal of Medicine, PREDIMED trial', 2018),
    ('nutrition_ultraprocessed', 'nutrition', 'On an ultra-processed diet, adults ate about 500 kcal more per day and gained 0.9 kg in 2 weeks compared with an unprocessed diet, in a 20-person ward study.', 'Calories are calories, no matter how processed the food is.', 'The meals offered were matched for calories, sugar, fat, fibre and salt; only the processing differed.', 'Hall et al., Cell Metabolism', 2019),
    ('nutrition_ssb_diabetes', 'nutrition', 'People drinking 1 to 2 sugar-sweetened drinks a day had a 26% higher risk of type 2 diabetes than those drinking under 1 a month, across 310,819 participants.', 'Sugary drinks only matter for weight, not for diabetes.', 'Liquid sugar is easy to drink in large amounts without the fullness that food brings.', 'Malik et al., Diabetes Care', 2010),
    ('nutrition_breakfast_weight', 'nutrition', 'Across 13 randomised trials, people assigned to eat breakfast took in about 260 kcal more per day and weighed 0.44 kg more than those assigned to skip it.', 'Breakfast is essential for weight control.', 'Breakfast can still be a good habit; the trials simply found no weight advantage from adding it.', 'Sievert et al., BMJ', 2019),
    ('nutrition_nuts', 'nutrition', 'About 28 g of nuts a day was linked to a 22% lower risk of death from any cause, in a meta-analysis of 20 prospective studies.', 'Nuts are too fattening to be part of a healthy diet.', 'That amount is roughly a small handful, and the same studies found lower rates of heart disease.', 'Aune et al., BMC Medicine', 2016),
    ('exercise_steps_plateau', 'exercise', 'The drop in death risk levelled off at about 6,000 to 8,000 steps a day for adults over 60 and 8,000 to 10,000 for younger adults, in 15 cohorts of 47,471 people.', '10,000 steps a day is a scientifically derived target.', 'The 10,000 figure traces back to a 1960s Japanese pedometer marketing campaign, not to a study.', 'Paluch et al., The Lancet Public Health', 2022),
    ('exercise_sitting_offset', 'exercise', 'About 60 to 75 minutes of moderate activity a day appeared to eliminate the higher death risk linked to sitting over 8 hours a day, in data on more than 1 million adults.', 'Regular exercise cannot make up for a desk job.', 'Long sitting and low activity together carried the highest risk; activity changed the picture more than sitting time did.', 'Ekelund et al., The Lancet', 2016),
    ('exercise_strength_training', 'exercise', '30 to 60 minutes a week of strength training was linked to 10 to 20% lower death rates from all causes, heart disease and cancer, across 16 studies.', 'Strength training is only for athletes and bodybuilders.', 'The curve was J-shaped: beyond about 1 hour a week, the data showed no further gain.', 'Momma et al., British Journal of Sports Medicine', 2022),
    ('exercise_fitness_mortality', 'exercise', 'Among 122,007 patients who took a treadmill test, the least fit had about 5 times the risk of death during follow-up of the fittest.', 'Fitness matters less for longevity than smoking or diabetes.', 'In the same data, low fitness carried a risk comparable to or greater than smoking, diabetes and coronary artery disease.', 'Mandsager et al., JAMA Network Open', 2018),
    ('exercise_walking_pace', 'exercise', 'Compared with a slow walking pace, an average pace was linked to a 20% lower risk of death and a brisk pace to a 24% lower risk, among 50,225 walkers.', 'Only distance counts when walking for health.', 'Pace is a free variable: the same walk at a brisker speed came with a different risk profile.', 'Stamatakis et al., British Journal of Sports Medicine', 2018),
    ('exercise_vilpa', 'exercise', 'Three bursts of vigorous everyday activity lasting 1 to 2 minutes each per day were linked to a 38 to 40% lower risk of death, among 25,241 adults who did no exercise.', 'Exercise only counts if it happens in a long, formal session.', 'Stair climbing and fast walking to a bus counted, measured by wrist-worn accelerometers.', 'Stamatakis et al., Nature Medicine', 2022),
    ('exercise_depression', 'exercise', 'Physical activity reduced symptoms of depression with a median effect size of 0.43 across 1,039 trials and 128,119 participants.', 'Exercise helps the body but does little for mood.', 'Higher-intensity activity was linked to larger improvements than lower-intensity activity in the same review.', 'Singh et al., British Journal of Sports Medicine', 2023),
    ('stress_telomeres', 'stress', 'Women with the highest perceived stress had telomeres shorter by the equivalent of about 10 years of ageing than the least stressed women, in a study of 58 mothers.', 'Stress is only in the mind and leaves no physical trace.', 'Perceived stress tracked the cellular marker more closely than the objective situation did.', 'Epel et al., PNAS', 2004),
    ('stress_colds_dose', 'stress', 'Among 394 volunteers exposed to respiratory viruses, rates of clinical colds rose steadily with stress scores, from about 27% to 47%.', 'Stress and catching a cold are unrelated.', 'The relationship was graded: each step up in stress came with more infections, not only at the extreme.', 'Cohen et al., New England Journal of Medicine', 1991),
    ('stress_belief', 'stress', 'High stress raised the risk of premature death by 43% over 8 years only in adults who also believed stress harmed their health, among 28,753 people.', 'All stress is equally harmful.', 'How stress is appraised appears to matter, not only how much of it there is.', 'Keller et al., Health Psychology', 2012),
    ('stress_nature_cortisol', 'stress', 'A nature outing of 20 to 30 minutes produced the largest drop in salivary cortisol, about 21% per hour beyond the normal daily decline, among 36 city dwellers.', 'Only long holidays in the countryside make a measurable difference to stress.', 'Benefits continued beyond 30 minutes but at a slower rate, so short, regular visits were the efficient pattern.', 'Hunter et al., Frontiers in Psychology', 2019),
    ('stress_meditation', 'stress', 'Mindfulness meditation programmes of about 8 weeks improved anxiety with an effect size of 0.38 and depression with 0.30, across 47 trials and 3,515 participants.', 'Meditation is either a cure-all or a placebo.', 'Moderate, measurable effects: smaller than the hype, larger than nothing.', 'Goyal et al., JAMA Internal Medicine', 2014),
    ('stress_long_hours', 'stress', 'People working 55 hours or more a week had a 33% higher risk of stroke than those working 35 to 40 hours, in data on more than 500,000 people.', 'Long hours only cost free time.', 'The association held after accounting for standard risk factors, across studies from several countries.', 'Kivimäki et al., The Lancet', 2015),
    ('stress_cyclic_sighing', 'stress', 'Five minutes a day of cyclic sighing, slow breathing with long exhales, improved positive mood more than mindfulness meditation over 1 month, in a trial of about 110 adults.', 'Breathing exercises are too simple to have a measurable effect.', 'The gain in positive mood grew with the number of days practised.', 'Balban et al., Cell Reports Medicine', 2023),
    ('longevity_five_habits', 'longevity', 'Women keeping 5 low-risk habits at age 50 had a projected 14 extra years of life expectancy over women keeping none, and men 12.2 extra years.', 'Lifestyle changes add only a few months of life.', 'The 5 habits were not smoking, a healthy weight, 30 minutes or more of daily activity, moderate alcohol and a good-quality diet.', 'Li et al., Circulation', 2018),
    ('longevity_heritability', 'longevity', 'Genes explained only about 25% of the variation in lifespan among 2,872 Danish twin pairs born between 1870 and 1900.', 'Lifespan is mostly decided by genes.', 'Later analyses of large family trees put the heritable share even lower, under 10%.', 'Herskind et al., Human Genetics', 1996),
    ('longevity_quit_smoking', 'longevity', 'Stopping smoking at age 60 gained about 3 years of life expectancy, at 50 about 6, at 40 about 9 and at 30 about 10, in the 50-year British Doctors Study.', 'After decades of smoking, quitting makes no difference.', 'Every age of stopping in the study came with a measurable gain, including 60.', 'Doll et al., BMJ', 2004),
    ('longevity_optimism', 'longevity', 'The most optimistic men and women had an 11 to 15% longer lifespan and 50 to 70% higher odds of reaching age 85 than the least optimistic, in cohorts of about 71,000 people.', 'Outlook has nothing to do with how long people live.', 'The link held after adjusting for demographics, health conditions and depression.', 'Lee et al., PNAS', 2019),
    ('longevity_grip_strength', 'longevity', 'Each 5 kg drop in grip strength was associated with a 16% higher risk of death from any cause, among 139,691 adults in 17 countries.', 'Muscle strength is about looks, not lifespan.', 'Grip strength predicted cardiovascular death better than systolic blood pressure did in the same study.', 'Leong et al., The Lancet, PURE study', 2015),
    ('longevity_tv_hours', 'longevity', 'Each hour of television watched after age 25 was estimated to reduce life expectancy by about 22 minutes, in an Australian life-table analysis.', 'Sitting in front of a screen is harmless rest.', 'The estimate comes from modelling, so it shows the scale of the link, not a proven cause.', 'Veerman et al., British Journal of Sports Medicine', 2012),
    ('hydration_8x8', 'hydration', 'A 2002 review found no scientific evidence behind drinking 8 glasses of 8 ounces of water a day for healthy adults in a temperate climate.', 'Everyone needs exactly 8 glasses of water a day.', 'Food and other drinks also supply water, and thirst is a reliable guide for most healthy adults.', 'Valtin, American Journal of Physiology', 2002),
    ('hydration_beverage_index', 'hydration', 'In 72 men who drank 1 litre of 13 different beverages, coffee, tea and cola produced about the same urine output over 4 hours as still water.', 'Coffee and tea dehydrate more than they hydrate.', 'Milk and oral rehydration solution were retained better than water in the same test.', 'Maughan et al., American Journal of Clinical Nutrition', 2016),
    ('hydration_cognition', 'hydration', 'Losing about 2% of body weight as fluid impaired attention, memory and mood in several controlled experiments.', 'Mild dehydration has no effect on thinking.', 'Effect sizes were modest and varied between studies, so 2% is a marker of risk, not a hard line.', 'Adan, Journal of the American College of Nutrition', 2012),
    ('hydration_reference_intake', 'hydration', 'Adequate total water intake is set at about 3.7 litres a day for men and 2.7 litres for women, about 20% of it usually from food, in US reference values.', 'All daily water has to come from drinking.', 'The figures describe typical intakes of healthy people, not a quota to force down.', 'Institute of Medicine, Dietary Reference Intakes for Water', 2004),
    ('hydration_serum_sodium', 'hydration', 'Adults whose midlife serum sodium exceeded 142 mmol/l had a 39% higher risk of developing chronic disease over about 25 years, among 11,255 people.', 'Hydration only matters on hot days or during sport.', 'Serum sodium rises when fluid intake is low, which is why researchers read it as a hydration marker.', 'Dmitrieva et al., eBioMedicine', 2023),
    ('hydration_water_preload', 'hydration', 'Dieters who drank 500 ml of water before each main meal lost about 2 kg more over 12 weeks than those on the diet alone, among 48 adults aged 55 to 75.', 'Water has nothing to do with appetite.', 'The trial was small, so the result is promising rather than settled.', 'Dennis et al., Obesity', 2010),
    ('social_survival_odds', 'social_connection', 'People with stronger social relationships had a 50% greater likelihood of survival over an average of 7.5 years, across 148 studies and 308,849 participants.', 'Friendships are pleasant but not a health factor.', 'The size of the effect was comparable to well-known risk factors such as smoking.', 'Holt-Lunstad et al., PLOS Medicine', 2010),
    ('social_isolation_loneliness', 'social_connection', 'Social isolation was linked to a 29% higher risk of death, loneliness to 26% and living alone to 32%, across 70 studies of about 3.4 million people.', 'Loneliness is only a feeling, with no effect on health.', 'Both objective isolation and the subjective feeling of loneliness carried risk.', 'Holt-Lunstad et al., Perspectives on Psychological Science', 2015),
    ('social_heart_stroke', 'social_connection', 'Poor social relationships were associated with a 29% higher risk of coronary heart disease and a 32% higher risk of stroke, across 23 studies.', 'Heart disease risk is all about diet and genes.', 'The increase was similar in size to other recognised psychosocial risk factors such as job strain.', 'Valtorta et al., Heart', 2016),
    ('social_network_colds', 'social_connection', 'People with 1 to 3 types of relationship were about 4 times likelier to catch a cold after virus exposure than those with 6 or more, among 276 volunteers.', 'More social contact means catching more colds.', 'Diversity of relationships, such as family, work, neighbours and clubs, mattered more than the total number of people.', 'Cohen et al., JAMA', 1997),
    ('social_friendship_hours', 'social_connection', 'Moving from acquaintance to casual friend took about 50 hours together, to friend about 90 hours, and to close friend more than 200 hours.', 'Close friendships just happen without any investment of time.', 'Time in shared activity and conversation, not mere proximity, was what moved people along the scale.', 'Hall, Journal of Social and Personal Relationships', 2019),
    ('social_media_limit', 'social_connection', 'Limiting social media to 10 minutes per platform a day for 3 weeks lowered loneliness and depression versus a control group, in a trial of 143 students.', 'Scrolling social media keeps people feeling connected.', 'Both groups also reported less anxiety and fear of missing out, probably from simply monitoring their use.', 'Hunt et al., Journal of Social and Clinical Psychology', 2018),
    ('brain_walking_hippocampus', 'brain_health', 'A year of walking 3 days a week grew hippocampal volume by about 2% in older adults, while a stretching group lost about 1.4%, among 120 people.', 'The adult brain only shrinks with age; it cannot grow.', 'The 2% gain roughly offset 1 to 2 years of typical age-related loss.', 'Erickson et al., PNAS', 2011),
    ('brain_dementia_risk_factors', 'brain_health', '12 modifiable risk factors, including hearing loss, smoking, physical inactivity and air pollution, account for around 40% of dementia cases worldwide.', 'Dementia is purely a matter of genes and bad luck.', 'The estimate is a population figure: it shows how much prevention could do, not any one person''s risk.', 'Livingston et al., The Lancet Commission on dementia', 2020),
    ('brain_hearing_intervention', 'brain_health', 'A hearing intervention slowed cognitive decline by 48% over 3 years in older adults at higher risk, though not in the full trial group of 977.', 'Hearing loss is just an inconvenience, separate from brain health.', 'The mixed result is a reason for more trials, and an example of reporting subgroups honestly.', 'Lin et al., The Lancet, ACHIEVE trial', 2023),
    ('brain_sleep_amyloid', 'brain_health', 'One night without sleep raised beta-amyloid burden by about 5% in the hippocampus and thalamus of 20 healthy adults, measured by PET scan.', 'A single missed night of sleep leaves no trace in the brain.', 'Beta-amyloid is the protein that clumps in Alzheimer''s disease, which is why sleep researchers track it.', 'Shokri-Kojori et al., PNAS', 2018),
    ('brain_taxi_drivers', 'brain_health', 'London taxi drivers had larger posterior hippocampi than controls, and the volume grew with years spent driving a taxi, in a study of 16 drivers.', 'Adult brain structure is fixed and does not respond to experience.', 'Later work followed trainee drivers over time and found similar growth in those who qualified.', 'Maguire et al., PNAS', 2000),
    ('brain_activity_dementia', 'brain_health', 'The most physically active adults had a 28% lower risk of dementia and a 45% lower risk of Alzheimer''s disease, across 16 studies of 163,797 people.', 'Exercise benefits the body but not the ageing brain.', 'These are cohort studies, so they show association; trials are still testing how much is cause.', 'Hamer and Chida, Psychological Medicine', 2009),
    ('heart_sprint_target', 'heart_health', 'A systolic target below 120 mmHg instead of 140 mmHg cut major cardiovascular events by 25% and deaths by 27%, in 9,361 adults at high cardiovascular risk.', 'Blood pressure only matters once it is very high.', 'The intensive target also brought more side effects, which is why targets are set individually with a clinician.', 'SPRINT Research Group, New England Journal of Medicine', 2015),
    ('heart_dash_sodium', 'heart_health', 'In people with hypertension, the DASH diet with low sodium lowered systolic blood pressure by 11.5 mmHg versus a typical high-sodium diet.', 'Salt reduction barely moves blood pressure.', 'The effects of lower sodium and the DASH pattern added up: the combination beat either one alone.', 'Sacks et al., New England Journal of Medicine', 2001),
    ('heart_resting_rate', 'heart_health', 'Men with a resting heart rate of 81 to 90 beats per minute had about double the risk of death of those at 50 or below, over 16 years among 2,798 men.', 'Resting heart rate says little about long-term health.', 'The link held after accounting for fitness, which suggests heart rate is not just a fitness proxy.', 'Jensen et al., Heart', 2013),
    ('heart_sauna', 'heart_health', 'Finnish men who used a sauna 4 to 7 times a week had 40% lower all-cause mortality than those going once a week, over about 20 years among 2,315 men.', 'Saunas are pure relaxation with no measurable link to health.', 'It is an observational finding from a region where sauna use is routine, so it needs replication elsewhere.', 'Laukkanen et al., JAMA Internal Medicine', 2015),
    ('heart_flu_vaccine', 'heart_health', 'Influenza vaccination was linked to a 36% lower risk of major cardiovascular events, in a meta-analysis of randomised trials with 6,735 patients.', 'Flu vaccines have nothing to do with heart health.', 'The effect was strongest in people with a recent heart attack or other acute coronary event.', 'Udell et al., JAMA', 2013),
    ('heart_interheart', 'heart_health', '9 measurable risk factors, including smoking, blood lipids, hypertension, diabetes and abdominal obesity, accounted for over 90% of the risk of a first heart attack, across 52 countries.', 'Heart attacks are mostly unpredictable.', 'The same factors mattered in men and women, at all ages and in every region studied.', 'Yusuf et al., The Lancet, INTERHEART study', 2004),
    ('gut_fermented_foods', 'gut_health', 'A 10-week diet rich in fermented foods increased gut microbiome diversity and lowered 19 inflammatory proteins, including interleukin 6, in a trial of 36 healthy adults.', 'Fibre is the only dietary lever for the gut microbiome.', 'In the same trial, the high-fibre arm did not raise diversity within the 10 weeks.', 'Wastyk et al., Cell', 2021),
    ('gut_plant_variety', 'gut_health', 'People eating more than 30 different plant types a week had more diverse gut microbiomes than those eating 10 or fewer, in American Gut Project data.', 'A varied diet makes no measurable difference to gut bacteria.', 'The survey counted distinct plant types, not servings, so variety rather than volume set the score.', 'McDonald et al., mSystems', 2018),
    ('gut_cell_ratio', 'gut_health', 'A reference 70 kg man carries about 38 trillion bacteria and 30 trillion human cells, close to 1:1 rather than the often-quoted 10:1.', 'Bacteria outnumber human cells 10 to 1.', 'The updated count changes the slogan, not the importance: 38 trillion bacteria is still a lot of biology.', 'Sender et al., PLOS Biology', 2016),
    ('gut_diet_speed', 'gut_health', 'Switching to an animal-based or plant-based diet changed gut microbial communities within 1 to 2 days of the food reaching the gut.', 'The gut microbiome takes months to respond to diet.', 'The communities also drifted back toward baseline within about 2 days after the diet ended.', 'David et al., Nature', 2014),
    ('gut_fibre_generations', 'gut_health', 'Mice fed a low-fibre diet lost microbial diversity over 4 generations, and many lost bacterial groups did not return when fibre was restored.', 'Gut bacteria always bounce back once diet improves.', 'This was a mouse study, so it shows a mechanism to test in people, not a human result.', 'Sonnenburg et al., Nature', 2016),
    ('gut_probiotic_recovery', 'gut_health', 'After antibiotics, people given a probiotic still lacked their native gut microbiome at 5 months, while unaided recovery mostly took about 3 weeks.', 'Probiotics always help the gut recover after antibiotics.', 'A transplant of each person''s own pre-antibiotic microbiome restored it within days in the same study.', 'Suez et al., Cell', 2018),
    ('habits_66_days', 'habits', 'Forming a new daily habit took a median of 66 days to become automatic, with a range of 18 to 254 days, among 96 volunteers.', 'A new habit takes 21 days to form.', 'Missing a single day did not measurably derail the process.', 'Lally et al., European Journal of Social Psychology', 2010),
    ('habits_if_then_plans', 'habits', 'If-then plans that name when and where to act had a medium-to-large effect on goal attainment, d = 0.65, across 94 studies with over 8,000 participants.', 'Strong motivation is all it takes to follow through.', 'The plan hands the decision to a cue, so willpower is needed less often.', 'Gollwitzer and Sheeran, Advances in Experimental Social Psychology', 2006),
    ('habits_exercise_plans', 'habits', '91% of people who wrote down when and where they would exercise did so weekly, against 35 to 38% in the comparison groups, among 248 adults.', 'Information about health risks is enough to change behaviour.', 'The motivational leaflet alone barely outperformed doing nothing; the written plan made the difference.', 'Milne et al., British Journal of Health Psychology', 2002),
    ('habits_context_share', 'habits', 'About 43% of everyday behaviours were repeated almost daily in the same context, often while people were thinking about something else, in diary studies.', 'Most daily behaviour is the result of conscious decisions.', 'Changing the context, such as the cues in a room, can be easier than out-deciding a routine.', 'Wood et al., Journal of Personality and Social Psychology', 2002),
    ('habits_temptation_bundling', 'habits', 'Keeping tempting audiobooks available only at the gym raised gym visits by 51% at the start of a 9-week study with 226 participants.', 'Pleasure and discipline have to be kept apart.', 'The effect faded after a holiday break, a reminder that clever tricks still need maintenance.', 'Milkman et al., Management Science', 2014),
    ('habits_progress_monitoring', 'habits', 'Monitoring progress improved goal attainment by an effect size of 0.40, more so when progress was recorded or shared, across 138 studies.', 'Tracking progress is busywork that changes nothing.', 'Recording progress physically or reporting it publicly produced larger effects than private mental notes.', 'Harkin et al., Psychological Bulletin', 2016);

INSERT INTO banned_phrases (phrase, category) VALUES
    ('synergy', 'corporate'),
    ('synergies', 'corporate'),
    ('synergize', 'corporate'),
    ('leverage', 'corporate'),
    ('leveraging', 'corporate'),
    ('circle back', 'corporate'),
    ('touch base', 'corporate'),
    ('move the needle', 'corporate'),
    ('paradigm shift', 'corporate'),
    ('best-in-class', 'corporate'),
    ('world-class', 'corporate'),
    ('low-hanging fruit', 'corporate'),
    ('thought leader', 'corporate'),
    ('thought leadership', 'corporate'),
    ('value-add', 'corporate'),
    ('win-win', 'corporate'),
    ('core competency', 'corporate'),
    ('deep dive', 'corporate'),
    ('actionable insights', 'corporate'),
    ('next-level', 'corporate'),
    ('game-changer', 'corporate'),
    ('game-changing', 'corporate'),
    ('disruptive', 'corporate'),
    ('empower', 'corporate'),
    ('empowering', 'corporate'),
    ('stakeholders', 'corporate'),
    ('going forward', 'corporate'),
    ('as an ai', 'ai_boilerplate'),
    ('as a language model', 'ai_boilerplate'),
    ('as an ai language model', 'ai_boilerplate'),
    ('delve', 'ai_boilerplate'),
    ('delve into', 'ai_boilerplate'),
    ('delves', 'ai_boilerplate'),
    ('tapestry', 'ai_boilerplate'),
    ('in today''s fast-paced world', 'ai_boilerplate'),
    ('in today''s world', 'ai_boilerplate'),
    ('ever-evolving', 'ai_boilerplate'),
    ('it''s important to note', 'ai_boilerplate'),
    ('it is important to note', 'ai_boilerplate'),
    ('it''s worth noting', 'ai_boilerplate'),
    ('it is worth noting', 'ai_boilerplate'),
    ('navigate the complexities', 'ai_boilerplate'),
    ('embark on a journey', 'ai_boilerplate'),
    ('a testament to', 'ai_boilerplate'),
    ('in conclusion', 'ai_boilerplate'),
    ('unlock the power', 'ai_boilerplate'),
    ('unlock your potential', 'ai_boilerplate'),
    ('harness the power', 'ai_boilerplate'),
    ('unleash', 'ai_boilerplate'),
    ('dive into', 'ai_boilerplate'),
    ('let''s dive in', 'ai_boilerplate'),
    ('buckle up', 'ai_boilerplate'),
    ('in the realm of', 'ai_boilerplate'),
    ('plays a crucial role', 'ai_boilerplate'),
    ('multifaceted', 'ai_boilerplate'),
    ('seamlessly', 'ai_boilerplate'),
    ('revolutionize', 'ai_boilerplate'),
    ('elevate your', 'ai_boilerplate'),
    ('i hope this helps', 'ai_boilerplate'),
    ('great question', 'ai_boilerplate'),
    ('you won''t believe', 'hype'),
    ('mind-blowing', 'hype'),
    ('life-changing', 'hype'),
    ('life hack', 'hype'),
    ('biohack', 'hype'),
    ('miracle', 'hype'),
    ('doctors hate', 'hype'),
    ('shocking', 'hype'),
    ('like and share', 'engagement_bait'),
    ('follow for more', 'engagement_bait'),
    ('smash that like', 'engagement_bait'),
    ('tag a friend', 'engagement_bait'),
    ('link in bio', 'engagement_bait'),
    ('retweet if', 'engagement_bait'),
    ('comment below', 'engagement_bait');
