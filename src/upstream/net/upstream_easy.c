/* upstream_easy.c — the one setup of a libcurl easy handle for brigade's
 * outgoing HTTP on a pool (a model provider's call, a tool's fetch), so the
 * options that every transfer needs (no signals, no Nagle, keep-alive,
 * http/https only, no redirects unless a fetch's egress policy says, the
 * user agent, the pool's bookkeeping)
 * are written once; what differs between the two paths is a field of
 * upstream_easy_opts, named at each call. Also the check both paths make
 * of a header value before it goes on the wire. */
#include <curl/curl.h>

#include "upstream/net/net.h"

void upstream_easy_setup(CURL *e, const upstream_easy_opts *o)
{
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, o->on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, o->owner);
    if (o->on_header) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, o->on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, o->owner);
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, o->xfer);   /* the pool finds the owner by it */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, o->errbuf);
    /* Timeouts without SIGALRM: brigade's threads must not get signals. */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (o->http_version != CURL_HTTP_VERSION_NONE)
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, o->http_version);
    if (o->pipewait) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    /* A Content-Length over the cap fails before any body byte is read. */
    if (o->max_body > 0) curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, o->max_body);
    /* A provider's call never follows a redirect, and only http and https
     * are spoken; a tool's fetch then applies its egress policy over these
     * (egress_apply in upstream_fetch.c), which may follow a bounded number
     * of redirects, each hop's address checked. */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "brigade/" BRIGADE_VERSION);
}

bool upstream_header_safe(const char *v, size_t max)
{
    size_t n = 0;
    for (; v[n]; n++)
        if ((unsigned char)v[n] < 0x20 || v[n] == 0x7f || n >= max) return false;
    return true;
}
