/* tool_http.c — declared HTTP tools: turn a model's (validated) arguments
 * into one HTTP request as the configuration describes it, and its
 * response into the tool's result.
 *
 *   - `{name}` placeholders in the URL's path and query are filled from the
 *     argument of that name, percent-encoded (the registry refused
 *     placeholders in the host, so a model cannot choose the server); a
 *     path value that could leave its segment ("..", "%2e%2e", "a\\b", …)
 *     is refused before any request (tool_url.c);
 *   - the other declared arguments go in the JSON body (POST, PUT, PATCH)
 *     or the query string (GET, DELETE); undeclared ones are never sent;
 *   - configured headers are sent as they are (their values were resolved
 *     from the environment by the config module), except that `${user.id}`
 *     and `${tenant.id}` become the calling user's ids: the only identity a
 *     tool receives. Nothing of the caller's own request (its brigade key
 *     or JWT, its headers) is ever forwarded.
 *   - a tool with `auth` also sends the calling user's own token (from the
 *     vault, in tool_env) in its declared header; whatever the tool
 *     answers, success or error, has every copy of that token replaced by
 *     "[redacted]" before it becomes the model's tool result, so a tool
 *     that reflects its request cannot hand the token to the model.
 *
 * The request runs on the loop through upstream_http_fetch (libcurl on
 * libuv, with the tool's timeout and response cap) under the tool's egress
 * policy (docs/egress.md): public addresses only unless the operator set
 * allow_private_networks or listed the network in egress.allow_networks,
 * redirects only up to max_redirects, each hop checked. Every request has
 * an `egress` span under the tool call's; a refused one is also an audit
 * entry `egress.refuse` naming the tool and the address class (not the
 * URL, which may hold the user's arguments). A 2xx answer's body is the
 * result; anything else is a failed call whose message says why. */
#include "tools/tools_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "obs/audit.h"
#include "util/buf.h"

#define HTTP_TOOL_ERROR_PREVIEW 512    /* bytes of a non-2xx body quoted to the model */

typedef struct http_exec {
    tool_exec       base;
    upstream_fetch *fetch;
    char           *url;
    char           *body;
    char          **headers;
    size_t          n_headers;
    char           *secret;      /* the user's token, cut out of the answer (NULL: none) */
    egress_check    egress;      /* what egress decided, filled before http_on_done */
    obs_span       *span;        /* "egress", child of the tool call's span */
    uv_loop_t      *loop;        /* for the audit job of a refusal */
    store          *store;
    scope           sc;
    bool            has_scope;
    char            tool[72];
    char            run_id[72];
    void          (*auth_refused)(void *arg);   /* the user's credential was sent (tool_env) */
    void           *auth_refused_arg;
} http_exec;

static void http_exec_free(http_exec *h)
{
    if (h->span) obs_span_end(h->span, OBS_STATUS_ERROR, "the request did not finish");
    free(h->url);
    free(h->body);
    /* header lines may hold credentials (the user's own token among them) */
    for (size_t i = 0; i < h->n_headers; i++) {
        explicit_bzero(h->headers[i], strlen(h->headers[i]));
        free(h->headers[i]);
    }
    free(h->headers);
    if (h->secret) {
        explicit_bzero(h->secret, strlen(h->secret));
        free(h->secret);
    }
    free(h);
}

/* The token inside a header value made from `format` ("Bearer {token}"):
 * what lies between the format's prefix and suffix. malloc'd, or NULL. */
static char *http_token_of(const char *format, const char *value)
{
    const char *at = format ? strstr(format, "{token}") : NULL;
    if (!at) return value ? strdup(value) : NULL;
    size_t pre = (size_t)(at - format), suf = strlen(at + 7), n = strlen(value);
    if (n < pre + suf) return strdup(value);
    return strndup(value + pre, n - pre - suf);
}

/* body with every copy of secret replaced (malloc'd; *out_len its length). */
static char *http_redact(const char *body, size_t len, const char *secret, size_t *out_len)
{
    buf b;
    buf_init(&b);
    size_t sl = secret ? strlen(secret) : 0;
    size_t i = 0;
    while (i < len) {
        const char *hit = sl >= 4 ? memmem(body + i, len - i, secret, sl) : NULL;
        if (!hit) {
            buf_append(&b, body + i, len - i);
            break;
        }
        buf_append(&b, body + i, (size_t)(hit - (body + i)));
        buf_puts(&b, "[redacted]");
        i = (size_t)(hit - body) + sl;
    }
    *out_len = b.len;
    char *out = buf_detach(&b);
    return out ? out : strdup("");
}

static void pct_encode(buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* An argument as text for a URL: strings as they are, numbers without a
 * spurious ".0", booleans as true/false, arrays and objects as compact
 * JSON. NULL for null. */
static char *arg_text(const cJSON *v)
{
    char tmp[64];
    if (cJSON_IsString(v)) return strdup(v->valuestring);
    if (cJSON_IsBool(v)) return strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (isfinite(d) && floor(d) == d && fabs(d) < 9007199254740992.0)
            snprintf(tmp, sizeof tmp, "%.0f", d);
        else
            snprintf(tmp, sizeof tmp, "%.17g", d);
        return strdup(tmp);
    }
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) return cJSON_PrintUnformatted(v);
    return NULL;
}

static bool http_method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

/* Only the arguments the tool's schema declares at its top level are ever
 * sent: a model cannot add fields or query parameters the tool's author
 * did not describe (even when the schema allows additionalProperties). */
static bool http_declared(const tool_def *t, const char *name)
{
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(t->parameters, "properties");
    return props && cJSON_GetObjectItemCaseSensitive(props, name);
}

/* Fill the URL's placeholders; `used` (cJSON object) collects the names
 * consumed so they are not sent again in the body or query. A value for
 * the path must stay one segment (tools_url_path_value_ok); one for the
 * query is percent-encoded and may hold anything but control characters. */
static char *http_build_url(const char *tmpl, const cJSON *args, cJSON *used, char *out,
                            size_t outlen)
{
    buf b;
    buf_init(&b);
    bool in_query = false;
    for (const char *p = tmpl; *p;) {
        if (*p != '{') {
            const char *next = strchr(p, '{');
            size_t n = next ? (size_t)(next - p) : strlen(p);
            if (memchr(p, '?', n) || memchr(p, '#', n)) in_query = true;
            buf_append(&b, p, n);
            p += n;
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) {   /* the registry refuses this; be safe anyway */
            buf_puts(&b, p);
            break;
        }
        char name[128];
        size_t nlen = (size_t)(close - p - 1);
        if (nlen >= sizeof name) nlen = sizeof name - 1;
        memcpy(name, p + 1, nlen);
        name[nlen] = '\0';
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
        char *txt = v ? arg_text(v) : NULL;
        if (!txt || !txt[0]) {
            free(txt);
            buf_free(&b);
            snprintf(out, outlen, "arguments: the URL needs a non-empty \"%s\"", name);
            return NULL;
        }
        char why[160];
        bool ok = true;
        if (!in_query) {
            ok = tools_url_path_value_ok(txt, strlen(txt), why, sizeof why);
        } else {
            for (const unsigned char *c = (const unsigned char *)txt; *c && ok; c++)
                if (*c < 0x20 || *c == 0x7f) {
                    snprintf(why, sizeof why, "it contains a control character");
                    ok = false;
                }
        }
        if (!ok) {
            free(txt);
            buf_free(&b);
            snprintf(out, outlen, "arguments.%s: refused for the URL %s: %s; nothing was sent",
                     name, in_query ? "query" : "path", why);
            return NULL;
        }
        pct_encode(&b, txt);
        free(txt);
        if (!cJSON_GetObjectItemCaseSensitive(used, name)) cJSON_AddTrueToObject(used, name);
        p = close + 1;
    }
    /* The whole path once more: a template like "/{a}." filled with "."
     * makes a dot segment out of pieces that are each harmless. */
    const char *rest = strstr(b.data ? b.data : "", "://");
    const char *path = rest ? strpbrk(rest + 3, "/?#") : NULL;
    if (path && *path == '/' && !tools_url_path_ok(path, strcspn(path, "?#"))) {
        buf_free(&b);
        snprintf(out, outlen, "arguments: the URL's path would contain a \".\" or \"..\" "
                              "segment; nothing was sent");
        return NULL;
    }
    return buf_detach(&b);
}

static void http_add_query(const tool_def *t, buf *url, const cJSON *args, const cJSON *used)
{
    /* A fragment is never sent to the server, and would swallow a query
     * appended after it: drop it. */
    char *frag = memchr(url->data, '#', url->len);
    if (frag) {
        url->len = (size_t)(frag - url->data);
        url->data[url->len] = '\0';
    }
    char sep = '?';
    if (memchr(url->data, '?', url->len))
        sep = (url->data[url->len - 1] == '?' || url->data[url->len - 1] == '&') ? 0 : '&';
    for (const cJSON *a = args->child; a; a = a->next) {
        if (cJSON_GetObjectItemCaseSensitive(used, a->string)) continue;
        if (!http_declared(t, a->string)) continue;
        char *txt = arg_text(a);
        if (!txt) continue;    /* null: leave the parameter out */
        if (sep) buf_append(url, &sep, 1);
        sep = '&';
        pct_encode(url, a->string);
        buf_puts(url, "=");
        pct_encode(url, txt);
        free(txt);
    }
}

/* ---- a refusal's audit entry, written on the thread pool (obs_audit
 * waits for the commit, which the loop must not) ---- */

typedef struct egress_audit_job {
    uv_work_t work;
    store    *st;
    scope     sc;
    char      tool[72];
    cJSON    *details;
} egress_audit_job;

static void egress_audit_work(uv_work_t *w)
{
    egress_audit_job *j = w->data;
    obs_audit(j->st, &j->sc, "egress.refuse", j->tool, j->details);   /* takes details */
    j->details = NULL;
}

static void egress_audit_done(uv_work_t *w, int status)
{
    (void)status;
    egress_audit_job *j = w->data;
    cJSON_Delete(j->details);
    free(j);
}

static void http_egress_audit(http_exec *h)
{
    if (!h->store || !h->has_scope || !h->loop) return;
    egress_audit_job *j = calloc(1, sizeof *j);
    if (!j) return;
    j->st = h->store;
    j->sc = h->sc;
    snprintf(j->tool, sizeof j->tool, "%s", h->tool);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "tool", h->tool);
    cJSON_AddStringToObject(d, "class", egress_class_name(h->egress.cls));
    cJSON_AddStringToObject(d, "address", h->egress.address);
    if (h->egress.via != EGRESS_VIA_NONE) cJSON_AddStringToObject(d, "form", egress_via_name(h->egress.via));
    if (h->run_id[0]) cJSON_AddStringToObject(d, "run_id", h->run_id);
    j->details = d;
    j->work.data = j;
    if (uv_queue_work(h->loop, &j->work, egress_audit_work, egress_audit_done) != 0) {
        cJSON_Delete(d);
        free(j);
    }
}

/* The egress span's end: allowed or refused, and for a refusal the class
 * and address (an address is not the user's data; the URL might be). */
static void http_egress_span_end(http_exec *h, bool refused)
{
    if (!h->span) return;
    obs_span_set_str(h->span, "brigade.egress.decision", refused ? "refused" : "allowed");
    obs_span_set_int(h->span, "brigade.egress.connections", h->egress.allowed);
    obs_span_set_bool(h->span, "brigade.egress.allow_private_networks",
                      h->egress.policy.allow_private_networks);
    if (h->egress.refusals) {
        obs_span_set_str(h->span, "brigade.egress.class", egress_class_name(h->egress.cls));
        obs_span_set_str(h->span, "brigade.egress.address", h->egress.address);
    }
    obs_span_end(h->span, refused ? OBS_STATUS_ERROR : OBS_STATUS_OK,
                 refused ? "egress refused the address" : NULL);
    h->span = NULL;
}

static void http_on_done(void *arg, int status, const char *body, size_t len, const char *error)
{
    http_exec *h = arg;
    h->fetch = NULL;
    bool refused = error && h->egress.refusals > 0 && strncmp(error, "egress refused", 14) == 0;
    http_egress_span_end(h, refused);
    if (refused) http_egress_audit(h);
    char *clean = NULL;
    if (h->secret && body) {
        clean = http_redact(body, len, h->secret, &len);
        body = clean;
    }
    if (!error && status >= 200 && status < 300) {
        tool_exec_deliver(&h->base, true, body, len);
    } else if (!error && status > 0) {
        /* the user's own token refused: revoked at the provider, say; the
         * run has the user asked to connect again at the next call */
        if (status == 401 && h->auth_refused) h->auth_refused(h->auth_refused_arg);
        char msg[HTTP_TOOL_ERROR_PREVIEW + 64];
        size_t n = len < HTTP_TOOL_ERROR_PREVIEW ? len : HTTP_TOOL_ERROR_PREVIEW;
        /* Cut on a character boundary; the sanitiser handles the rest. */
        while (n > 0 && n < len && ((unsigned char)body[n] & 0xC0) == 0x80) n--;
        int m = snprintf(msg, sizeof msg, "HTTP %d: ", status);
        if (body && n) memcpy(msg + m, body, n);
        tool_exec_deliver(&h->base, false, msg, (size_t)m + n);
    } else {
        char msg[512];
        int m = snprintf(msg, sizeof msg, "the request failed: %s",
                         error ? error : "no response");
        tool_exec_deliver(&h->base, false, msg, m > 0 ? (size_t)m : 0);
    }
    free(clean);
    http_exec_free(h);
}

/* A header value with the identity templates filled in from the run's
 * scope (ids are [a-z0-9_] by construction: nothing to escape). */
static void http_header_value(buf *b, const char *v, const scope *sc)
{
    static const char user_t[] = CONFIG_TOOL_IDENTITY_USER, tenant_t[] = CONFIG_TOOL_IDENTITY_TENANT;
    while (*v) {
        if (!strncmp(v, user_t, sizeof user_t - 1)) {
            buf_printf(b, "%s", sc ? sc->user_id : "");
            v += sizeof user_t - 1;
        } else if (!strncmp(v, tenant_t, sizeof tenant_t - 1)) {
            buf_printf(b, "%s", sc ? sc->tenant_id : "");
            v += sizeof tenant_t - 1;
        } else {
            buf_append(b, v++, 1);
        }
    }
}

static bool has_header(const tool_cfg *c, const char *name)
{
    for (size_t i = 0; i < c->n_headers; i++)
        if (strcasecmp(c->header_names[i], name) == 0) return true;
    return false;
}

tool_exec *tool_http_start(const tool_def *t, const tool_env *env, const cJSON *args, char *out,
                           size_t outlen)
{
    const tool_cfg *c = t->http;
    if (!c || !c->url) {
        snprintf(out, outlen, "tool %s has no HTTP configuration", t->name);
        return NULL;
    }
    if (!env->upstream) {
        snprintf(out, outlen, "HTTP tools are not available in this run");
        return NULL;
    }
    const char *method = c->method && c->method[0] ? c->method : "POST";
    http_exec *h = calloc(1, sizeof *h);
    cJSON *used = cJSON_CreateObject();
    if (!h || !used) {
        free(h);
        cJSON_Delete(used);
        snprintf(out, outlen, "out of memory");
        return NULL;
    }
    h->base.impl = EXEC_HTTP;

    char *url = http_build_url(c->url, args, used, out, outlen);
    if (!url) goto fail;
    if (http_method_has_body(method)) {
        cJSON *body = cJSON_CreateObject();
        for (const cJSON *a = args->child; a; a = a->next)
            if (!cJSON_GetObjectItemCaseSensitive(used, a->string) && http_declared(t, a->string))
                cJSON_AddItemToObject(body, a->string, cJSON_Duplicate(a, true));
        h->body = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        if (!h->body) {
            free(url);
            snprintf(out, outlen, "out of memory");
            goto fail;
        }
        h->url = url;
    } else {
        buf b = {.data = url, .len = strlen(url), .cap = strlen(url) + 1};
        http_add_query(t, &b, args, used);
        h->url = buf_detach(&b);
    }
    if (strlen(h->url) > TOOLS_HTTP_MAX_URL) {
        snprintf(out, outlen, "arguments: the request URL would be longer than %d bytes; "
                              "nothing was sent", TOOLS_HTTP_MAX_URL);
        goto fail;
    }

    h->headers = calloc(c->n_headers + 2, sizeof *h->headers);
    if (!h->headers) {
        snprintf(out, outlen, "out of memory");
        goto fail;
    }
    bool user_auth = env->auth_header_name && env->auth_header_value;
    if (user_auth) {
        buf hb;
        buf_init(&hb);
        buf_printf(&hb, "%s: %s", env->auth_header_name, env->auth_header_value);
        h->headers[h->n_headers++] = buf_detach(&hb);
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        if (user_auth && strcasecmp(c->header_names[i], env->auth_header_name) == 0) continue;
        buf hb;
        buf_init(&hb);
        buf_printf(&hb, "%s: ", c->header_names[i]);
        http_header_value(&hb, c->header_values[i], env->scope);
        h->headers[h->n_headers++] = buf_detach(&hb);
    }
    if (c->auth_provider) {
        if (!env->auth_header_name || !env->auth_header_value) {
            snprintf(out, outlen, "tool %s needs the user's credential for \"%s\", and none was given",
                     t->name, c->auth_provider);
            goto fail;
        }
        h->secret = http_token_of(c->auth_format, env->auth_header_value);
        h->auth_refused = env->auth_refused;
        h->auth_refused_arg = env->auth_refused_arg;
    }
    if (h->body && !has_header(c, "content-type"))
        h->headers[h->n_headers++] = strdup("Content-Type: application/json");

    const egress_policy pol = {
        .allow_private_networks = c->allow_private_networks,
        .max_redirects = c->max_redirects,
        .allow_nets = env->egress_allow_nets,
        .n_allow_nets = env->n_egress_allow_nets,
    };
    h->loop = env->loop;
    h->store = env->store;
    if (env->scope) {
        h->sc = *env->scope;
        h->has_scope = true;
    }
    snprintf(h->tool, sizeof h->tool, "%.64s", t->name);
    snprintf(h->run_id, sizeof h->run_id, "%s", env->request_id ? env->request_id : "");
    if (env->span) {   /* a call outside a run (a unit test) has no trace to join */
        h->span = obs_span_begin(obs_span_ctx(env->span), "egress", OBS_SPAN_CLIENT, env->scope);
        obs_span_set_str(h->span, "brigade.egress.tool", h->tool);
    }
    upstream_http_req req = {
        .method = method,
        .url = h->url,
        .headers = (const char *const *)h->headers,
        .n_headers = h->n_headers,
        .body = h->body,
        .body_len = h->body ? strlen(h->body) : 0,
        .timeout_ms = c->timeout_ms ? c->timeout_ms : 10000,
        .max_response_bytes = c->max_response_bytes ? c->max_response_bytes : 262144,
        .request_id = env->request_id,
        .egress = &pol,
        .egress_out = &h->egress,
    };
    h->fetch = upstream_http_fetch(env->upstream, &req, http_on_done, h);
    if (!h->fetch) {
        snprintf(out, outlen, "the request to %s could not be started", t->name);
        goto fail;
    }
    cJSON_Delete(used);
    return &h->base;

fail:
    cJSON_Delete(used);
    http_exec_free(h);
    return NULL;
}

void tool_http_cancel(tool_exec *x)
{
    http_exec *h = (http_exec *)x;
    if (h->fetch) upstream_fetch_cancel(h->fetch);
    http_exec_free(h);
}
