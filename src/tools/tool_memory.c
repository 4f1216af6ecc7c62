/* tool_memory.c — the built-in `memory` tool: the agent saves, recalls,
 * searches and deletes notes in its user's long-term memory.
 *
 * The store is blocking, so each call runs on the libuv thread pool and
 * answers from the after-work callback on the loop. The scope is copied
 * from the run when the call starts: the tool can reach only that user's
 * memory (invariant 2, docs/architecture.md), the same records /v1/memory shows.
 *
 * Cancelling while the store call is on the pool cannot stop SQLite midway;
 * the call is marked, runs to its end, and the after-work callback frees it
 * without calling back. */
#include "tools/tools_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMORY_SEARCH_LIMIT 10
#define MEMORY_QUERY_MAX 1024

typedef enum mem_action { MEM_SAVE = 1, MEM_RECALL, MEM_SEARCH, MEM_DELETE } mem_action;

typedef struct mem_exec {
    tool_exec  base;
    uv_work_t  work;
    store     *st;
    scope      sc;             /* a copy: the run's scope may go before we finish */
    mem_action action;
    char      *key, *value, *query;
    char      *write_origin;   /* JSON recorded on what a save writes (tools.h) */
    void     (*read_origins)(void *arg, const char *entries_json);
    void      *read_origins_arg;
    bool       cancelled;      /* loop thread only */
    /* filled on the pool */
    bool       ok;
    char      *out;
    cJSON     *read;           /* [{"key","origin"}]: the entries read */
} mem_exec;

static void mem_free(mem_exec *m)
{
    free(m->key);
    free(m->value);
    free(m->query);
    free(m->write_origin);
    free(m->out);
    cJSON_Delete(m->read);
    free(m);
}

static char *mem_json(cJSON *o)
{
    char *t = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return t;
}

/* Remember an entry read, with who wrote it: its origin travels with the
 * tool's result (core/origin.h). A stored origin that does not parse is
 * reported as not recorded. */
static void mem_note_read(mem_exec *m, const memory_rec *rec)
{
    if (!m->read) m->read = cJSON_CreateArray();
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "key", rec->key);
    cJSON *o = rec->origin_json ? cJSON_Parse(rec->origin_json) : NULL;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        o = cJSON_CreateNull();
    }
    cJSON_AddItemToObject(e, "origin", o);
    cJSON_AddItemToArray(m->read, e);
}

static char *mem_store_error(store_status s, const char *key, const char *tier)
{
    char out[512];
    switch (s) {
    case STORE_NOT_FOUND:
        tools_json_error(out, sizeof out, "no memory with key \"%s\"", key ? key : "");
        break;
    case STORE_FORBIDDEN:
        tools_json_error(out, sizeof out, "memory belongs to a user; this run has none");
        break;
    case STORE_INVALID:
        tools_json_error(out, sizeof out, "the key or value is not acceptable");
        break;
    case STORE_QUOTA:
    case STORE_TOO_LARGE: {
        /* the same quota as PUT /v1/memory/{key}; the model is told which,
         * so it can free space (delete) instead of retrying */
        char why[300];
        store_quota_describe(store_quota_refused(), tier, why, sizeof why);
        tools_json_error(out, sizeof out, "nothing was saved: %s. %s", why,
                         s == STORE_TOO_LARGE ? "Save a shorter value."
                                              : "Delete memories that are no longer needed first.");
        break;
    }
    default:
        tools_json_error(out, sizeof out, "the memory store failed; nothing was changed");
        break;
    }
    return strdup(out);
}

static void mem_work(uv_work_t *w)
{
    mem_exec *m = w->data;
    store_status s = STORE_ERROR;
    memory_rec rec;
    memset(&rec, 0, sizeof rec);
    switch (m->action) {
    case MEM_SAVE:
        s = store_memory_put_from(m->st, &m->sc, m->key, m->value, m->write_origin, NULL);
        if (s == STORE_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "saved", m->key);
            m->out = mem_json(o);
        }
        break;
    case MEM_RECALL:
        s = store_memory_get(m->st, &m->sc, m->key, &rec);
        if (s == STORE_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", rec.key);
            cJSON_AddStringToObject(o, "value", rec.value ? rec.value : "");
            m->out = mem_json(o);
            mem_note_read(m, &rec);
            memory_rec_free(&rec);
        }
        break;
    case MEM_SEARCH: {
        memory_rec *arr = NULL;
        size_t n = 0;
        s = store_memory_search(m->st, &m->sc, m->query, MEMORY_SEARCH_LIMIT, &arr, &n);
        if (s == STORE_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON *res = cJSON_AddArrayToObject(o, "results");
            for (size_t i = 0; i < n && i < MEMORY_SEARCH_LIMIT; i++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "key", arr[i].key);
                cJSON_AddStringToObject(e, "value", arr[i].value ? arr[i].value : "");
                cJSON_AddItemToArray(res, e);
                mem_note_read(m, &arr[i]);
            }
            store_free_memories(arr, n);
            m->out = mem_json(o);
        }
        break;
    }
    case MEM_DELETE:
        s = store_memory_delete(m->st, &m->sc, m->key);
        if (s == STORE_OK) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "deleted", m->key);
            m->out = mem_json(o);
        }
        break;
    }
    m->ok = s == STORE_OK && m->out != NULL;
    if (s != STORE_OK) m->out = mem_store_error(s, m->key, m->sc.tier);
}

static void mem_after(uv_work_t *w, int status)
{
    mem_exec *m = w->data;
    if (m->cancelled) {
        mem_free(m);
        return;
    }
    /* only what reads has entries to tell of (none found: an empty list) */
    if (m->read_origins && status != UV_ECANCELED && (m->action == MEM_RECALL || m->action == MEM_SEARCH)) {
        char *read = m->read ? cJSON_PrintUnformatted(m->read) : NULL;
        m->read_origins(m->read_origins_arg, read ? read : "[]");
        free(read);
    }
    if (status == UV_ECANCELED || !m->out)
        tool_exec_deliver(&m->base, false, "{\"error\":\"the memory call did not run\"}", 39);
    else
        tool_exec_deliver(&m->base, m->ok, m->out, strlen(m->out));
    mem_free(m);
}

/* Keys follow the store's rule: 1 to 256 bytes, no control characters. */
static bool mem_key_ok(const char *k, char *out, size_t outlen)
{
    size_t n = strlen(k);
    if (n == 0 || n > STORE_MEMORY_KEY_MAX) {
        tools_json_error(out, outlen, "\"key\" must be 1 to %u bytes long",
                         (unsigned)STORE_MEMORY_KEY_MAX);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x20) {
            tools_json_error(out, outlen, "\"key\" must not contain control characters");
            return false;
        }
    return true;
}

static const char *mem_str(const cJSON *args, const char *name, bool *wrong_type)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v)) {
        *wrong_type = true;
        return NULL;
    }
    return v->valuestring;
}

tool_exec *tool_memory_start(const tool_env *env, const cJSON *args, char *out, size_t outlen)
{
    bool wrong = false;
    const char *action = mem_str(args, "action", &wrong);
    const char *key = mem_str(args, "key", &wrong);
    const char *value = mem_str(args, "value", &wrong);
    const char *query = mem_str(args, "query", &wrong);
    if (wrong) {
        tools_json_error(out, outlen, "\"action\", \"key\", \"value\" and \"query\" must be strings");
        return NULL;
    }
    mem_action a;
    if (!action) {
        tools_json_error(out, outlen, "\"action\" is required: save, recall, search or delete");
        return NULL;
    } else if (strcmp(action, "save") == 0) a = MEM_SAVE;
    else if (strcmp(action, "recall") == 0) a = MEM_RECALL;
    else if (strcmp(action, "search") == 0) a = MEM_SEARCH;
    else if (strcmp(action, "delete") == 0) a = MEM_DELETE;
    else {
        tools_json_error(out, outlen, "unknown action \"%.40s\": use save, recall, search or delete",
                         action);
        return NULL;
    }
    if (a != MEM_SEARCH) {
        if (!key) {
            tools_json_error(out, outlen, "action \"%s\" needs \"key\"", action);
            return NULL;
        }
        if (!mem_key_ok(key, out, outlen)) return NULL;
    }
    if (a == MEM_SAVE) {
        if (!value) {
            tools_json_error(out, outlen, "action \"save\" needs \"value\", the text to remember");
            return NULL;
        }
        if (strlen(value) > STORE_MEMORY_VALUE_MAX) {
            tools_json_error(out, outlen, "\"value\" is longer than %u bytes",
                             (unsigned)STORE_MEMORY_VALUE_MAX);
            return NULL;
        }
    }
    if (a == MEM_SEARCH) {
        if (!query) {
            tools_json_error(out, outlen, "action \"search\" needs \"query\", the words to look "
                                          "for (\"\" lists the newest memories)");
            return NULL;
        }
        if (strlen(query) > MEMORY_QUERY_MAX) {
            tools_json_error(out, outlen, "\"query\" is longer than %d bytes", MEMORY_QUERY_MAX);
            return NULL;
        }
    }
    if (!env->store || !scope_valid(env->scope)) {
        tools_json_error(out, outlen, "memory is not available in this run");
        return NULL;
    }

    mem_exec *m = calloc(1, sizeof *m);
    if (!m) {
        tools_json_error(out, outlen, "out of memory");
        return NULL;
    }
    m->base.impl = EXEC_MEMORY;
    m->st = env->store;
    m->sc = *env->scope;
    m->action = a;
    m->key = key ? strdup(key) : NULL;
    m->value = value && a == MEM_SAVE ? strdup(value) : NULL;
    m->query = query && a == MEM_SEARCH ? strdup(query) : NULL;
    m->write_origin = env->memory_origin && a == MEM_SAVE ? strdup(env->memory_origin) : NULL;
    m->read_origins = env->read_origins;
    m->read_origins_arg = env->read_origins_arg;
    if ((key && !m->key) || (a == MEM_SAVE && !m->value) || (a == MEM_SEARCH && !m->query) ||
        (env->memory_origin && a == MEM_SAVE && !m->write_origin)) {
        mem_free(m);
        tools_json_error(out, outlen, "out of memory");
        return NULL;
    }
    m->work.data = m;
    if (uv_queue_work(env->loop, &m->work, mem_work, mem_after) != 0) {
        mem_free(m);
        tools_json_error(out, outlen, "the memory call could not be queued");
        return NULL;
    }
    return &m->base;
}

void tool_memory_cancel(tool_exec *x)
{
    mem_exec *m = (mem_exec *)x;
    m->cancelled = true;
    /* If the work has not started, this makes the after-work callback come
     * sooner (with UV_ECANCELED); if it has, the call finishes first.
     * Either way mem_after frees it. */
    uv_cancel((uv_req_t *)&m->work);
}
