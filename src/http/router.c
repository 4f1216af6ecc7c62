/* router.c — method + path routing over a segment trie.
 *
 * Each trie node is one path segment: static children are compared by
 * length then bytes, and a single `{param}` child matches any non-empty
 * segment. Static children win over the param child, with backtracking, so
 * "/v1/models/{id}" and "/v1/models/default" coexist. Matching allocates
 * nothing until it succeeds (the params are then copied into the request
 * arena). A path that matches with no route for the method is a 405, and
 * http_router_allow lists what it does accept.
 */
#include "http/http.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct route_method {
    char         method[16];
    http_handler h;
} route_method;

typedef struct rnode rnode;
struct rnode {
    char         *seg;            /* static segment text */
    size_t        seg_len;
    rnode       **kids;           /* static children */
    size_t        n_kids;
    rnode        *param;          /* the {name} child, if any */
    route_method *methods;
    size_t        n_methods;
};

struct http_router {
    rnode root;
};

http_router *http_router_new(void)
{
    http_router *r = xcalloc(1, sizeof(*r));
    return r;
}

static void rnode_free(rnode *n)
{
    for (size_t i = 0; i < n->n_kids; i++) {
        rnode_free(n->kids[i]);
        free(n->kids[i]);
    }
    if (n->param) {
        rnode_free(n->param);
        free(n->param);
    }
    free(n->kids);
    free(n->seg);
    free(n->methods);
}

void http_router_free(http_router *r)
{
    if (!r) return;
    rnode_free(&r->root);
    free(r);
}

static rnode *rnode_new(void)
{
    rnode *n = xcalloc(1, sizeof(*n));
    return n;
}

static rnode *static_child(rnode *n, const char *s, size_t len, bool create)
{
    for (size_t i = 0; i < n->n_kids; i++)
        if (n->kids[i]->seg_len == len && memcmp(n->kids[i]->seg, s, len) == 0) return n->kids[i];
    if (!create) return NULL;
    rnode **k = xrealloc(n->kids, (n->n_kids + 1) * sizeof(*k));
    n->kids = k;
    rnode *c = rnode_new();
    c->seg = xmalloc(len + 1);
    memcpy(c->seg, s, len);
    c->seg[len] = '\0';
    c->seg_len = len;
    n->kids[n->n_kids++] = c;
    return c;
}

void http_router_add(http_router *r, const char *method, const char *pattern, http_handler h)
{
    rnode *n = &r->root;
    const char *p = pattern;
    if (*p == '/') p++;
    size_t n_params = 0;
    if (*pattern && strcmp(pattern, "/") != 0) {
        for (;;) {
            const char *slash = strchr(p, '/');
            size_t len = slash ? (size_t)(slash - p) : strlen(p);
            if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
                if (++n_params > HTTP_MAX_PARAMS) {
                    fprintf(stderr, "http_router_add: too many params in %s\n", pattern);
                    abort();
                }
                if (!n->param) n->param = rnode_new();
                n = n->param;
            } else {
                n = static_child(n, p, len, true);
            }
            if (!slash) break;
            p = slash + 1;
        }
    }
    for (size_t i = 0; i < n->n_methods; i++)
        if (strcmp(n->methods[i].method, method) == 0) {
            n->methods[i].h = h;
            return;
        }
    route_method *m = xrealloc(n->methods, (n->n_methods + 1) * sizeof(*m));
    n->methods = m;
    snprintf(m[n->n_methods].method, sizeof m[0].method, "%s", method);
    m[n->n_methods].h = h;
    n->n_methods++;
}

static http_handler method_handler(const rnode *n, const char *method)
{
    for (size_t i = 0; i < n->n_methods; i++)
        if (strcmp(n->methods[i].method, method) == 0) return n->methods[i].h;
    if (strcmp(method, "HEAD") == 0) return method_handler(n, "GET");
    return NULL;
}

typedef struct match_ctx {
    const char  *method;
    const char  *pstart[HTTP_MAX_PARAMS];
    size_t       plen[HTTP_MAX_PARAMS];
    http_handler found;
    const char  *fstart[HTTP_MAX_PARAMS];
    size_t       flen[HTTP_MAX_PARAMS];
    size_t       n_found;
    bool         path_matched;      /* some route has this path */
    /* for http_router_allow: collect methods instead of stopping */
    char        *allow;
    size_t       allow_len, allow_cap;
} match_ctx;

static void allow_add(match_ctx *m, const char *method)
{
    size_t ml = strlen(method);
    /* skip duplicates: list entries are separated by ", " */
    const char *a = m->allow;
    while (a && *a) {
        const char *e = strstr(a, ", ");
        size_t l = e ? (size_t)(e - a) : strlen(a);
        if (l == ml && memcmp(a, method, ml) == 0) return;
        if (!e) break;
        a = e + 2;
    }
    if (m->allow_len + ml + 3 > m->allow_cap) return;   /* bounded by caller's buffer */
    if (m->allow_len) {
        memcpy(m->allow + m->allow_len, ", ", 2);
        m->allow_len += 2;
    }
    memcpy(m->allow + m->allow_len, method, ml);
    m->allow_len += ml;
    m->allow[m->allow_len] = '\0';
}

/* Walk the trie; `s` is the start of the current segment, or NULL once
 * the path has no segments left. */
static bool match_rec(const rnode *n, const char *s, size_t depth, match_ctx *m)
{
    if (!s) {
        if (n->n_methods == 0) return false;
        m->path_matched = true;
        if (m->allow) {
            for (size_t i = 0; i < n->n_methods; i++) allow_add(m, n->methods[i].method);
            return false;                               /* keep collecting */
        }
        http_handler h = method_handler(n, m->method);
        if (!h) return false;
        m->found = h;
        m->n_found = depth;
        memcpy(m->fstart, m->pstart, sizeof m->pstart);
        memcpy(m->flen, m->plen, sizeof m->plen);
        return true;
    }
    const char *e = s;
    while (*e && *e != '/' && *e != '?') e++;
    size_t len = (size_t)(e - s);
    /* "/a/" has two segments, "a" and an empty one: it is not "/a". */
    const char *next = (*e == '/') ? e + 1 : NULL;
    for (size_t i = 0; i < n->n_kids; i++) {
        const rnode *k = n->kids[i];
        if (k->seg_len == len && memcmp(k->seg, s, len) == 0) {
            if (match_rec(k, next, depth, m)) return true;
            break;
        }
    }
    if (n->param && len > 0 && depth < HTTP_MAX_PARAMS) {
        m->pstart[depth] = s;
        m->plen[depth] = len;
        if (match_rec(n->param, next, depth + 1, m)) return true;
    }
    return false;
}

static const char *path_of(const http_request *req)
{
    const char *p = req->path ? req->path : "/";
    if (*p == '/') p++;
    return (*p == '\0' || *p == '?') ? NULL : p;
}

http_handler http_router_match(const http_router *r, http_request *req, int *status)
{
    match_ctx m;
    m.method = req->method ? req->method : "GET";
    m.found = NULL;
    m.n_found = 0;
    m.path_matched = false;
    m.allow = NULL;
    m.allow_len = m.allow_cap = 0;
    if (match_rec(&r->root, path_of(req), 0, &m)) {
        req->n_params = m.n_found;
        for (size_t i = 0; i < m.n_found; i++)
            req->params[i] = arena_strndup(&req->arena, m.fstart[i], m.flen[i]);
        if (status) *status = 200;
        return m.found;
    }
    req->n_params = 0;
    if (status) *status = m.path_matched ? 405 : 404;
    return NULL;
}

const char *http_router_allow(const http_router *r, http_request *req)
{
    match_ctx m;
    memset(&m, 0, sizeof m);
    m.method = req->method ? req->method : "GET";
    m.allow_cap = 256;
    m.allow = arena_alloc(&req->arena, m.allow_cap);
    m.allow[0] = '\0';
    match_rec(&r->root, path_of(req), 0, &m);
    return m.allow_len ? m.allow : NULL;
}
