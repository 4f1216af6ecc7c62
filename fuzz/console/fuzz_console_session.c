/* fuzz_console_session.c — a Cookie header and a CSRF header as a client
 * sends them, through the cookie parser and the session table: never a
 * crash, never a hit without the right id and token. The input is split
 * at its first NUL: cookie header, then CSRF header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console/console_session.h"

static console_sessions *table;
static char live_id[CONSOLE_SESSION_ID_HEX + 1], live_csrf[CONSOLE_CSRF_HEX + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!table) {
        table = console_sessions_new(8, 600);
        console_session_open(table, "Bearer fuzz-credential", 1000, live_id, live_csrf);
    }
    if (size > 16384) return 0;
    char *buf = malloc(size + 2);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    buf[size + 1] = 0;
    const char *cookie = buf;
    const char *csrf = buf + strlen(buf) + 1;
    if (csrf > buf + size) csrf = buf + size;

    char sid[CONSOLE_SESSION_ID_HEX + 2], cred[64];
    if (console_cookie_get(cookie, CONSOLE_COOKIE_NAME, sid, sizeof sid)) {
        console_session_status st =
            console_session_resolve(table, sid, csrf, true, 1001, cred, sizeof cred, NULL, NULL);
        /* only the live id with its token may resolve */
        if (st == CONSOLE_SESSION_OK &&
            (strcmp(sid, live_id) != 0 || strcmp(csrf, live_csrf) != 0))
            abort();
    }
    free(buf);
    return 0;
}
