/* test_tools_exec.c — running tools for real: the clock (result shape, never
 * called back synchronously, cancel), the memory tool against a real store
 * in a temp dir with two users who must never see each other's entries,
 * and declared HTTP tools against a tiny libuv HTTP server on 127.0.0.1
 * (query strings, JSON bodies, URL placeholders, path traversal refused
 * before any request, undeclared arguments never sent, 404, timeout,
 * oversized response, output cap, cancel). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "identity/scope_mint.h"
#include "test_util.h"
#include "tools/tools.h"
#include "util/buf.h"
#include "util/ids.h"
#include "util/timeutil.h"

static uv_loop_t L;

/* ---- collecting a tool's result ---- */

typedef struct result {
    int    calls;
    bool   ok;
    char  *out;
    size_t len;
} result;

static void on_done(void *arg, bool ok, const char *output, size_t len)
{
    result *r = arg;
    r->calls++;
    r->ok = ok;
    free(r->out);
    r->out = malloc(len + 1);
    memcpy(r->out, output, len);
    r->out[len] = '\0';
    r->len = len;
    assert_int_equal(strlen(output), len);   /* NUL-terminated text */
}

/* Run the loop until the result arrives (or 5 s pass). */
static void wait_result(result *r)
{
    assert_int_equal(test_run_timed(&L, &r->calls, 5000), 1);
}

/* Run the loop for ms milliseconds. */
static void spin(unsigned ms)
{
    test_spin(&L, ms);
}

static result call_tool(const tool_def *t, const tool_env *env, const char *args)
{
    result r = {0};
    tool_exec *x = tools_execute(t, env, args, on_done, &r);
    assert_non_null(x);
    assert_int_equal(r.calls, 0);            /* never from inside tools_execute */
    wait_result(&r);
    return r;
}

static cJSON *parse_out(const result *r)
{
    cJSON *j = cJSON_Parse(r->out);
    if (!j) fail_msg("output is not JSON: %s", r->out);
    return j;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- fixture ---- */

static tool_registry *R;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&L), 0);
    char err[256];
    R = tools_registry_new(NULL, err, sizeof err);
    assert_non_null(R);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tools_registry_free(R);
    uv_run(&L, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&L), 0);   /* every handle was closed */
    return 0;
}

/* ================================ clock ================================ */

static void test_clock(void **state)
{
    (void)state;
    tool_env env = {.loop = &L, .max_output_bytes = 0};
    const tool_def *clk = tools_find(R, "clock");
    int64_t before = time_now_unix();
    result r = call_tool(clk, &env, "{}");
    int64_t after = time_now_unix();
    assert_true(r.ok);
    cJSON *j = parse_out(&r);
    const cJSON *unix_ts = cJSON_GetObjectItemCaseSensitive(j, "unix");
    assert_true(cJSON_IsNumber(unix_ts));
    assert_true(unix_ts->valuedouble >= (double)before && unix_ts->valuedouble <= (double)after);
    char iso[21];
    time_format_iso(iso, (int64_t)unix_ts->valuedouble);
    assert_string_equal(jstr(j, "utc"), iso);
    assert_int_equal(strlen(iso), 20);
    cJSON_Delete(j);
    free(r.out);

    /* explicit UTC, and an empty arguments string */
    r = call_tool(clk, &env, "{\"timezone\":\"UTC\"}");
    assert_true(r.ok);
    free(r.out);
    r = call_tool(clk, &env, "");
    assert_true(r.ok);
    free(r.out);
    /* another zone (as if validation were skipped): a failure that says why */
    r = call_tool(clk, &env, "{\"timezone\":\"Europe/Paris\"}");
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "only the timezone \\\"UTC\\\""));
    free(r.out);
    /* arguments that are not an object */
    r = call_tool(clk, &env, "[1]");
    assert_false(r.ok);
    free(r.out);

    /* cancel before the loop turns: never called back, nothing leaks */
    result c = {0};
    tool_exec *x = tools_execute(clk, &env, "{}", on_done, &c);
    tools_cancel(x);
    spin(20);
    assert_int_equal(c.calls, 0);
}

/* ================================ memory =============================== */

typedef struct mem_fx {
    char   dir[64];
    store *st;
    scope  a, b;
} mem_fx;

static void mem_open(mem_fx *f)
{
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-tools");
    if (!f->st) fail_msg("store_open in %s failed", f->dir);
    /* a tenant with two users, made the way the admin API would */
    scope admin, ta;
    scope_mint_server_admin(&admin);
    char tid[ID_MAX], uid[2][ID_MAX];
    assert_int_equal(test_store_tenant(f->st, &admin, "tools-test", tid), STORE_OK);
    scope_mint_tenant_admin(&ta, tid, "key_ta");
    assert_int_equal(test_store_user(f->st, &ta, "user-0", uid[0]), STORE_OK);
    assert_int_equal(test_store_user(f->st, &ta, "user-1", uid[1]), STORE_OK);
    scope_mint_user(&f->a, tid, uid[0], "key_a", "default");
    scope_mint_user(&f->b, tid, uid[1], "key_b", "default");
}

static void mem_close(mem_fx *f)
{
    test_store_close(f->st, f->dir);
}

static result mem_call(const mem_fx *f, const scope *sc, const char *args)
{
    tool_env env = {.loop = &L, .store = f->st, .scope = sc};
    return call_tool(tools_find(R, "memory"), &env, args);
}

static void expect_mem(const mem_fx *f, const scope *sc, const char *args, bool ok,
                       const char *contains)
{
    result r = mem_call(f, sc, args);
    if (r.ok != ok) fail_msg("%s: ok=%d, output %s", args, r.ok, r.out);
    if (contains && !strstr(r.out, contains))
        fail_msg("%s: output %s lacks %s", args, r.out, contains);
    free(r.out);
}

static void test_memory_tool(void **state)
{
    (void)state;
    mem_fx f;
    mem_open(&f);

    expect_mem(&f, &f.a, "{\"action\":\"save\",\"key\":\"colour\",\"value\":\"favourite colour is blue\"}",
               true, "{\"saved\":\"colour\"}");
    result r = mem_call(&f, &f.a, "{\"action\":\"recall\",\"key\":\"colour\"}");
    assert_true(r.ok);
    cJSON *j = parse_out(&r);
    assert_string_equal(jstr(j, "key"), "colour");
    assert_string_equal(jstr(j, "value"), "favourite colour is blue");
    cJSON_Delete(j);
    free(r.out);

    /* user B sees nothing of A's */
    expect_mem(&f, &f.b, "{\"action\":\"recall\",\"key\":\"colour\"}", false,
               "{\"error\":\"no memory with key \\\"colour\\\"\"}");
    r = mem_call(&f, &f.b, "{\"action\":\"search\",\"query\":\"colour blue\"}");
    assert_true(r.ok);
    j = parse_out(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 0);
    cJSON_Delete(j);
    free(r.out);
    expect_mem(&f, &f.b, "{\"action\":\"delete\",\"key\":\"colour\"}", false, "no memory with key");

    /* A's search finds it */
    r = mem_call(&f, &f.a, "{\"action\":\"search\",\"query\":\"blue\"}");
    assert_true(r.ok);
    j = parse_out(&r);
    cJSON *res = cJSON_GetObjectItem(j, "results");
    assert_int_equal(cJSON_GetArraySize(res), 1);
    assert_string_equal(jstr(cJSON_GetArrayItem(res, 0), "key"), "colour");
    cJSON_Delete(j);
    free(r.out);

    /* B keeps its own entry under the same key */
    expect_mem(&f, &f.b, "{\"action\":\"save\",\"key\":\"colour\",\"value\":\"green\"}", true, NULL);
    expect_mem(&f, &f.a, "{\"action\":\"recall\",\"key\":\"colour\"}", true, "blue");
    expect_mem(&f, &f.b, "{\"action\":\"recall\",\"key\":\"colour\"}", true, "green");

    /* search is limited to 10; an empty query lists the newest */
    for (int i = 0; i < 12; i++) {
        char args[160];
        snprintf(args, sizeof args,
                 "{\"action\":\"save\",\"key\":\"cat-%d\",\"value\":\"note %d about cats\"}", i, i);
        expect_mem(&f, &f.a, args, true, "saved");
    }
    r = mem_call(&f, &f.a, "{\"action\":\"search\",\"query\":\"cats\"}");
    j = parse_out(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 10);
    cJSON_Delete(j);
    free(r.out);
    r = mem_call(&f, &f.a, "{\"action\":\"search\",\"query\":\"\"}");
    assert_true(r.ok);
    j = parse_out(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 10);
    cJSON_Delete(j);
    free(r.out);
    r = mem_call(&f, &f.b, "{\"action\":\"search\",\"query\":\"cats\"}");
    j = parse_out(&r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "results")), 0);
    cJSON_Delete(j);
    free(r.out);

    /* delete */
    expect_mem(&f, &f.a, "{\"action\":\"delete\",\"key\":\"colour\"}", true, "{\"deleted\":\"colour\"}");
    expect_mem(&f, &f.a, "{\"action\":\"recall\",\"key\":\"colour\"}", false, "no memory");
    expect_mem(&f, &f.b, "{\"action\":\"recall\",\"key\":\"colour\"}", true, "green");

    /* per-action requirements, with messages that say what is missing */
    expect_mem(&f, &f.a, "{\"action\":\"save\",\"key\":\"x\"}", false, "needs \\\"value\\\"");
    expect_mem(&f, &f.a, "{\"action\":\"recall\"}", false, "needs \\\"key\\\"");
    expect_mem(&f, &f.a, "{\"action\":\"search\"}", false, "needs \\\"query\\\"");
    expect_mem(&f, &f.a, "{\"action\":\"fly\"}", false, "unknown action");
    expect_mem(&f, &f.a, "{\"action\":\"recall\",\"key\":\"a\\nb\"}", false, "control characters");

    /* a run without a user scope gets nothing */
    scope none;
    memset(&none, 0, sizeof none);
    expect_mem(&f, &none, "{\"action\":\"recall\",\"key\":\"cat-1\"}", false, "not available");

    /* cancel with the store call queued or running: no callback, no leak */
    tool_env env = {.loop = &L, .store = f.st, .scope = &f.a};
    result c = {0};
    tool_exec *x = tools_execute(tools_find(R, "memory"), &env,
                                 "{\"action\":\"save\",\"key\":\"late\",\"value\":\"v\"}",
                                 on_done, &c);
    assert_non_null(x);
    tools_cancel(x);
    spin(200);
    assert_int_equal(c.calls, 0);
    /* output capped to the env's maximum */
    env.max_output_bytes = 60;
    r = call_tool(tools_find(R, "memory"), &env, "{\"action\":\"search\",\"query\":\"cats\"}");
    assert_true(r.ok);
    assert_true(r.len <= 60);
    assert_non_null(strstr(r.out, "[output cut:"));
    free(r.out);

    mem_close(&f);
}

/* ============================ HTTP tools ============================== */

/* A tiny HTTP/1.1 server: reads one request per connection, answers by
 * path, closes. /slow never answers (until the test ends). */
typedef struct srv_conn {
    uv_tcp_t         tcp;
    buf              in;
    struct srv_conn *next;
    bool             closing;
} srv_conn;

static uv_tcp_t SRV;
static int SRV_PORT;
static srv_conn *SRV_CONNS;
static int SRV_REQUESTS;

static void conn_closed(uv_handle_t *h)
{
    srv_conn *c = h->data;
    for (srv_conn **p = &SRV_CONNS; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    buf_free(&c->in);
    free(c);
}

static void conn_close(srv_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

typedef struct srv_write {
    uv_write_t w;
    char      *data;
    srv_conn  *c;
} srv_write;

static void write_done(uv_write_t *w, int status)
{
    (void)status;
    srv_write *sw = (srv_write *)w;
    free(sw->data);
    conn_close(sw->c);
    free(sw);
}

static void conn_send(srv_conn *c, int status, const char *reason, const char *body, size_t len)
{
    buf b;
    buf_init(&b);
    buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n", status, reason, len);
    buf_append(&b, body, len);
    srv_write *sw = calloc(1, sizeof *sw);
    sw->c = c;
    size_t n = b.len;
    sw->data = buf_detach(&b);
    uv_buf_t ub = uv_buf_init(sw->data, (unsigned)n);
    uv_write(&sw->w, (uv_stream_t *)&c->tcp, &ub, 1, write_done);
}

static const char *find_header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            *vlen = (size_t)(strstr(v, "\r\n") - v);
            return v;
        }
    }
    return NULL;
}

static void conn_handle(srv_conn *c)
{
    char *end = strstr(c->in.data, "\r\n\r\n");
    if (!end) return;
    size_t head_len = (size_t)(end - c->in.data) + 4;
    size_t vlen = 0, body_len = 0;
    const char *cl = find_header(c->in.data, "content-length", &vlen);
    if (cl) body_len = strtoul(cl, NULL, 10);
    if (c->in.len < head_len + body_len) return;
    SRV_REQUESTS++;

    char method[16] = "", target[1024] = "";
    sscanf(c->in.data, "%15s %1023s", method, target);
    if (strcmp(target, "/slow") == 0) return;            /* never answers */
    if (strncmp(target, "/missing", 8) == 0) {
        conn_send(c, 404, "Not Found", "not here", 8);
        return;
    }
    if (strncmp(target, "/big", 4) == 0) {
        char *big = malloc(10000);
        memset(big, 'x', 10000);
        conn_send(c, 200, "OK", big, 10000);
        free(big);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "target", target);
    char *body = strndup(c->in.data + head_len, body_len);
    cJSON_AddStringToObject(o, "body", body);
    free(body);
    const char *names[] = {"content-type", "x-api-key", "x-request-id"};
    for (int i = 0; i < 3; i++) {
        const char *v = find_header(c->in.data, names[i], &vlen);
        if (v) {
            char *vv = strndup(v, vlen);
            cJSON_AddStringToObject(o, names[i], vv);
            free(vv);
        }
    }
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    conn_send(c, 200, "OK", txt, strlen(txt));
    free(txt);
}

static void srv_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

static void srv_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    srv_conn *c = s->data;
    if (n > 0) {
        buf_append(&c->in, b->base, (size_t)n);
        conn_handle(c);
    } else if (n < 0) {
        conn_close(c);
    }
    free(b->base);
}

static void srv_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    srv_conn *c = calloc(1, sizeof *c);
    buf_init(&c->in);
    uv_tcp_init(&L, &c->tcp);
    c->tcp.data = c;
    c->next = SRV_CONNS;
    SRV_CONNS = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) == 0)
        uv_read_start((uv_stream_t *)&c->tcp, srv_alloc, srv_read);
    else
        conn_close(c);
}

static void srv_start(void)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&L, &SRV);
    assert_int_equal(uv_tcp_bind(&SRV, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&SRV, 16, srv_accept), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&SRV, (struct sockaddr *)&got, &len);
    SRV_PORT = ntohs(got.sin_port);
    SRV_REQUESTS = 0;
}

static void srv_stop(void)
{
    for (srv_conn *c = SRV_CONNS; c; c = c->next) conn_close(c);
    uv_close((uv_handle_t *)&SRV, NULL);
    uv_run(&L, UV_RUN_NOWAIT);
}

/* One declared tool on the test server. */
typedef struct http_fx {
    brigade_config cfg;
    tool_cfg       tc;
    char           url[256];
    char          *hn[1], *hv[1];
    tool_registry *reg;
    upstream      *up;
} http_fx;

static void http_open(http_fx *f, const char *method, const char *path, const char *params)
{
    memset(f, 0, sizeof *f);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", SRV_PORT, path);
    f->tc.name = "t";
    f->tc.description = "test";
    f->tc.url = f->url;
    f->tc.method = (char *)method;
    f->hn[0] = "X-Api-Key";
    f->hv[0] = "secret-1";
    f->tc.header_names = f->hn;
    f->tc.header_values = f->hv;
    f->tc.n_headers = 1;
    f->tc.parameters_json = (char *)params;
    f->tc.timeout_ms = 2000;
    f->tc.allow_private_networks = true;   /* the test server is on loopback */
    f->tc.max_response_bytes = 100000;
    f->cfg.tools = &f->tc;
    f->cfg.n_tools = 1;
    char err[256];
    f->reg = tools_registry_new(&f->cfg, err, sizeof err);
    if (!f->reg) fail_msg("registry: %s", err);
    f->up = upstream_new(&L, &f->cfg);
}

static void http_close(http_fx *f)
{
    tools_registry_free(f->reg);
    upstream_free(f->up);
    uv_run(&L, UV_RUN_NOWAIT);
}

static result http_call(http_fx *f, const char *args, size_t max_out)
{
    tool_env env = {.loop = &L, .upstream = f->up, .max_output_bytes = max_out,
                    .request_id = "req-tools-1"};
    const tool_def *t = tools_find(f->reg, "t");
    char err[256];
    if (!tools_validate_args(t, args, err, sizeof err)) fail_msg("invalid: %s", err);
    return call_tool(t, &env, args);
}

static void test_http_get_query_and_placeholders(void **state)
{
    (void)state;
    srv_start();
    http_fx f;
    http_open(&f, "GET", "/items/{id}?fixed=1",
              "{\"type\":\"object\",\"properties\":{\"id\":{},\"q\":{},\"n\":{},"
              "\"flag\":{},\"skip\":{},\"f\":{}}}");
    result r = http_call(&f, "{\"id\":\"a b?c#d\",\"q\":\"x&y=z\",\"n\":3,\"flag\":true,"
                             "\"skip\":null,\"f\":1.5}", 0);
    if (!r.ok) fail_msg("failed: %s", r.out);
    cJSON *j = parse_out(&r);
    assert_string_equal(jstr(j, "method"), "GET");
    assert_string_equal(jstr(j, "target"),
                        "/items/a%20b%3Fc%23d?fixed=1&q=x%26y%3Dz&n=3&flag=true&f=1.5");
    assert_string_equal(jstr(j, "body"), "");
    assert_string_equal(jstr(j, "x-api-key"), "secret-1");
    assert_string_equal(jstr(j, "x-request-id"), "req-tools-1");
    cJSON_Delete(j);
    free(r.out);
    http_close(&f);

    /* DELETE also sends a query; a template without "?" gets one */
    http_open(&f, "DELETE", "/things/{id}",
              "{\"type\":\"object\",\"properties\":{\"id\":{},\"hard\":{}}}");
    r = http_call(&f, "{\"id\":7,\"hard\":false}", 0);
    assert_true(r.ok);
    j = parse_out(&r);
    assert_string_equal(jstr(j, "method"), "DELETE");
    assert_string_equal(jstr(j, "target"), "/things/7?hard=false");
    cJSON_Delete(j);
    free(r.out);
    http_close(&f);
    srv_stop();
}

static void test_http_post_json_body(void **state)
{
    (void)state;
    srv_start();
    http_fx f;
    http_open(&f, "POST", "/users/{user}/notes",
              "{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"string\"},"
              "\"text\":{\"type\":\"string\"},\"tags\":{\"type\":\"array\","
              "\"items\":{\"type\":\"string\"}}},\"required\":[\"user\",\"text\"]}");
    result r = http_call(&f, "{\"user\":\"u 1\",\"text\":\"h\xc3\xa9llo\",\"tags\":[\"a\",\"b\"]}", 0);
    if (!r.ok) fail_msg("failed: %s", r.out);
    cJSON *j = parse_out(&r);
    assert_string_equal(jstr(j, "method"), "POST");
    assert_string_equal(jstr(j, "target"), "/users/u%201/notes");
    assert_string_equal(jstr(j, "content-type"), "application/json");
    cJSON *body = cJSON_Parse(jstr(j, "body"));
    assert_non_null(body);
    assert_null(cJSON_GetObjectItem(body, "user"));     /* used by the URL */
    assert_string_equal(jstr(body, "text"), "h\xc3\xa9llo");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(body, "tags")), 2);
    cJSON_Delete(body);
    cJSON_Delete(j);
    free(r.out);

    /* a placeholder whose argument is missing fails before any request */
    int before = SRV_REQUESTS;
    tool_env env = {.loop = &L, .upstream = f.up};
    r = call_tool(tools_find(f.reg, "t"), &env, "{\"text\":\"x\"}");
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "the URL needs a non-empty \"user\""));
    assert_int_equal(SRV_REQUESTS, before);
    free(r.out);
    http_close(&f);
    srv_stop();
}

/* The attack of issue 10 item 3: a placeholder value that would leave its
 * path segment reaches another endpoint with the tool's credential. Every
 * such value is refused before any request; harmless ones still go out. */
static void test_http_path_traversal_refused(void **state)
{
    (void)state;
    srv_start();
    http_fx f;
    http_open(&f, "GET", "/api/projects/{project}/tickets",
              "{\"type\":\"object\",\"properties\":{\"project\":{\"type\":\"string\"}},"
              "\"required\":[\"project\"]}");
    const tool_def *t = tools_find(f.reg, "t");
    tool_env env = {.loop = &L, .upstream = f.up};
    static const char *const bad[] = {
        "..", ".", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "%252e%252e", "%25252e%25252e",
        "a/b", "../tickets", "%2f", "%2F..", "a\\\\b", "..\\\\", "%5c", "..;x", ".;",
        "%2e%2e;jsessionid=1", "a\\nb", "a\\tb", "%00", "%0a", "\\u007f",
        "%c0%ae%c0%ae",                        /* overlong "." once decoded */
        "\xef\xbc\x8e\xef\xbc\x8e",      /* FULLWIDTH FULL STOP ×2 */
        "\xe2\x80\xa5",                     /* TWO DOT LEADER */
        "a\xef\xbc\x8f" "b",                 /* FULLWIDTH SOLIDUS */
        "%EF%BC%8F",                           /* the same, encoded */
    };
    int before = SRV_REQUESTS;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "{\"project\":\"%s\"}", bad[i]);
        char err[256];
        if (!tools_validate_args(t, args, err, sizeof err)) fail_msg("invalid %s: %s", args, err);
        result r = call_tool(t, &env, args);
        if (r.ok) fail_msg("accepted %s", args);
        if (!strstr(r.out, "arguments.project: refused for the URL path"))
            fail_msg("%s: %s", args, r.out);
        free(r.out);
    }
    /* the empty value is refused too (its own message) */
    result r = call_tool(t, &env, "{\"project\":\"\"}");
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "non-empty \"project\""));
    free(r.out);
    spin(50);
    assert_int_equal(SRV_REQUESTS, before);

    /* harmless values with dots, percent signs and spaces still go out,
     * encoded into one segment */
    static const char *const good[][2] = {
        {"web", "/api/projects/web/tickets"},
        {"a.b", "/api/projects/a.b/tickets"},
        {"...", "/api/projects/.../tickets"},
        {"..a", "/api/projects/..a/tickets"},
        {"100%", "/api/projects/100%25/tickets"},
        {"%zz", "/api/projects/%25zz/tickets"},
        {"S\xc3\xa3o Paulo", "/api/projects/S%C3%A3o%20Paulo/tickets"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char args[256];
        snprintf(args, sizeof args, "{\"project\":\"%s\"}", good[i][0]);
        r = http_call(&f, args, 0);
        if (!r.ok) fail_msg("refused %s: %s", args, r.out);
        cJSON *j = parse_out(&r);
        assert_string_equal(jstr(j, "target"), good[i][1]);
        cJSON_Delete(j);
        free(r.out);
    }
    http_close(&f);

    /* a placeholder in the query may hold slashes and dots: it is encoded
     * and cannot leave its parameter */
    http_open(&f, "GET", "/search?q={q}",
              "{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}");
    r = http_call(&f, "{\"q\":\"../a&b=c#d\"}", 0);
    if (!r.ok) fail_msg("failed: %s", r.out);
    cJSON *j = parse_out(&r);
    assert_string_equal(jstr(j, "target"), "/search?q=..%2Fa%26b%3Dc%23d");
    cJSON_Delete(j);
    free(r.out);
    http_close(&f);
    srv_stop();
}

/* Arguments the schema does not declare never reach the endpoint, even when
 * the schema lets them pass validation (additionalProperties: true). */
static void test_http_undeclared_not_sent(void **state)
{
    (void)state;
    srv_start();
    http_fx f;
    http_open(&f, "POST", "/notes",
              "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\"}},"
              "\"additionalProperties\":true}");
    result r = http_call(&f, "{\"text\":\"hi\",\"admin\":true,\"owner\":\"someone\"}", 0);
    if (!r.ok) fail_msg("failed: %s", r.out);
    cJSON *j = parse_out(&r);
    cJSON *body = cJSON_Parse(jstr(j, "body"));
    assert_non_null(body);
    assert_string_equal(jstr(body, "text"), "hi");
    assert_int_equal(cJSON_GetArraySize(body), 1);
    cJSON_Delete(body);
    cJSON_Delete(j);
    free(r.out);
    http_close(&f);

    http_open(&f, "GET", "/list",
              "{\"type\":\"object\",\"properties\":{\"page\":{\"type\":\"integer\"}},"
              "\"additionalProperties\":true}");
    r = http_call(&f, "{\"page\":2,\"debug\":true}", 0);
    if (!r.ok) fail_msg("failed: %s", r.out);
    j = parse_out(&r);
    assert_string_equal(jstr(j, "target"), "/list?page=2");
    cJSON_Delete(j);
    free(r.out);
    http_close(&f);

    /* by default the extra argument is refused by validation, not dropped */
    http_open(&f, "GET", "/list",
              "{\"type\":\"object\",\"properties\":{\"page\":{\"type\":\"integer\"}}}");
    char err[256];
    assert_false(tools_validate_args(tools_find(f.reg, "t"), "{\"page\":2,\"debug\":true}", err,
                                     sizeof err));
    assert_string_equal(err, "arguments: unknown property \"debug\" (allowed: page)");
    http_close(&f);
    srv_stop();
}

static void test_http_errors(void **state)
{
    (void)state;
    srv_start();
    http_fx f;
    http_open(&f, "GET", "/missing", NULL);
    result r = http_call(&f, "{}", 0);
    assert_false(r.ok);
    assert_string_equal(r.out, "HTTP 404: not here");
    free(r.out);
    http_close(&f);

    /* egress: without the operator's allowance the loopback server is
     * refused, and the model is told the class, not the URL */
    http_open(&f, "GET", "/missing", NULL);
    f.tc.allow_private_networks = false;
    r = http_call(&f, "{}", 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "egress refused: 127.0.0.1 is"));
    assert_non_null(strstr(r.out, "class loopback"));
    assert_null(strstr(r.out, "/missing"));
    free(r.out);
    /* the operator's egress.allow_networks naming it lets it through */
    egress_net lo;
    char why[64];
    assert_true(egress_net_parse("127.0.0.0/8", &lo, why, sizeof why));
    tool_env listed = {.loop = &L, .upstream = f.up, .request_id = "req-tools-1",
                       .egress_allow_nets = &lo, .n_egress_allow_nets = 1};
    r = call_tool(tools_find(f.reg, "t"), &listed, "{}");
    assert_false(r.ok);
    assert_string_equal(r.out, "HTTP 404: not here");
    free(r.out);
    http_close(&f);

    /* timeout */
    http_open(&f, "GET", "/slow", NULL);
    f.tc.timeout_ms = 300;
    uint64_t t0 = time_mono_ns();
    r = http_call(&f, "{}", 0);
    uint64_t ms = (time_mono_ns() - t0) / 1000000;
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "the request failed"));
    assert_non_null(strstr(r.out, "timed out"));
    assert_true(ms >= 250 && ms < 3000);
    free(r.out);
    http_close(&f);

    /* oversized response */
    http_open(&f, "GET", "/big", NULL);
    f.tc.max_response_bytes = 1000;
    r = http_call(&f, "{}", 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "response over 1000 bytes"));
    free(r.out);
    http_close(&f);

    /* a large response within the tool's limit is cut to the agent's cap */
    http_open(&f, "GET", "/big", NULL);
    r = http_call(&f, "{}", 200);
    assert_true(r.ok);
    assert_true(r.len <= 200);
    assert_non_null(strstr(r.out, "[output cut: "));
    assert_non_null(strstr(r.out, "of 10000 bytes]"));
    free(r.out);
    http_close(&f);

    /* nothing listening */
    memset(&f, 0, sizeof f);
    http_open(&f, "GET", "/x", NULL);
    snprintf(f.url, sizeof f.url, "http://127.0.0.1:1/x");
    r = http_call(&f, "{}", 0);
    assert_false(r.ok);
    assert_non_null(strstr(r.out, "the request failed"));
    free(r.out);
    http_close(&f);

    /* cancel in flight: no callback */
    http_open(&f, "GET", "/slow", NULL);
    tool_env env = {.loop = &L, .upstream = f.up};
    result c = {0};
    tool_exec *x = tools_execute(tools_find(f.reg, "t"), &env, "{}", on_done, &c);
    assert_non_null(x);
    spin(50);
    tools_cancel(x);
    spin(50);
    assert_int_equal(c.calls, 0);
    http_close(&f);
    srv_stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_tool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_get_query_and_placeholders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_post_json_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_path_traversal_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_undeclared_not_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
