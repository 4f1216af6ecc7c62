/* mock_server.c — `brigade mock-llm`: HTTP front of the mock engine.
 *
 * Hot path: a request without delay or streaming is planned, rendered into
 * the thread's scratch buffer and answered with no allocation of its own
 * (only cJSON's parse of the request). Delayed, streamed or hanging requests
 * get one small heap state holding a uv timer, freed in the timer's close
 * callback — never inside a callback that might still use it. */
#include "mock/mock_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "util/ids.h"
#include "util/xalloc.h"

struct mock_server {
    mock_server_opts  o;
    mock_stats        stats;
    mock_fault_table  faults;
    http_router      *router;
    http_server      *http;
};

/* Per loop thread. */
typedef struct mock_thread {
    mock_server *srv;
    uv_loop_t   *loop;
    buf          scratch;   /* reused for every rendering on this thread */
    uint64_t     rng;       /* xorshift64 state for --fault-rate */
} mock_thread;

/* State of a request that outlives its handler call. */
typedef enum mock_face { MOCK_FACE_CHAT, MOCK_FACE_ANTHROPIC, MOCK_FACE_RESPONSES } mock_face;

typedef struct mock_call {
    uv_timer_t    timer;
    http_request *req;       /* NULL once the request is finished */
    mock_thread  *th;
    mock_plan     plan;      /* strings live in req->arena */
    size_t        next;      /* next stream event */
    size_t        stop_at;   /* events to send (fewer when truncating) */
    bool          streaming; /* http_stream_begin done */
    mock_face     face;      /* which API's form the answer takes */
    bool          waiting_drain;
} mock_call;

static uint64_t mock_thread_rand(mock_thread *t)
{
    uint64_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return t->rng = x;
}

static void *mock_thread_init(uv_loop_t *loop, unsigned index, void *arg)
{
    (void)index;
    mock_thread *t = xcalloc(1, sizeof(*t));
    t->srv = arg;
    t->loop = loop;
    buf_init(&t->scratch);
    ids_random_bytes(&t->rng, sizeof(t->rng));
    if (!t->rng) t->rng = 88172645463325252ULL;
    return t;
}

static void mock_thread_fini(void *p)
{
    mock_thread *t = p;
    buf_free(&t->scratch);
    free(t);
}

static buf *mock_scratch(mock_thread *t)
{
    t->scratch.len = 0;
    if (t->scratch.data) t->scratch.data[0] = '\0';
    return &t->scratch;
}

/* ------------------------------------------------------------ call state */

static void mock_call_closed(uv_handle_t *h) { free(h->data); }

/* Detach from the request (already finished by the caller) and free. */
static void mock_call_release(mock_call *c)
{
    if (c->req) {
        c->req->user = NULL;
        c->req->on_abort = NULL;
        c->req->on_drain = NULL;
        c->req = NULL;
    }
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, mock_call_closed);
}

/* The client left: finish the request (writes are dropped) and free. */
static void mock_call_on_abort(http_request *req)
{
    mock_call *c = req->user;
    if (!c) return;
    bool streaming = c->streaming;
    mock_call_release(c);   /* detach first: finishing frees the request */
    if (streaming) http_stream_end(req);
    else http_respond(req, 499, "text/plain", "", 0);
}

/* Cut a response mid-way: the stream stops without its finish chunk and
 * [DONE], and http_abort closes the connection without the terminating
 * HTTP chunk, so the cut is real at the transport level too. */
static void mock_cut(http_request *req) { http_abort(req); }

static void mock_pump(mock_call *c);
static void mock_pump_timer(uv_timer_t *t) { mock_pump(t->data); }

static void mock_call_on_drain(http_request *req)
{
    mock_call *c = req->user;
    if (!c || !c->waiting_drain) return;
    c->waiting_drain = false;
    if (c->th->srv->o.chunk_interval_ms)
        uv_timer_start(&c->timer, mock_pump_timer, 0, 0);
    else
        mock_pump(c);
}

/* Write stream events until done, full (wait for on_drain) or paced (wait
 * for the timer). */
static void mock_pump(mock_call *c)
{
    if (!c->req) return;
    uint32_t interval = c->th->srv->o.chunk_interval_ms;
    while (c->next < c->stop_at) {
        buf *b = mock_scratch(c->th);
        if (c->face == MOCK_FACE_ANTHROPIC) {
            mock_render_anthropic_event(&c->plan, c->next, b);   /* a whole SSE frame */
        } else if (c->face == MOCK_FACE_RESPONSES) {
            mock_render_responses_event(&c->plan, c->next, b);   /* a whole SSE frame */
        } else {
            buf_append(b, "data: ", 6);
            mock_render_event(&c->plan, c->next, b);
            buf_append(b, "\n\n", 2);
        }
        c->next++;
        bool ok = http_stream_write(c->req, b->data, b->len);
        if (!c->req) return;   /* aborted inside the write */
        if (!ok) {
            c->waiting_drain = true;
            return;
        }
        if (interval && c->next < c->stop_at) {
            uv_timer_start(&c->timer, mock_pump_timer, interval, 0);
            return;
        }
    }
    http_request *req = c->req;
    if (c->plan.fault == MOCK_FAULT_TRUNCATE) {
        mock_call_release(c);
        mock_cut(req);
        return;
    }
    if (c->face == MOCK_FACE_CHAT) http_stream_write(req, "data: [DONE]\n\n", 14);
    mock_call_release(c);
    http_stream_end(req);
}

/* ------------------------------------------------------------- answering */

static void mock_respond_json(http_request *req, int status, buf *b)
{
    http_respond(req, status, "application/json", b->data ? b->data : "", b->len);
}

/* Answer now (after any delay). `c` may be NULL on the fast path.
 * `face`: in the form of chat completions, Anthropic's Messages API or
 * OpenAI's Responses API (whose errors are OpenAI's). */
static void mock_answer(http_request *req, mock_thread *th, const mock_plan *p, mock_call *c,
                        mock_face face)
{
    bool anthropic = face == MOCK_FACE_ANTHROPIC;
    buf *b = mock_scratch(th);
    switch (p->fault) {
    case MOCK_FAULT_RATE_LIMIT:
    case MOCK_FAULT_SERVER_ERROR:
    case MOCK_FAULT_OVERLOADED: {
        uint32_t ra = 0;
        int status = anthropic ? mock_render_anthropic_fault_error(p, b, &ra)
                               : mock_render_fault_error(p, b, &ra);
        if (ra) http_add_header(req, "retry-after", "1");
        if (c) mock_call_release(c);
        mock_respond_json(req, status, b);
        return;
    }
    case MOCK_FAULT_MALFORMED:
        if (c) mock_call_release(c);
        if (!p->stream) {
            if (anthropic) mock_render_anthropic_malformed(p, false, b);
            else mock_render_malformed(p, b);
            mock_respond_json(req, 200, b);
            return;
        }
        http_stream_begin(req, 200, "text/event-stream");
        if (face == MOCK_FACE_RESPONSES) {
            mock_render_responses_event(p, 0, b);
            buf_puts(b, "event: response.in_progress\ndata: {\"type\":\"response.in_pro");
            http_stream_write(req, b->data, b->len);
            http_stream_end(req);
            return;
        }
        if (anthropic) {
            mock_render_anthropic_event(p, 0, b);
            mock_render_anthropic_malformed(p, true, b);
            http_stream_write(req, b->data, b->len);
            http_stream_end(req);
            return;
        }
        buf_append(b, "data: ", 6);
        mock_render_event(p, 0, b);
        buf_append(b, "\n\ndata: ", 8);
        mock_render_malformed(p, b);
        buf_append(b, "\n\ndata: [DONE]\n\n", 16);
        http_stream_write(req, b->data, b->len);
        http_stream_end(req);
        return;
    default:
        break;
    }
    if (!p->stream) {
        if (anthropic) mock_render_anthropic_message(p, b);
        else if (face == MOCK_FACE_RESPONSES) mock_render_responses_object(p, b);
        else mock_render_completion(p, b);
        if (c) mock_call_release(c);
        if (p->fault == MOCK_FAULT_TRUNCATE) {
            /* Half the body, then the end: a client sees a cut JSON body. */
            http_stream_begin(req, 200, "application/json");
            http_stream_write(req, b->data, b->len / 2);
            mock_cut(req);
            return;
        }
        mock_respond_json(req, 200, b);
        return;
    }
    if (!c) {
        c = xcalloc(1, sizeof(*c));
        uv_timer_init(th->loop, &c->timer);
        c->timer.data = c;
        c->req = req;
        c->th = th;
        c->plan = *p;
        c->face = face;
        req->user = c;
        req->on_abort = mock_call_on_abort;
    }
    req->on_drain = mock_call_on_drain;
    size_t n = anthropic ? mock_anthropic_event_count(&c->plan)
             : face == MOCK_FACE_RESPONSES ? mock_responses_event_count(&c->plan)
             : mock_event_count(&c->plan);
    c->stop_at = c->plan.fault == MOCK_FAULT_TRUNCATE ? (n + 1) / 2 : n;
    c->streaming = true;
    http_stream_begin(req, 200, "text/event-stream");
    mock_pump(c);
}

static void mock_delay_done(uv_timer_t *t)
{
    mock_call *c = t->data;
    if (!c->req) return;
    mock_answer(c->req, c->th, &c->plan, c, c->face);
}

/* POST /v1/chat/completions, /v1/messages (Anthropic) or /v1/responses. */
static void mock_handle(http_request *req, mock_face face)
{
    bool anthropic = face == MOCK_FACE_ANTHROPIC;
    mock_thread *th = req->thread_data;
    mock_server *s = th->srv;
    mock_options opt = { .stream_chunks = s->o.stream_chunks, .faults = &s->faults,
                         .gullible = s->o.gullible };
    const char *hf = http_header_get(req, "x-mock-fault");
    if (hf) {
        opt.forced_fault = mock_fault_parse(hf, strlen(hf));
        if (opt.forced_fault == MOCK_FAULT_NONE) {
            http_respond_error(req, 400, "invalid_request_error", "invalid_request",
                               "x-mock-fault must be one of rate_limit, server_error, hang, "
                               "truncate, malformed, slow_first_byte, overloaded, ignore_max_tokens",
                               "x-mock-fault");
            return;
        }
    } else if (s->o.fault_rate > 0 && s->o.fault != MOCK_FAULT_NONE) {
        double r = (double)(mock_thread_rand(th) >> 11) / (double)(1ULL << 53);
        if (r < s->o.fault_rate) {
            opt.forced_fault = s->o.fault;
            if (s->o.n_mix > 1) opt.forced_fault = s->o.mix[mock_thread_rand(th) % s->o.n_mix];
        }
    }

    mock_plan plan;
    if (anthropic) {
        /* The same plan as chat completions, from the OpenAI request this
         * one stands for (mock_engine.h); a real API requires the version
         * header, so the mock does too — it catches a provider that forgets it. */
        buf *b = mock_scratch(th);
        const char *err = NULL;
        const char *ver = http_header_get(req, "anthropic-version");
        if (!ver || !ver[0]) err = "anthropic-version: header is required";
        if (err || !mock_anthropic_request(req->body, req->body ? req->body_len : 0, b, &err)) {
            atomic_fetch_add_explicit(&s->stats.requests, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->stats.bad_requests, 1, memory_order_relaxed);
            b->len = 0;
            mock_render_anthropic_error(b, "invalid_request_error", err);
            mock_respond_json(req, 400, b);
            return;
        }
        /* The plan's strings live in the request's arena; the scratch is
         * reused by the renderers, so the rewritten body moves there. */
        char *oa = arena_strndup(&req->arena, b->data, b->len);
        mock_plan_make(&plan, &req->arena, oa, b->len, &opt);
    } else if (face == MOCK_FACE_RESPONSES) {
        /* the plan of the chat request it stands for (mock_responses.c) */
        buf *b = mock_scratch(th);
        const char *err = NULL;
        if (!mock_responses_request(req->body, req->body ? req->body_len : 0, b, &err)) {
            atomic_fetch_add_explicit(&s->stats.requests, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&s->stats.bad_requests, 1, memory_order_relaxed);
            http_respond_error(req, 400, "invalid_request_error", "invalid_request", err, NULL);
            return;
        }
        char *oa = arena_strndup(&req->arena, b->data, b->len);
        mock_plan_make(&plan, &req->arena, oa, b->len, &opt);
    } else {
        mock_plan_make(&plan, &req->arena, req->body, req->body ? req->body_len : 0, &opt);
    }
    mock_stats_record(&s->stats, &plan);
    if (plan.status != 200) {
        buf *b = mock_scratch(th);
        int st = anthropic ? mock_render_anthropic_fault_error(&plan, b, NULL)
                           : mock_render_fault_error(&plan, b, NULL);
        mock_respond_json(req, st, b);
        return;
    }

    uint32_t delay = plan.has_latency ? plan.latency_ms : s->o.latency_ms;
    if (plan.fault == MOCK_FAULT_SLOW_FIRST_BYTE && !plan.has_latency && delay < MOCK_SLOW_FIRST_BYTE_MS)
        delay = MOCK_SLOW_FIRST_BYTE_MS;
    if (delay == 0 && plan.fault != MOCK_FAULT_HANG) {
        mock_answer(req, th, &plan, NULL, face);
        return;
    }
    mock_call *c = xcalloc(1, sizeof(*c));
    uv_timer_init(th->loop, &c->timer);
    c->timer.data = c;
    c->req = req;
    c->th = th;
    c->plan = plan;
    c->face = face;
    req->user = c;
    req->on_abort = mock_call_on_abort;
    /* hang: nothing more happens until the client leaves (on_abort frees). */
    if (plan.fault != MOCK_FAULT_HANG) uv_timer_start(&c->timer, mock_delay_done, delay, 0);
}

static void mock_chat(http_request *req) { mock_handle(req, MOCK_FACE_CHAT); }
static void mock_messages(http_request *req) { mock_handle(req, MOCK_FACE_ANTHROPIC); }
static void mock_responses(http_request *req) { mock_handle(req, MOCK_FACE_RESPONSES); }

/* Embeddings answer at once: no markers, no faults, no pacing. */
static void mock_embeddings_route(http_request *req)
{
    buf b;
    buf_init(&b);
    int64_t tokens;
    int status = mock_embeddings(req->body, req->body_len, &b, &tokens);
    mock_respond_json(req, status, &b);
    buf_free(&b);
}

static void mock_models(http_request *req)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"mock-small\",\"object\":\"model\",\"created\":0,\"owned_by\":\"mock-llm\"},"
        "{\"id\":\"mock-large\",\"object\":\"model\",\"created\":0,\"owned_by\":\"mock-llm\"}]}";
    http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static void mock_stats_route(http_request *req)
{
    mock_thread *th = req->thread_data;
    buf *b = mock_scratch(th);
    mock_stats_render(&th->srv->stats, b);
    mock_respond_json(req, 200, b);
}

static void mock_healthz(http_request *req)
{
    http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* ---------------------------------------------------------------- server */

mock_server *mock_server_start(const mock_server_opts *o, char *err, size_t errlen)
{
    mock_server *s = xcalloc(1, sizeof(*s));
    s->o = *o;
    if (!s->o.host) s->o.host = "127.0.0.1";
    mock_stats_init(&s->stats);
    mock_fault_table_init(&s->faults);
    s->router = http_router_new();
    http_router_add(s->router, "POST", "/v1/chat/completions", mock_chat);
    http_router_add(s->router, "POST", "/v1/messages", mock_messages);
    http_router_add(s->router, "POST", "/v1/responses", mock_responses);
    http_router_add(s->router, "POST", "/v1/embeddings", mock_embeddings_route);
    http_router_add(s->router, "GET", "/v1/models", mock_models);
    http_router_add(s->router, "GET", "/mock/stats", mock_stats_route);
    http_router_add(s->router, "GET", "/healthz", mock_healthz);

    http_server_config hc;
    memset(&hc, 0, sizeof(hc));
    hc.host = s->o.host;
    hc.port = s->o.port;
    hc.threads = s->o.threads;
    hc.router = s->router;
    hc.server_name = "mock-llm";
    hc.thread_init = mock_thread_init;
    hc.thread_fini = mock_thread_fini;
    hc.thread_arg = s;
    /* Large prompts are the point of some tests: allow 16 MiB bodies. */
    hc.limits.max_body_bytes = 16u << 20;
    s->http = http_server_start(&hc, err, errlen);
    if (!s->http) {
        http_router_free(s->router);
        mock_stats_destroy(&s->stats);
        mock_fault_table_destroy(&s->faults);
        free(s);
        return NULL;
    }
    return s;
}

int mock_server_port(const mock_server *s) { return http_server_port(s->http); }

mock_stats *mock_server_stats(mock_server *s) { return &s->stats; }

void mock_server_stop(mock_server *s)
{
    if (!s) return;
    http_server_stop(s->http);
    http_router_free(s->router);
    mock_stats_destroy(&s->stats);
    mock_fault_table_destroy(&s->faults);
    free(s);
}

/* ------------------------------------------------------------ command line */

static void mock_usage(FILE *f)
{
    fputs("usage: brigade mock-llm [options]\n"
          "\n"
          "A mock model provider for tests, demos and load tests. It speaks OpenAI\n"
          "chat completions (POST /v1/chat/completions) and Anthropic messages\n"
          "(POST /v1/messages), streaming or not, with usage; GET /v1/models,\n"
          "GET /mock/stats (counters), GET /healthz. A request header\n"
          "x-mock-fault: KIND injects a fault into that request.\n"
          "\n"
          "  --listen HOST:PORT       address to serve (default 127.0.0.1:8090)\n"
          "  --latency-ms N           wait N ms before every answer (default 0)\n"
          "  --stream-chunks N        content chunks per stream (default: one per token)\n"
          "  --chunk-interval-ms N    pause between stream events (default 0)\n"
          "  --fault-rate P           probability (0..1) that a request gets --fault\n"
          "  --fault KIND[,KIND...]   rate_limit, server_error, hang, truncate, malformed,\n"
          "                           slow_first_byte, overloaded, ignore_max_tokens;\n"
          "                           several: one at random\n"
          "  --threads N              loop threads (default: number of CPUs)\n"
          "  --gullible               play an injected model: also obey [[tool:NAME {json}]]\n"
          "                           (and [[on:WORD tool:NAME {json}]]) found in tool\n"
          "                           results and tool descriptions\n"
          "  --help                   this text\n"
          "Markers in the last user message steer replies: [[tool:NAME {json}]]\n"
          "([[tool_loop]] with it: call the tool again after every result; [[tool_loop:N]]:\n"
          "until N results came back, then answer), [[fault:KIND]], [[fault:KIND:N]],\n"
          "[[latency:MS]], [[tokens:N]].\n",
          f);
}

static bool mock_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v > max) return false;
    *out = v;
    return true;
}

/* "HOST:PORT", "[V6]:PORT" or ":PORT". host points into a static copy. */
static bool mock_parse_listen(const char *arg, const char **host, int *port)
{
    static char hbuf[256];
    const char *colon = strrchr(arg, ':');
    if (!colon) return false;
    size_t hlen = (size_t)(colon - arg);
    const char *h = arg;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') { h++; hlen -= 2; }
    if (hlen >= sizeof(hbuf)) return false;
    memcpy(hbuf, h, hlen);
    hbuf[hlen] = '\0';
    unsigned long p;
    if (!mock_parse_uint(colon + 1, 65535, &p)) return false;
    *host = hlen ? hbuf : "127.0.0.1";
    *port = (int)p;
    return true;
}

/* Called once SIGINT/SIGTERM are handled: only then say we are listening. */
static void mock_llm_print_listening(void *arg)
{
    mock_server *s = arg;
    const char *host = s->o.host;
    bool v6 = strchr(host, ':') != NULL;
    printf("mock-llm listening on http://%s%s%s:%d\n", v6 ? "[" : "", host, v6 ? "]" : "",
           mock_server_port(s));
    fflush(stdout);
}

int mock_llm_main(int argc, char **argv)
{
    mock_server_opts o;
    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = 8090;
    bool have_rate = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            mock_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--gullible") == 0) {
            o.gullible = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "mock-llm: %s needs a value (see --help)\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            if (!mock_parse_listen(v, &o.host, &o.port)) {
                fprintf(stderr, "mock-llm: --listen: expected HOST:PORT, got '%s'\n", v);
                return 2;
            }
        } else if (strcmp(a, "--latency-ms") == 0 && mock_parse_uint(v, MOCK_MAX_LATENCY_MS, &n)) {
            o.latency_ms = (uint32_t)n;
        } else if (strcmp(a, "--stream-chunks") == 0 && mock_parse_uint(v, 100000, &n)) {
            o.stream_chunks = (uint32_t)n;
        } else if (strcmp(a, "--chunk-interval-ms") == 0 && mock_parse_uint(v, 60000, &n)) {
            o.chunk_interval_ms = (uint32_t)n;
        } else if (strcmp(a, "--threads") == 0 && mock_parse_uint(v, 256, &n)) {
            o.threads = (unsigned)n;
        } else if (strcmp(a, "--fault-rate") == 0) {
            char *end;
            double p = strtod(v, &end);
            if (end == v || *end || !(p >= 0 && p <= 1)) {
                fprintf(stderr, "mock-llm: --fault-rate: expected a number from 0 to 1, got '%s'\n", v);
                return 2;
            }
            o.fault_rate = p;
            have_rate = true;
        } else if (strcmp(a, "--fault") == 0) {
            /* One kind, or several separated by commas (a chaos mix: each
             * faulty request gets one of them at random). */
            o.n_mix = 0;
            for (const char *k = v; *k;) {
                const char *e = strchr(k, ',');
                size_t kl = e ? (size_t)(e - k) : strlen(k);
                mock_fault f = mock_fault_parse(k, kl);
                if (f == MOCK_FAULT_NONE || o.n_mix == MOCK_FAULT__COUNT) {
                    fprintf(stderr, "mock-llm: --fault: unknown kind '%.*s' (rate_limit, server_error, "
                                    "hang, truncate, malformed, slow_first_byte, overloaded, ignore_max_tokens)\n", (int)kl, k);
                    return 2;
                }
                o.mix[o.n_mix++] = f;
                k += kl;
                if (*k == ',') k++;
            }
            if (o.n_mix == 0) {
                fprintf(stderr, "mock-llm: --fault: expected a kind\n");
                return 2;
            }
            o.fault = o.mix[0];
        } else {
            fprintf(stderr, "mock-llm: bad option or value: %s %s (see --help)\n", a, v);
            return 2;
        }
    }
    if (o.fault != MOCK_FAULT_NONE && !have_rate) o.fault_rate = 1.0;   /* --fault alone: always */
    if (have_rate && o.fault_rate > 0 && o.fault == MOCK_FAULT_NONE) {
        fprintf(stderr, "mock-llm: --fault-rate needs --fault KIND\n");
        return 2;
    }

    char err[256] = "";
    mock_server *s = mock_server_start(&o, err, sizeof(err));
    if (!s) {
        fprintf(stderr, "mock-llm: cannot listen on %s:%d: %s\n", o.host, o.port, err);
        return 1;
    }
    http_server_run_until_signal(s->http, mock_llm_print_listening, s);
    /* run_until_signal has stopped the http server already. */
    http_router_free(s->router);
    mock_stats_destroy(&s->stats);
    mock_fault_table_destroy(&s->faults);
    free(s);
    return 0;
}
