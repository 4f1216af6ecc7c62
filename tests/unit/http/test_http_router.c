/* test_http_router.c — the router on its own, no sockets: static and
 * `{param}` segments, precedence with backtracking, 404 vs 405 and the
 * allow list, HEAD falling back to GET, trailing slashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "http/http.h"

static void h_list(http_request *r) { (void)r; }
static void h_get(http_request *r) { (void)r; }
static void h_post(http_request *r) { (void)r; }
static void h_default(http_request *r) { (void)r; }
static void h_keys(http_request *r) { (void)r; }
static void h_root(http_request *r) { (void)r; }
static void h_slash(http_request *r) { (void)r; }
static void h_b_post(http_request *r) { (void)r; }
static void h_param_get(http_request *r) { (void)r; }

typedef struct {
    http_request req;
} fake;

static http_handler match(http_router *rt, fake *f, const char *method, const char *path, int *st)
{
    memset(&f->req, 0, sizeof f->req);
    arena_init(&f->req.arena, 0);
    f->req.method = method;
    f->req.path = path;
    return http_router_match(rt, &f->req, st);
}

static http_router *make(void)
{
    http_router *r = http_router_new();
    http_router_add(r, "GET", "/", h_root);
    http_router_add(r, "GET", "/v1/models", h_list);
    http_router_add(r, "GET", "/v1/models/{id}", h_get);
    http_router_add(r, "POST", "/v1/models/{id}", h_post);
    http_router_add(r, "GET", "/v1/models/default", h_default);
    http_router_add(r, "GET", "/v1/users/{uid}/keys/{kid}", h_keys);
    http_router_add(r, "GET", "/v1/slash/", h_slash);
    http_router_add(r, "POST", "/a/b", h_b_post);
    http_router_add(r, "GET", "/a/{x}", h_param_get);
    return r;
}

static void test_static_and_params(void **state)
{
    (void)state;
    http_router *rt = make();
    fake f;
    int st = 0;
    assert_ptr_equal(match(rt, &f, "GET", "/", &st), h_root);
    assert_int_equal(st, 200);
    arena_free(&f.req.arena);
    assert_ptr_equal(match(rt, &f, "GET", "/v1/models", &st), h_list);
    assert_int_equal(f.req.n_params, 0);
    arena_free(&f.req.arena);
    assert_ptr_equal(match(rt, &f, "GET", "/v1/models/gpt-4o", &st), h_get);
    assert_int_equal(f.req.n_params, 1);
    assert_string_equal(f.req.params[0], "gpt-4o");
    arena_free(&f.req.arena);
    assert_ptr_equal(match(rt, &f, "POST", "/v1/models/abc", &st), h_post);
    assert_string_equal(f.req.params[0], "abc");
    arena_free(&f.req.arena);
    /* static wins over the param */
    assert_ptr_equal(match(rt, &f, "GET", "/v1/models/default", &st), h_default);
    assert_int_equal(f.req.n_params, 0);
    arena_free(&f.req.arena);
    assert_ptr_equal(match(rt, &f, "GET", "/v1/users/u1/keys/k9", &st), h_keys);
    assert_int_equal(f.req.n_params, 2);
    assert_string_equal(f.req.params[0], "u1");
    assert_string_equal(f.req.params[1], "k9");
    arena_free(&f.req.arena);
    /* a query string is not part of the path */
    assert_ptr_equal(match(rt, &f, "GET", "/v1/models/x?y=1", &st), h_get);
    assert_string_equal(f.req.params[0], "x");
    arena_free(&f.req.arena);
    http_router_free(rt);
}

static void test_404_405_allow(void **state)
{
    (void)state;
    http_router *rt = make();
    fake f;
    int st = 0;
    assert_null(match(rt, &f, "GET", "/v2/models", &st));
    assert_int_equal(st, 404);
    assert_null(http_router_allow(rt, &f.req));
    arena_free(&f.req.arena);
    assert_null(match(rt, &f, "DELETE", "/v1/models/x", &st));
    assert_int_equal(st, 405);
    const char *allow = http_router_allow(rt, &f.req);
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "POST"));
    arena_free(&f.req.arena);
    /* {param} needs a non-empty segment */
    assert_null(match(rt, &f, "GET", "/v1/models/", &st));
    assert_int_equal(st, 404);
    arena_free(&f.req.arena);
    assert_null(match(rt, &f, "GET", "/v1/users/u1/keys", &st));
    assert_int_equal(st, 404);
    arena_free(&f.req.arena);
    http_router_free(rt);
}

static void test_backtracking_and_head(void **state)
{
    (void)state;
    http_router *rt = make();
    fake f;
    int st = 0;
    /* /a/b exists only for POST; GET must fall through to /a/{x} */
    assert_ptr_equal(match(rt, &f, "GET", "/a/b", &st), h_param_get);
    assert_string_equal(f.req.params[0], "b");
    arena_free(&f.req.arena);
    assert_ptr_equal(match(rt, &f, "POST", "/a/b", &st), h_b_post);
    arena_free(&f.req.arena);
    /* 405 on /a/b for PUT lists both routes' methods */
    assert_null(match(rt, &f, "PUT", "/a/b", &st));
    assert_int_equal(st, 405);
    const char *allow = http_router_allow(rt, &f.req);
    assert_non_null(allow);
    assert_non_null(strstr(allow, "POST"));
    assert_non_null(strstr(allow, "GET"));
    arena_free(&f.req.arena);
    /* HEAD uses the GET handler */
    assert_ptr_equal(match(rt, &f, "HEAD", "/v1/models", &st), h_list);
    arena_free(&f.req.arena);
    /* trailing slash is its own route */
    assert_ptr_equal(match(rt, &f, "GET", "/v1/slash/", &st), h_slash);
    arena_free(&f.req.arena);
    assert_null(match(rt, &f, "GET", "/v1/slash", &st));
    assert_int_equal(st, 404);
    arena_free(&f.req.arena);
    http_router_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_and_params),
        cmocka_unit_test(test_404_405_allow),
        cmocka_unit_test(test_backtracking_and_head),
    };
    return cmocka_run_group_tests_name("http_router", tests, NULL, NULL);
}
