/* patterns.h — the pattern detector: an operator's rule file of regular
 * expressions (PCRE2), matched against normalised text (normalize.h).
 *
 * Rule file (examples/guard-rules.txt is the shipped one; docs/guard.md):
 * one rule a line, `#` starts a comment line, blank lines are skipped:
 *
 *     NAME  LABEL  WEIGHT  CHANNELS  REGEX…
 *
 * NAME [a-z0-9_]{1,64}; LABEL [a-z0-9_]{1,48}; WEIGHT a number in (0, 1];
 * CHANNELS `any`, `user` or `tool`; REGEX the rest of the line, PCRE2
 * syntax, matched case-insensitively on the normalised text (lower-case,
 * look-alikes folded, spaces collapsed). A rule's longest match must fit in
 * GUARD_PATTERN_MATCH_MAX bytes — keep gaps bounded (`.{0,40}`, never
 * `.*`), so a match split by a window boundary is whole in the next window.
 * A rule file holds at most GUARD_RULES_MAX rules of GUARD_RULE_LINE_MAX
 * bytes each; a rule that does not compile is an error naming its line.
 *
 * A scan matches every rule on two readings of each window — the folded
 * text, and the same with leetspeak and spaced-out letters read back — and
 * on base64 runs (24+ characters) decoded, when they decode to text, up to
 * GUARD_DECODE_DEPTH levels deep. The score is 1 − Π(1 − weight) over the
 * rules that matched; each rule adds its label and its first span (a
 * decoded payload's span is the whole base64 run, labelled
 * `encoded_payload` as well). Matching is bounded by PCRE2's match limit:
 * a rule that hits the limit counts as not matched for that window. */
#ifndef BRIGADE_GUARD_PATTERNS_H
#define BRIGADE_GUARD_PATTERNS_H

#include <stddef.h>

#include "guard/detect.h"

#define GUARD_RULES_MAX         512
#define GUARD_RULE_LINE_MAX     2048
#define GUARD_RULES_FILE_MAX    (1024 * 1024)
#define GUARD_PATTERN_MATCH_MAX 512     /* < GUARD_OVERLAP */
#define GUARD_DECODE_DEPTH      2
#define GUARD_BASE64_MIN        24

typedef struct guard_rules guard_rules;

/* Parse a rule file's text; NULL with `err` naming the line on error. */
guard_rules *guard_rules_parse(const char *text, size_t len, const char *name, char *err,
                               size_t errlen);
guard_rules *guard_rules_load(const char *path, char *err, size_t errlen);
size_t       guard_rules_count(const guard_rules *r);
void         guard_rules_free(guard_rules *r);

/* A detector that owns `rules`. */
guard_detector *guard_patterns_new(guard_rules *rules);

#endif
