/* test_responses_passthrough.c — the Responses passthrough rewriting
 * (responses_passthrough.c): what a provider with `responses: passthrough`
 * is sent (store false, no previous_response_id, the chain expanded into
 * input with brigade's item ids stripped, the governed output cap), and how
 * its answer, whole or streamed, becomes brigade's Response (brigade's
 * response and item ids, the client's previous_response_id, usage bounded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/responses_translate.h"

static brigade_config cfg;

static int setup(void **state)
{
    (void)state;
    config_defaults(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    config_free(&cfg);
    return 0;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static responses_request parse_ok(const char *body)
{
    responses_request r;
    chat_request_error e;
    if (!responses_request_parse(body, strlen(body), &cfg, &r, &e)) {
        print_error("refused: %s (%s)\n", e.message, e.param);
        fail();
    }
    return r;
}

static void test_model_passthrough_needs_every_deployment(void **state)
{
    (void)state;
    model_cfg *m = &cfg.models[0];
    provider_cfg *p = m->provider;
    assert_false(responses_model_passthrough(m));          /* a mock provider */
    p->kind = PROVIDER_OPENAI;
    assert_false(responses_model_passthrough(m));          /* translate, the default */
    p->responses_passthrough = true;
    assert_true(responses_model_passthrough(m));
    provider_cfg other = *p;
    other.responses_passthrough = false;
    deployment_cfg deps[2] = {{.provider = p}, {.provider = &other}};
    m->deployments = deps;
    m->n_deployments = 2;
    assert_false(responses_model_passthrough(m));          /* one deployment translates */
    other.responses_passthrough = true;
    assert_true(responses_model_passthrough(m));
    m->deployments = NULL;
    m->n_deployments = 0;
    /* a fallback that translates makes the model translate */
    model_cfg fb = {.provider = &other};
    const model_cfg *fbs[1] = {&fb};
    m->fallback_models = fbs;
    m->n_fallbacks = 1;
    assert_true(responses_model_passthrough(m));
    other.responses_passthrough = false;
    assert_false(responses_model_passthrough(m));
    m->fallback_models = NULL;
    m->n_fallbacks = 0;
    p->kind = PROVIDER_MOCK;
    p->responses_passthrough = false;
}

static void test_body_store_false_chain_expanded(void **state)
{
    (void)state;
    responses_request r = parse_ok(
        "{\"model\":\"mock-small\",\"input\":[{\"id\":\"msg_client\",\"type\":\"message\",\"role\":\"user\","
        "\"content\":\"now\"}],\"previous_response_id\":\"resp_000000000000000000000001\",\"store\":true,"
        "\"stream\":true,\"stream_options\":{\"include_obfuscation\":false},\"max_output_tokens\":50,"
        "\"instructions\":\"be brief\",\"metadata\":{\"k\":\"v\"}}");
    cJSON *history = cJSON_Parse(
        "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"before\"},"
        "{\"id\":\"rs_brigade\",\"type\":\"reasoning\",\"summary\":[]},"
        "{\"id\":\"fc_brigade\",\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"ok\"}]");
    size_t len = 0;
    char *body = responses_passthrough_body(&r, history, "up-name", 40, &len);
    assert_int_equal(len, strlen(body));
    cJSON *b = cJSON_Parse(body);
    assert_non_null(b);
    assert_string_equal(get(b, "model")->valuestring, "up-name");
    assert_true(cJSON_IsFalse(get(b, "store")));
    assert_null(get(b, "previous_response_id"));
    assert_null(get(b, "stream"));
    assert_null(get(b, "stream_options"));
    assert_int_equal(get(b, "max_output_tokens")->valueint, 40);
    assert_string_equal(get(b, "instructions")->valuestring, "be brief");
    const cJSON *input = get(b, "input");
    assert_int_equal(cJSON_GetArraySize(input), 4);      /* the reasoning item dropped */
    const char *types[] = {"message", "function_call", "function_call_output", "message"};
    for (int i = 0; i < 4; i++) {
        const cJSON *it = cJSON_GetArrayItem(input, i);
        assert_string_equal(get(it, "type")->valuestring, types[i]);
        assert_null(get(it, "id"));                       /* brigade's ids never sent */
    }
    assert_string_equal(get(cJSON_GetArrayItem(input, 3), "content")->valuestring, "now");
    assert_null(strstr(body, "resp_000000000000000000000001"));
    cJSON_Delete(b);
    free(body);
    cJSON_Delete(history);
    responses_request_free(&r);
}

static void test_object_from_provider_ids_replaced(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\","
                                   "\"previous_response_id\":\"resp_000000000000000000000002\"}");
    cJSON *resp = responses_object_new(&r, "resp_mine", 1700000000);
    responses_stream s;
    responses_stream_init(&s, resp);
    const char *theirs =
        "{\"id\":\"resp_THEIRS\",\"object\":\"response\",\"status\":\"incomplete\",\"previous_response_id\":\"resp_THEIRPREV\","
        "\"incomplete_details\":{\"reason\":\"max_output_tokens\"},\"model\":\"up\",\"metadata\":{\"x\":\"THEIRS\"},"
        "\"output\":[{\"id\":\"msg_THEIRS\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"hi\"}]},"
        "{\"id\":\"fc_THEIRS\",\"type\":\"function_call\",\"call_id\":\"call_7\",\"name\":\"f\",\"arguments\":\"{}\"}],"
        "\"usage\":{\"input_tokens\":12,\"output_tokens\":-5,\"output_tokens_details\":{\"reasoning_tokens\":3}}}";
    assert_true(responses_object_from_provider(&s, theirs, strlen(theirs)));
    char *text = cJSON_PrintUnformatted(resp);
    assert_null(strstr(text, "THEIR"));
    free(text);
    assert_string_equal(get(resp, "id")->valuestring, "resp_mine");
    assert_string_equal(get(resp, "previous_response_id")->valuestring, "resp_000000000000000000000002");
    assert_string_equal(get(resp, "status")->valuestring, "incomplete");
    assert_string_equal(get(get(resp, "incomplete_details"), "reason")->valuestring, "max_output_tokens");
    const cJSON *out = get(resp, "output");
    assert_int_equal(cJSON_GetArraySize(out), 2);
    assert_int_equal(strncmp(get(cJSON_GetArrayItem(out, 0), "id")->valuestring, "msg_", 4), 0);
    assert_int_equal(strncmp(get(cJSON_GetArrayItem(out, 1), "id")->valuestring, "fc_", 3), 0);
    assert_string_equal(get(cJSON_GetArrayItem(out, 1), "call_id")->valuestring, "call_7");
    const cJSON *u = get(resp, "usage");
    assert_int_equal(get(u, "input_tokens")->valueint, 12);
    assert_int_equal(get(u, "output_tokens")->valueint, 0);    /* a negative count is no count */
    assert_int_equal(get(u, "total_tokens")->valueint, 12);
    assert_int_equal(get(get(u, "output_tokens_details"), "reasoning_tokens")->valueint, 3);
    /* not a Response: refused */
    const char *bad[] = {"not json", "{\"object\":\"chat.completion\",\"choices\":[]}",
                         "{\"object\":\"response\",\"status\":\"failed\",\"output\":[]}", "[]",
                         "{\"object\":\"response\",\"output\":{}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(responses_object_from_provider(&s, bad[i], strlen(bad[i])));
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
}

static void test_stream_relay(void **state)
{
    (void)state;
    responses_request r = parse_ok("{\"model\":\"mock-small\",\"input\":\"x\",\"stream\":true}");
    cJSON *resp = responses_object_new(&r, "resp_mine", 1700000000);
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    responses_stream_begin(&s, &out);                      /* brigade's created + in_progress: 0, 1 */
    size_t opened = out.len;
    const char *created = "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_THEIRS\"}}";
    assert_true(responses_stream_relay(&s, created, strlen(created), &out));
    assert_int_equal(out.len, opened);                     /* the provider's is dropped */
    const char *added = "{\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,"
                        "\"item\":{\"id\":\"msg_THEIRS\",\"type\":\"message\",\"content\":[]}}";
    const char *delta = "{\"type\":\"response.output_text.delta\",\"sequence_number\":5,\"item_id\":\"msg_THEIRS\","
                        "\"output_index\":0,\"content_index\":0,\"delta\":\"hi\"}";
    assert_true(responses_stream_relay(&s, added, strlen(added), &out));
    assert_true(responses_stream_relay(&s, delta, strlen(delta), &out));
    buf_append(&out, "", 1);
    assert_null(strstr(out.data, "THEIRS"));
    const char *a = strstr(out.data, "event: response.output_item.added\ndata: ");
    const char *d = strstr(out.data, "event: response.output_text.delta\ndata: ");
    assert_non_null(a);
    assert_non_null(d);
    a = strstr(a, "data: ") + 6;
    d = strstr(d, "data: ") + 6;
    cJSON *ja = cJSON_ParseWithLength(a, (size_t)(strstr(a, "\n\n") - a));
    cJSON *jd = cJSON_ParseWithLength(d, (size_t)(strstr(d, "\n\n") - d));
    assert_int_equal(get(ja, "sequence_number")->valueint, 2);
    assert_int_equal(get(jd, "sequence_number")->valueint, 3);
    const char *mine = get(get(ja, "item"), "id")->valuestring;
    assert_int_equal(strncmp(mine, "msg_", 4), 0);
    assert_string_equal(get(jd, "item_id")->valuestring, mine);
    /* the terminal event fills the Response, with the same item id, and is not sent */
    out.len = 0;
    const char *done = "{\"type\":\"response.completed\",\"sequence_number\":9,\"response\":{\"id\":\"resp_THEIRS\","
                       "\"object\":\"response\",\"status\":\"completed\",\"output\":[{\"id\":\"msg_THEIRS\",\"type\":\"message\","
                       "\"content\":[{\"type\":\"output_text\",\"text\":\"hi\"}]}],\"usage\":{\"input_tokens\":4,\"output_tokens\":1}}}";
    assert_true(responses_stream_relay(&s, done, strlen(done), &out));
    assert_true(s.relay_done);
    assert_int_equal(out.len, 0);
    assert_string_equal(get(cJSON_GetArrayItem(get(resp, "output"), 0), "id")->valuestring, mine);
    assert_string_equal(get(resp, "id")->valuestring, "resp_mine");
    assert_int_equal(get(get(resp, "usage"), "total_tokens")->valueint, 5);
    /* not Responses events */
    const char *bad[] = {"[DONE]", "{\"object\":\"chat.completion.chunk\",\"choices\":[]}", "{\"type\":\"error\"}",
                         "{\"type\":\"response.mystery\",\"response\":{\"id\":\"resp_THEIRS\"}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(responses_stream_relay(&s, bad[i], strlen(bad[i]), &out));
    assert_int_equal(out.len, 0);
    cJSON_Delete(ja);
    cJSON_Delete(jd);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
    responses_request_free(&r);
}

/* A provider that names new items without end: each gets brigade's id
 * until 4 096 of them, then the stream is refused (a Response has a
 * handful of items; the map grew until the call's deadline). The ids are
 * looked up in a map: 4 096 events of new ids, then many of old ones,
 * took seconds when each lookup walked every id before it. */
static void test_stream_relay_bounds_its_ids(void **state)
{
    (void)state;
    cJSON *resp = cJSON_CreateObject();   /* only a terminal event fills it */
    responses_stream s;
    responses_stream_init(&s, resp);
    buf out;
    buf_init(&out);
    char ev[200];
    for (int i = 0; i < 4096; i++) {
        snprintf(ev, sizeof ev, "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_%d\",\"delta\":\"x\"}", i);
        assert_true(responses_stream_relay(&s, ev, strlen(ev), &out));
        out.len = 0;
    }
    for (int i = 0; i < 100000; i++) {   /* known ids: still relayed */
        snprintf(ev, sizeof ev, "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_%d\",\"delta\":\"x\"}", i % 4096);
        assert_true(responses_stream_relay(&s, ev, strlen(ev), &out));
        out.len = 0;
    }
    snprintf(ev, sizeof ev, "{\"type\":\"response.output_text.delta\",\"item_id\":\"msg_new\",\"delta\":\"x\"}");
    assert_false(responses_stream_relay(&s, ev, strlen(ev), &out));
    assert_int_equal(out.len, 0);
    buf_free(&out);
    responses_stream_free(&s);
    cJSON_Delete(resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_passthrough_needs_every_deployment),
        cmocka_unit_test(test_body_store_false_chain_expanded),
        cmocka_unit_test(test_object_from_provider_ids_replaced),
        cmocka_unit_test(test_stream_relay),
        cmocka_unit_test(test_stream_relay_bounds_its_ids),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
