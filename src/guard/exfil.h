/* exfil.h — does data of the user's leave towards an outside host?
 *
 * The run's sensitive values are gathered from what the model is sent
 * (each model call's messages): memory values (the `value`s of the memory
 * tool's results and of the memory saves the model asked for), and the
 * tokens of the user's own messages that look like secrets or personal
 * data (12+ characters of letters and digits mixed, as keys and tokens
 * are; runs of 9+ digits, as card, phone and id numbers are). E-mail
 * addresses are not: they are more often where the user wants something
 * sent. Each is kept if 8..512 bytes; at most EXFIL_VALUES_MAX.
 *
 * A tool call's arguments carry a value when one of their strings
 * (percent-decoded) contains it, or its base64 form. Model output carries
 * it in a markdown image or link whose URL holds it (query or path). Any
 * markdown image whose URL has a query string is suspicious when the run
 * is tainted (guard.h). Pure functions, bounded: the values are few and
 * short, the texts are bounded by the run's limits. */
#ifndef BRIGADE_GUARD_EXFIL_H
#define BRIGADE_GUARD_EXFIL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXFIL_VALUES_MAX 256
#define EXFIL_VALUE_MIN  8
#define EXFIL_VALUE_MAX  512

/* The values, grown on demand (most runs have none: an inline array of
 * EXFIL_VALUES_MAX pointers was 2 kB of every run held). {0} is empty. */
typedef struct guard_secrets {
    char    **values;
    uint16_t *lens;     /* each value's length: compared before its bytes */
    size_t    n, cap;
} guard_secrets;

/* Free the values (and their array); s is empty again. */
void guard_secrets_clear(guard_secrets *s);
/* Add what a chat-completions `messages` array holds (idempotent). */
void guard_secrets_collect(guard_secrets *s, const cJSON *messages);
/* The same for the messages from `first` (an item of the array) up to, not
 * including, `end` (NULL: to the array's end); a tool result is matched
 * with the calls of those messages. */
void guard_secrets_collect_range(guard_secrets *s, const cJSON *first, const cJSON *end);
void guard_secrets_add(guard_secrets *s, const char *v, size_t len);

/* Does the text (or any string of the JSON text `args`) carry a value?
 * `what` gets a description (never the value itself). */
bool guard_exfil_in_args(const guard_secrets *s, const char *args, char *what, size_t whatlen);

/* Markdown images / links in `text` that carry a value, or (when
 * `any_query_image`) any image whose URL has a query string. */
bool guard_exfil_in_markdown(const guard_secrets *s, const char *text, bool any_query_image,
                             char *what, size_t whatlen);

#endif
