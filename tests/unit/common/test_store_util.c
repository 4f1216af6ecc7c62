/* test_store_util.c — a store populated the way the admin API would, for
 * the unit tests (see test_util.h). Kept apart from test_util.c so a test
 * that uses only the loop helpers does not need the store linked. */
#include "test_util.h"

#include <stdio.h>
#include <string.h>

#include "util/timeutil.h"

store *test_store_open(char *dir, size_t len, const char *name)
{
    if (!test_tmpdir(dir, len, name)) return NULL;
    char err[256];
    store *st = store_open(dir, err, sizeof err);
    if (!st) fprintf(stderr, "store_open %s: %s\n", dir, err);
    return st;
}

void test_store_close(store *st, const char *dir)
{
    store_close(st);
    test_rmtree(dir);
}

store_status test_store_tenant(store *st, const scope *server_admin, const char *name,
                               char id_out[ID_MAX])
{
    tenant_rec t;
    memset(&t, 0, sizeof t);
    ids_new(t.id, "ten");
    snprintf(t.name, sizeof t.name, "%s", name);
    t.created_at = time_now_unix();
    key_rec k;
    memset(&k, 0, sizeof k);
    ids_new(k.id, "key");
    k.kind = KEY_KIND_ADMIN;
    snprintf(k.prefix, sizeof k.prefix, "bk_adm_xx");
    ids_hex(k.hash, t.id, 20);   /* any unique 40+ hex chars will do here */
    store_status res = store_tenant_create(st, server_admin, &t, &k);
    if (res == STORE_OK) memcpy(id_out, t.id, ID_MAX);
    return res;
}

store_status test_store_user(store *st, const scope *tenant_admin, const char *external_id,
                             char id_out[ID_MAX])
{
    user_rec u;
    memset(&u, 0, sizeof u);
    ids_new(u.id, "usr");
    snprintf(u.external_id, sizeof u.external_id, "%s", external_id);
    snprintf(u.tier, sizeof u.tier, "default");
    u.limits = (user_limits){-1, -1, -1, -1, -1};
    store_status res = store_user_create(st, tenant_admin, &u);
    if (res == STORE_OK && id_out) memcpy(id_out, u.id, ID_MAX);
    return res;
}
