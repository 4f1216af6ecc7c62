/* provenance.c — the origin the harness gives what enters a run's context
 * (core/origin.h): a tool's result by the kind of tool that produced it
 * (and, for the memory tool, who wrote the entries it read), what the
 * memory tool records when the run writes memory, and the provenance
 * attributes of spans. The rules are in docs/guard.md ("Provenance"). */
#include "runs/runs_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/origin.h"
#include "util/xalloc.h"

/* The host of a declared HTTP tool's URL template ("https://api.x/v1/{id}"
 * → "api.x"): placeholders may not be in the host (tool_http.c), so the
 * template's host is the host every call of the tool fetches from. */
static void run_url_host(const char *url, char *out, size_t outlen)
{
    out[0] = '\0';
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p) return;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (n && p[0] == '[') {                 /* [v6]:port */
        const char *close = memchr(p, ']', n);
        if (close) n = (size_t)(close + 1 - p);
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon) n = (size_t)(colon - p);
    }
    if (n >= outlen) n = outlen - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

cJSON *run_origin_tool_result(const tool_def *def, bool refused, const char *tool,
                              const char *call_id, const char *memory_read)
{
    origin_kind k;
    bool untrusted;
    if (refused || !def) {
        /* the result is brigade's own text: why the call did not run */
        k = ORIGIN_SYSTEM;
        untrusted = false;
    } else {
        switch (def->kind) {
        case TOOL_CLOCK: k = ORIGIN_TOOL; untrusted = false; break;
        case TOOL_HTTP: k = ORIGIN_FETCHED; untrusted = true; break;
        case TOOL_MEMORY: k = ORIGIN_MEMORY; untrusted = false; break;
        default: k = ORIGIN_TOOL; untrusted = true; break;   /* command, MCP */
        }
    }
    cJSON *entries = NULL;
    if (k == ORIGIN_MEMORY) {
        entries = memory_read ? cJSON_Parse(memory_read) : NULL;
        if (!cJSON_IsArray(entries)) {
            cJSON_Delete(entries);
            entries = NULL;
        }
        /* What memory holds is stored data, whoever wrote it — a note the
         * user pasted from a forum as much as a page a tainted run saved —
         * and the model reads it as a tool's output, not as the user's
         * instruction of now: an answer that read an entry is untrusted.
         * The entries' own origins say where each came from. An answer
         * that read nothing ({"saved": …}, a missing key) is brigade's. */
        untrusted = cJSON_GetArraySize(entries) > 0;
    }
    cJSON *o = xnonnull(origin_new(k, untrusted));
    cJSON_AddStringToObject(o, "tool", tool ? tool : "");
    cJSON_AddStringToObject(o, "call_id", call_id ? call_id : "");
    if (k == ORIGIN_FETCHED && def->http) {
        char host[256];
        run_url_host(def->http->url, host, sizeof host);
        cJSON_AddStringToObject(o, "url_host", host);
    }
    if (k == ORIGIN_TOOL && def && def->mcp_server)
        cJSON_AddStringToObject(o, "mcp_server", def->mcp_server->name);
    if (entries) cJSON_AddItemToObject(o, "entries", entries);
    return o;
}

char *run_memory_write_origin(const run_exec *x)
{
    uint32_t kinds = 0;
    bool tainted = guard_run_tainted(x->guard, &kinds);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", "run");
    cJSON_AddStringToObject(o, "run_id", x->rec.id);
    cJSON_AddStringToObject(o, "session_id", x->rec.session_id);
    cJSON_AddBoolToObject(o, "untrusted", tainted);
    if (tainted) cJSON_AddItemToObject(o, "tainted_by", origin_kinds_array(kinds));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return xnonnull(text);
}

void run_origin_trace(obs_span *span, const cJSON *origin)
{
    if (!span || !cJSON_IsObject(origin)) return;
    obs_span_set_str(span, "brigade.provenance.kind", origin_kind_name(origin_kind_of(origin)));
    obs_span_set_bool(span, "brigade.provenance.untrusted",
                      !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(origin, "untrusted")));
    const cJSON *host = cJSON_GetObjectItemCaseSensitive(origin, "url_host");
    if (cJSON_IsString(host)) obs_span_set_str(span, "brigade.provenance.url_host", host->valuestring);
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(origin, "entries");
    if (cJSON_IsArray(entries)) {
        obs_span_set_int(span, "brigade.provenance.memory_entries", cJSON_GetArraySize(entries));
        /* the keys read, comma-separated and bounded: which entries */
        char keys[512] = "";
        size_t o = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, entries) {
            const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
            if (!cJSON_IsString(k) || o + 2 >= sizeof keys) continue;
            o += (size_t)snprintf(keys + o, sizeof keys - o, "%s%s", o ? "," : "", k->valuestring);
        }
        if (o >= sizeof keys) o = sizeof keys - 1;
        keys[o] = '\0';
        obs_span_set_str(span, "brigade.provenance.memory_keys", keys);
    }
}

void run_taint_trace(obs_span *span, const guard_run *g)
{
    if (!span) return;
    uint32_t kinds = 0;
    bool tainted = guard_run_tainted(g, &kinds);
    obs_span_set_bool(span, "brigade.provenance.tainted", tainted);
    if (!tainted) return;
    char names[128] = "";
    size_t o = 0;
    for (int i = 0; i < ORIGIN_NKINDS; i++)
        if (kinds & (1u << i))
            o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? "," : "",
                                  origin_kind_name((origin_kind)i));
    obs_span_set_str(span, "brigade.provenance.tainted_by", names);
}
