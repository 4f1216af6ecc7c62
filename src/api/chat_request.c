/* chat_request.c — checking and rewriting chat-completions requests (see
 * chat_request.h). Unknown fields are passed through on purpose: OpenAI adds
 * request fields often, and a gateway that rejects them breaks clients. */
#include "api/chat_request.h"
#include "api/chat_scan.h"
#include "api/chat_fields.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json_escape.h"
#include "util/json_member.h"
#include "util/json_strict.h"
#include "util/strfmt.h"
#include "util/utf8.h"
#include "util/xalloc.h"


bool chat_request_fail(chat_request_error *err, int status, const char *code, const char *param,
                      const char *fmt, ...)
{
    err->status = status;
    err->type = status == 404 ? "not_found_error" : "invalid_request_error";
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

/* Governed fields are looked up by their chat_field, never by a name
 * written here: the one list (chat_fields.h) is what both paths read. */
static const cJSON *chat_field_value(const cJSON *root, chat_field f)
{
    return cJSON_GetObjectItemCaseSensitive(root, chat_governed_fields[f].name);
}

/* max_tokens or max_completion_tokens: absent or null (*out = 0), or a
 * whole number from 1 to the model's cap. */
static bool chat_check_max_tokens(const cJSON *body, const model_cfg *m, chat_field field,
                                  uint32_t *out, chat_request_error *err)
{
    *out = 0;
    const char *name = chat_governed_fields[field].name;
    const cJSON *v = chat_field_value(body, field);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return chat_request_fail(err, 400, "invalid_value", name, "%s must be a positive integer", name);
    if (m->max_output_tokens && v->valuedouble > m->max_output_tokens)
        return chat_request_fail(err, 400, "invalid_value", name,
                         "%s is %.0f, but model \"%s\" allows at most %u output tokens", name,
                         v->valuedouble, m->name, m->max_output_tokens);
    *out = (uint32_t)v->valuedouble;
    return true;
}

/* n: how many answers one call generates, each up to the output cap — the
 * reservation is n times the cap, so n is bounded by server.max_choices. */
static bool chat_check_choices(const cJSON *body, const brigade_config *cfg, uint32_t *out,
                               chat_request_error *err)
{
    uint32_t limit = cfg->max_choices ? cfg->max_choices : 8;
    *out = 1;
    const cJSON *v = chat_field_value(body, CHAT_FIELD_N);
    if (!v || cJSON_IsNull(v)) return true;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e9 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return chat_request_fail(err, 400, "invalid_value", "n", "n must be a positive integer");
    if (v->valuedouble > limit)
        return chat_request_fail(err, 400, "invalid_value", "n",
                         "n is %.0f, but this server allows at most %u choices per request",
                         v->valuedouble, limit);
    *out = (uint32_t)v->valuedouble;
    return true;
}

/* Fields that make a provider bill more than tokens × the model's prices,
 * or more output than n × the output cap: brigade could neither reserve
 * nor charge them, so a request using them is refused rather than passed
 * through. null is the same as absent. */
static bool chat_check_unmetered(const cJSON *body, chat_request_error *err)
{
    static const struct { chat_field field; const char *why; } refused[] = {
        {CHAT_FIELD_BEST_OF, "it generates several completions server-side and bills them all"},
        {CHAT_FIELD_AUDIO, "audio output is billed at audio token prices"},
        {CHAT_FIELD_PREDICTION, "rejected prediction tokens are billed as output beyond the output cap"},
        {CHAT_FIELD_WEB_SEARCH_OPTIONS, "web searches are billed per call, not per token"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        const char *name = chat_governed_fields[refused[i].field].name;
        const cJSON *v = chat_field_value(body, refused[i].field);
        if (v && !cJSON_IsNull(v))
            return chat_request_fail(err, 400, "unsupported_parameter", name,
                             "\"%s\" is not supported by this gateway: %s, which its budgets "
                             "cannot reserve", name, refused[i].why);
    }
    const cJSON *mod = chat_field_value(body, CHAT_FIELD_MODALITIES);
    if (mod && !cJSON_IsNull(mod)) {
        if (!cJSON_IsArray(mod))
            return chat_request_fail(err, 400, "invalid_type", "modalities",
                             "\"modalities\" must be an array of strings");
        const cJSON *m;
        cJSON_ArrayForEach(m, mod) {
            if (!cJSON_IsString(m) || strcmp(m->valuestring, "text") != 0)
                return chat_request_fail(err, 400, "unsupported_parameter", "modalities",
                                 "\"modalities\" may only be [\"text\"] on this gateway: "
                                 "other outputs (audio, images) are billed at prices its "
                                 "budgets cannot reserve");
        }
    }
    /* The priority tier costs more per token than the model's configured
     * prices; auto, default and flex cost those prices or less. */
    const cJSON *tier = chat_field_value(body, CHAT_FIELD_SERVICE_TIER);
    if (tier && !cJSON_IsNull(tier) &&
        !(cJSON_IsString(tier) && (strcmp(tier->valuestring, "auto") == 0 ||
                                   strcmp(tier->valuestring, "default") == 0 ||
                                   strcmp(tier->valuestring, "flex") == 0)))
        return chat_request_fail(err, 400, "unsupported_parameter", "service_tier",
                         "\"service_tier\" may be \"auto\", \"default\" or \"flex\" here: "
                         "other tiers are billed above the model's prices");
    return true;
}

/* Does `key` equal the lower-case ASCII `field` when letters are folded
 * the way Go's encoding/json folds them (ASCII case, and U+212A KELVIN
 * SIGN = k, U+017F LONG S = s)? */
static bool chat_folds_to(const char *key, const char *field)
{
    const unsigned char *k = (const unsigned char *)key;
    for (const char *f = field; *f; f++) {
        unsigned char c = *k;
        if (c == 0xE2 && k[1] == 0x84 && k[2] == 0xAA) { c = 'k'; k += 3; }
        else if (c == 0xC5 && k[1] == 0xBF) { c = 's'; k += 2; }
        else { if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32); k++; }
        if (c != (unsigned char)*f) return false;
    }
    return *k == '\0';
}

/* Some providers match JSON keys to their fields without regard to case
 * (Go's encoding/json does, and the last match wins): "MAX_TOKENS" after
 * "max_tokens" would be read as the cap. A top-level key that is a
 * governed field in another case is refused. */
static const char *chat_clash_of(const char *key)
{
    /* An ASCII key folds one byte per letter, so only a field of its own
     * length can match it (the two non-ASCII letters take 2 and 3 bytes):
     * the others are skipped without comparing. */
    size_t klen = 0;
    bool ascii = true;
    for (; key[klen]; klen++) ascii &= (unsigned char)key[klen] < 0x80;
    for (size_t i = 0; i < CHAT_FIELD_COUNT; i++) {
        if (ascii && chat_governed_fields[i].len != klen) continue;
        const char *g = chat_governed_fields[i].name;
        if (strcmp(key, g) != 0 && chat_folds_to(key, g)) return g;
    }
    return NULL;
}

bool chat_request_case_clash(const char *key) { return chat_clash_of(key) != NULL; }

static bool chat_check_field_case(const cJSON *root, chat_request_error *err)
{
    for (const cJSON *f = root->child; f; f = f->next) {
        const char *g = chat_clash_of(f->string);
        if (g)
            return chat_request_fail(err, 400, "invalid_value", f->string,
                             "the field \"%.64s\" is \"%s\" in another letter case; some "
                             "providers would read it as that field, so it is not accepted",
                             f->string, g);
    }
    return true;
}

static bool chat_check_messages(const cJSON *body, chat_request_error *err)
{
    const cJSON *msgs = chat_field_value(body, CHAT_FIELD_MESSAGES);
    if (!msgs)
        return chat_request_fail(err, 400, "missing_field", "messages",
                         "missing required field \"messages\"");
    if (!cJSON_IsArray(msgs) || !msgs->child)
        return chat_request_fail(err, 400, "invalid_value", "messages",
                         "\"messages\" must be a non-empty array");
    int i = 0;
    for (const cJSON *m = msgs->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role)) {
            char param[32];
            snprintf(param, sizeof param, "messages[%d]", i);
            return chat_request_fail(err, 400, "invalid_value", param,
                             "%s must be an object with a string \"role\"", param);
        }
    }
    return true;
}

cJSON *chat_request_read_object(const char *body, size_t len, chat_request *out,
                                chat_request_error *err)
{
    memset(out, 0, sizeof *out);
    return chat_request_body_object(body, len, err);
}

cJSON *chat_request_body_object(const char *body, size_t len, chat_request_error *err)
{
    memset(err, 0, sizeof *err);
    if (!body || len == 0) {
        chat_request_fail(err, 400, "missing_body", NULL, "this request needs a JSON object body");
        return NULL;
    }
    if (!utf8_valid(body, len)) {
        chat_request_fail(err, 400, "invalid_utf8", NULL, "the request body is not valid UTF-8");
        return NULL;
    }
    json_strict_error jerr;
    if (!json_strict_text(body, len, "the request body", &jerr)) {
        chat_request_fail(err, 400, jerr.kind == JSON_STRICT_NUL ? "nul_character" : "invalid_json",
                  NULL, "%s", jerr.message);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!root) {
        size_t at = end && end >= body ? (size_t)(end - body) : 0;
        chat_request_fail(err, 400, "invalid_json", NULL,
                  "the request body is not valid JSON (error near byte %zu)", at);
        return NULL;
    }
    for (const char *p = end; p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            chat_request_fail(err, 400, "invalid_json", NULL, "unexpected data after the JSON value");
            cJSON_Delete(root);
            return NULL;
        }
    if (!cJSON_IsObject(root)) {
        chat_request_fail(err, 400, "invalid_json", NULL, "the request body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    /* Before any field is read: the client's bytes may be forwarded as
     * they are, and a provider keeping the last copy of a repeated key
     * would read another request than the one governed here. */
    if (!json_strict_tree(root, "the request body", &jerr)) {
        chat_request_fail(err, 400, "duplicate_key", jerr.path, "%s", jerr.message);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

const model_cfg *chat_request_model(const cJSON *root, const brigade_config *cfg, bool embedding,
                                    chat_request_error *err)
{
    const cJSON *model = chat_field_value(root, CHAT_FIELD_MODEL);
    if (!model) {
        chat_request_fail(err, 400, "missing_field", "model", "missing required field \"model\"");
        return NULL;
    }
    if (!cJSON_IsString(model) || !model->valuestring[0] || strlen(model->valuestring) > 128) {
        chat_request_fail(err, 400, "invalid_value", "model", "\"model\" must be a model name (a string)");
        return NULL;
    }
    const model_cfg *m = config_find_model(cfg, model->valuestring);
    if (!m) {
        chat_request_fail(err, 404, "model_not_found", "model",
                          "the model \"%s\" does not exist on this server (GET /v1/models lists them)",
                          model->valuestring);
        return NULL;
    }
    if (m->embedding != embedding) {
        chat_request_fail(err, 400, "wrong_model_kind", "model",
                          m->embedding ? "\"%s\" is an embedding model: POST /v1/embeddings serves it"
                                       : "\"%s\" is a chat model; /v1/embeddings serves models of kind "
                                         "embedding", m->name);
        return NULL;
    }
    return m;
}

bool chat_request_known_fields(const cJSON *root, const char *const *fields, size_t n,
                               const char *api, chat_request_error *err)
{
    for (const cJSON *f = root->child; f; f = f->next) {
        bool known = false;
        for (size_t i = 0; i < n && !known; i++) known = strcmp(f->string, fields[i]) == 0;
        if (!known)
            return chat_request_fail(err, 400, "unsupported_parameter", f->string,
                                     "\"%.64s\" is not a %s field this gateway supports", f->string,
                                     api);
    }
    return true;
}

void chat_request_forward_bytes(const char *body, size_t len, const chat_forward_edits *e,
                                chat_request *out)
{
    /* The edits in the order they lie in the body: at most four, each a
     * range of the client's bytes and what takes its place. */
    typedef struct { size_t start, end; const char *text; size_t n; } edit;
    edit ed[4];
    size_t n_ed = 0, grow = 0;
    /* A UTF-8 byte order mark (cJSON reads past one) is dropped: JSON
     * forbids sending one, and strict readers (Go, JavaScript) refuse it. */
    if (len >= 3 && memcmp(body, "\xef\xbb\xbf", 3) == 0) ed[n_ed++] = (edit){0, 3, "", 0};
    char cap_text[48] = "\"max_completion_tokens\":";   /* then the digits and a comma */
    if (e->cap && !e->cap_replaces) {
        size_t brace = 0;
        while (brace < len && body[brace] != '{') brace++;
        size_t cl = 24 + fmt_u64(cap_text + 24, e->cap);
        cap_text[cl++] = ',';
        /* Right after the opening brace, which in an object is always
         * followed by a member. */
        ed[n_ed++] = (edit){brace + 1, brace + 1, cap_text, cl};
    } else if (e->cap) {
        size_t cl = fmt_u64(cap_text, e->cap);
        ed[n_ed++] = (edit){e->cap_start, e->cap_end, cap_text, cl};
    }
    buf model_text;
    buf_init(&model_text);
    if (e->upstream_model) {
        json_escape_string(&model_text, e->upstream_model, strlen(e->upstream_model));
        ed[n_ed++] = (edit){e->model_start, e->model_end, model_text.data, model_text.len};
    }
    for (size_t i = 1; i < n_ed; i++)   /* into body order; the ranges never overlap */
        for (size_t j = i; j > 0 && ed[j].start < ed[j - 1].start; j--) {
            edit t = ed[j];
            ed[j] = ed[j - 1];
            ed[j - 1] = t;
        }
    for (size_t i = 0; i < n_ed; i++) grow += ed[i].n;
    out->upstream_body = xmalloc(len + grow + 1);
    char *w = out->upstream_body;
    size_t from = 0;
    for (size_t i = 0; i < n_ed; i++) {
        memcpy(w, body + from, ed[i].start - from);
        w += ed[i].start - from;
        memcpy(w, ed[i].text, ed[i].n);
        w += ed[i].n;
        from = ed[i].end;
    }
    memcpy(w, body + from, len - from);
    w += len - from;
    *w = '\0';
    out->upstream_body_len = (size_t)(w - out->upstream_body);
    buf_free(&model_text);
}

bool chat_request_parse(const char *body, size_t len, const brigade_config *cfg,
                        chat_request *out, chat_request_error *err)
{
    /* The common request, read without a tree when the scan is sure of the
     * tree path's answer (chat_scan.h); refusals always come from below. */
    if (body && len && utf8_valid(body, len)) {
        json_strict_error jerr;
        if (json_strict_text(body, len, "the request body", &jerr) && chat_scan(body, len, cfg, out)) {
            memset(err, 0, sizeof *err);
            return true;
        }
    }
    return chat_request_parse_tree_path(body, len, cfg, out, err);
}

bool chat_request_parse_tree_path(const char *body, size_t len, const brigade_config *cfg,
                                  chat_request *out, chat_request_error *err)
{
    cJSON *root = chat_request_read_object(body, len, out, err);
    if (!root) return false;
    bool ok = false;
    if (!chat_check_field_case(root, err)) goto out;
    const model_cfg *m = chat_request_model(root, cfg, false, err);
    if (!m) goto out;
    const cJSON *stream = chat_field_value(root, CHAT_FIELD_STREAM);
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        chat_request_fail(err, 400, "invalid_type", "stream", "\"stream\" must be true or false");
        goto out;
    }
    uint32_t max_tokens, max_completion_tokens;
    if (!chat_check_messages(root, err) ||
        !chat_check_max_tokens(root, m, CHAT_FIELD_MAX_TOKENS, &max_tokens, err) ||
        !chat_check_max_tokens(root, m, CHAT_FIELD_MAX_COMPLETION_TOKENS, &max_completion_tokens, err) ||
        !chat_check_choices(root, cfg, &out->choices, err) || !chat_check_unmetered(root, err))
        goto out;
    const cJSON *so = chat_field_value(root, CHAT_FIELD_STREAM_OPTIONS);
    out->model = m;
    out->stream = cJSON_IsTrue(stream);
    /* The output cap bounds the call's worst-case cost (the reservation).
     * Providers differ in which field wins when both are given, so the
     * larger is the one reserved. */
    out->max_output_tokens = max_tokens > max_completion_tokens ? max_tokens : max_completion_tokens;
    out->client_wants_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    /* A request without an output cap gets the model's: the reservation
     * is priced on it, so the provider must not be free to go past it.
     * (max_completion_tokens is OpenAI's current name; the Anthropic
     * translation and the mock read it too.) */
    uint32_t cap = out->max_output_tokens ? 0 : m->max_output_tokens;
    if (cap) out->max_output_tokens = cap;
    /* A "max_completion_tokens": null the client sent must be replaced,
     * not joined by a second copy of the key. */
    const cJSON *mct = chat_field_value(root, CHAT_FIELD_MAX_COMPLETION_TOKENS);
    /* The client's bytes are forwarded with only the governed edits made,
     * never re-encoded (json_member.h). The body parsed as one object with
     * no key twice, so each key names one member. */
    chat_forward_edits ed = {.cap = cap};
    if (cap && mct) {
        const char *name = chat_governed_fields[CHAT_FIELD_MAX_COMPLETION_TOKENS].name;
        if (!json_top_member(body, len, name, strlen(name), &ed.cap_start, &ed.cap_end)) {
            chat_request_fail(err, 400, "invalid_json", NULL, "the request could not be re-encoded");
            goto out;
        }
        ed.cap_replaces = true;
    }
    if (strcmp(m->name, m->upstream_model) != 0) {
        const char *name = chat_governed_fields[CHAT_FIELD_MODEL].name;
        if (!json_top_member(body, len, name, strlen(name), &ed.model_start, &ed.model_end)) {
            chat_request_fail(err, 400, "invalid_json", NULL, "the request could not be re-encoded");
            goto out;
        }
        ed.upstream_model = m->upstream_model;
    }
    chat_request_forward_bytes(body, len, &ed, out);
    ok = true;
out:
    cJSON_Delete(root);
    return ok;
}

bool chat_request_parse_tree(cJSON *chat, const brigade_config *cfg, chat_request *out,
                             chat_request_error *err)
{
    char *text = cJSON_PrintUnformatted(chat);
    cJSON_Delete(chat);
    if (!text)
        return chat_request_fail(err, 400, "invalid_json", NULL, "the request could not be re-encoded");
    bool ok = chat_request_parse(text, strlen(text), cfg, out, err);
    free(text);
    return ok;
}

void chat_request_free(chat_request *r)
{
    free(r->upstream_body);
    r->upstream_body = NULL;
}
