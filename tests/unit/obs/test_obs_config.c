/* test_obs_config.c — the `observability:` section of the configuration
 * (defaults, every key, errors naming the key), and the structured log
 * lines it switches between (JSON with the request context, text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/log.h"

static int load(const char *yaml, brigade_config *cfg, char *err, size_t errlen)
{
    return config_load_string("test.yaml", yaml, strlen(yaml), cfg, err, errlen);
}

static void test_defaults(void **state)
{
    (void)state;
    brigade_config cfg;
    char err[512];
    assert_int_equal(load("server: {listen: \"127.0.0.1:0\"}\n", &cfg, err, sizeof err), 0);
    const obs_cfg *o = &cfg.observability;
    assert_int_equal(o->logs_format, 0);
    assert_false(o->logs_content);
    assert_true(o->traces_enabled);
    assert_int_equal(o->traces_retention_hours, 72);
    assert_int_equal(o->traces_max_spans, 1000000);
    assert_null(o->otlp_endpoint);
    assert_int_equal(o->otlp_max_queue, 8192);
    assert_int_equal(o->otlp_batch, 512);
    assert_int_equal(o->otlp_interval_ms, 1000);
    assert_int_equal(o->otlp_timeout_ms, 2000);
    assert_int_equal(o->metrics_max_series, 1000);
    assert_int_equal(o->audit_checkpoint_every, 1000);
    assert_int_equal(o->audit_checkpoint_interval_s, 60);
    config_free(&cfg);
}

static void test_every_key(void **state)
{
    (void)state;
    brigade_config cfg;
    char err[512];
    const char *yaml =
        "observability:\n"
        "  logs: {format: text, content: true}\n"
        "  traces: {enabled: false, retention_hours: 24, max_spans: 5000}\n"
        "  otlp: {endpoint: \"http://127.0.0.1:4318/\", max_queue: 100, batch: 10,"
        " interval_ms: 50, timeout_ms: 300, service_name: gw}\n"
        "  metrics: {max_series: 50}\n"
        "  audit: {checkpoint_every: 7, checkpoint_interval_s: 5}\n";
    assert_int_equal(load(yaml, &cfg, err, sizeof err), 0);
    const obs_cfg *o = &cfg.observability;
    assert_int_equal(o->logs_format, 1);
    assert_true(o->logs_content);
    assert_false(o->traces_enabled);
    assert_int_equal(o->traces_retention_hours, 24);
    assert_int_equal(o->traces_max_spans, 5000);
    assert_string_equal(o->otlp_endpoint, "http://127.0.0.1:4318/");
    assert_int_equal(o->otlp_max_queue, 100);
    assert_int_equal(o->otlp_batch, 10);
    assert_int_equal(o->otlp_interval_ms, 50);
    assert_int_equal(o->otlp_timeout_ms, 300);
    assert_string_equal(o->service_name, "gw");
    assert_int_equal(o->metrics_max_series, 50);
    assert_int_equal(o->audit_checkpoint_every, 7);
    assert_int_equal(o->audit_checkpoint_interval_s, 5);
    config_free(&cfg);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct { const char *yaml, *want; } cases[] = {
        {"observability:\n  logs: {format: xml}\n", "observability.logs.format"},
        {"observability:\n  otlp: {endpoint: \"ftp://x\"}\n", "observability.otlp.endpoint"},
        {"observability:\n  traces: {retention_hours: 0}\n", "observability.traces.retention_hours"},
        {"observability:\n  otlp: {batch: 100000}\n", "observability.otlp.batch"},
        {"observability:\n  tracez: {}\n", "did you mean \"traces\""},
        {"observability:\n  audit: {checkpoint_every: 0}\n", "observability.audit.checkpoint_every"},
        {"observability:\n  audit: {checkpoint_interval_s: 86401}\n", "observability.audit.checkpoint_interval_s"},
        {"observability:\n  audit: {every: 5}\n", "observability.audit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        brigade_config cfg;
        char err[512] = "";
        assert_int_not_equal(load(cases[i].yaml, &cfg, err, sizeof err), 0);
        if (!strstr(err, cases[i].want)) fail_msg("%s: error \"%s\" does not name %s", cases[i].yaml, err, cases[i].want);
        config_free(&cfg);
    }
}

/* Run log lines with stderr sent to a temp file; return what was written. */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/brigade-obs-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, out, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return out;
}

static void log_json_lines(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_ctx_set("req-1", "4bf92f3577b34da6a3ce929d0e0e4736", "ten_abc");
    log_warn("gateway: \"quoted\" \\ and\nnewline \x01 done");
    log_ctx_clear();
    char big[5000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[100] = '"';
    log_info("%s", big);   /* longer than a line: cut, still JSON */
}

static void test_log_json(void **state)
{
    (void)state;
    char *out = capture(log_json_lines);
    char *nl = strchr(out, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(j, "component")->valuestring, "gateway");
    assert_string_equal(cJSON_GetObjectItem(j, "request_id")->valuestring, "req-1");
    assert_string_equal(cJSON_GetObjectItem(j, "trace_id")->valuestring, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_string_equal(cJSON_GetObjectItem(j, "tenant")->valuestring, "ten_abc");
    assert_string_equal(cJSON_GetObjectItem(j, "msg")->valuestring, "gateway: \"quoted\" \\ and\nnewline \x01 done");
    const char *t = cJSON_GetObjectItem(j, "time")->valuestring;
    assert_int_equal(strlen(t), 24);   /* 2026-11-28T00:42:53.123Z */
    assert_int_equal(t[23], 'Z');
    assert_int_equal(t[19], '.');
    cJSON_Delete(j);
    char *second = nl + 1;
    char *nl2 = strchr(second, '\n');
    assert_non_null(nl2);
    *nl2 = '\0';
    j = cJSON_Parse(second);
    assert_non_null(j);   /* cut, but valid */
    assert_null(cJSON_GetObjectItem(j, "request_id"));   /* context cleared */
    assert_true(strlen(cJSON_GetObjectItem(j, "msg")->valuestring) > 1000);
    cJSON_Delete(j);
    free(out);
}

static void log_text_lines(void)
{
    log_set_format(LOG_FORMAT_TEXT);
    log_ctx_set("req-2", NULL, "ten_x");
    log_error("store: broke");
    log_ctx_clear();
    log_set_format(LOG_FORMAT_JSON);
}

static void test_log_text(void **state)
{
    (void)state;
    char *out = capture(log_text_lines);
    assert_non_null(strstr(out, "Z error store: broke request_id=req-2 tenant=ten_x\n"));
    assert_null(strstr(out, "trace_id="));
    free(out);
    log_format f;
    assert_true(log_format_parse("text", &f));
    assert_int_equal(f, LOG_FORMAT_TEXT);
    assert_false(log_format_parse("JSON", &f));
}

static void log_pii_lines(void)
{
    log_set_format(LOG_FORMAT_JSON);
    log_warn("tools: send_mail failed for jane.doe@example.com, card 4111 1111 1111 1111");
    log_set_format(LOG_FORMAT_TEXT);
    log_warn("tools: call +44 20 7946 0958 about DE89370400440532013000");
    log_set_format(LOG_FORMAT_JSON);
}

/* Personal data in a message is replaced in both formats, always. */
static void test_log_redacts_pii(void **state)
{
    (void)state;
    char *out = capture(log_pii_lines);
    assert_null(strstr(out, "jane.doe@example.com"));
    assert_null(strstr(out, "4111"));
    assert_null(strstr(out, "7946"));
    assert_null(strstr(out, "DE89"));
    assert_non_null(strstr(out, "failed for [EMAIL], card [CARD]\""));
    assert_non_null(strstr(out, "call [PHONE] about [IBAN]"));
    assert_non_null(strstr(out, "\"component\":\"tools\""));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_log_text),
        cmocka_unit_test(test_log_redacts_pii),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
