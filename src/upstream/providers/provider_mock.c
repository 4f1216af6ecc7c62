/* provider_mock.c — provider kind `mock`: the mock engine, in-process.
 *
 * No sockets, but the same callbacks, results and timings as a remote
 * provider: the answer always comes later on the loop (never inside
 * upstream_chat), latency and chunk pacing use uv timers, faults map to the
 * errors a remote call would give (hang → TIMEOUT when the provider timeout
 * fires, truncate → TRUNCATED, malformed → MALFORMED, rate_limit → 429 with
 * retry_after_s, server_error → 500, overloaded → 503). Attempt counts of [[fault:KIND:N]]
 * live in the process-wide table, so a retry on any loop counts. */
#include <stdlib.h>
#include <string.h>

#include "mock/mock_engine.h"
#include "upstream/providers/providers.h"
#include "util/xalloc.h"

typedef struct mockp_call {
    upstream_call base;           /* first */
    uv_timer_t    step;           /* latency, then chunk pacing */
    uv_timer_t    deadline;       /* provider timeout_ms */
    int           open;           /* handles not yet closed */
    arena         a;              /* the plan's strings */
    mock_plan     plan;
    size_t        next, stop_at;  /* stream events */
    bool          paused;
    bool          pumping;        /* inside mockp_pump */
    bool          embedding;      /* an embeddings call: scratch holds the answer */
    int           embed_status;
    int64_t       embed_tokens;
    buf           scratch;
} mockp_call;

static void mockp_closed(uv_handle_t *h)
{
    mockp_call *c = h->data;
    if (--c->open > 0) return;
    arena_free(&c->a);
    buf_free(&c->scratch);
    free(c);
}

/* Deliver the result and free (after both timers close: never while a
 * frame of ours might still touch the call). */
static void mockp_finish(mockp_call *c, upstream_result *r)
{
    if (c->base.finished) return;
    if (!r->input_tokens && !r->output_tokens && c->plan.status == 200) {
        r->input_tokens = c->plan.prompt_tokens;
        r->output_tokens = c->plan.completion_tokens;
    }
    upstream_call_deliver(&c->base, r);
    uv_timer_stop(&c->step);
    uv_timer_stop(&c->deadline);
    uv_close((uv_handle_t *)&c->step, mockp_closed);
    uv_close((uv_handle_t *)&c->deadline, mockp_closed);
}

static void mockp_fail(mockp_call *c, upstream_error e, const char *msg)
{
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.error = e;
    r.message = msg;
    mockp_finish(c, &r);
}

static void mockp_on_step(uv_timer_t *t);

static void mockp_pump(mockp_call *c)
{
    uint32_t interval = c->base.prov->mock_chunk_interval_ms;
    c->pumping = true;
    while (!c->base.finished && !c->paused && c->next < c->stop_at) {
        buf *b = &c->scratch;
        b->len = 0;
        mock_render_event(&c->plan, c->next++, b);
        upstream_call_activity(&c->base);
        bool more = true;
        if (c->base.cb.on_event) more = c->base.cb.on_event(&c->base, b->data, b->len, c->base.arg);
        if (c->base.finished) break;   /* cancelled inside on_event */
        if (!more) c->paused = true;
        if (interval && c->next < c->stop_at) {
            if (!c->paused) uv_timer_start(&c->step, mockp_on_step, interval, 0);
            c->pumping = false;
            return;
        }
    }
    c->pumping = false;
    if (c->base.finished || c->paused || c->next < c->stop_at) return;
    if (c->plan.fault == MOCK_FAULT_TRUNCATE) {
        mockp_fail(c, UPSTREAM_TRUNCATED, "mock: stream cut mid-way (injected fault)");
        return;
    }
    if (c->plan.fault == MOCK_FAULT_MALFORMED) {
        mockp_fail(c, UPSTREAM_MALFORMED, "mock: stream event is not valid JSON (injected fault)");
        return;
    }
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = 200;
    mockp_finish(c, &r);
}

/* The latency has passed: answer. */
static void mockp_answer(mockp_call *c)
{
    const mock_plan *p = &c->plan;
    upstream_result r;
    memset(&r, 0, sizeof(r));
    buf *b = &c->scratch;
    b->len = 0;
    if (p->status != 200 || p->fault == MOCK_FAULT_RATE_LIMIT || p->fault == MOCK_FAULT_SERVER_ERROR ||
        p->fault == MOCK_FAULT_OVERLOADED) {
        r.error = UPSTREAM_HTTP_STATUS;
        r.status = mock_render_fault_error(p, b, &r.retry_after_s);
        r.body = b->data;
        r.body_len = b->len;
        r.message = "provider answered with an error status";
        mockp_finish(c, &r);
        return;
    }
    if (!c->base.stream) {
        if (p->fault == MOCK_FAULT_MALFORMED) {
            mockp_fail(c, UPSTREAM_MALFORMED, "mock: body is not valid JSON (injected fault)");
            return;
        }
        if (p->fault == MOCK_FAULT_TRUNCATE) {
            mockp_fail(c, UPSTREAM_TRUNCATED, "mock: body cut mid-way (injected fault)");
            return;
        }
        mock_render_completion(p, b);
        r.status = 200;
        r.body = b->data;
        r.body_len = b->len;
        mockp_finish(c, &r);
        return;
    }
    size_t n = mock_event_count(p);
    if (p->fault == MOCK_FAULT_TRUNCATE) c->stop_at = (n + 1) / 2;
    else if (p->fault == MOCK_FAULT_MALFORMED) c->stop_at = 1;   /* role chunk, then garbage */
    else c->stop_at = n;
    mockp_pump(c);
}

/* An embeddings call's answer, made when it started (mockp_chat). */
static void mockp_embedding_answer(mockp_call *c)
{
    upstream_result r;
    memset(&r, 0, sizeof(r));
    r.status = c->embed_status;
    r.body = c->scratch.data;
    r.body_len = c->scratch.len;
    if (c->embed_status != 200) {
        r.error = UPSTREAM_HTTP_STATUS;
        r.message = "provider answered with an error status";
    } else {
        r.input_tokens = c->embed_tokens;
    }
    mockp_finish(c, &r);
}

static void mockp_on_step(uv_timer_t *t)
{
    mockp_call *c = t->data;
    if (c->base.finished) return;
    if (c->embedding) {
        mockp_embedding_answer(c);
        return;
    }
    if (c->next == 0 && c->stop_at == 0) mockp_answer(c);
    else mockp_pump(c);
}

static void mockp_on_deadline(uv_timer_t *t)
{
    mockp_call *c = t->data;
    mockp_fail(c, UPSTREAM_TIMEOUT, "mock: provider timeout passed");
}

static void mockp_cancel(upstream_call *base)
{
    mockp_call *c = (mockp_call *)base;
    mockp_fail(c, UPSTREAM_CANCELLED, "cancelled");
}

static void mockp_resume(upstream_call *base)
{
    mockp_call *c = (mockp_call *)base;
    if (!c->paused) return;
    c->paused = false;
    /* Continue on the next loop turn, never inside the caller's frame. */
    if (!c->pumping) uv_timer_start(&c->step, mockp_on_step, 0, 0);
}

upstream_call *mockp_chat(upstream *u, const model_cfg *m, const provider_cfg *p, const char *body,
                          size_t len, bool stream, const upstream_callbacks *cb, void *arg)
{
    mockp_call *c = xcalloc(1, sizeof(*c));
    arena_init(&c->a, 2048);
    buf_init(&c->scratch);
    if (m->embedding) {
        c->embedding = true;
        c->embed_status = mock_embeddings(body, len, &c->scratch, &c->embed_tokens);
        c->plan.status = c->embed_status;
    } else {
        mock_options opt = { .stream_chunks = p->mock_stream_chunks, .faults = mock_fault_table_global(),
                             .gullible = p->mock_gullible };
        mock_plan_make(&c->plan, &c->a, body, len, &opt);
    }
    /* The call's mode rules, and a remote stream would carry usage because
     * the upstream module asks for it. */
    c->plan.stream = stream;
    if (stream) c->plan.include_usage = true;

    uv_timer_init(u->loop, &c->step);
    uv_timer_init(u->loop, &c->deadline);
    c->step.data = c->deadline.data = c;
    c->open = 2;
    c->base.cancel = mockp_cancel;
    c->base.resume = mockp_resume;
    upstream_call_link(u, &c->base, m, p, stream, cb, arg);

    /* The loop's clock is cached from its last turn; a call started from
     * outside a callback (or after slow work) would otherwise wait less
     * than its latency. */
    if (p->mock_latency_ms || c->plan.has_latency) uv_update_time(u->loop);
    uint32_t timeout = p->timeout_ms ? p->timeout_ms : 120000;
    uv_timer_start(&c->deadline, mockp_on_deadline, timeout, 0);
    if (c->embedding) {
        uv_timer_start(&c->step, mockp_on_step, p->mock_latency_ms, 0);
        return &c->base;
    }
    if (c->plan.status == 200 && c->plan.fault == MOCK_FAULT_HANG) return &c->base;

    uint32_t delay = c->plan.has_latency ? c->plan.latency_ms : p->mock_latency_ms;
    if (c->plan.fault == MOCK_FAULT_SLOW_FIRST_BYTE && !c->plan.has_latency &&
        delay < MOCK_SLOW_FIRST_BYTE_MS)
        delay = MOCK_SLOW_FIRST_BYTE_MS;
    uv_timer_start(&c->step, mockp_on_step, delay, 0);
    return &c->base;
}
