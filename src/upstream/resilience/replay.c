/* replay.c — keeping a stream's delivered text and matching a replay
 * against it (see replay.h). */
#include "upstream/resilience/replay.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util/xalloc.h"

void upstream_replay_init(upstream_replay *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text);
    r->resumable = true;
}

void upstream_replay_free(upstream_replay *r) { buf_free(&r->text); }

/* choice 0 of a chunk, if the chunk is of the resumable kind: one choice at
 * index 0 (or none), no tool calls. false: not resumable. */
static bool replay_choice(const cJSON *j, const cJSON **choice)
{
    *choice = NULL;
    if (!cJSON_IsObject(j)) return false;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    if (!choices) return true;
    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) > 1) return false;
    const cJSON *ch = cJSON_GetArrayItem(choices, 0);
    if (!ch) return true;
    const cJSON *ix = cJSON_GetObjectItemCaseSensitive(ch, "index");
    if (ix && !(cJSON_IsNumber(ix) && ix->valuedouble == 0)) return false;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
    if (cJSON_GetObjectItemCaseSensitive(d, "tool_calls") || cJSON_GetObjectItemCaseSensitive(d, "function_call") ||
        cJSON_GetObjectItemCaseSensitive(d, "refusal"))
        return false;
    *choice = ch;
    return true;
}

static const char *replay_content(const cJSON *choice)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(choice, "delta"), "content");
    return cJSON_IsString(c) ? c->valuestring : "";
}

void upstream_replay_note(upstream_replay *r, const char *json, size_t len)
{
    if (!r->resumable || r->active) return;
    cJSON *j = cJSON_ParseWithLength(json, len);
    const cJSON *ch;
    if (!replay_choice(j, &ch)) {
        r->resumable = false;
    } else if (ch) {
        const char *c = replay_content(ch);
        size_t n = strlen(c);
        if (r->text.len + n > UPSTREAM_REPLAY_MAX_TEXT) r->resumable = false;
        else buf_append(&r->text, c, n);
    }
    cJSON_Delete(j);
}

void upstream_replay_begin(upstream_replay *r)
{
    r->active = true;
    r->pos = 0;
}

upstream_replay_verdict upstream_replay_match(upstream_replay *r, const char *json, size_t len, buf *out)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    const cJSON *ch;
    upstream_replay_verdict v = UPSTREAM_REPLAY_DIVERGED;
    if (!replay_choice(j, &ch)) goto done;
    const char *c = ch ? replay_content(ch) : "";
    size_t n = strlen(c), left = r->text.len - r->pos;
    const cJSON *fr = ch ? cJSON_GetObjectItemCaseSensitive(ch, "finish_reason") : NULL;
    bool ends = (fr && !cJSON_IsNull(fr)) || cJSON_GetObjectItemCaseSensitive(j, "usage");
    if (n <= left) {
        if (n && memcmp(c, r->text.data + r->pos, n) != 0) goto done;
        r->pos += n;
        if (!ends) {
            v = UPSTREAM_REPLAY_SKIP;
            goto done;
        }
        if (r->pos < r->text.len) goto done;    /* it ends before repeating all we sent */
    } else if (left && memcmp(c, r->text.data + r->pos, left) != 0) {
        goto done;
    }
    /* Past the kept text: this event goes on with only its new text. */
    size_t skip = n <= left ? n : left;
    r->pos += n <= left ? 0 : left;
    if (ch) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        if (cJSON_IsObject(d)) {
            cJSON_DeleteItemFromObjectCaseSensitive(d, "role");
            if (cJSON_GetObjectItemCaseSensitive(d, "content"))
                cJSON_ReplaceItemInObjectCaseSensitive(d, "content", cJSON_CreateString(c + skip));
        }
    }
    char *s = xnonnull(cJSON_PrintUnformatted(j));
    buf_puts(out, s);
    free(s);
    r->active = false;
    v = UPSTREAM_REPLAY_PASS;
done:
    cJSON_Delete(j);
    return v;
}
