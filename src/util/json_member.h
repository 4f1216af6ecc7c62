/* json_member.h — where one top-level member's value lies in the text of a
 * JSON object, so a body brigade forwards can be edited in place (a value
 * swapped for another) instead of re-encoded through cJSON.
 *
 * Why not re-encode: cJSON holds every number as a double, so an integer a
 * client sent above 2^53 (a `seed`, an id in `metadata`) would reach the
 * provider rounded, and every float would be printed back in cJSON's own
 * spelling. Editing the bytes keeps everything the gateway does not govern
 * exactly as the client wrote it. */
#ifndef BRIGADE_JSON_MEMBER_H
#define BRIGADE_JSON_MEMBER_H

#include <stdbool.h>
#include <stddef.h>

/* text[0..len) must be one JSON object that passed json_strict_text and
 * parsed with no key twice (so a key names at most one member); a UTF-8
 * byte order mark before it is passed over, as cJSON does. Finds the
 * top-level member whose key, with its escapes decoded, is key[0..key_len),
 * and sets [*start, *end) to its value's bytes (a string's with its quotes).
 * false when there is no such member. Never reads outside text[0..len),
 * whatever the text is. */
bool json_top_member(const char *text, size_t len, const char *key, size_t key_len, size_t *start,
                     size_t *end);

#endif
