/* probe.c — one MCP client session run to its end from the command line
 * (`brigade mcp-client URL`, src/app/mcp_client_cli.c): the same session
 * (session.c) and streamable HTTP transport (http.c) the hub uses, on a
 * loop of its own. It initializes, lists the tools (every page), calls each
 * with arguments made from its input schema (the required properties:
 * numbers 1, 2, …; strings "brigade"; booleans true), and ends the session.
 * It exists so the MCP conformance suite (client mode) can drive brigade's
 * client: scripts/mcp-conformance.sh. */
#include "mcp/mcp_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_oauth.h"
#include "util/xalloc.h"

#define PROBE_TIMEOUT_MS 20000u
#define PROBE_MAX_PAGES 64
#define PROBE_MAX_TOOLS 64

typedef struct probe {
    mcp_session *s;
    mcp_curl    *curl;       /* released when the session ends: freed after its last transfer */
    FILE        *out;
    cJSON       *tools;      /* the tools listed (array, owned) */
    int          pages;
    int          next_tool;
    int          failures;
    bool         done;
} probe;

static void probe_end(probe *p, const char *why)
{
    if (p->done) return;
    p->done = true;
    if (why) {
        fprintf(p->out, "mcp-client: %s\n", why);
        p->failures++;
    }
    if (p->s) mcp_session_close(p->s, "done");
    p->s = NULL;
    mcp_curl_release(p->curl);
}

/* Arguments for a tool from its inputSchema: a value for each required property. */
static cJSON *probe_arguments(const cJSON *schema)
{
    cJSON *args = cJSON_CreateObject();
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    int n = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, req) {
        if (!cJSON_IsString(r)) continue;
        const cJSON *prop = cJSON_GetObjectItemCaseSensitive(props, r->valuestring);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(prop, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "string";
        if (!strcmp(t, "number") || !strcmp(t, "integer")) cJSON_AddNumberToObject(args, r->valuestring, ++n);
        else if (!strcmp(t, "boolean")) cJSON_AddBoolToObject(args, r->valuestring, true);
        else if (!strcmp(t, "string")) cJSON_AddStringToObject(args, r->valuestring, "brigade");
        else if (!strcmp(t, "array")) cJSON_AddArrayToObject(args, r->valuestring);
        else if (!strcmp(t, "object")) cJSON_AddObjectToObject(args, r->valuestring);
    }
    return args;
}

static void probe_call_next(probe *p);

static void probe_on_call(void *arg, const mcp_msg *m, const char *why)
{
    probe *p = arg;
    if (p->done) return;
    const cJSON *tool = cJSON_GetArrayItem(p->tools, p->next_tool - 1);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(tool, "name");
    if (!m || m->kind == MCP_MSG_ERROR) {
        fprintf(p->out, "mcp-client: tools/call %s failed: %s\n", name->valuestring,
                m ? m->error_message : why);
        p->failures++;
    } else {
        size_t len = 0, total = 0;
        bool is_error = false;
        char *text = mcp_content_to_text(m->result, 4096, &is_error, &len, &total);
        fprintf(p->out, "mcp-client: tools/call %s: %s%.*s\n", name->valuestring,
                is_error ? "(isError) " : "", (int)len, text ? text : "");
        free(text);
    }
    probe_call_next(p);
}

static void probe_call_next(probe *p)
{
    int n = cJSON_GetArraySize(p->tools);
    while (p->next_tool < n && p->next_tool < PROBE_MAX_TOOLS) {
        const cJSON *tool = cJSON_GetArrayItem(p->tools, p->next_tool++);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(tool, "name");
        if (!cJSON_IsString(name)) continue;
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "name", name->valuestring);
        cJSON_AddItemToObject(params, "arguments",
                              probe_arguments(cJSON_GetObjectItemCaseSensitive(tool, "inputSchema")));
        mcp_session_request(p->s, "tools/call", params, PROBE_TIMEOUT_MS, true, probe_on_call, p);
        return;
    }
    probe_end(p, NULL);
}

static void probe_list(probe *p, const char *cursor);

static void probe_on_list(void *arg, const mcp_msg *m, const char *why)
{
    probe *p = arg;
    if (p->done) return;
    if (!m || m->kind == MCP_MSG_ERROR) {
        char msg[300];
        snprintf(msg, sizeof msg, "tools/list failed: %.250s", m ? m->error_message : why);
        probe_end(p, msg);
        return;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(m->result, "tools");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) cJSON_AddItemToArray(p->tools, cJSON_Duplicate(t, true));
    const cJSON *cursor = cJSON_GetObjectItemCaseSensitive(m->result, "nextCursor");
    if (cJSON_IsString(cursor) && cursor->valuestring[0] && ++p->pages < PROBE_MAX_PAGES) {
        probe_list(p, cursor->valuestring);
        return;
    }
    fprintf(p->out, "mcp-client: %d tools\n", cJSON_GetArraySize(p->tools));
    probe_call_next(p);
}

static void probe_list(probe *p, const char *cursor)
{
    cJSON *params = NULL;
    if (cursor) {
        params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "cursor", cursor);
    }
    mcp_session_request(p->s, "tools/list", params, PROBE_TIMEOUT_MS, false, probe_on_list, p);
}

static void probe_on_initialize(void *arg, const mcp_msg *m, const char *why)
{
    probe *p = arg;
    if (p->done) return;
    if (!m || m->kind == MCP_MSG_ERROR) {
        char msg[300];
        snprintf(msg, sizeof msg, "initialize failed: %.250s", m ? m->error_message : why);
        probe_end(p, msg);
        return;
    }
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(m->result, "protocolVersion");
    if (!cJSON_IsString(pv) || !mcp_protocol_version_ok(pv->valuestring)) {
        probe_end(p, "the server answered a protocol version brigade does not speak");
        return;
    }
    mcp_transport *tr = mcp_session_transport(p->s);
    if (tr && tr->negotiated) tr->negotiated(tr, pv->valuestring);
    fprintf(p->out, "mcp-client: initialized (protocol %s)\n", pv->valuestring);
    mcp_session_notify(p->s, "notifications/initialized", NULL);
    probe_list(p, NULL);
}

static void probe_on_notification(void *arg, const mcp_msg *m) { (void)arg; (void)m; }
static void probe_on_progress(void *arg, int64_t token, double progress, double total, const char *message)
{
    (void)arg; (void)token; (void)progress; (void)total; (void)message;
}
static void probe_on_closed(void *arg, const char *why)
{
    probe *p = arg;
    if (p->done) return;
    p->done = true;   /* the session frees itself after this callback */
    p->s = NULL;
    fprintf(p->out, "mcp-client: %s\n", why);
    p->failures++;
    mcp_curl_release(p->curl);
}

/* The loopback redirect URI of the headless flow: nothing listens there,
 * the code is read from the authorization endpoint's Location. */
#define PROBE_REDIRECT_URI "http://127.0.0.1:33418/callback"

int mcp_probe_run(const char *url, bool allow_private_networks, const mcp_probe_opts *auth, FILE *out)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    mcp_server_cfg cfg = {
        .name = "probe",
        .transport = MCP_TRANSPORT_HTTP,
        .url = (char *)url,
        .allow_private_networks = allow_private_networks,
    };
    mcp_curl *curl = mcp_curl_new(&loop);
    if (curl && auth && auth->n_allow_nets) mcp_curl_set_allow_nets(curl, auth->allow_nets, auth->n_allow_nets);
    probe p = {.out = out, .curl = curl, .tools = cJSON_CreateArray()};
    mcp_session_cb cb = {.on_notification = probe_on_notification, .on_progress = probe_on_progress,
                         .on_closed = probe_on_closed, .arg = &p};
    p.s = mcp_session_new(&loop, "probe", cb);
    char err[300];
    mcp_transport *t = mcp_http_open(curl, &cfg, mcp_session_transport_cb(p.s), err, sizeof err);
    mcp_oauth_client oc = {
        .client_id = auth ? auth->client_id : NULL,
        .client_secret = auth ? auth->client_secret : NULL,
        .client_metadata_url = auth ? auth->client_metadata_url : NULL,
        .redirect_uri = PROBE_REDIRECT_URI,
        .client_name = "brigade mcp-client",
    };
    egress_policy pol = {.allow_private_networks = allow_private_networks,
                         .allow_nets = auth ? auth->allow_nets : NULL,
                         .n_allow_nets = auth ? auth->n_allow_nets : 0};
    mcp_oauth *oauth = mcp_oauth_new(url, &oc, &pol);
    if (t) mcp_http_set_oauth(t, oauth, mcp_oauth_consent_headless, oauth);
    if (!t) {
        probe_end(&p, err);
    } else {
        mcp_session_attach(p.s, t);
        cJSON *params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "protocolVersion", MCP_PROTOCOL_VERSION);
        cJSON_AddObjectToObject(params, "capabilities");
        cJSON *ci = cJSON_AddObjectToObject(params, "clientInfo");
        cJSON_AddStringToObject(ci, "name", "brigade");
        cJSON_AddStringToObject(ci, "version", BRIGADE_VERSION);
        mcp_session_request(p.s, "initialize", params, PROBE_TIMEOUT_MS, false, probe_on_initialize, &p);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    mcp_oauth_free(oauth);
    cJSON_Delete(p.tools);
    return p.failures ? 1 : 0;
}
