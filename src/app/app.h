/* app.h — the running server: what every handler can reach.
 *
 * `app` is built once by `brigade serve` (config, store, identity, router)
 * and shared read-only by the loop threads; `app_thread` is one loop
 * thread's own state (its loop and its upstream client), reached from a
 * request as req->thread_data. Nothing here is global, so tests can run
 * several servers in one process. */
#ifndef BRIGADE_APP_H
#define BRIGADE_APP_H

#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"
#include "govern/gate.h"
#include "http/http.h"
#include "identity/identity.h"
#include "store/store.h"
#include "runs/runs.h"
#include "tools/tools.h"
#include "upstream/upstream.h"

typedef struct app_metrics {
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t responses_2xx, responses_4xx, responses_5xx;
    atomic_uint_fast64_t upstream_calls, upstream_errors;
    atomic_uint_fast64_t input_tokens, output_tokens;
    atomic_uint_fast64_t cost_nusd;
    atomic_uint_fast64_t auth_failures;
} app_metrics;

typedef struct app {
    brigade_config cfg;
    store         *store;
    identity      *identity;
    http_router   *router;
    http_server   *server;
    tool_registry *tools;            /* built-in and declared tools */
    runs          *runs;             /* every active agent run */
    gate          *gate;             /* governance: budgets, rate limits, fair queue */
    app_metrics    metrics;
    int64_t        started_at;
    int            lock_fd;          /* flock on data_dir/serve.lock while serving */
} app;

typedef struct app_thread {
    app       *app;
    uv_loop_t *loop;
    upstream  *upstream;
    runs_thread *runs;               /* this loop's part of the run registry */
    gate_thread *gate;               /* this loop's fair-queue inbox */
    unsigned   index;
} app_thread;

static inline app_thread *app_thread_of(http_request *req) { return req->thread_data; }
static inline app *app_of(http_request *req) { return app_thread_of(req)->app; }

/* `brigade serve`: parse flags, load config, open store and identity, start
 * the HTTP server, print how to reach it, run until SIGINT/SIGTERM. */
int app_serve_main(int argc, char **argv);

/* `brigade admin`: tenants, users and keys straight against the store. */
int app_admin_main(int argc, char **argv);

/* Take the data directory's serve lock (so `brigade admin` can tell that a
 * server owns it). Returns the fd, or -1 with err set if already held. */
int app_lock_data_dir(const char *data_dir, char *err, size_t errlen);

#endif
