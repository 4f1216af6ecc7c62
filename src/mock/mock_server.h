/* mock_server.h — `brigade mock-llm`: the mock engine behind an HTTP server.
 *
 * Routes: POST /v1/chat/completions, POST /v1/messages (Anthropic's Messages
 * API, same markers and faults), GET /v1/models, GET /mock/stats, GET /healthz.
 * Latency, chunk pacing and faults follow the flags, the per-request
 * `x-mock-fault: KIND` header and the markers of the last user message
 * (mock_engine.h). Delays use uv timers on the request's loop; the
 * server never sleeps. mock_server_start/stop let tests run it in-process. */
#ifndef BRIGADE_MOCK_SERVER_H
#define BRIGADE_MOCK_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "mock/mock_engine.h"

typedef struct mock_server_opts {
    const char *host;               /* default "127.0.0.1" */
    int         port;               /* default 8090; 0 = any free port */
    unsigned    threads;            /* 0 = number of CPUs */
    uint32_t    latency_ms;         /* before every answer */
    uint32_t    stream_chunks;      /* content chunks per stream; 0 = one per token */
    uint32_t    chunk_interval_ms;  /* between stream events */
    double      fault_rate;         /* probability per request of a fault */
    mock_fault  fault;              /* the fault, or the first of `mix` */
    mock_fault  mix[MOCK_FAULT__COUNT];   /* --fault a,b,c: one of these, uniformly */
    unsigned    n_mix;              /* 0: just `fault` */
    bool        gullible;           /* --gullible: obey markers in untrusted text */
} mock_server_opts;

typedef struct mock_server mock_server;

/* Start serving on background threads. NULL with err set on failure. */
mock_server *mock_server_start(const mock_server_opts *o, char *err, size_t errlen);
int          mock_server_port(const mock_server *s);
mock_stats  *mock_server_stats(mock_server *s);
void         mock_server_stop(mock_server *s);

/* `brigade mock-llm [flags]`; returns the process exit code. */
int mock_llm_main(int argc, char **argv);

#endif
