/* hub.c — the MCP servers' instances, on a thread and loop of their own.
 *
 * An instance is one running server for one key: (server, tenant, user)
 * when the server is per_user, else the server alone. Its life:
 * STARTING (spawned; initialize, notifications/initialized, tools/list page
 * by page) → READY (calls run; notifications/tools/list_changed refetches
 * the list) → stopped when idle for idle_timeout_s, when the least recently
 * used of a server with max_instances running, or at shutdown. A crash or
 * a failed start puts it in BACKOFF: the next start waits 0.5 s, 1 s, 2 s …
 * up to 30 s, reset by a call that succeeds.
 *
 * Other threads reach the hub through its inbox (util/inbox.h) with jobs:
 * LIST (a pool thread waits on a condition variable for the answer), CALL
 * (the answer goes back to the caller's loop by the call's own uv_async_t)
 * and CANCEL. Shared state between a call's two sides is guarded by the
 * hub's one mutex.
 *
 * A tenant's own server (POST /v1/mcp-servers) comes with its definition
 * in the job (mcp_who.tenant_def): its instances are keyed by the tenant
 * and a hash of the definition besides the user, so tenant A's "x" is
 * never tenant B's, and a changed definition starts a fresh instance (the
 * old one is reaped when idle). Such an instance owns the configuration it
 * read from the definition. */
#include "mcp/mcp_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sandbox/sandbox.h"
#include "util/inbox.h"
#include "util/log.h"
#include "util/strmap.h"
#include "util/xalloc.h"

#define HUB_MAX_TOOLS 512           /* tools kept of one server */
#define HUB_MAX_LIST_PAGES 64       /* tools/list pages followed */
#define HUB_BACKOFF_FIRST_MS 500
#define HUB_BACKOFF_MAX_MS 30000
#define HUB_REAP_EVERY_MS 1000
#define HUB_PING_TIMEOUT_MS 10000    /* at most; call_timeout_ms when shorter */
#define ID_MAX_MCP 64                /* a tenant or user id, with its NUL */

typedef enum job_kind { JOB_LIST = 1, JOB_CALL, JOB_CANCEL, JOB_STOP } job_kind;

typedef enum inst_state { INST_NEW = 0, INST_STARTING, INST_READY, INST_BACKOFF } inst_state;

typedef struct instance instance;

struct mcp_call {
    /* the caller's side (its loop) */
    uv_async_t           async;
    mcp_call_done_fn     done;
    mcp_call_progress_fn progress;
    void                *arg;
    /* shared, under the hub's lock */
    mcp_hub *h;
    int      refs;
    bool     cancelled, finished, delivered;
    bool     ok;
    bool     auth_refused;     /* failed: the user's token was refused (mcp_call_done_fn) */
    char    *text;
    size_t   len;
    bool     progress_new;
    double   prog, total;
    char     prog_msg[200];
    /* the hub's side */
    char     tool[128];
    char    *arguments;
    size_t   max_output;
    instance *inst;
    int64_t  req_id;
    bool     hub_active;            /* waiting for or in a tools/call */
    struct mcp_call *inext;         /* in the instance's list */
};

typedef struct hub_job {
    inbox_node node;
    job_kind   kind;
    char       server[40], tenant[ID_MAX_MCP], user[ID_MAX_MCP];
    char      *tenant_def;          /* a tenant's own server: its definition (owned) */
    char      *authorization;       /* the user's token for an oauth server (owned, a secret) */
    uint64_t   def_hash;
    /* LIST */
    pthread_cond_t cond;
    bool       answered, ok;
    mcp_tool_list list;
    char       err[300];
    struct hub_job *wnext;          /* in the instance's waiting lists */
    /* CALL, CANCEL */
    mcp_call  *call;
} hub_job;

struct instance {
    mcp_hub       *h;
    const mcp_server_cfg *cfg;
    mcp_server_cfg *own_cfg;        /* a tenant's server: cfg, read from its definition */
    char           server_id[120];  /* what max_instances counts: NAME, or NAME/TENANT */
    char           key[200];
    char           label[200];
    char           workdir[PATH_MAX];
    mcp_session   *sess;
    inst_state     state;
    cJSON         *tools;           /* the allowed tools (array), once listed */
    cJSON         *acc;             /* a listing in progress */
    unsigned       pages;
    bool           relisting;
    uint64_t       last_used;
    uint64_t       last_ping;
    bool           pinging;
    unsigned       crashes;
    uint64_t       restart_at;
    uv_timer_t     timer;           /* the start deadline, or the restart after a back-off */
    hub_job       *list_waiters;
    mcp_call      *calls;           /* waiting for READY, or in flight (req_id != 0) */
    char           last_error[240];
    bool           removed;
    char           tenant[ID_MAX_MCP], user[ID_MAX_MCP];   /* whose instance (a shared one: the first caller's) */
    char          *bearer;          /* an oauth server: the user's latest Authorization value (a secret) */
};

struct mcp_hub {
    const brigade_config *cfg;
    char             root[PATH_MAX];   /* data_dir/mcp, absolute */
    pthread_t        thread;
    uv_loop_t        loop;
    pthread_mutex_t  lock;
    inbox            ib;
    uv_timer_t       reaper;
    mcp_curl        *curl;          /* the HTTP transport's requests, on this loop */
    strmap          *instances;
    strmap          *known;         /* server name → the tools its last listing gave (cJSON) */
    bool             stopping;
    size_t           running;       /* under lock: read by mcp_hub_instances */
    uv_sem_t         started;
    int              start_rc;
    mcp_egress_refused_fn on_refused;   /* the audit of an egress refusal (set before calls) */
    void            *on_refused_arg;
};

static uint64_t hub_now(mcp_hub *h) { return uv_now(&h->loop); }

static void wipe_free(char *s);

/* What a job owns of its caller's: freed with it. */
static void job_free_who(hub_job *j)
{
    free(j->tenant_def);
    j->tenant_def = NULL;
    wipe_free(j->authorization);
    j->authorization = NULL;
}

/* An oauth server's call or listing brings the user's latest token: it
 * replaces the instance's (the instance is the user's alone: http servers
 * keep one per user), for the session's requests from now on. */
static void inst_take_bearer(instance *in, hub_job *j)
{
    if (!j->authorization || !in->cfg->oauth) return;
    if (in->bearer && !strcmp(in->bearer, j->authorization)) return;
    wipe_free(in->bearer);
    in->bearer = j->authorization;
    j->authorization = NULL;
    mcp_transport *t = in->sess ? mcp_session_transport(in->sess) : NULL;
    if (t && in->cfg->transport == MCP_TRANSPORT_HTTP) mcp_http_set_bearer(t, in->bearer);
}

/* ---- answers to other threads ---- */

static void list_answer(mcp_hub *h, hub_job *j, bool ok, const cJSON *tools, const char *why)
{
    mcp_tool_list out = {0};
    if (ok && tools) {
        size_t n = (size_t)cJSON_GetArraySize(tools);
        out.items = xcalloc(n ? n : 1, sizeof *out.items);
        const cJSON *t;
        cJSON_ArrayForEach(t, tools) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(t, "description");
            const cJSON *sc = cJSON_GetObjectItemCaseSensitive(t, "inputSchema");
            mcp_tool_info *ti = &out.items[out.n++];
            ti->name = xstrdup(nm->valuestring);
            ti->description = xstrdup(cJSON_IsString(d) ? d->valuestring : "");
            char *st = cJSON_IsObject(sc) ? cJSON_PrintUnformatted(sc) : NULL;
            ti->input_schema = st ? st : xstrdup("{\"type\":\"object\"}");
        }
    }
    pthread_mutex_lock(&h->lock);
    j->ok = ok;
    j->list = out;
    if (!ok) snprintf(j->err, sizeof j->err, "%s", why ? why : "failed");
    j->answered = true;
    pthread_cond_signal(&j->cond);
    pthread_mutex_unlock(&h->lock);
}

static void call_unref_locked(mcp_call *c)
{
    if (--c->refs > 0) return;
    free(c->text);
    free(c->arguments);
    free(c);
}

/* Hand the result to the caller's loop (takes `text`). */
static void call_finish_as(mcp_call *c, bool ok, bool auth_refused, char *text, size_t len)
{
    mcp_hub *h = c->h;
    pthread_mutex_lock(&h->lock);
    if (!c->cancelled && !c->finished) {
        c->finished = true;
        c->ok = ok;
        c->auth_refused = auth_refused;
        c->text = text;
        c->len = len;
        text = NULL;
        uv_async_send(&c->async);
    }
    pthread_mutex_unlock(&h->lock);
    free(text);
}

static void call_finish(mcp_call *c, bool ok, char *text, size_t len)
{
    call_finish_as(c, ok, false, text, len);
}

static void call_fail(mcp_call *c, const char *why)
{
    call_finish(c, false, xstrdup(why), strlen(why));
}

/* ---- an egress refusal: told to the program (its audit entry), off the
 * hub's loop since writing it waits for the store ---- */

typedef struct refusal_job {
    uv_work_t          work;
    mcp_hub           *h;
    char               server[40], tenant[ID_MAX_MCP], user[ID_MAX_MCP];
    mcp_egress_refusal r;
} refusal_job;

static void refusal_work(uv_work_t *w)
{
    refusal_job *j = w->data;
    j->h->on_refused(j->h->on_refused_arg, j->server, j->tenant, j->user, &j->r);
}

static void refusal_done(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

static void inst_on_egress_refused(void *arg, const egress_check *chk)
{
    instance *in = arg;
    mcp_hub *h = in->h;
    if (!h->on_refused) return;
    refusal_job *j = xcalloc(1, sizeof *j);
    j->h = h;
    snprintf(j->server, sizeof j->server, "%s", in->cfg->name);
    snprintf(j->tenant, sizeof j->tenant, "%s", in->tenant);
    snprintf(j->user, sizeof j->user, "%s", in->user);
    snprintf(j->r.cls, sizeof j->r.cls, "%s", egress_class_name(chk->cls));
    snprintf(j->r.address, sizeof j->r.address, "%s", chk->address);
    snprintf(j->r.form, sizeof j->r.form, "%s", chk->via != EGRESS_VIA_NONE ? egress_via_name(chk->via) : "");
    j->work.data = j;
    if (uv_queue_work(&h->loop, &j->work, refusal_work, refusal_done) != 0) free(j);
}

/* The hub is done with the call (it was answered or cancelled). */
static void call_release(mcp_call *c)
{
    instance *in = c->inst;
    if (in) {
        for (mcp_call **pp = &in->calls; *pp; pp = &(*pp)->inext)
            if (*pp == c) {
                *pp = c->inext;
                break;
            }
    }
    c->inst = NULL;
    c->hub_active = false;
    pthread_mutex_lock(&c->h->lock);
    call_unref_locked(c);
    pthread_mutex_unlock(&c->h->lock);
}

/* ---- instances ---- */

static void inst_start(instance *in);
static void inst_run_call(instance *in, mcp_call *c);

static void inst_fail_waiters(instance *in, const char *why)
{
    while (in->list_waiters) {
        hub_job *j = in->list_waiters;
        in->list_waiters = j->wnext;
        list_answer(in->h, j, false, NULL, why);
    }
    mcp_call *c = in->calls;
    while (c) {
        mcp_call *next = c->inext;
        if (c->req_id == 0) {
            call_fail(c, why);
            call_release(c);
        }
        c = next;
    }
}

static void inst_set_running(instance *in, bool on)
{
    mcp_hub *h = in->h;
    pthread_mutex_lock(&h->lock);
    if (on) h->running++;
    else if (h->running) h->running--;
    pthread_mutex_unlock(&h->lock);
}

/* End the server process; the instance stays (BACKOFF or NEW). */
static void inst_stop_session(instance *in, const char *why)
{
    if (!in->sess) return;
    mcp_session *s = in->sess;
    in->sess = NULL;
    inst_set_running(in, false);
    mcp_session_close(s, why);   /* in-flight calls answered with why */
    cJSON_Delete(in->acc);
    in->acc = NULL;
}

static void inst_crashed(instance *in, const char *why)
{
    snprintf(in->last_error, sizeof in->last_error, "%s", why);
    log_msg(LOG_WARN, "mcp %s: %s", in->label, why);
    inst_stop_session(in, why);
    in->crashes++;
    uint64_t back = HUB_BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < in->crashes && back < HUB_BACKOFF_MAX_MS; i++) back *= 2;
    if (back > HUB_BACKOFF_MAX_MS) back = HUB_BACKOFF_MAX_MS;
    in->restart_at = hub_now(in->h) + back;
    in->state = INST_BACKOFF;
    uv_timer_stop(&in->timer);
    char msg[300];
    snprintf(msg, sizeof msg, "the MCP server %s is not available: %s", in->cfg->name, why);
    inst_fail_waiters(in, msg);
}

static void wipe_free(char *s)
{
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}

static void inst_timer_closed(uv_handle_t *hd)
{
    instance *in = hd->data;
    cJSON_Delete(in->tools);
    wipe_free(in->bearer);
    /* its transport is closed by now and reads the configuration no more */
    if (in->own_cfg) config_mcp_server_free(in->own_cfg);
    free(in->own_cfg);
    free(in);
}

/* Take the instance out of the map and free it (after its waiters). */
static void inst_remove(instance *in, const char *why)
{
    if (in->removed) return;
    in->removed = true;
    inst_stop_session(in, why);
    inst_fail_waiters(in, why);
    /* calls in flight were answered by the session's close */
    strmap_del(in->h->instances, in->key);
    uv_timer_stop(&in->timer);
    uv_close((uv_handle_t *)&in->timer, inst_timer_closed);
}

static bool inst_allowed(const mcp_server_cfg *cfg, const char *name)
{
    if (cfg->n_tools == 0) return true;
    for (size_t i = 0; i < cfg->n_tools; i++)
        if (!strcmp(cfg->tools[i], name)) return true;
    return false;
}

static void inst_ready(instance *in)
{
    in->state = INST_READY;
    uv_timer_stop(&in->timer);
    while (in->list_waiters) {
        hub_job *j = in->list_waiters;
        in->list_waiters = j->wnext;
        list_answer(in->h, j, true, in->tools, NULL);
    }
    for (mcp_call *c = in->calls; c;) {
        mcp_call *next = c->inext;
        if (c->req_id == 0) inst_run_call(in, c);
        c = next;
    }
}

static void inst_list_page(instance *in, const char *cursor);

static void inst_on_list(void *arg, const mcp_msg *m, const char *why)
{
    instance *in = arg;
    if (!in->sess) return;
    if (!m || m->kind == MCP_MSG_ERROR) {
        char msg[240];
        snprintf(msg, sizeof msg, "tools/list failed: %.180s", m ? m->error_message : why);
        if (in->state == INST_READY) {   /* a refetch: keep the old list */
            log_msg(LOG_WARN, "mcp %s: %s", in->label, msg);
            in->relisting = false;
            cJSON_Delete(in->acc);
            in->acc = NULL;
            return;
        }
        inst_crashed(in, msg);
        return;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(m->result, "tools");
    const cJSON *t;
    if (cJSON_IsArray(tools)) cJSON_ArrayForEach(t, tools) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(nm) || !nm->valuestring[0] || strlen(nm->valuestring) > 120) continue;
        if (!inst_allowed(in->cfg, nm->valuestring)) continue;
        if (cJSON_GetArraySize(in->acc) >= HUB_MAX_TOOLS) break;
        cJSON_AddItemToArray(in->acc, cJSON_Duplicate(t, true));
    }
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(m->result, "nextCursor");
    if (cJSON_IsString(next) && next->valuestring[0] && ++in->pages < HUB_MAX_LIST_PAGES &&
        strlen(next->valuestring) < 1024) {
        char cursor[1024];
        snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        inst_list_page(in, cursor);
        return;
    }
    cJSON_Delete(in->tools);
    in->tools = in->acc;
    in->acc = NULL;
    in->relisting = false;
    /* what other users of the same configured program see at once; never
     * a tenant's server's list (its name is only the tenant's) */
    if (!in->own_cfg) strmap_put(in->h->known, in->cfg->name, cJSON_Duplicate(in->tools, true));
    if (in->state == INST_STARTING) inst_ready(in);
}

static void inst_list_page(instance *in, const char *cursor)
{
    cJSON *params = NULL;
    if (cursor) {
        params = cJSON_CreateObject();
        cJSON_AddStringToObject(params, "cursor", cursor);
    }
    mcp_session_request(in->sess, "tools/list", params, in->cfg->startup_timeout_ms, false,
                        inst_on_list, in);
}

static void inst_list_all(instance *in)
{
    cJSON_Delete(in->acc);
    in->acc = cJSON_CreateArray();
    in->pages = 0;
    in->relisting = true;
    inst_list_page(in, NULL);
}

static void inst_on_initialize(void *arg, const mcp_msg *m, const char *why)
{
    instance *in = arg;
    if (!in->sess) return;
    if (!m || m->kind == MCP_MSG_ERROR) {
        char msg[240];
        snprintf(msg, sizeof msg, "initialize failed: %.180s", m ? m->error_message : why);
        inst_crashed(in, msg);
        return;
    }
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(m->result, "protocolVersion");
    if (!cJSON_IsString(pv) || !mcp_protocol_version_ok(pv->valuestring)) {
        char msg[200];
        snprintf(msg, sizeof msg, "the server speaks protocol version %.40s, which brigade does not "
                 "(it speaks %s, 2025-06-18 and 2025-03-26)",
                 cJSON_IsString(pv) ? pv->valuestring : "(none)", MCP_PROTOCOL_VERSION);
        inst_crashed(in, msg);
        return;
    }
    mcp_transport *tr = mcp_session_transport(in->sess);
    if (tr && tr->negotiated) tr->negotiated(tr, pv->valuestring);
    mcp_session_notify(in->sess, "notifications/initialized", NULL);
    inst_list_all(in);
}

static void inst_on_notification(void *arg, const mcp_msg *m)
{
    instance *in = arg;
    if (!strcmp(m->method, "notifications/tools/list_changed") && in->state == INST_READY &&
        !in->relisting)
        inst_list_all(in);
}

static void inst_on_progress(void *arg, int64_t token, double progress, double total,
                             const char *message)
{
    instance *in = arg;
    for (mcp_call *c = in->calls; c; c = c->inext) {
        if (c->req_id != token) continue;
        pthread_mutex_lock(&in->h->lock);
        if (!c->cancelled && !c->finished) {
            c->progress_new = true;
            c->prog = progress;
            c->total = total;
            snprintf(c->prog_msg, sizeof c->prog_msg, "%s", message ? message : "");
            uv_async_send(&c->async);
        }
        pthread_mutex_unlock(&in->h->lock);
        return;
    }
}

static void inst_on_closed(void *arg, const char *why)
{
    instance *in = arg;
    inst_crashed(in, why);
}

static void inst_start_timeout(uv_timer_t *t)
{
    instance *in = t->data;
    if (in->state == INST_STARTING) {
        char msg[160];
        snprintf(msg, sizeof msg, "it did not start within %u ms", in->cfg->startup_timeout_ms);
        inst_crashed(in, msg);
    }
}

static bool hub_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

static size_t hub_running_of(mcp_hub *h, const char *server_id, instance **lru);

static void inst_start(instance *in)
{
    mcp_hub *h = in->h;
    instance *lru = NULL;
    if (hub_running_of(h, in->server_id, &lru) >= in->cfg->max_instances) {
        if (!lru) {
            char msg[200];
            snprintf(msg, sizeof msg, "the MCP server %s has %u instances busy; try again later",
                     in->cfg->name, in->cfg->max_instances);
            inst_fail_waiters(in, msg);
            return;
        }
        log_msg(LOG_INFO, "mcp %s: stopped (least recently used, to start %s)", lru->label, in->label);
        inst_remove(lru, "stopped to make room for another instance");
    }
    bool stdio = in->cfg->transport == MCP_TRANSPORT_STDIO;
    if (stdio && !hub_mkdirs(in->workdir)) {
        char msg[200];
        snprintf(msg, sizeof msg, "the MCP server %s: its working directory could not be made", in->cfg->name);
        inst_fail_waiters(in, msg);
        return;
    }
    mcp_session_cb cb = {.on_notification = inst_on_notification, .on_progress = inst_on_progress,
                         .on_closed = inst_on_closed, .on_egress_refused = inst_on_egress_refused,
                         .arg = in};
    mcp_session *s = mcp_session_new(&h->loop, in->cfg->name, cb);
    char err[300];
    mcp_transport *t = stdio ? mcp_stdio_open(&h->loop, in->cfg, in->workdir, h->root,
                                              mcp_session_transport_cb(s), err, sizeof err)
                             : mcp_http_open(h->curl, in->cfg, mcp_session_transport_cb(s), err,
                                             sizeof err);
    if (!t) {
        mcp_session_close(s, err);
        in->sess = NULL;
        inst_crashed(in, err);   /* back-off, and the waiters are told why */
        return;
    }
    if (!stdio && in->bearer) mcp_http_set_bearer(t, in->bearer);
    if (!stdio) mcp_http_enable_get_stream(t);
    mcp_session_attach(s, t);
    in->sess = s;
    inst_set_running(in, true);
    in->state = INST_STARTING;
    in->last_used = hub_now(h);
    uv_timer_start(&in->timer, inst_start_timeout, in->cfg->startup_timeout_ms, 0);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "protocolVersion", MCP_PROTOCOL_VERSION);
    cJSON_AddObjectToObject(p, "capabilities");
    cJSON *ci = cJSON_AddObjectToObject(p, "clientInfo");
    cJSON_AddStringToObject(ci, "name", "brigade");
    cJSON_AddStringToObject(ci, "version", BRIGADE_VERSION);
    mcp_session_request(s, "initialize", p, in->cfg->startup_timeout_ms, false, inst_on_initialize, in);
}

/* Make sure the instance is running or starting (a request waits). */
static void inst_wake(instance *in)
{
    in->last_used = hub_now(in->h);
    if (in->state == INST_NEW) inst_start(in);
    else if (in->state == INST_BACKOFF) {
        uint64_t now = hub_now(in->h);
        if (now >= in->restart_at) {
            inst_start(in);
            return;
        }
        /* Within the back-off nobody waits for it: the call fails now with
         * the reason, and the first use after the back-off starts it. */
        char msg[400];
        snprintf(msg, sizeof msg, "the MCP server %s is not available (it is started again in %.1f s): %s",
                 in->cfg->name, (double)(in->restart_at - now) / 1000.0, in->last_error);
        inst_fail_waiters(in, msg);
    }
}

/* ---- calls ---- */

/* The text cut to max bytes on a UTF-8 boundary, with the note tools use. */
static char *hub_cut(char *text, size_t len, size_t total, size_t max, size_t *out_len)
{
    if (total <= max && len == total) {
        *out_len = len;
        return text;
    }
    char note[96];
    int nl = snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]", len, total);
    size_t keep = max > (size_t)nl ? max - (size_t)nl : 0;
    if (keep > len) keep = len;
    while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80) keep--;
    nl = snprintf(note, sizeof note, "\n[output cut: %zu of %zu bytes]", keep, total);
    char *o = xmalloc(keep + (size_t)nl + 1);
    memcpy(o, text, keep);
    memcpy(o + keep, note, (size_t)nl + 1);
    free(text);
    *out_len = keep + (size_t)nl;
    return o;
}

static void inst_on_call(void *arg, const mcp_msg *m, const char *why)
{
    mcp_call *c = arg;
    instance *in = c->inst;
    c->req_id = -1;   /* answered: no progress, no cancel */
    if (!m) {
        char msg[300];
        snprintf(msg, sizeof msg, "error: %s", why ? why : "the call failed");
        call_fail(c, msg);
    } else if (m->kind == MCP_MSG_ERROR && m->error_code == MCP_ERR_AUTH_REFUSED && in && in->cfg->oauth) {
        char msg[400];
        snprintf(msg, sizeof msg, "error: %.300s; the user is asked to connect it again at the next call",
                 m->error_message);
        call_finish_as(c, false, true, xstrdup(msg), strlen(msg));
    } else if (m->kind == MCP_MSG_ERROR) {
        char msg[400];
        snprintf(msg, sizeof msg, "error from the MCP server (%lld): %.300s", (long long)m->error_code,
                 m->error_message);
        call_fail(c, msg);
    } else {
        bool is_error = false;
        size_t len = 0, total = 0;
        char *text = mcp_content_to_text(m->result, c->max_output, &is_error, &len, &total);
        text = hub_cut(text, len, total, c->max_output, &len);
        call_finish(c, !is_error, text, len);
        if (in && !is_error) in->crashes = 0;
    }
    if (in) in->last_used = hub_now(in->h);
    call_release(c);
}

static void inst_run_call(instance *in, mcp_call *c)
{
    cJSON *args = cJSON_Parse(c->arguments && c->arguments[0] ? c->arguments : "{}");
    if (!cJSON_IsObject(args)) {
        cJSON_Delete(args);
        call_fail(c, "error: the arguments are not a JSON object");
        call_release(c);
        return;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", c->tool);
    cJSON_AddItemToObject(p, "arguments", args);
    /* the answer never comes from inside the request call */
    int64_t id = mcp_session_request(in->sess, "tools/call", p, in->cfg->call_timeout_ms, true,
                                     inst_on_call, c);
    c->req_id = id > 0 ? id : -1;
}

/* ---- the hub's loop ---- */

static bool hub_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= 64 || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

typedef struct running_count {
    const char *server_id;
    size_t n;
    instance *lru;
} running_count;

/* strmap_foreach visitors answer false: true would delete the entry. */
static bool count_one(const char *key, void *val, void *arg)
{
    (void)key;
    instance *in = val;
    running_count *rc = arg;
    if (strcmp(in->server_id, rc->server_id) || !in->sess) return false;
    rc->n++;
    bool idle = !in->calls && !in->list_waiters && in->state == INST_READY;
    if (idle && (!rc->lru || in->last_used < rc->lru->last_used)) rc->lru = in;
    return false;
}

static size_t hub_running_of(mcp_hub *h, const char *server_id, instance **lru)
{
    running_count rc = {.server_id = server_id};
    strmap_foreach(h->instances, count_one, &rc);
    *lru = rc.lru;
    return rc.n;
}

/* The instance of a tenant's own server for a job, made if new: the key
 * NAME/TENANT/USER/tHASH cannot meet a configured server's NAME/TENANT/USER
 * nor another tenant's; the definition is read (with the configuration's
 * rules) only when the instance is new. */
static instance *hub_tenant_instance(mcp_hub *h, const hub_job *j, char *err, size_t errlen)
{
    if (!hub_id_ok(j->tenant) || !hub_id_ok(j->user)) {
        snprintf(err, errlen, "the MCP server %.40s is a tenant's, and this call has no user", j->server);
        return NULL;
    }
    char key[200];
    snprintf(key, sizeof key, "%s/%s/%s/t%016llx", j->server, j->tenant, j->user,
             (unsigned long long)j->def_hash);
    instance *in = strmap_get(h->instances, key);
    if (in) return in;
    mcp_server_cfg *cfg = xcalloc(1, sizeof *cfg);
    char why[400];
    if (config_mcp_server_from_json(h->cfg, j->tenant_def, strlen(j->tenant_def), cfg, why, sizeof why) < 0 ||
        strcmp(cfg->name, j->server) || cfg->transport != MCP_TRANSPORT_HTTP) {
        snprintf(err, errlen, "the MCP server %.40s of this tenant does not load: %.200s", j->server,
                 cfg->name ? "its definition changed under it" : why);
        config_mcp_server_free(cfg);
        free(cfg);
        return NULL;
    }
    in = xcalloc(1, sizeof *in);
    in->h = h;
    in->own_cfg = cfg;
    in->cfg = cfg;
    snprintf(in->server_id, sizeof in->server_id, "%s/%s", j->server, j->tenant);
    snprintf(in->key, sizeof in->key, "%s", key);
    snprintf(in->label, sizeof in->label, "%s/%s/%s (tenant's)", j->server, j->tenant, j->user);
    snprintf(in->workdir, sizeof in->workdir, "%.3800s/tenant", h->root);   /* http: never made */
    uv_timer_init(&h->loop, &in->timer);
    in->timer.data = in;
    strmap_put(h->instances, in->key, in);
    return in;
}

/* The instance for a job, made if new; NULL with err. */
static instance *hub_instance(mcp_hub *h, const hub_job *j, char *err, size_t errlen)
{
    if (j->tenant_def) return hub_tenant_instance(h, j, err, errlen);
    const mcp_server_cfg *cfg = config_find_mcp_server(h->cfg, j->server);
    if (!cfg) {
        snprintf(err, errlen, "no MCP server named %.40s", j->server);
        return NULL;
    }
    char key[200];
    /* An http server keeps one MCP session per user even when it is shared:
     * a session is a user's, never another's. */
    if (cfg->per_user || cfg->transport == MCP_TRANSPORT_HTTP) {
        if (!hub_id_ok(j->tenant) || !hub_id_ok(j->user)) {
            snprintf(err, errlen, "the MCP server %s runs per user, and this call has no user", cfg->name);
            return NULL;
        }
        snprintf(key, sizeof key, "%s/%s/%s", cfg->name, j->tenant, j->user);
    } else {
        snprintf(key, sizeof key, "%s", cfg->name);
    }
    instance *in = strmap_get(h->instances, key);
    if (in) return in;
    in = xcalloc(1, sizeof *in);
    in->h = h;
    in->cfg = cfg;
    snprintf(in->server_id, sizeof in->server_id, "%s", cfg->name);
    snprintf(in->key, sizeof in->key, "%s", key);
    snprintf(in->label, sizeof in->label, "%s", key);
    snprintf(in->tenant, sizeof in->tenant, "%s", j->tenant);
    snprintf(in->user, sizeof in->user, "%s", j->user);
    int wl = cfg->per_user ? snprintf(in->workdir, sizeof in->workdir, "%.3800s/%s/%s/%s", h->root,
                                      cfg->name, j->tenant, j->user)
                           : snprintf(in->workdir, sizeof in->workdir, "%.3800s/%s/shared", h->root,
                                      cfg->name);
    (void)wl;   /* the root is bounded to leave room for the rest */
    uv_timer_init(&h->loop, &in->timer);
    in->timer.data = in;
    strmap_put(h->instances, in->key, in);
    return in;
}

static void hub_do_list(mcp_hub *h, hub_job *j)
{
    char err[300];
    instance *in = hub_instance(h, j, err, sizeof err);
    if (!in) {
        list_answer(h, j, false, NULL, err);
        return;
    }
    inst_take_bearer(in, j);
    in->last_used = hub_now(h);
    if (in->state == INST_READY && in->tools) {
        list_answer(h, j, true, in->tools, NULL);
        return;
    }
    /* A run's start waits on a pool thread: when another instance of the
     * same server listed its tools already, that list answers at once and
     * this user's instance starts meanwhile (ready, most often, by the
     * time the model calls a tool). Only for stdio servers: the same
     * program with the same configuration; an http server may list other
     * tools to another user's session, which this user must not read. */
    const cJSON *known = in->cfg->transport == MCP_TRANSPORT_STDIO ? strmap_get(h->known, in->cfg->name) : NULL;
    if (known && in->state != INST_BACKOFF) {
        list_answer(h, j, true, known, NULL);
        inst_wake(in);
        return;
    }
    j->wnext = in->list_waiters;
    in->list_waiters = j;
    inst_wake(in);
}

static void hub_do_call(mcp_hub *h, hub_job *j)
{
    mcp_call *c = j->call;
    pthread_mutex_lock(&h->lock);
    bool cancelled = c->cancelled;
    pthread_mutex_unlock(&h->lock);
    char err[300];
    instance *in = cancelled || h->stopping ? NULL : hub_instance(h, j, err, sizeof err);
    if (in) inst_take_bearer(in, j);
    job_free_who(j);
    free(j);
    if (!in) {
        if (!cancelled) call_fail(c, h->stopping ? "error: brigade is shutting down" : err);
        call_release(c);
        return;
    }
    c->inst = in;
    c->hub_active = true;
    c->req_id = 0;
    c->inext = in->calls;
    in->calls = c;
    in->last_used = hub_now(h);
    if (in->state == INST_READY) inst_run_call(in, c);
    else inst_wake(in);
}

static void hub_do_cancel(mcp_hub *h, hub_job *j)
{
    mcp_call *c = j->call;
    free(j);
    if (c->hub_active) {
        instance *in = c->inst;
        if (in && in->sess && c->req_id > 0) mcp_session_cancel(in->sess, c->req_id, "the run was cancelled");
        call_release(c);
    }
    pthread_mutex_lock(&h->lock);
    call_unref_locked(c);   /* the cancel job's reference */
    pthread_mutex_unlock(&h->lock);
}

static bool stop_one(const char *key, void *val, void *arg)
{
    (void)key;
    instance ***list = arg;
    **list = val;
    (*list)++;
    return false;
}

static void hub_reap_tick(uv_timer_t *t);

static void hub_inbox_closed(inbox *ib) { (void)ib; }

static void hub_do_stop(mcp_hub *h)
{
    h->stopping = true;
    size_t n = strmap_count(h->instances);
    instance **all = xcalloc(n ? n : 1, sizeof *all), **w = all;
    strmap_foreach(h->instances, stop_one, &w);
    for (size_t i = 0; i < n; i++) inst_remove(all[i], "brigade is shutting down");
    free(all);
    uv_timer_stop(&h->reaper);
    uv_close((uv_handle_t *)&h->reaper, NULL);
    mcp_curl_release(h->curl);   /* freed after the sessions' DELETEs */
    h->curl = NULL;
    inbox_close_handle(&h->ib, hub_inbox_closed);
}

static void hub_wake(inbox *ib)
{
    mcp_hub *h = ib->owner;
    pthread_mutex_lock(&h->lock);
    inbox_node *n = inbox_take_all_locked(ib);
    pthread_mutex_unlock(&h->lock);
    while (n) {
        inbox_node *next = n->next;
        hub_job *j = (hub_job *)n;
        switch (j->kind) {
        case JOB_LIST:
            if (h->stopping) list_answer(h, j, false, NULL, "brigade is shutting down");
            else hub_do_list(h, j);
            break;
        case JOB_CALL: hub_do_call(h, j); break;
        case JOB_CANCEL: hub_do_cancel(h, j); break;
        case JOB_STOP:
            free(j);
            if (!h->stopping) hub_do_stop(h);
            break;
        }
        n = next;
    }
}

/* A ping's answer: any answer (even an error) says the server is alive;
 * none in time means it hangs, and it is restarted on its next use. */
static void inst_on_ping(void *arg, const mcp_msg *m, const char *why)
{
    instance *in = arg;
    in->pinging = false;
    if (!in->sess || m) return;
    char msg[200];
    snprintf(msg, sizeof msg, "it did not answer a ping: %.150s", why ? why : "no answer");
    inst_crashed(in, msg);
}

static bool ping_one(const char *key, void *val, void *arg)
{
    (void)key;
    instance *in = val;
    uint64_t now = *(const uint64_t *)arg;
    if (in->state != INST_READY || !in->sess || in->pinging || in->calls || !in->cfg->ping_interval_s)
        return false;
    uint64_t since = in->last_ping > in->last_used ? in->last_ping : in->last_used;
    if (now - since < (uint64_t)in->cfg->ping_interval_s * 1000) return false;
    in->last_ping = now;
    in->pinging = true;
    uint32_t timeout = in->cfg->call_timeout_ms < HUB_PING_TIMEOUT_MS ? in->cfg->call_timeout_ms
                                                                      : HUB_PING_TIMEOUT_MS;
    mcp_session_request(in->sess, "ping", NULL, timeout, false, inst_on_ping, in);
    return false;
}

typedef struct reap_ctx {
    uint64_t   now;
    instance **idle;
    size_t     n, cap;
} reap_ctx;

static bool reap_one(const char *key, void *val, void *arg)
{
    (void)key;
    instance *in = val;
    reap_ctx *r = arg;
    bool busy = in->calls || in->list_waiters || in->state == INST_STARTING;
    if (busy || r->now - in->last_used < (uint64_t)in->cfg->idle_timeout_s * 1000) return false;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 8;
        r->idle = xrealloc(r->idle, r->cap * sizeof *r->idle);
    }
    r->idle[r->n++] = in;
    return false;
}

static void hub_reap_tick(uv_timer_t *t)
{
    mcp_hub *h = t->data;
    reap_ctx r = {.now = hub_now(h)};
    strmap_foreach(h->instances, reap_one, &r);
    for (size_t i = 0; i < r.n; i++) {
        if (r.idle[i]->sess) log_msg(LOG_INFO, "mcp %s: stopped after being idle", r.idle[i]->label);
        inst_remove(r.idle[i], "stopped after being idle");
    }
    free(r.idle);
    strmap_foreach(h->instances, ping_one, &r.now);
}

static void *hub_main(void *arg)
{
    mcp_hub *h = arg;
    pthread_setname_np(pthread_self(), "mcp");   /* top -H (docs/architecture.md, Threads) */
    int rc = uv_loop_init(&h->loop);
    if (rc == 0) rc = inbox_init(&h->ib, &h->loop, &h->lock, hub_wake, h);
    if (rc == 0) {
        uv_timer_init(&h->loop, &h->reaper);
        h->reaper.data = h;
        uv_timer_start(&h->reaper, hub_reap_tick, HUB_REAP_EVERY_MS, HUB_REAP_EVERY_MS);
        h->curl = mcp_curl_new(&h->loop);   /* NULL: http servers report it */
        if (h->curl) mcp_curl_set_allow_nets(h->curl, h->cfg->egress_allow_nets, h->cfg->n_egress_allow_nets);
    }
    h->start_rc = rc;
    uv_sem_post(&h->started);
    if (rc != 0) return NULL;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    return NULL;
}

static void inst_free_val(void *v) { (void)v; }   /* instances free themselves */
static void known_free(void *v) { cJSON_Delete(v); }

mcp_hub *mcp_hub_start(const brigade_config *cfg, char *err, size_t errlen)
{
    mcp_hub *h = xcalloc(1, sizeof *h);
    h->cfg = cfg;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/mcp", cfg->data_dir ? cfg->data_dir : ".");
    if (!hub_mkdirs(dir) || !realpath(dir, h->root)) {
        snprintf(err, errlen, "mcp: %s could not be made: %s", dir, strerror(errno));
        free(h);
        return NULL;
    }
    /* stdio servers run sandboxed (spawn.c): say now which cannot, and
     * which the operator chose to run without it */
    for (size_t i = 0; i < cfg->n_mcp_servers; i++) {
        const mcp_server_cfg *m = &cfg->mcp_servers[i];
        char why[300];
        if (m->transport != MCP_TRANSPORT_STDIO) continue;
        if (!m->sandbox)
            log_warn("mcp %s: runs WITHOUT the sandbox (sandbox: false): it sees the host's files, "
                     "processes and network as brigade's user does", m->name);
        else if (!sandbox_can_run(why, sizeof why))
            log_error("mcp %s cannot run: %s; its instances will not start (sandbox: false on the "
                      "server runs it unsandboxed)", m->name, why);
    }
    h->instances = strmap_new(inst_free_val);
    h->known = strmap_new(known_free);
    pthread_mutex_init(&h->lock, NULL);
    uv_sem_init(&h->started, 0);
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0) {
        snprintf(err, errlen, "mcp: the hub's thread could not start");
        goto fail;
    }
    uv_sem_wait(&h->started);
    if (h->start_rc != 0) {
        pthread_join(h->thread, NULL);
        snprintf(err, errlen, "mcp: the hub's loop could not start: %s", uv_strerror(h->start_rc));
        goto fail;
    }
    return h;
fail:
    uv_sem_destroy(&h->started);
    pthread_mutex_destroy(&h->lock);
    strmap_free(h->instances);
    strmap_free(h->known);
    free(h);
    return NULL;
}

void mcp_hub_stop(mcp_hub *h)
{
    if (!h) return;
    hub_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_STOP;
    pthread_mutex_lock(&h->lock);
    bool pushed = inbox_push_locked(&h->ib, &j->node);
    if (pushed) inbox_mark_closed_locked(&h->ib);
    pthread_mutex_unlock(&h->lock);
    if (!pushed) free(j);
    pthread_join(h->thread, NULL);
    uv_sem_destroy(&h->started);
    pthread_mutex_destroy(&h->lock);
    strmap_free(h->instances);
    strmap_free(h->known);
    free(h);
}

void mcp_hub_set_on_egress_refused(mcp_hub *h, mcp_egress_refused_fn fn, void *arg)
{
    h->on_refused = fn;
    h->on_refused_arg = arg;
}

size_t mcp_hub_instances(mcp_hub *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->running;
    pthread_mutex_unlock(&h->lock);
    return n;
}

void mcp_tool_list_free(mcp_tool_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].description);
        free(l->items[i].input_schema);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* FNV-1a: which version of a tenant's definition (not a secret's digest:
 * the key only has to change when the definition does). */
static uint64_t def_hash(const char *s)
{
    uint64_t x = 1469598103934665603ull;
    for (; *s; s++) x = (x ^ (unsigned char)*s) * 1099511628211ull;
    return x;
}

static void job_who(hub_job *j, const char *server, const mcp_who *who)
{
    if (who && who->authorization && who->authorization[0]) j->authorization = xstrdup(who->authorization);
    snprintf(j->server, sizeof j->server, "%s", server ? server : "");
    snprintf(j->tenant, sizeof j->tenant, "%s", who && who->tenant_id ? who->tenant_id : "");
    snprintf(j->user, sizeof j->user, "%s", who && who->user_id ? who->user_id : "");
    if (who && who->tenant_def) {
        j->tenant_def = xstrdup(who->tenant_def);
        j->def_hash = def_hash(who->tenant_def);
    }
}

bool mcp_hub_list_tools(mcp_hub *h, const char *server, const mcp_who *who, mcp_tool_list *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    hub_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_LIST;
    job_who(j, server, who);
    pthread_cond_init(&j->cond, NULL);
    pthread_mutex_lock(&h->lock);
    bool pushed = inbox_push_locked(&h->ib, &j->node);
    while (pushed && !j->answered) pthread_cond_wait(&j->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    bool ok = pushed && j->ok;
    if (ok) *out = j->list;
    else snprintf(err, errlen, "%s", pushed ? j->err : "brigade is shutting down");
    pthread_cond_destroy(&j->cond);
    job_free_who(j);
    free(j);
    return ok;
}

/* ---- the caller's side of a call ---- */

static void call_async_closed(uv_handle_t *hd)
{
    mcp_call *c = hd->data;
    mcp_hub *h = c->h;
    pthread_mutex_lock(&h->lock);
    call_unref_locked(c);
    pthread_mutex_unlock(&h->lock);
}

static void call_on_async(uv_async_t *a)
{
    mcp_call *c = a->data;
    mcp_hub *h = c->h;
    pthread_mutex_lock(&h->lock);
    if (c->cancelled || c->delivered) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    bool fin = c->finished;
    bool prog = c->progress_new && !fin;
    double pv = c->prog, tv = c->total;
    char pmsg[sizeof c->prog_msg];
    memcpy(pmsg, c->prog_msg, sizeof pmsg);
    c->progress_new = false;
    char *text = NULL;
    size_t len = 0;
    bool ok = false, auth_refused = false;
    if (fin) {
        c->delivered = true;
        text = c->text;
        len = c->len;
        ok = c->ok;
        auth_refused = c->auth_refused;
        c->text = NULL;
    }
    pthread_mutex_unlock(&h->lock);
    if (prog && c->progress) c->progress(c->arg, pv, tv, pmsg[0] ? pmsg : NULL);
    if (fin) {
        mcp_call_done_fn done = c->done;
        void *arg = c->arg;
        uv_close((uv_handle_t *)&c->async, call_async_closed);
        done(arg, ok, auth_refused, text ? text : "", text ? len : 0);
        free(text);
    }
}

mcp_call *mcp_hub_call(mcp_hub *h, uv_loop_t *loop, const char *server, const mcp_who *who,
                       const char *tool, const char *arguments, size_t max_output,
                       mcp_call_done_fn done, mcp_call_progress_fn progress, void *arg)
{
    mcp_call *c = xcalloc(1, sizeof *c);
    c->h = h;
    c->refs = 2;   /* the caller's (until its handle is closed) and the hub's */
    c->done = done;
    c->progress = progress;
    c->arg = arg;
    snprintf(c->tool, sizeof c->tool, "%s", tool ? tool : "");
    c->arguments = xstrdup(arguments ? arguments : "{}");
    c->max_output = max_output ? max_output : 16384;
    if (uv_async_init(loop, &c->async, call_on_async) != 0) {
        free(c->arguments);
        free(c);
        return NULL;
    }
    c->async.data = c;
    hub_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_CALL;
    job_who(j, server, who);
    j->call = c;
    pthread_mutex_lock(&h->lock);
    bool pushed = inbox_push_locked(&h->ib, &j->node);
    if (!pushed) {
        c->refs--;
        c->finished = true;
        c->text = xstrdup("error: brigade is shutting down");
        c->len = strlen(c->text);
        uv_async_send(&c->async);
    }
    pthread_mutex_unlock(&h->lock);
    if (!pushed) {
        job_free_who(j);
        free(j);
    }
    return c;
}

void mcp_call_cancel(mcp_call *c)
{
    if (!c) return;
    mcp_hub *h = c->h;
    hub_job *j = xcalloc(1, sizeof *j);
    j->kind = JOB_CANCEL;
    j->call = c;
    pthread_mutex_lock(&h->lock);
    c->cancelled = true;
    c->refs++;   /* the cancel job's */
    if (!inbox_push_locked(&h->ib, &j->node)) {
        c->refs--;
        free(j);
    }
    pthread_mutex_unlock(&h->lock);
    uv_close((uv_handle_t *)&c->async, call_async_closed);
}
