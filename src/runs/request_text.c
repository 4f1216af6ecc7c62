/* request_text.c — the text of a run's model request, written once per
 * conversation message. Every model call sends the whole context; on a
 * long conversation writing it all again at every step was most of a
 * step's CPU (docs/benchmarks.md). The core numbers its conversation's
 * messages and never changes a numbered one (step_context_ref, core/step.h),
 * so the text written for message number k at one step is the text of
 * message k at every later step: the run keeps it, for the messages still
 * in the context, and writes only the new ones.
 *
 * What is reused is exactly what would be written (the property
 * test_runs_exec.c checks): a message is taken from the kept texts only
 * when it is still a reference to the conversation's (a redaction replaced
 * it with a copy otherwise: that copy is written), at the position its
 * number says (the request has the count of messages the core said, or
 * nothing is reused), and its first member is the one it had when its
 * text was written. */
#include "runs/runs_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/origin.h"
#include "util/json_escape.h"
#include "util/json_write.h"
#include "util/xalloc.h"

void run_texts_free(run_texts *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->v[i].text);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* Forget the texts of messages numbered below `first`: the core has left
 * them out of this request, and so of every later one (the context only
 * moves forward in a run). A jump past what is kept starts afresh. */
static void run_texts_move_to(run_texts *t, uint64_t first)
{
    if (first < t->first || first > t->first + t->n) {
        run_texts_free(t);
        t->first = first;
        return;
    }
    size_t gone = (size_t)(first - t->first);
    if (gone == 0) return;             /* (t->v may be NULL: memmove must not see it) */
    for (size_t i = 0; i < gone; i++) free(t->v[i].text);
    memmove(t->v, t->v + gone, (t->n - gone) * sizeof *t->v);
    t->n -= gone;
    t->first = first;
}

/* Message number `seq`, the request's item m: its kept text, or written now
 * (and kept when it is the next number). */
static void run_texts_write(run_texts *t, buf *b, const cJSON *m, uint64_t seq)
{
    size_t i = (size_t)(seq - t->first);
    if (i < t->n && t->v[i].child == m->child) {
        buf_append(b, t->v[i].text, t->v[i].len);
        return;
    }
    size_t at = b->len;
    json_write_omitting(b, m, ORIGIN_MEMBER);
    size_t len = b->len - at;
    char *text = xmalloc(len);
    memcpy(text, b->data + at, len);
    if (i < t->n) {                    /* changed under its number: the core broke step.h */
        free(t->v[i].text);
        t->v[i] = (run_text){.child = m->child, .text = text, .len = len};
        return;
    }
    if (i != t->n) {                   /* not the next number: not kept */
        free(text);
        return;
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 4;   /* a held run has one or two messages */
        t->v = xrealloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n++] = (run_text){.child = m->child, .text = text, .len = len};
}

char *run_model_body_kept(run_texts *t, const cJSON *request, const step_context_ref *ctx,
                          size_t *len)
{
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(request, "messages");
    bool reuse = t && ctx && ctx->count && cJSON_IsArray(messages) &&
                 (size_t)cJSON_GetArraySize(messages) == ctx->lead + ctx->count;
    if (reuse) run_texts_move_to(t, ctx->first);
    buf b;
    buf_init(&b);
    buf_append(&b, "{", 1);
    for (const cJSON *c = request ? request->child : NULL; c; c = c->next) {
        if (c != request->child) buf_append(&b, ",", 1);
        const char *k = c->string ? c->string : "";
        json_escape_string(&b, k, strlen(k));
        buf_append(&b, ":", 1);
        /* every member named "messages" loses its messages' origins (a
         * core that repeats the key still sends none); texts are kept for
         * the one the core described */
        if (!cJSON_IsArray(c) || strcmp(k, "messages") != 0) {
            json_write(&b, c);
            continue;
        }
        buf_append(&b, "[", 1);
        size_t j = 0;
        for (const cJSON *m = c->child; m; m = m->next, j++) {
            if (m != c->child) buf_append(&b, ",", 1);
            if (reuse && c == messages && j >= ctx->lead && (m->type & cJSON_IsReference) &&
                cJSON_IsObject(m))
                run_texts_write(t, &b, m, ctx->first + (j - ctx->lead));
            else
                json_write_omitting(&b, m, ORIGIN_MEMBER);
        }
        buf_append(&b, "]", 1);
    }
    buf_append(&b, "}", 1);
    *len = b.len;
    return buf_detach(&b);
}

char *run_model_body(const cJSON *request, size_t *len)
{
    return run_model_body_kept(NULL, request, NULL, len);
}
