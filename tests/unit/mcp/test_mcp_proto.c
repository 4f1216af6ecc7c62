/* test_mcp_proto.c — the MCP client's pure readers and writers
 * (src/mcp/mcp_proto.h): JSON-RPC messages classified or refused with a
 * reason, the stdio transport's newline framing with its bound, the SSE
 * reader (line endings, multi-line data, ids kept across events, comments,
 * retry, the bound), and a tools/call result turned into text for a model
 * (text, image, resource, link, structuredContent, the cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp_proto.h"

/* ---- JSON-RPC ---- */

static mcp_msg parse_ok(const char *text)
{
    mcp_msg m;
    char err[200] = "";
    if (!mcp_msg_parse(text, strlen(text), &m, err, sizeof err)) fail_msg("refused %s: %s", text, err);
    return m;
}

static void parse_refused(const char *text, const char *why_part)
{
    mcp_msg m;
    char err[200] = "";
    if (mcp_msg_parse(text, strlen(text), &m, err, sizeof err)) fail_msg("accepted %s", text);
    if (!strstr(err, why_part)) fail_msg("%s: \"%s\" lacks \"%s\"", text, err, why_part);
}

static void test_jsonrpc_kinds(void **state)
{
    (void)state;
    mcp_msg m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}");
    assert_int_equal(m.kind, MCP_MSG_RESULT);
    assert_true(m.id_is_num);
    assert_int_equal(m.id_num, 7);
    assert_non_null(cJSON_GetObjectItemCaseSensitive(m.result, "tools"));
    mcp_msg_free(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"bad\"}}");
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_int_equal(m.error_code, -32602);
    assert_string_equal(m.error_message, "bad");
    mcp_msg_free(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"parse\"}}");
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_false(m.id_is_num);
    mcp_msg_free(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"id\":\"s-1\",\"method\":\"ping\"}");
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_string_equal(m.id_str, "s-1");
    assert_string_equal(m.method, "ping");
    mcp_msg_free(&m);

    m = parse_ok("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                 "\"params\":{\"progressToken\":4,\"progress\":1,\"total\":3}}");
    assert_int_equal(m.kind, MCP_MSG_NOTIFICATION);
    assert_string_equal(m.method, "notifications/progress");
    assert_non_null(m.params);
    mcp_msg_free(&m);
}

static void test_jsonrpc_refused(void **state)
{
    (void)state;
    parse_refused("", "empty");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}", "JSON");
    parse_refused("[{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}]", "batch");
    parse_refused("{\"jsonrpc\":\"1.0\",\"id\":1,\"result\":{}}", "\"jsonrpc\"");
    parse_refused("{\"id\":1,\"result\":{}}", "\"jsonrpc\"");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"result\":{}}", "integer");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":true,\"result\":{}}", "string or an integer");
    parse_refused("{\"jsonrpc\":\"2.0\",\"result\":{}}", "without an id");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{\"code\":1}}", "both");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"x\"}", "numeric code");
    parse_refused("{\"jsonrpc\":\"2.0\",\"method\":7}", "non-empty string");
    parse_refused("{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":3}", "object or an array");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"result\":{}}", "id");
    parse_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}} x", "after");
    parse_refused("{\"jsonrpc\":\"2.0\"}", "neither");
    parse_refused("\"just a string\"", "object");
}

static void test_jsonrpc_writers(void **state)
{
    (void)state;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", "line\nbreak");
    char *s = mcp_write_request(12, "tools/call", p);
    assert_null(strchr(s, '\n'));   /* one message, one line */
    mcp_msg m = parse_ok(s);
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_int_equal(m.id_num, 12);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m.params, "name")->valuestring, "line\nbreak");
    mcp_msg_free(&m);
    free(s);

    s = mcp_write_notification("notifications/initialized", NULL);
    assert_string_equal(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    free(s);

    cJSON *id = cJSON_CreateString("srv-9");
    s = mcp_write_response(id, NULL, -32601, "method not found");
    m = parse_ok(s);
    assert_int_equal(m.kind, MCP_MSG_ERROR);
    assert_string_equal(m.id_str, "srv-9");
    assert_int_equal(m.error_code, -32601);
    mcp_msg_free(&m);
    free(s);
    cJSON_Delete(id);
}

static void test_protocol_versions(void **state)
{
    (void)state;
    assert_true(mcp_protocol_version_ok("2025-11-25"));
    assert_true(mcp_protocol_version_ok("2025-06-18"));
    assert_true(mcp_protocol_version_ok("2025-03-26"));
    assert_false(mcp_protocol_version_ok("2024-11-05"));
    assert_false(mcp_protocol_version_ok(""));
    assert_false(mcp_protocol_version_ok(NULL));
}

/* ---- newline framing ---- */

typedef struct lines_seen {
    char     text[8][64];
    int      n, too_long;
} lines_seen;

static void on_line(void *arg, mcp_line_status st, const char *line, size_t len)
{
    lines_seen *ls = arg;
    if (st == MCP_LINE_TOO_LONG) {
        ls->too_long++;
        return;
    }
    if (ls->n < 8) snprintf(ls->text[ls->n++], 64, "%.*s", (int)len, line);
}

static void test_linebuf(void **state)
{
    (void)state;
    mcp_linebuf lb;
    mcp_linebuf_init(&lb, 16);
    lines_seen ls = {0};
    mcp_linebuf_feed(&lb, "ab", 2, on_line, &ls);
    assert_int_equal(ls.n, 0);
    mcp_linebuf_feed(&lb, "c\r\n\nde\n", 7, on_line, &ls);
    assert_int_equal(ls.n, 2);   /* the empty line is skipped, CR dropped */
    assert_string_equal(ls.text[0], "abc");
    assert_string_equal(ls.text[1], "de");
    /* a line past the bound: reported once, skipped to its newline */
    mcp_linebuf_feed(&lb, "0123456789abcdef", 16, on_line, &ls);
    mcp_linebuf_feed(&lb, "XYZ", 3, on_line, &ls);
    mcp_linebuf_feed(&lb, "more\nok\n", 8, on_line, &ls);
    assert_int_equal(ls.too_long, 1);
    assert_int_equal(ls.n, 3);
    assert_string_equal(ls.text[2], "ok");
    assert_true(lb.cap <= 17);   /* never more than the bound */
    mcp_linebuf_free(&lb);
}

/* ---- SSE ---- */

typedef struct events_seen {
    char ev[8][32], data[8][128], id[8][32];
    int  n;
    uint32_t retry;
} events_seen;

static void on_event(void *arg, const mcp_sse_event *e)
{
    events_seen *es = arg;
    if (es->n >= 8) return;
    snprintf(es->ev[es->n], 32, "%s", e->event);
    snprintf(es->data[es->n], 128, "%.*s", (int)e->data_len, e->data);
    snprintf(es->id[es->n], 32, "%s", e->id ? e->id : "(none)");
    es->retry = e->retry_ms;
    es->n++;
}

static void test_sse(void **state)
{
    (void)state;
    mcp_sse_reader r;
    mcp_sse_init(&r, 1024);
    events_seen es = {0};
    static const char stream[] =
        "\xEF\xBB\xBF: a comment\r\n"
        "event: message\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n"
        "data:no space\n\n"
        "retry: 1500\rdata: cr only\r\r"
        "id\nevent: other\ndata\n\n"
        "data: never dispatched";
    /* fed a byte at a time: chunk borders anywhere */
    for (size_t i = 0; i < sizeof stream - 1; i++) assert_true(mcp_sse_feed(&r, stream + i, 1, on_event, &es));
    assert_int_equal(es.n, 4);
    assert_string_equal(es.ev[0], "message");
    assert_string_equal(es.data[0], "{\"a\":\n1}");
    assert_string_equal(es.id[0], "1");
    assert_string_equal(es.data[1], "no space");
    assert_string_equal(es.id[1], "1");        /* the last id stays */
    assert_string_equal(es.data[2], "cr only");
    assert_int_equal(es.retry, 1500);
    assert_string_equal(es.ev[3], "other");
    assert_string_equal(es.data[3], "");       /* "data" alone: an empty line of data */
    assert_string_equal(es.id[3], "");         /* "id" alone resets it */
    mcp_sse_free(&r);

    /* the bound: a line longer than max stops the reader */
    mcp_sse_init(&r, 32);
    events_seen es2 = {0};
    char big[100];
    memset(big, 'x', sizeof big);
    assert_true(mcp_sse_feed(&r, "data: ", 6, on_event, &es2));
    assert_false(mcp_sse_feed(&r, big, sizeof big, on_event, &es2));
    assert_false(mcp_sse_feed(&r, "\n\n", 2, on_event, &es2));
    assert_int_equal(es2.n, 0);
    mcp_sse_free(&r);

    /* many data lines adding up past max: stopped too */
    mcp_sse_init(&r, 32);
    bool ok = true;
    for (int i = 0; i < 20 && ok; i++) ok = mcp_sse_feed(&r, "data: abcd\n", 11, on_event, &es2);
    assert_false(ok);
    mcp_sse_free(&r);
}

/* ---- content ---- */

static char *content_of(const char *json, size_t max, bool *is_error, size_t *total)
{
    cJSON *res = cJSON_Parse(json);
    assert_non_null(res);
    size_t len = 0;
    char *t = mcp_content_to_text(res, max, is_error, &len, total);
    assert_int_equal(strlen(t), len);
    cJSON_Delete(res);
    return t;
}

static void test_content(void **state)
{
    (void)state;
    bool err;
    size_t total;
    char *t = content_of("{\"content\":[{\"type\":\"text\",\"text\":\"one\"},"
                         "{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"},"
                         "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://r/1\",\"text\":\"body\"}},"
                         "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://r/2\",\"blob\":\"QUJD\",\"mimeType\":\"application/octet-stream\"}},"
                         "{\"type\":\"resource_link\",\"uri\":\"file:///x\",\"name\":\"x\"},"
                         "{\"type\":\"unknown\"}]}", 4096, &err, &total);
    assert_false(err);
    assert_string_equal(t, "one\n[image image/png, 4 bytes base64: not shown]\n"
                           "[resource test://r/1]\nbody\n"
                           "[resource test://r/2]\n[blob application/octet-stream, 4 bytes base64: not shown]\n"
                           "[resource link file:///x — x]");
    free(t);

    t = content_of("{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"boom\"}]}", 100, &err, &total);
    assert_true(err);
    assert_string_equal(t, "boom");
    free(t);

    t = content_of("{\"content\":[],\"structuredContent\":{\"temp\":21}}", 100, &err, &total);
    assert_string_equal(t, "{\"temp\":21}");
    free(t);

    /* the cap: nothing past max is copied, the whole length is counted */
    t = content_of("{\"content\":[{\"type\":\"text\",\"text\":\"0123456789\"},{\"type\":\"text\",\"text\":\"abcdef\"}]}",
                   8, &err, &total);
    assert_string_equal(t, "01234567");
    assert_int_equal(total, 17);
    free(t);

    t = content_of("{}", 8, &err, &total);
    assert_string_equal(t, "");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonrpc_kinds),     cmocka_unit_test(test_jsonrpc_refused),
        cmocka_unit_test(test_jsonrpc_writers),   cmocka_unit_test(test_protocol_versions),
        cmocka_unit_test(test_linebuf),           cmocka_unit_test(test_sse),
        cmocka_unit_test(test_content),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
