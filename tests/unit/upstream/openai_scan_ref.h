/* openai_scan_ref.h — the cJSON reading that openai_scan (the tree-less
 * reading of an OpenAI answer or stream chunk) must always agree with, for
 * the unit test (test_openai_scan.c) and the differential fuzz target
 * (fuzz/upstream/fuzz_openai_scan.c): what provider_openai.c read before the
 * scanner (usage, text bytes), and what the resilience layer reads of every
 * stream chunk (outcap.c's output tokens, dispatch.c's "quiet" chunk). */
#ifndef BRIGADE_OPENAI_SCAN_REF_H
#define BRIGADE_OPENAI_SCAN_REF_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/providers/openai_scan.h"

/* The cJSON reading, as provider_openai.c had it before the scanner. */
static size_t ref_text_bytes(const cJSON *msg)
{
    size_t n = 0;
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (cJSON_IsString(content)) n += strlen(content->valuestring);
    const cJSON *tc, *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    cJSON_ArrayForEach(tc, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if (cJSON_IsString(a)) n += strlen(a->valuestring);
        if (cJSON_IsString(nm)) n += strlen(nm->valuestring);
    }
    return n;
}

static bool ref_nonempty(const cJSON *s) { return cJSON_IsString(s) && s->valuestring[0]; }

/* The stream chunk's facts as the resilience layer read them with cJSON
 * (outcap.c's token count, dispatch.c's "quiet chunk"). */
static void ref_chunk(const cJSON *j, openai_scan_result *out)
{
    out->usage_member = cJSON_GetObjectItemCaseSensitive(j, "usage") != NULL;
    out->type_member = cJSON_GetObjectItemCaseSensitive(j, "type") != NULL;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices"), *ch;
    bool quiet = !out->usage_member && cJSON_IsArray(choices) && cJSON_GetArraySize(choices) > 0;
    cJSON_ArrayForEach(ch, choices) {
        const cJSON *ix = cJSON_GetObjectItemCaseSensitive(ch, "index");
        if (cJSON_IsNumber(ix) && ix->valuedouble >= 0 && ix->valuedouble < OPENAI_SCAN_MAX_CHOICE_INDEX &&
            (uint32_t)ix->valuedouble + 1 > out->choice_slots)
            out->choice_slots = (uint32_t)ix->valuedouble + 1;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta"), *f, *tc;
        bool text = ref_nonempty(cJSON_GetObjectItemCaseSensitive(d, "content")) ||
                    ref_nonempty(cJSON_GetObjectItemCaseSensitive(d, "refusal")) ||
                    ref_nonempty(cJSON_GetObjectItemCaseSensitive(d, "reasoning_content")) ||
                    ref_nonempty(cJSON_GetObjectItemCaseSensitive(d, "reasoning"));
        cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")) {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
            if (ref_nonempty(cJSON_GetObjectItemCaseSensitive(fn, "arguments"))) text = true;
        }
        if (text) out->text_choices++;
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        if (fr && !cJSON_IsNull(fr)) quiet = false;
        cJSON_ArrayForEach(f, d) {
            if (!f->string) quiet = false;
            else if (!strcmp(f->string, "role")) continue;
            else if (!strcmp(f->string, "content") && (cJSON_IsNull(f) || (cJSON_IsString(f) && !f->valuestring[0])))
                continue;
            else quiet = false;
        }
    }
    out->quiet = quiet;
}

/* A string the scan gave as bytes agrees with cJSON's decoded one. */
static bool ref_same_string(const cJSON *v, const char *bytes, size_t len)
{
    if (!bytes) return !cJSON_IsString(v);
    return cJSON_IsString(v) && strlen(v->valuestring) == len && memcmp(v->valuestring, bytes, len) == 0;
}

/* A chunk's id, model and created as the scan gave them (when ids_plain)
 * agree with cJSON's reading of the text. */
static bool ref_ids_agree(const char *t, size_t len, const openai_scan_result *a)
{
    cJSON *j = cJSON_ParseWithLength(t, len);
    bool ok = cJSON_IsObject(j);
    if (ok && a->ids_plain) {
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(j, "created");
        ok = ref_same_string(cJSON_GetObjectItemCaseSensitive(j, "id"), a->id, a->id_len) &&
             ref_same_string(cJSON_GetObjectItemCaseSensitive(j, "model"), a->model, a->model_len) &&
             a->have_created == cJSON_IsNumber(created) &&
             (!a->have_created || a->created == created->valuedouble);
    }
    cJSON_Delete(j);
    return ok;
}

/* openai_scan_members against cJSON: when it decides, cJSON reads an
 * object whose members named names[i] number out[i].count, the first of
 * them equal to the text at out[i].value. */
static bool ref_members_agree(const char *t, size_t len, const char *const names[2],
                              const openai_scan_member out[2])
{
    cJSON *j = cJSON_ParseWithLength(t, len);
    bool ok = cJSON_IsObject(j);
    for (int i = 0; ok && i < 2; i++) {
        unsigned n = 0;
        const cJSON *c, *first = NULL;
        cJSON_ArrayForEach(c, j) if (c->string && !strcmp(c->string, names[i]) && !n++) first = c;
        ok = n == out[i].count && (!first) == (!out[i].value);
        if (ok && first) {
            cJSON *v = cJSON_ParseWithLength(out[i].value, out[i].value_len);
            ok = v && cJSON_Compare(v, first, true);
            cJSON_Delete(v);
        }
    }
    cJSON_Delete(j);
    return ok;
}

/* ---- an agent run's reading of a chunk (runs/model.c) ----
 * Both readings are written as one line — the content, then each tool
 * call's index, id, name and arguments ("-" for a value that is not a
 * string) — and compared. */
typedef struct ref_line {
    char  *p;
    size_t len, cap;
} ref_line;

static void ref_put(ref_line *l, const char *s, size_t n)
{
    if (l->len + n + 1 > l->cap) {
        l->cap = (l->len + n + 1) * 2;
        l->p = realloc(l->p, l->cap);
    }
    memcpy(l->p + l->len, s, n);
    l->len += n;
    l->p[l->len] = '\0';
}

static void ref_put_str(ref_line *l, const char *s, bool is_string)
{
    if (!is_string) {
        ref_put(l, " -", 2);
        return;
    }
    char head[32];
    int h = snprintf(head, sizeof head, " S%zu:", strlen(s));
    ref_put(l, head, (size_t)h);
    ref_put(l, s, strlen(s));
}

static void ref_put_call_head(ref_line *l, int index)
{
    char head[32];
    int h = snprintf(head, sizeof head, " | %d", index);
    ref_put(l, head, (size_t)h);
}

/* cJSON's reading, as run_model_on_event had it; false if cJSON does not
 * parse the text. */
static bool ref_delta_line(const char *t, size_t len, ref_line *l)
{
    cJSON *chunk = cJSON_ParseWithLength(t, len);
    if (!chunk) return false;
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(delta, "content");
    ref_put(l, "C", 1);
    ref_put_str(l, cJSON_IsString(content) ? content->valuestring : NULL, cJSON_IsString(content));
    const cJSON *tc;
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(tc, "index");
        ref_put_call_head(l, cJSON_IsNumber(idx) ? idx->valueint : 0);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        ref_put_str(l, cJSON_IsString(id) ? id->valuestring : NULL, cJSON_IsString(id));
        ref_put_str(l, cJSON_IsString(name) ? name->valuestring : NULL, cJSON_IsString(name));
        ref_put_str(l, cJSON_IsString(args) ? args->valuestring : NULL, cJSON_IsString(args));
    }
    cJSON_Delete(chunk);
    return true;
}

static void ref_put_scanned(ref_line *l, const openai_scan_str *s)
{
    if (!s->p) {
        ref_put_str(l, NULL, false);
        return;
    }
    char *d = malloc(s->len + 1);
    size_t n = openai_scan_str_decode(s, d);
    if (s->plain && (n != s->len || memcmp(d, s->p, n) != 0)) abort();   /* plain: the bytes as they are */
    ref_put_str(l, d, true);
    free(d);
}

static void ref_on_call(void *arg, const openai_scan_call *c)
{
    ref_line *l = arg;
    ref_put_call_head(l, c->index);
    ref_put_scanned(l, &c->id);
    ref_put_scanned(l, &c->name);
    ref_put_scanned(l, &c->arguments);
}

/* openai_scan_delta against cJSON: 1 when the scan decided and agrees, 0
 * when it did not decide, -1 when it decided and disagrees (printed). */
static int ref_delta_agrees(const char *t, size_t len)
{
    ref_line a = {0}, b = {0};
    openai_scan_str content;
    ref_put(&a, "C", 1);
    bool dec = openai_scan_delta(t, len, &content, ref_on_call, &a);
    int res = 0;
    if (dec) {
        /* the calls came first in a: put the content in front */
        ref_line c = {0};
        ref_put(&c, "C", 1);
        ref_put_scanned(&c, &content);
        ref_put(&c, a.p + 1, a.len - 1);
        res = ref_delta_line(t, len, &b) && strcmp(b.p, c.p) == 0 ? 1 : -1;
        if (res < 0) fprintf(stderr, "delta differs on [%.*s]:\n scan  %s\n cJSON %s\n", (int)len, t, c.p,
                             b.p ? b.p : "(no parse)");
        /* The same reading from openai_scan's facts (openai_scan_delta_of):
         * openai_scan decides the text too, and the walk from its choices
         * gives the same line. */
        openai_scan_result f;
        ref_line d = {0}, e = {0};
        if (res > 0 && !openai_scan(t, len, "delta", &f)) {
            fprintf(stderr, "openai_scan_delta decided [%.*s], openai_scan did not\n", (int)len, t);
            res = -1;
        } else if (res > 0) {
            ref_put(&d, "C", 1);
            openai_scan_str content2;
            openai_scan_delta_of(t, len, &f, &content2, ref_on_call, &d);
            ref_put(&e, "C", 1);
            ref_put_scanned(&e, &content2);
            ref_put(&e, d.p + 1, d.len - 1);
            if (strcmp(e.p, c.p) != 0) {
                fprintf(stderr, "delta_of differs on [%.*s]:\n of    %s\n scan  %s\n", (int)len, t, e.p, c.p);
                res = -1;
            }
        }
        free(d.p);
        free(e.p);
        free(c.p);
    }
    free(a.p);
    free(b.p);
    return res;
}

/* -1: cJSON refuses (not an object); else 0 with *out filled. */
static int ref_read(const char *t, size_t len, const char *field, openai_scan_result *out)
{
    memset(out, 0, sizeof *out);
    cJSON *j = cJSON_ParseWithLength(t, len);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return -1;
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(pt) && cJSON_IsNumber(ct) && pt->valuedouble >= 0 && ct->valuedouble >= 0 &&
        pt->valuedouble <= 1e15 && ct->valuedouble <= 1e15) {
        out->in_tok = (int64_t)pt->valuedouble;
        out->out_tok = (int64_t)ct->valuedouble;
        out->have_usage = true;
    }
    const cJSON *ch;
    /* a whole answer's text is counted only without usage (openai_scan.h) */
    if (strcmp(field, "delta") != 0 && out->have_usage) {
        cJSON_Delete(j);
        return 0;
    }
    cJSON_ArrayForEach(ch, cJSON_GetObjectItemCaseSensitive(j, "choices"))
        out->text_bytes += ref_text_bytes(cJSON_GetObjectItemCaseSensitive(ch, field));
    if (!strcmp(field, "delta")) ref_chunk(j, out);
    cJSON_Delete(j);
    return 0;
}

#endif
