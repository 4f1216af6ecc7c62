/* fuzz_http.c — libFuzzer target for the HTTP request parser.
 *
 * Feeds the input through http_parser_feed exactly as a connection would,
 * in pieces whose sizes come from the input itself (so requests straddle
 * reads), with small limits so every limit path is reachable. Each complete
 * request is checked for internal consistency, exercised through the
 * accessors, and recycled like the server does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

static http_request *fuzz_new_request(void *ctx)
{
    (void)ctx;
    return http_request_alloc();
}

static void check_request(http_request *req)
{
    if (!req->method || !req->target || !req->path || !req->query) abort();
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header *h = &req->headers[i];
        if (strlen(h->value) != h->value_len) abort();
        for (const char *n = h->name; *n; n++)
            if (*n >= 'A' && *n <= 'Z') abort();     /* names are lower-cased */
    }
    if (req->body && req->body[req->body_len] != '\0') abort();
    if (req->body_len > 4096) abort();                /* the limit held */
    size_t idl = strlen(req->request_id);
    if (!http_request_id_valid(req->request_id, idl)) abort();
    (void)http_header_get(req, "host");
    (void)http_query_get(req, "a");
    (void)http_query_get(req, "model");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_limits lim;
    memset(&lim, 0, sizeof lim);
    lim.max_header_bytes = 2048;
    lim.max_headers = 16;
    lim.max_url_bytes = 512;
    lim.max_body_bytes = 4096;
    http_limits_apply_defaults(&lim);

    /* The first byte picks the read size, like a network delivering pieces. */
    size_t piece = size ? (size_t)(data[0] % 64) + 1 : 1;
    if (size) {
        data++;
        size--;
    }
    http_parser p;
    http_parser_init(&p, &lim, fuzz_new_request, NULL, NULL);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < piece ? size - off : piece;
        size_t used = 0;
        http_parse_result r = http_parser_feed(&p, (const char *)data + off, n, &used);
        if (used > n) abort();
        off += used;
        if (r == HTTP_PARSE_ERROR) {
            if (p.err_status < 400 || p.err_status > 499 || !p.err_msg) abort();
            break;
        }
        if (r == HTTP_PARSE_REQUEST) {
            http_request *req = http_parser_take(&p);
            check_request(req);
            http_request_destroy(req);
        }
    }
    http_parser_free(&p);
    return 0;
}
