/* console_session.h — the web console's sign-in sessions: a bounded,
 * in-memory table from a random session id (the HttpOnly cookie) to the
 * credential the user signed in with, plus a per-session CSRF token.
 *
 * The table never decides who the caller is: the API resolves the held
 * credential through the normal identity path on every request, so a key
 * revoked or a user disabled after sign-in stops working at once. Sessions
 * live only in memory: a restart signs everyone out. Thread-safe (the loop
 * threads share one table). */
#ifndef BRIGADE_CONSOLE_SESSION_H
#define BRIGADE_CONSOLE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_SESSION_ID_HEX 64          /* 256 random bits, hex */
#define CONSOLE_CSRF_HEX       64
#define CONSOLE_CREDENTIAL_MAX 8192        /* longer than this is no credential */
#define CONSOLE_COOKIE_NAME    "brigade_console"
#define CONSOLE_CSRF_HEADER    "x-brigade-csrf"
#define CONSOLE_SESSIONS_PER_CREDENTIAL 8  /* sign-ins one credential may hold at once */

typedef struct console_sessions console_sessions;

typedef enum {
    CONSOLE_SESSION_OK,
    CONSOLE_SESSION_UNKNOWN,     /* no such id, or it expired */
    CONSOLE_SESSION_BAD_CSRF,    /* the id is live, the CSRF token absent or wrong */
} console_session_status;

console_sessions *console_sessions_new(uint32_t max_sessions, uint32_t ttl_s);
void              console_sessions_free(console_sessions *t);

/* Open a session holding `authorization` (an Authorization header value,
 * "Bearer …"). Fills id_out and csrf_out (NUL-terminated hex). A
 * credential that already holds CONSOLE_SESSIONS_PER_CREDENTIAL sessions
 * loses its own oldest; otherwise, when the table is full, the least
 * recently used session is dropped. false on a
 * credential too long or out of memory. */
bool console_session_open(console_sessions *t, const char *authorization, int64_t now_s,
                          char id_out[CONSOLE_SESSION_ID_HEX + 1],
                          char csrf_out[CONSOLE_CSRF_HEX + 1]);

/* Resolve a session id and a CSRF token (the header's value; NULL when
 * absent) to the held credential, copied into cred_out. A hit slides the
 * expiry. With check_csrf false the token is not required (the console's
 * own session endpoint, which returns the token to its page). */
console_session_status console_session_resolve(console_sessions *t, const char *id,
                                               const char *csrf, bool check_csrf, int64_t now_s,
                                               char *cred_out, size_t cred_cap,
                                               char csrf_out[CONSOLE_CSRF_HEX + 1],
                                               int64_t *expires_out);

/* Close a session (sign-out). true if it existed. */
bool console_session_close(console_sessions *t, const char *id);

/* Live sessions now (for tests and metrics). */
size_t console_sessions_count(console_sessions *t, int64_t now_s);

/* The value of cookie `name` in a Cookie header, copied into out; false if
 * absent, empty or longer than cap-1. */
bool console_cookie_get(const char *cookie_header, const char *name, char *out, size_t cap);

#endif
