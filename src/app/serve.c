/* serve.c — `brigade serve`: load the configuration, open the store and the
 * identity cache, start one HTTP loop per core, and run until SIGINT or
 * SIGTERM, then drain and shut down cleanly (usage flushed, store closed). */
#include "app/app.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "app/pool_names.h"
#include "app/serve_mcp_oauth.h"
#include "app/serve_sync.h"
#include "guard/engine.h"
#include "guard/guard_record.h"
#include "mcp/mcp.h"
#include "obs/audit.h"
#include "runs/credentials.h"
#include "runs/run_stream.h"
#include "sandbox/sandbox.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

static const char serve_usage[] =
    "usage: brigade serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--threads N]\n"
    "\n"
    "Serve the brigade HTTP API (see docs/api.md).\n"
    "\n"
    "  --config FILE       YAML configuration (docs/config.md); without it brigade\n"
    "                      serves on the embedded defaults: SQLite in the data\n"
    "                      directory and the built-in mock model\n"
    "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080; port 0 = any free)\n"
    "  --data-dir DIR      where the database and the server secret live\n"
    "                      (default ./brigade-data)\n"
    "  --threads N         event loops, one per core by default\n"
    "  -h, --help          this text\n"
    "\n"
    "The server admin token is read from BRIGADE_ADMIN_TOKEN (or server.admin_token).\n"
    "Logs go to stderr as JSON lines; BRIGADE_LOG=debug|info|warn|error sets the level,\n"
    "BRIGADE_LOG_FORMAT=json|text the format (docs/observability.md).\n";

/* The data directory holds the database, the server secret and the audit
 * key: anyone else who can list or enter it can at least learn what is
 * there, and a mistaken chmod of a file inside would expose it. Refused
 * rather than silently narrowed: the operator should know it was open. */
static int serve_check_data_dir(const char *data_dir, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(data_dir, &sb) != 0) {
        snprintf(err, errlen, "cannot read data directory %s: %s", data_dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a directory", data_dir);
        return -1;
    }
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "data directory %s has permissions %03o; it must be accessible by "
                 "its owner only (chmod 700 %s)", data_dir, (unsigned)(sb.st_mode & 0777), data_dir);
        return -1;
    }
    return 0;
}

int app_lock_data_dir(const char *data_dir, char *err, size_t errlen)
{
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory %s: %s", data_dir, strerror(errno));
        return -1;
    }
    if (serve_check_data_dir(data_dir, err, errlen) != 0) return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/serve.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen,
                 "another brigade process is serving from %s (lock %s is held)", data_dir, path);
        close(fd);
        return -1;
    }
    return fd;
}

/* The store's storage quotas (store_set_quota_fn): the user's tier, or
 * the default tier for a tier the configuration no longer has — as
 * governance does. The configuration does not change while serving. */
static void serve_quota_of(void *arg, const char *tier, store_quota *out)
{
    const brigade_config *cfg = arg;
    const tier_cfg *t = tier && tier[0] ? config_find_tier(cfg, tier) : NULL;
    if (!t) t = config_find_tier(cfg, cfg->default_tier);
    if (!t) return;
    out->memory_bytes = t->quota_memory_bytes;
    out->memory_entries = t->quota_memory_entries;
    out->sessions = t->quota_sessions;
    out->messages_per_session = t->quota_messages_per_session;
}

static void *serve_thread_init(uv_loop_t *loop, unsigned index, void *arg)
{
    app *a = arg;
    api_thread *t = xcalloc(1, sizeof *t);
    t->env = &a->env;
    t->loop = loop;
    t->index = index;
    t->upstream = upstream_new(loop, &a->env.cfg);
    t->gate = xnonnull(gate_thread_new(a->env.gate, loop));
    t->runs = runs_thread_new(a->env.runs, loop, t->upstream);
    runs_thread_set_gate(t->runs, t->gate);
    return t;
}

static void serve_thread_fini(void *thread_data)
{
    api_thread *t = thread_data;
    if (!t) return;
    runs_thread_free(t->runs);      /* its runs use the upstream and the gate: first */
    upstream_free(t->upstream);
    gate_thread_close(t->gate);
    free(t);
}

static void serve_request_done(http_request *req, int status)
{
    api_env *env = api_thread_of(req)->env;
    atomic_fetch_add(&env->metrics.requests, 1);
    if (status < 400) atomic_fetch_add(&env->metrics.responses_2xx, 1);
    else if (status < 500) atomic_fetch_add(&env->metrics.responses_4xx, 1);
    else atomic_fetch_add(&env->metrics.responses_5xx, 1);
    api_request_done(req, status);   /* request span and per-route metrics */
}

/* The MCP hub's egress refusal (an MCP server's URL or an endpoint of its
 * authorization): an `egress.refuse` audit entry in the tenant's log
 * naming the server and the address class, as an HTTP tool's refusal is.
 * On a worker of the hub's pool: the write may wait. */
static void serve_mcp_egress_refused(void *arg, const char *server, const char *tenant_id,
                                     const char *user_id, const mcp_egress_refusal *r)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "mcp_server", server);
    cJSON_AddStringToObject(d, "class", r->cls);
    cJSON_AddStringToObject(d, "address", r->address);
    if (r->form[0]) cJSON_AddStringToObject(d, "form", r->form);
    obs_audit_raw(arg, tenant_id, user_id[0] ? user_id : "system", "mcp", "egress.refuse", server, d);
}

/* identity's listener: a credential was lost; the runs it started stop. */
static void serve_on_revocation(void *arg, const identity_revocation *rv)
{
    runs_on_revocation(arg, rv);
}

/* Called once SIGINT/SIGTERM are handled: only then say we are listening,
 * so whoever waits for this line can stop us gracefully right away. */
/* ---- the vault behind runs/credentials.h: a run's tool gets its user's
 * own token (the vault answers on the run's loop) ---- */

typedef struct serve_cred {
    runs_cred_done done;
    void          *arg;
    vault_fetch   *fetch;
    char           header_name[128];
} serve_cred;

static void serve_cred_answer(void *arg, const vault_token *t)
{
    serve_cred *c = arg;
    runs_cred_answer a = {
        .status = t->status == VAULT_TOKEN_OK ? RUNS_CRED_OK
                  : t->status == VAULT_TOKEN_MISSING ? RUNS_CRED_MISSING : RUNS_CRED_ERROR,
        .header_name = c->header_name,
        .header_value = t->header_value,
        .connection_id = t->connection_id,
        .connect_url = t->connect_url[0] ? t->connect_url : NULL,
        .why = t->why,
    };
    c->done(c->arg, &a);
    free(c);
}

static void *serve_cred_fetch(void *self, uv_loop_t *loop, const scope *sc, const char *provider,
                              char *const *scopes, size_t n_scopes, const char *header_name,
                              const char *format, runs_cred_done done, void *arg)
{
    serve_cred *c = xcalloc(1, sizeof *c);
    c->done = done;
    c->arg = arg;
    snprintf(c->header_name, sizeof c->header_name, "%s", header_name ? header_name : "Authorization");
    c->fetch = vault_fetch_start(self, loop, sc, provider, scopes, n_scopes, format, serve_cred_answer, c);
    if (!c->fetch) {
        free(c);
        return NULL;
    }
    return c;
}

static void serve_cred_cancel(void *self, void *handle)
{
    (void)self;
    serve_cred *c = handle;
    vault_fetch_cancel(c->fetch);   /* serve_cred_answer will not run */
    free(c);
}

/* A service refused a user's token during a run: the vault marks the
 * connection expired (a store write), on the thread pool. */
typedef struct serve_refused {
    uv_work_t work;
    vault    *v;
    scope     sc;
    char      provider[160], connection_id[ID_MAX];
    int64_t   fetched_at_s;
} serve_refused;

static void serve_refused_work(uv_work_t *w)
{
    serve_refused *r = w->data;
    vault_token_refused(r->v, &r->sc, r->provider, r->connection_id, r->fetched_at_s);
}

static void serve_refused_done(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

static void serve_cred_refused(void *self, uv_loop_t *loop, const scope *sc, const char *provider,
                               const char *connection_id, int64_t fetched_at_s)
{
    serve_refused *r = calloc(1, sizeof *r);
    if (!r) return;
    r->v = self;
    r->sc = *sc;
    snprintf(r->provider, sizeof r->provider, "%s", provider);
    snprintf(r->connection_id, sizeof r->connection_id, "%s", connection_id);
    r->fetched_at_s = fetched_at_s;
    r->work.data = r;
    if (uv_queue_work(loop, &r->work, serve_refused_work, serve_refused_done) != 0) free(r);
}

static void serve_on_connection_active(void *arg, const char *tenant_id, const char *user_id,
                                       const char *provider)
{
    runs_on_connection_active(arg, tenant_id, user_id, provider);
}

/* The charges of the journal's recovery, kept until the gate exists (it
 * passes them on to Redis, gate_charge_recovered). */
typedef struct serve_charges {
    usage_rec *rows;
    size_t     n, cap;
} serve_charges;

static void serve_charge_keep(const usage_rec *row, void *arg)
{
    serve_charges *c = arg;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        usage_rec *nr = realloc(c->rows, nc * sizeof *nr);
        if (!nr) {
            log_error("reservations: out of memory: a recovered charge of %s is in the ledger "
                      "but not passed on to shared governance", row->tenant_id);
            return;
        }
        c->rows = nr;
        c->cap = nc;
    }
    c->rows[c->n++] = *row;
}

static void serve_print_listening(void *arg)
{
    app *a = arg;
    const char *h = a->env.cfg.listen_host;
    bool v6 = strchr(h, ':') != NULL;
    printf("brigade %s listening on http://%s%s%s:%d (data in %s, %zu model%s, config: %s)\n",
           BRIGADE_VERSION, v6 ? "[" : "", h, v6 ? "]" : "", http_server_port(a->server),
           a->env.cfg.data_dir, a->env.cfg.n_models, a->env.cfg.n_models == 1 ? "" : "s",
           a->env.cfg.source_path ? a->env.cfg.source_path : "embedded defaults");
    fflush(stdout);
}

int app_serve_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},   {"listen", required_argument, NULL, 'l'},
        {"data-dir", required_argument, NULL, 'd'}, {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *listen = NULL, *data_dir = NULL;
    long threads = -1;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:l:d:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'l': listen = optarg; break;
        case 'd': data_dir = optarg; break;
        case 't': {
            char *end;
            threads = strtol(optarg, &end, 10);
            if (*end || threads < 1 || threads > 256) {
                fprintf(stderr, "brigade serve: --threads must be a number from 1 to 256\n");
                return 2;
            }
            break;
        }
        case 'h': fputs(serve_usage, stdout); return 0;
        default: fputs(serve_usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "brigade serve: unexpected argument \"%s\"\n\n%s", argv[optind], serve_usage);
        return 2;
    }

    static app a;   /* static: the signal path and threads outlive no stack frame */
    memset(&a, 0, sizeof a);
    char err[1024];
    /* config_load_file starts from the defaults itself. */
    if (!config_path) config_defaults(&a.env.cfg);
    else if (config_load_file(config_path, &a.env.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "brigade serve: %s\nbrigade serve: not starting; fix the configuration.\n", err);
        config_free(&a.env.cfg);
        return 1;
    }
    /* The injection detectors (guard.rules, guard.classifier): read once,
     * shared read-only by every loop thread. */
    if (guard_engine_init(&a.env.cfg.guard, err, sizeof err) != 0) {
        fprintf(stderr, "brigade serve: guard: %s\nbrigade serve: not starting.\n", err);
        config_free(&a.env.cfg);
        return 1;
    }
    if (listen) {
        char *host = NULL;
        int port;
        if (config_parse_listen(listen, &host, &port, err, sizeof err) != 0) {
            fprintf(stderr, "brigade serve: --listen %s\n", err);
            config_free(&a.env.cfg);
            return 2;
        }
        free(a.env.cfg.listen_host);
        a.env.cfg.listen_host = host;
        a.env.cfg.listen_port = port;
    }
    if (data_dir) {
        free(a.env.cfg.data_dir);
        a.env.cfg.data_dir = strdup(data_dir);
    }
    if (threads > 0) a.env.cfg.threads = (unsigned)threads;
    if (!a.env.cfg.admin_token || !a.env.cfg.admin_token[0])
        log_warn("no server admin token (BRIGADE_ADMIN_TOKEN): tenants cannot be managed over HTTP");

    /* Whatever brigade creates from here on (the database and its -wal
     * and -shm, the secret, keys, exports) is its owner's alone. */
    umask(077);
    a.lock_fd = app_lock_data_dir(a.env.cfg.data_dir, err, sizeof err);
    if (a.lock_fd < 0) {
        fprintf(stderr, "brigade serve: %s\n", err);
        config_free(&a.env.cfg);
        return 1;
    }
    a.env.store = store_open_backend(&(store_backend){.kind = (store_backend_kind)a.env.cfg.store.kind,
        .url = a.env.cfg.store.url, .pool_size = a.env.cfg.store.pool_size}, a.env.cfg.data_dir, err, sizeof err);
    if (!a.env.store) {
        fprintf(stderr, "brigade serve: store: %s\n", err);
        config_free(&a.env.cfg);
        return 1;
    }
    a.env.identity = identity_open(a.env.store, a.env.cfg.data_dir, a.env.cfg.admin_token, err, sizeof err);
    if (!a.env.identity) {
        fprintf(stderr, "brigade serve: identity: %s\n", err);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    identity_set_default_tier(a.env.identity, a.env.cfg.default_tier);
    store_set_quota_fn(a.env.store, serve_quota_of, &a.env.cfg);
    size_t recovered = 0;
    if (store_runs_recover(a.env.store, &recovered) != STORE_OK) {
        fprintf(stderr, "brigade serve: store: could not mark interrupted runs\n");
        identity_close(a.env.identity);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    if (recovered) log_warn("%zu run(s) were in flight when brigade last stopped: marked interrupted", recovered);
    /* What this machine offers tool processes (logged); command tools that
     * cannot run say so now, and fail their calls with the reason. */
    sandbox_settings sbs = {.data_dir = a.env.cfg.data_dir,
                            .allow_unsandboxed = a.env.cfg.sandbox.allow_unsandboxed,
                            .bwrap_path = a.env.cfg.sandbox.bwrap,
                            .init_path = a.env.cfg.sandbox.helper};
    sandbox_setup(&sbs);
    for (size_t i = 0; i < a.env.cfg.n_tools; i++)
        if (a.env.cfg.tools[i].kind == TOOL_CFG_COMMAND && !sandbox_can_run(err, sizeof err))
            log_error("tools: %s (kind: command) cannot run: %s", a.env.cfg.tools[i].name, err);
    a.env.tools = tools_registry_new(&a.env.cfg, err, sizeof err);
    if (!a.env.tools) {
        fprintf(stderr, "brigade serve: tools: %s\n", err);
        identity_close(a.env.identity);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    /* Governance: calls in flight when the last run died are charged at
     * their reservations (the journal), then budgets are rebuilt from the
     * usage ledger, before the first request can spend anything. The
     * audit log is opened first: the reconciliation is audited. */
    obs_audit_open(a.env.store, a.env.cfg.observability.audit_checkpoint_every,
                   a.env.cfg.observability.audit_checkpoint_interval_s, false);
    reserve_recovery rr;
    serve_charges charges = {0};
    if (reserve_journal_recover_each(a.env.store, a.env.cfg.data_dir, &rr, serve_charge_keep, &charges,
                                     err, sizeof err) != 0 ||
        !(a.journal = reserve_journal_open(a.env.cfg.data_dir, err, sizeof err))) {
        fprintf(stderr, "brigade serve: reservations: %s\n", err);
        free(charges.rows);
        obs_audit_close(a.env.store);
        tools_registry_free(a.env.tools);
        identity_close(a.env.identity);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    store_set_usage_committed_hook(a.env.store, reserve_journal_on_usage_committed, a.journal);
    a.env.gate = gate_new(&a.env.cfg, NULL, NULL);
    if (a.env.gate) gate_set_journal(a.env.gate, a.journal);
    if (a.env.gate) gate_set_ledger(a.env.gate, a.env.store, STORE_USAGE_SHED_ROWS);
    for (size_t i = 0; a.env.gate && i < charges.n; i++) gate_charge_recovered(a.env.gate, &charges.rows[i]);
    free(charges.rows);
    if (!a.env.gate || gate_load_ledger(a.env.gate, a.env.store, err, sizeof err) != 0) {
        fprintf(stderr, "brigade serve: governance: %s\n", a.env.gate ? err : "out of memory");
        gate_free(a.env.gate);
        tools_registry_free(a.env.tools);
        identity_close(a.env.identity);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    /* The vault: its key lives beside the database, never in it. */
    a.env.vault = vault_open(a.env.store, &a.env.cfg, a.env.cfg.data_dir, err, sizeof err);
    if (!a.env.vault) {
        fprintf(stderr, "brigade serve: vault: %s\n", err);
        gate_free(a.env.gate);
        tools_registry_free(a.env.tools);
        identity_close(a.env.identity);
        store_close(a.env.store);
        config_free(&a.env.cfg);
        return 1;
    }
    a.env.runs = runs_new(&a.env.cfg, a.env.store, a.env.tools);
    runs_set_gate(a.env.runs, a.env.gate, a.env.identity);
    runs_credentials creds = {.fetch = serve_cred_fetch, .cancel = serve_cred_cancel,
                              .refused = serve_cred_refused, .self = a.env.vault};
    runs_set_credentials(a.env.runs, &creds);
    vault_set_on_active(a.env.vault, serve_on_connection_active, a.env.runs);
    /* MCP servers with `auth: {kind: oauth}`: their authorization servers
     * are the vault's providers, found by MCP discovery (serve_mcp_oauth.c) */
    vault_set_provider_resolver(a.env.vault, serve_mcp_provider_resolve, &a.env);
    tools_set_mcp_token(serve_mcp_token, a.env.vault);
    /* Runs paused for an approval or a connection survive a restart. */
    runs_restore_paused(a.env.runs);
    /* A revoked key, a disabled or erased user: their runs stop too. */
    identity_on_revocation(a.env.identity, serve_on_revocation, a.env.runs);
    /* Several instances on one PostgreSQL: follow the others' changes of
     * keys, users and tenants (serve_sync.c). */
    serve_sync *idsync = a.env.cfg.store.kind == STORE_CFG_POSTGRES ? serve_sync_start(a.env.identity, a.env.store, a.env.runs) : NULL;
    /* … and with Redis too, every run's events are published there, so a
     * run's events can be read from any instance (run_stream.h) */
    run_stream *rstream = a.env.cfg.store.kind == STORE_CFG_POSTGRES &&
                                  a.env.cfg.governance.backend == GOVERN_BACKEND_REDIS
                              ? run_stream_start(&a.env.cfg.governance.redis) : NULL;
    runs_set_stream(a.env.runs, rstream);
    a.env.started_at = time_now_unix();
    /* The web console's sign-ins (in memory: a restart signs everyone out). */
    if (a.env.cfg.console.enabled)
        a.env.console = console_sessions_new(a.env.cfg.console.max_sessions,
                                             a.env.cfg.console.session_ttl_s);
    a.router = http_router_new();
    api_register_routes(a.router);

    http_server_config sc;
    memset(&sc, 0, sizeof sc);
    sc.host = a.env.cfg.listen_host;
    sc.port = a.env.cfg.listen_port;
    sc.threads = a.env.cfg.threads;
    sc.limits = a.env.cfg.limits;
    http_limits_apply_defaults(&sc.limits);
    sc.router = a.router;
    sc.server_name = "brigade";
    sc.thread_init = serve_thread_init;
    sc.thread_fini = serve_thread_fini;
    sc.thread_arg = &a;
    sc.on_request_done = serve_request_done;
    if (obs_setup(&a.env.cfg.observability, a.env.store, err, sizeof err) != 0)
        log_warn("observability: %s; serving without tracing", err);
    /* the audit chain's bound; seals what a crash left unsealed */
    obs_audit_open(a.env.store, a.env.cfg.observability.audit_checkpoint_every,
                   a.env.cfg.observability.audit_checkpoint_interval_s, true);
    app_name_pool_threads();   /* before the loops: pool workers would inherit "loop-N" */
    /* MCP servers' instances live on the hub's own thread (mcp/mcp.h),
     * started before any run can list their tools — always, since a
     * tenant may add its own servers (POST /v1/mcp-servers) to a
     * configuration that has none. */
    mcp_hub *hub = mcp_hub_start(&a.env.cfg, err, sizeof err);
    if (!hub) log_warn("%s; MCP servers' tools are unavailable", err);
    else mcp_hub_set_on_egress_refused(hub, serve_mcp_egress_refused, a.env.store);
    tools_set_mcp_hub(hub);
    /* the guard's decisions: rows, counts, audit entries (guard_record.h) */
    guard_record_open(a.env.store, &(guard_decision_retention){
        .max_age_s = (int64_t)a.env.cfg.guard.decisions_retention_days * 86400,
        .max_per_tenant = a.env.cfg.guard.decisions_max_per_tenant});
    a.server = http_server_start(&sc, err, sizeof err);
    if (!a.server) {
        guard_record_close();
        tools_set_mcp_hub(NULL);
        mcp_hub_stop(hub);
        obs_tracer_stop();
        obs_audit_close(a.env.store);
        fprintf(stderr, "brigade serve: cannot listen on %s:%d: %s\n", a.env.cfg.listen_host,
                a.env.cfg.listen_port, err);
        serve_sync_stop(idsync);
        identity_on_revocation(a.env.identity, NULL, NULL);
        runs_free(a.env.runs);
        run_stream_stop(rstream);
        vault_free(a.env.vault);
        gate_free(a.env.gate);
        tools_registry_free(a.env.tools);
        identity_close(a.env.identity);
        store_close(a.env.store);
        console_sessions_free(a.env.console);
        http_router_free(a.router);
        config_free(&a.env.cfg);
        return 1;
    }
    int sig = http_server_run_until_signal(a.server, serve_print_listening, &a);
    log_info("signal %d: stopped serving; flushing the store", sig);
    serve_sync_stop(idsync);
    identity_on_revocation(a.env.identity, NULL, NULL);
    runs_free(a.env.runs);
    run_stream_stop(rstream);        /* after the runs: their last ends go to its queue */
    tools_set_mcp_hub(NULL);
    mcp_hub_stop(hub);               /* the servers' processes end with it */
    vault_free(a.env.vault);
    gate_free(a.env.gate);
    tools_registry_free(a.env.tools);
    identity_close(a.env.identity);
    obs_tracer_stop();               /* the last spans (runs' too) into the store before it closes */
    guard_record_close();            /* its audit entries before the chain's last checkpoint */
    obs_audit_close(a.env.store);        /* the shutdown checkpoint of the audit chain */
    store_close(a.env.store);            /* its last usage rows close their reservations */
    reserve_journal_close(a.journal);
    console_sessions_free(a.env.console);
    http_router_free(a.router);
    config_free(&a.env.cfg);
    sandbox_shutdown();
    close(a.lock_fd);
    log_info("brigade stopped cleanly");
    return 0;
}
