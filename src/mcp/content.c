/* content.c — a tools/call result (CallToolResult) turned into the text a
 * model sees. Text passes as it is; what a text model cannot read (images,
 * audio, blobs) becomes a short note that says what was there; an embedded
 * resource gives its text; a resource link its URI and name. The output is
 * bounded while it is built: past `max` bytes nothing more is copied, only
 * counted, so a huge result never lands whole in memory twice. */
#include "mcp/mcp_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

typedef struct out_text {
    char  *s;
    size_t len, cap, max, total;
} out_text;

static void out_put(out_text *o, const char *s, size_t n)
{
    o->total += n;
    if (o->len >= o->max) return;
    size_t take = o->max - o->len < n ? o->max - o->len : n;
    if (o->len + take + 1 > o->cap) {
        size_t c = o->cap ? o->cap : 256;
        while (c < o->len + take + 1) c *= 2;
        o->s = xrealloc(o->s, c);
        o->cap = c;
    }
    memcpy(o->s + o->len, s, take);
    o->len += take;
    o->s[o->len] = '\0';
}

static void out_str(out_text *o, const char *s) { out_put(o, s, strlen(s)); }

static const char *str_of(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A separator between blocks: one newline. */
static void out_sep(out_text *o, bool *first)
{
    if (!*first) out_put(o, "\n", 1);
    *first = false;
}

static void out_note(out_text *o, const char *what, const char *mime, const char *b64)
{
    char note[200];
    snprintf(note, sizeof note, "[%s %.64s, %zu bytes base64: not shown]", what,
             mime ? mime : "of unknown type", b64 ? strlen(b64) : (size_t)0);
    out_str(o, note);
}

static void out_block(out_text *o, const cJSON *b, bool *first)
{
    const char *type = str_of(b, "type");
    if (!type) return;
    if (!strcmp(type, "text")) {
        const char *t = str_of(b, "text");
        if (!t) return;
        out_sep(o, first);
        out_str(o, t);
    } else if (!strcmp(type, "image") || !strcmp(type, "audio")) {
        out_sep(o, first);
        out_note(o, type, str_of(b, "mimeType"), str_of(b, "data"));
    } else if (!strcmp(type, "resource")) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(b, "resource");
        const char *uri = str_of(r, "uri"), *text = str_of(r, "text");
        out_sep(o, first);
        char head[600];
        snprintf(head, sizeof head, "[resource %.500s]\n", uri ? uri : "(no uri)");
        out_str(o, head);
        if (text) out_str(o, text);
        else out_note(o, "blob", str_of(r, "mimeType"), str_of(r, "blob"));
    } else if (!strcmp(type, "resource_link")) {
        const char *uri = str_of(b, "uri"), *name = str_of(b, "name");
        char line[700];
        snprintf(line, sizeof line, "[resource link %.500s%s%.128s]", uri ? uri : "(no uri)",
                 name ? " — " : "", name ? name : "");
        out_sep(o, first);
        out_str(o, line);
    }
}

char *mcp_content_to_text(const cJSON *result, size_t max, bool *is_error, size_t *len,
                          size_t *total)
{
    out_text o = {.max = max};
    bool first = true;
    *is_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "isError"));
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(result, "content");
    const cJSON *b;
    if (cJSON_IsArray(content)) cJSON_ArrayForEach(b, content) out_block(&o, b, &first);
    if (first) {
        /* Nothing readable in content: the structured result, as JSON. */
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(result, "structuredContent");
        if (sc) {
            char *txt = cJSON_PrintUnformatted(sc);
            if (txt) out_str(&o, txt);
            free(txt);
        }
    }
    if (!o.s) o.s = xstrdup("");
    *len = o.len;
    *total = o.total;
    return o.s;
}
