/* fuzz_mock_request.c — libFuzzer target for the mock model's engine
 * (src/mock/mock_engine.c): an arbitrary body, read as an OpenAI
 * chat-completions request, through plan making (JSON, messages, the
 * [[...]] markers, fault counting) and every renderer. `brigade mock-llm`
 * serves whatever a load generator or a test sends, and the in-process
 * provider sees every body the gateway forwards, so none of it may crash.
 *
 * The first byte picks the options (stream_chunks 0/1/3/7, a forced fault
 * or none, a fault table or none, gullible or not); the rest is the body. Invariants
 * (abort() when broken):
 *   - the plan is 200 or 400, and a 400 carries a message;
 *   - the text plan's token offsets are in order and end at text_len;
 *   - the whole completion, every stream event (with and without the usage
 *     chunk), every error envelope and the stats document re-parse with
 *     cJSON, and carry the plan's text / tool arguments / counts;
 *   - the deltas of a stream, concatenated, are exactly the whole reply;
 *   - the "malformed" fault's body really is not JSON. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mock/mock_engine.h"
#include "util/utf8.h"

#define FZ_EVENTS_ALL 1024   /* longer streams: check the two ends only (speed) */
#define FZ_EVENTS_END 128

static mock_fault_table fz_faults;
static mock_stats fz_stats;
static bool fz_ready;

static cJSON *fz_parse(const buf *b)
{
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    if (!j || !cJSON_IsObject(j)) abort();   /* we rendered something that is not JSON */
    return j;
}

/* A string equal to s[0..len) (only when s has no NUL: cJSON strings stop
 * there; and only when s is UTF-8: the JSON escaper (util/json_escape.h)
 * writes each broken byte as U+FFFD, so that the body stays valid JSON). */
static void fz_same_string(const cJSON *j, const char *s, size_t len)
{
    if (!cJSON_IsString(j)) abort();
    if (memchr(s, '\0', len)) return;
    if (!utf8_valid(s, len)) {
        if (!utf8_valid(j->valuestring, strlen(j->valuestring))) abort();
        return;
    }
    if (strlen(j->valuestring) != len || memcmp(j->valuestring, s, len) != 0) abort();
}

static void fz_check_usage(const cJSON *root, const mock_plan *p)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (!cJSON_IsNumber(pt) || !cJSON_IsNumber(ct)) abort();
    if ((int64_t)pt->valuedouble != p->prompt_tokens || (int64_t)ct->valuedouble != p->completion_tokens)
        abort();
}

static void fz_check_error(const mock_plan *p, int want)
{
    buf b;
    buf_init(&b);
    uint32_t retry = 99;
    int st = mock_render_fault_error(p, &b, &retry);
    if (want && st != want) abort();
    if (st == 429 ? retry != 1 : retry != 0) abort();
    cJSON *j = fz_parse(&b);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
    if (!cJSON_IsString(msg) || !msg->valuestring[0]) abort();
    cJSON_Delete(j);
    buf_free(&b);
}

static void fz_check_completion(const mock_plan *p)
{
    buf b;
    buf_init(&b);
    mock_render_completion(p, &b);
    cJSON *j = fz_parse(&b);
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
    if (!cJSON_IsString(fin) || strcmp(fin->valuestring, p->finish_reason) != 0) abort();
    if (p->reply == MOCK_REPLY_TOOL_CALL) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), 0), "function");
        fz_same_string(cJSON_GetObjectItemCaseSensitive(fn, "name"), p->tool_name, strlen(p->tool_name));
        fz_same_string(cJSON_GetObjectItemCaseSensitive(fn, "arguments"), p->tool_args, p->tool_args_len);
    } else {
        fz_same_string(cJSON_GetObjectItemCaseSensitive(msg, "content"), p->text ? p->text : "", p->text_len);
    }
    fz_check_usage(j, p);
    cJSON_Delete(j);
    buf_free(&b);
}

/* Render the stream; each event must parse, and the deltas must add up. */
static void fz_check_stream(const mock_plan *p)
{
    size_t n = mock_event_count(p);
    bool all = n <= FZ_EVENTS_ALL;
    buf whole;   /* the reply rebuilt from the deltas */
    buf_init(&whole);
    buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (!all && i >= FZ_EVENTS_END && i + FZ_EVENTS_END < n) continue;
        b.len = 0;
        mock_render_event(p, i, &b);
        cJSON *j = fz_parse(&b);
        const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
        if (!cJSON_IsArray(choices)) abort();
        if (p->include_usage && i == n - 1) {
            if (cJSON_GetArraySize(choices) != 0) abort();
            fz_check_usage(j, p);
        } else {
            const cJSON *delta = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(choices, 0), "delta");
            if (!cJSON_IsObject(delta)) abort();
            const cJSON *piece = NULL;
            if (p->reply == MOCK_REPLY_TOOL_CALL) {
                const cJSON *fn = cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"), 0), "function");
                piece = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
            } else if (i > 0) {
                piece = cJSON_GetObjectItemCaseSensitive(delta, "content");
            }
            if (piece) {
                if (!cJSON_IsString(piece)) abort();
                buf_puts(&whole, piece->valuestring);
            }
        }
        cJSON_Delete(j);
    }
    /* Only a complete NUL-free UTF-8 reply can be compared (cJSON strings stop
     * at NUL; broken UTF-8 is written as U+FFFD). */
    const char *want = p->reply == MOCK_REPLY_TOOL_CALL ? p->tool_args : (p->text ? p->text : "");
    size_t want_len = p->reply == MOCK_REPLY_TOOL_CALL ? p->tool_args_len : p->text_len;
    if (all && !memchr(want, '\0', want_len) && utf8_valid(want, want_len) &&
        (whole.len != want_len || (want_len && memcmp(whole.data, want, want_len) != 0)))
        abort();
    /* Past the last event nothing is written. */
    b.len = 0;
    mock_render_event(p, n, &b);
    if (b.len != 0) abort();
    buf_free(&b);
    buf_free(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fz_ready) {
        mock_fault_table_init(&fz_faults);
        mock_stats_init(&fz_stats);
        fz_ready = true;
    }
    if (size < 1) return 0;
    static const uint32_t chunks[4] = { 0, 1, 3, 7 };
    uint8_t sel = data[0];
    mock_options opt = {
        .stream_chunks = chunks[sel & 3],
        .forced_fault = (sel >> 2 & 7) < MOCK_FAULT__COUNT && (sel & 0x80) ? (mock_fault)(sel >> 2 & 7)
                                                                          : MOCK_FAULT_NONE,
        .faults = (sel & 0x20) ? NULL : &fz_faults,
        .gullible = (sel & 0x40) != 0,   /* markers in tool results and descriptions too */
    };
    /* The body in its own allocation, not NUL-terminated, so any read past
     * `len` is caught. */
    size_t len = size - 1;
    char *body = malloc(len ? len : 1);
    if (!body) abort();
    memcpy(body, data + 1, len);

    arena a;
    arena_init(&a, 4096);
    mock_plan p;
    mock_plan_make(&p, &a, body, len, &opt);

    if (p.status != 200) {
        if (p.status != 400 || !p.err_message || !p.err_message[0]) abort();
        fz_check_error(&p, 400);
    } else {
        if (p.reply == MOCK_REPLY_TEXT) {
            if (p.n_tokens && (!p.tok_off || p.tok_off[0] != 0)) abort();
            for (uint32_t i = 0; p.tok_off && i < p.n_tokens; i++)
                if (p.tok_off[i] > p.tok_off[i + 1]) abort();
            if (p.tok_off && p.tok_off[p.n_tokens] != p.text_len) abort();
            if (p.completion_tokens != p.n_tokens) abort();
        } else if (!p.tool_name || !p.tool_args || p.n_chunks == 0) {
            abort();
        }
        if (p.fault == MOCK_FAULT_RATE_LIMIT) fz_check_error(&p, 429);
        if (p.fault == MOCK_FAULT_SERVER_ERROR) fz_check_error(&p, 500);

        fz_check_completion(&p);
        /* Streams with and without the usage chunk (the provider forces it on). */
        fz_check_stream(&p);
        p.include_usage = !p.include_usage;
        fz_check_stream(&p);
        p.include_usage = !p.include_usage;

        buf b;
        buf_init(&b);
        mock_render_malformed(&p, &b);
        cJSON *bad = cJSON_ParseWithLength(b.data, b.len);
        if (bad) abort();   /* the malformed fault must be malformed */
        buf_free(&b);
    }

    /* The stats document quotes model names from requests. */
    mock_stats_record(&fz_stats, &p);
    buf s;
    buf_init(&s);
    mock_stats_render(&fz_stats, &s);
    cJSON_Delete(fz_parse(&s));
    buf_free(&s);

    arena_free(&a);
    free(body);
    return 0;
}
