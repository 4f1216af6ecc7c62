/* chat_fields.c — the table of governed chat-request field names, made from
 * the one list in chat_fields.h (indexed by chat_field, lengths counted by
 * the compiler). */
#include "api/chat_fields.h"

#define CHAT_FIELD_ENTRY(id, name) [CHAT_FIELD_##id] = { name, sizeof(name) - 1 },
const chat_field_name chat_governed_fields[CHAT_FIELD_COUNT] = {
    CHAT_GOVERNED_FIELDS(CHAT_FIELD_ENTRY)
};
#undef CHAT_FIELD_ENTRY

/* The scan checks keys no longer than three times CHAT_FIELD_NAME_MAX for a
 * case clash (chat_scan.c): a longer field would let a long key that folds
 * to it past the scan while the tree path refuses it. */
#define CHAT_FIELD_FITS(id, name)                                   \
    _Static_assert(sizeof(name) - 1 <= CHAT_FIELD_NAME_MAX,         \
                   "\"" name "\" is longer than CHAT_FIELD_NAME_MAX");
CHAT_GOVERNED_FIELDS(CHAT_FIELD_FITS)
#undef CHAT_FIELD_FITS
