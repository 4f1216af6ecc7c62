/* app.h — the running server and the commands that wire it.
 *
 * `app` is built once by `brigade serve`: what handlers may reach is its
 * api_env (api.h: config, store, identity, tools, runs, governance,
 * counters); the router, the server and the data directory's lock are the
 * app's alone. Each loop thread's own state is an api_thread, reached from
 * a request as req->thread_data. Nothing here is global, so tests can run
 * several servers in one process. */
#ifndef BRIGADE_APP_H
#define BRIGADE_APP_H

#include "api/api.h"
#include "govern/reserve_journal.h"
#include "http/http.h"

typedef struct app {
    api_env      env;              /* what handlers reach */
    http_router *router;
    http_server *server;
    int          lock_fd;          /* flock on data_dir/serve.lock while serving */
    reserve_journal *journal;      /* durable reservations (govern/reserve_journal.h) */
} app;

/* `brigade serve`: parse flags, load config, open store and identity, start
 * the HTTP server, print how to reach it, run until SIGINT/SIGTERM. */
int app_serve_main(int argc, char **argv);

/* `brigade admin`: tenants, users and keys straight against the store. */
int app_admin_main(int argc, char **argv);
/* `brigade admin migrate --from sqlite:DIR --to postgres:URL` (migrate_cli.c) */
int app_admin_migrate(int argc, char **argv);
/* `brigade admin vault rotate-key` (vault_cli.c): without the data dir's lock. */
int app_vault_rotate_key(const char *data_dir, const store_backend *backend /* NULL: SQLite */);

/* Take the data directory's serve lock (so `brigade admin` can tell that a
 * server owns it). Returns the fd, or -1 with err set if already held. */
int app_lock_data_dir(const char *data_dir, char *err, size_t errlen);

#endif
