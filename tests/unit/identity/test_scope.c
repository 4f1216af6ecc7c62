/* test_scope.c — identity end to end over a real store: credentials become
 * scopes, scopes confine every access, and changes (revocation, disabling,
 * deletion, JWT settings) take effect on the very next authentication. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity/identity.h"
#include "identity/jwt.h"
#include "identity/scope_mint.h"
#include "jwt_sign.h"
#include "test_util.h"
#include "store/store.h"
#include "util/timeutil.h"

#define ADMIN_TOKEN "test-admin-token-0123456789"
#define HS_SECRET "an-hs256-secret-of-more-than-32-bytes!"
#define ISS "https://idp.tenant-a.example"
#define AUD "brigade-test"

typedef struct fx {
    char dir[64];
    store *st;
    identity *id;
    scope cli;
    tenant_rec ta, tb;
    char ka[KEY_MAX], kb[KEY_MAX];   /* tenant admin keys */
    scope sa, sb;                    /* tenant admin scopes from authentication */
    /* Every authentication of these tests goes through one key memo, as
     * if all came on one keep-alive connection: the memo must never
     * change an answer (revocation, disabling, erasure, other keys). */
    identity_key_memo memo;
} fx;

static auth_status auth(fx *f, const char *cred, scope *out)
{
    char hdr[9000], why[256];
    snprintf(hdr, sizeof hdr, "Bearer %s", cred);
    auth_pending p;
    return identity_authenticate_memo(f->id, hdr, &f->memo, out, &p, why, sizeof why);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->st = test_store_open(f->dir, sizeof f->dir, "brigade-ident");
    assert_non_null(f->st);
    char err[256];
    f->id = identity_open(f->st, f->dir, ADMIN_TOKEN, err, sizeof err);
    assert_non_null(f->id);
    identity_cli_scope(f->id, &f->cli);
    tenant_jwt j;
    memset(&j, 0, sizeof j);
    snprintf(j.issuer, sizeof j.issuer, ISS);
    snprintf(j.audience, sizeof j.audience, AUD);
    snprintf(j.alg, sizeof j.alg, "HS256");
    j.key = HS_SECRET;
    assert_int_equal(identity_create_tenant(f->id, &f->cli, "acme", &j, &f->ta, f->ka), STORE_OK);
    assert_int_equal(identity_create_tenant(f->id, &f->cli, "globex", NULL, &f->tb, f->kb), STORE_OK);
    assert_int_equal(auth(f, f->ka, &f->sa), AUTH_OK);
    assert_int_equal(auth(f, f->kb, &f->sb), AUTH_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    identity_close(f->id);
    tenant_rec_free(&f->ta);
    tenant_rec_free(&f->tb);
    test_store_close(f->st, f->dir);
    free(f);
    return 0;
}

static void mkuser(fx *f, const scope *sc, const char *ext, user_rec *u, char key[KEY_MAX], key_rec *kr)
{
    assert_int_equal(identity_create_user(f->id, sc, ext, NULL, "Display", u), STORE_OK);
    if (key) assert_int_equal(identity_create_user_key(f->id, sc, u->id, kr, key), STORE_OK);
}

static char *hs_token(const char *sub, int64_t exp_off)
{
    char payload[512];
    snprintf(payload, sizeof payload, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\",\"exp\":%lld}", sub,
             (long long)(time_now_unix() + exp_off));
    return test_jwt_sign("HS256", NULL, payload, (const unsigned char *)HS_SECRET, strlen(HS_SECRET), NULL);
}

/* ---- */

static void test_roles_and_parsing(void **state)
{
    fx *f = *state;
    assert_string_equal(scope_role_name(SCOPE_SERVER_ADMIN), "server_admin");
    assert_string_equal(scope_role_name(SCOPE_TENANT_ADMIN), "tenant_admin");
    assert_string_equal(scope_role_name(SCOPE_USER), "user");
    scope s;
    char why[128];
    auth_pending p;
    assert_int_equal(identity_authenticate(f->id, "Bearer " ADMIN_TOKEN, &s, &p, why, sizeof why), AUTH_OK);
    assert_true(scope_is_server_admin(&s));
    assert_int_equal(identity_authenticate(f->id, "bearer   " ADMIN_TOKEN "  ", &s, &p, why, sizeof why), AUTH_OK);
    assert_int_equal(identity_authenticate(f->id, "Bearer " ADMIN_TOKEN "x", &s, &p, why, sizeof why), AUTH_INVALID);
    assert_false(scope_valid(&s));
    assert_int_equal(identity_authenticate(f->id, NULL, &s, &p, why, sizeof why), AUTH_MISSING);
    assert_int_equal(identity_authenticate(f->id, "", &s, &p, why, sizeof why), AUTH_MISSING);
    assert_int_equal(identity_authenticate(f->id, "Basic abc", &s, &p, why, sizeof why), AUTH_MALFORMED);
    assert_int_equal(identity_authenticate(f->id, "Bearer", &s, &p, why, sizeof why), AUTH_MALFORMED);
    assert_int_equal(identity_authenticate(f->id, "Bearer a b", &s, &p, why, sizeof why), AUTH_MALFORMED);
    assert_int_equal(identity_authenticate(f->id, "Bearer bk_usr_nope", &s, &p, why, sizeof why), AUTH_INVALID);
    assert_string_equal(why, "invalid API key");
    /* tenant admin keys */
    assert_true(scope_is_tenant_admin(&f->sa));
    assert_string_equal(f->sa.tenant_id, f->ta.id);
    assert_memory_equal(f->ka, "bk_adm_", 7);
    /* the CLI's tenant scope */
    assert_int_equal(identity_cli_tenant_scope(f->id, f->tb.id, &s), STORE_OK);
    assert_true(scope_is_tenant_admin(&s));
    assert_string_equal(s.tenant_id, f->tb.id);
    assert_int_equal(identity_cli_tenant_scope(f->id, "ten_nope", &s), STORE_NOT_FOUND);
    assert_false(scope_valid(&s));
    /* tenant names are unique */
    char k[KEY_MAX];
    tenant_rec t;
    assert_int_equal(identity_create_tenant(f->id, &f->cli, "acme", NULL, &t, k), STORE_CONFLICT);
    assert_int_equal(identity_create_tenant(f->id, &f->sa, "x", NULL, &t, k), STORE_FORBIDDEN);
}

static void test_cross_tenant(void **state)
{
    fx *f = *state;
    user_rec ua, ub, u;
    char kua[KEY_MAX], kub[KEY_MAX];
    key_rec ra, rb, r;
    mkuser(f, &f->sa, "alice", &ua, kua, &ra);
    mkuser(f, &f->sb, "bob", &ub, kub, &rb);
    /* A's admin cannot see, change, key or erase B's user */
    assert_int_equal(store_user_get(f->st, &f->sa, ub.id, &u), STORE_NOT_FOUND);
    user_update upd = {.set_disabled = true, .disabled = true};
    assert_int_equal(identity_update_user(f->id, &f->sa, ub.id, &upd, &u), STORE_NOT_FOUND);
    assert_int_equal(identity_delete_user(f->id, &f->sa, ub.id), STORE_NOT_FOUND);
    char k[KEY_MAX];
    assert_int_equal(identity_create_user_key(f->id, &f->sa, ub.id, &r, k), STORE_NOT_FOUND);
    assert_int_equal(identity_revoke_key(f->id, &f->sa, rb.id), STORE_NOT_FOUND);
    key_rec *ks; size_t n;
    assert_int_equal(store_key_list(f->st, &f->sa, ub.id, &ks, &n), STORE_NOT_FOUND);
    tenant_jwt j;
    memset(&j, 0, sizeof j);
    snprintf(j.issuer, sizeof j.issuer, "https://b.example");
    snprintf(j.audience, sizeof j.audience, AUD);
    snprintf(j.alg, sizeof j.alg, "HS256");
    j.key = HS_SECRET;
    tenant_rec t;
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sa, f->tb.id, &j, &t, NULL, NULL), STORE_NOT_FOUND);
    /* B's user still works */
    scope s;
    assert_int_equal(auth(f, kub, &s), AUTH_OK);
    assert_string_equal(s.user_id, ub.id);
    assert_string_equal(s.tenant_id, f->tb.id);
    assert_string_equal(s.tier, "default");
    /* a user scope cannot read another user, nor manage users */
    scope me;
    assert_int_equal(auth(f, kua, &me), AUTH_OK);
    assert_true(scope_is_user(&me));
    user_rec other;
    mkuser(f, &f->sa, "alice2", &other, NULL, NULL);
    assert_int_equal(store_user_get(f->st, &me, other.id, &u), STORE_NOT_FOUND);
    assert_int_equal(store_user_get(f->st, &me, ua.id, &u), STORE_OK);
    assert_int_equal(identity_create_user(f->id, &me, "sneaky", NULL, NULL, &u), STORE_FORBIDDEN);
    assert_int_equal(identity_update_user(f->id, &me, ua.id, &upd, &u), STORE_FORBIDDEN);
    /* server admin manages no users */
    assert_int_equal(identity_create_user(f->id, &f->cli, "x", NULL, NULL, &u), STORE_FORBIDDEN);
}

static void test_unminted(void **state)
{
    fx *f = *state;
    user_rec ua, u;
    mkuser(f, &f->sa, "victim", &ua, NULL, NULL);
    scope forged = f->sa;
    forged.minted = 0;
    assert_int_equal(store_user_get(f->st, &forged, ua.id, &u), STORE_NOT_FOUND);
    assert_int_equal(identity_create_user(f->id, &forged, "x", NULL, NULL, &u), STORE_NOT_FOUND);
    assert_int_equal(identity_delete_user(f->id, &forged, ua.id), STORE_NOT_FOUND);
    char k[KEY_MAX];
    key_rec r;
    assert_int_equal(identity_create_user_key(f->id, &forged, ua.id, &r, k), STORE_NOT_FOUND);
    tenant_rec t;
    assert_int_equal(identity_create_tenant(f->id, &forged, "y", NULL, &t, k), STORE_NOT_FOUND);
    assert_int_equal(store_user_get(f->st, &f->sa, ua.id, &u), STORE_OK);
}

static void test_revoke_immediate(void **state)
{
    fx *f = *state;
    user_rec u;
    char k1[KEY_MAX], k2[KEY_MAX];
    key_rec r1, r2;
    mkuser(f, &f->sa, "erin", &u, k1, &r1);
    assert_int_equal(identity_create_user_key(f->id, &f->sa, u.id, &r2, k2), STORE_OK);
    assert_int_equal(strlen(r1.prefix), KEY_PREFIX_LEN);
    assert_memory_equal(r1.prefix, k1, KEY_PREFIX_LEN);
    scope s;
    assert_int_equal(auth(f, k1, &s), AUTH_OK);
    assert_string_equal(s.key_id, r1.id);
    assert_int_equal(identity_revoke_key(f->id, &f->sa, r1.id), STORE_OK);
    assert_int_equal(auth(f, k1, &s), AUTH_REVOKED);
    assert_false(scope_valid(&s));
    assert_int_equal(auth(f, k2, &s), AUTH_OK);
    /* a user revokes its own key, and only its own */
    user_rec other;
    char ko[KEY_MAX];
    key_rec ro;
    mkuser(f, &f->sa, "frank", &other, ko, &ro);
    assert_int_equal(identity_revoke_key(f->id, &s, ro.id), STORE_NOT_FOUND);
    assert_int_equal(auth(f, ko, &s), AUTH_OK);
    assert_int_equal(auth(f, k2, &s), AUTH_OK);
    assert_int_equal(identity_revoke_key(f->id, &s, r2.id), STORE_OK);
    assert_int_equal(auth(f, k2, &s), AUTH_REVOKED);
    /* revocation survives a restart (cache rebuilt from the store) */
    identity_close(f->id);
    char err[256];
    f->id = identity_open(f->st, f->dir, ADMIN_TOKEN, err, sizeof err);
    assert_non_null(f->id);
    assert_int_equal(auth(f, k1, &s), AUTH_REVOKED);
    assert_int_equal(auth(f, ko, &s), AUTH_OK);
    assert_int_equal(auth(f, f->ka, &s), AUTH_OK);
    /* a tenant admin may not revoke its last admin key (it would lock
     * itself out), neither by the key routes nor by the admin-key ones */
    assert_int_equal(identity_revoke_key(f->id, &f->sa, f->sa.key_id), STORE_CONFLICT);
    assert_int_equal(identity_revoke_admin_key(f->id, &f->sa, f->ta.id, f->sa.key_id), STORE_CONFLICT);
    assert_int_equal(auth(f, f->ka, &s), AUTH_OK);
    /* rotation: a new admin key first, then the old one goes */
    char ka2[KEY_MAX];
    key_rec ra2;
    assert_int_equal(identity_create_admin_key(f->id, &f->sa, f->ta.id, &ra2, ka2), STORE_OK);
    assert_int_equal(ra2.kind, KEY_KIND_ADMIN);
    assert_int_equal(identity_revoke_admin_key(f->id, &f->sa, f->ta.id, f->sa.key_id), STORE_OK);
    assert_int_equal(auth(f, f->ka, &s), AUTH_REVOKED);
    assert_int_equal(auth(f, ka2, &s), AUTH_OK);
    assert_true(scope_is_tenant_admin(&s));
    assert_string_equal(s.tenant_id, f->ta.id);
    /* the new one is now the last: refused */
    assert_int_equal(identity_revoke_admin_key(f->id, &s, f->ta.id, ra2.id), STORE_CONFLICT);
    /* a user key is not an admin key */
    assert_int_equal(identity_revoke_admin_key(f->id, &s, f->ta.id, ro.id), STORE_NOT_FOUND);
    /* another tenant's admin keys do not exist for A's admin */
    key_rec *ks;
    size_t n;
    assert_int_equal(identity_list_admin_keys(f->id, &s, f->tb.id, &ks, &n), STORE_NOT_FOUND);
    assert_int_equal(identity_create_admin_key(f->id, &s, f->tb.id, &ra2, ka2), STORE_NOT_FOUND);
    assert_int_equal(identity_revoke_admin_key(f->id, &s, f->tb.id, f->sb.key_id), STORE_NOT_FOUND);
    /* the server admin mints one for a tenant (the way back in), but a user may not */
    scope admin;
    assert_int_equal(auth(f, ADMIN_TOKEN, &admin), AUTH_OK);
    assert_int_equal(identity_create_admin_key(f->id, &admin, f->tb.id, &ra2, ka2), STORE_OK);
    assert_int_equal(auth(f, ka2, &s), AUTH_OK);
    assert_string_equal(s.tenant_id, f->tb.id);
    assert_int_equal(identity_list_admin_keys(f->id, &admin, f->tb.id, &ks, &n), STORE_OK);
    assert_int_equal(n, 2);
    free(ks);
    assert_int_equal(identity_create_admin_key(f->id, &admin, "ten_nosuch", &ra2, ka2), STORE_NOT_FOUND);
    assert_int_equal(auth(f, ko, &s), AUTH_OK);
    assert_int_equal(identity_create_admin_key(f->id, &s, f->ta.id, &ra2, ka2), STORE_FORBIDDEN);
}

static void test_disable_and_delete(void **state)
{
    fx *f = *state;
    user_rec u, out;
    char k[KEY_MAX];
    key_rec r;
    mkuser(f, &f->sa, "gina", &u, k, &r);
    scope s;
    assert_int_equal(auth(f, k, &s), AUTH_OK);
    user_update upd = {.set_disabled = true, .disabled = true};
    assert_int_equal(identity_update_user(f->id, &f->sa, u.id, &upd, &out), STORE_OK);
    assert_true(out.disabled);
    assert_int_equal(auth(f, k, &s), AUTH_DISABLED);
    upd.disabled = false;
    upd.set_tier = true;
    snprintf(upd.tier, sizeof upd.tier, "gold");
    assert_int_equal(identity_update_user(f->id, &f->sa, u.id, &upd, &out), STORE_OK);
    assert_int_equal(auth(f, k, &s), AUTH_OK);
    assert_string_equal(s.tier, "gold");
    assert_int_equal(identity_delete_user(f->id, &f->sa, u.id), STORE_OK);
    assert_int_equal(auth(f, k, &s), AUTH_INVALID);
    key_rec kr;
    assert_int_equal(store_key_get(f->st, &f->sa, r.id, &kr), STORE_NOT_FOUND);
}

/* What identity's revocation listener heard. */
typedef struct heard {
    int  n;
    char tenant_id[ID_MAX], user_id[ID_MAX], key_id[ID_MAX], code[32];
    bool key_null;
} heard;

static void on_revoked(void *arg, const identity_revocation *rv)
{
    heard *h = arg;
    h->n++;
    snprintf(h->tenant_id, sizeof h->tenant_id, "%s", rv->tenant_id);
    snprintf(h->user_id, sizeof h->user_id, "%s", rv->user_id ? rv->user_id : "");
    h->key_null = rv->key_id == NULL;
    snprintf(h->key_id, sizeof h->key_id, "%s", rv->key_id ? rv->key_id : "");
    snprintf(h->code, sizeof h->code, "%s", rv->code);
    assert_non_null(rv->message);
}

/* Work that outlives its request (a run, a queued message) learns that its
 * credential is gone: the listener hears each loss once it is in force, and
 * identity_scope_check answers for a scope minted earlier. */
static void test_revocation_listener_and_scope_check(void **state)
{
    fx *f = *state;
    heard h = {0};
    identity_on_revocation(f->id, on_revoked, &h);
    user_rec u, out;
    char k1[KEY_MAX], k2[KEY_MAX];
    key_rec r1, r2;
    mkuser(f, &f->sa, "hugo", &u, k1, &r1);
    assert_int_equal(identity_create_user_key(f->id, &f->sa, u.id, &r2, k2), STORE_OK);
    scope s1, s2;
    assert_int_equal(auth(f, k1, &s1), AUTH_OK);
    assert_int_equal(auth(f, k2, &s2), AUTH_OK);
    char why[128];
    assert_int_equal(identity_scope_check(f->id, &s1, why, sizeof why), AUTH_OK);

    /* a key revoked: heard with its user and key; only that key's scope is lost */
    assert_int_equal(identity_revoke_key(f->id, &f->sa, r1.id), STORE_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.code, "revoked_credential");
    assert_string_equal(h.tenant_id, f->ta.id);
    assert_string_equal(h.user_id, u.id);
    assert_string_equal(h.key_id, r1.id);
    assert_int_equal(identity_scope_check(f->id, &s1, why, sizeof why), AUTH_REVOKED);
    assert_non_null(strstr(why, "revoked"));
    assert_int_equal(identity_scope_check(f->id, &s2, why, sizeof why), AUTH_OK);
    /* a failed revocation (another tenant's key) is not heard */
    assert_int_equal(identity_revoke_key(f->id, &f->sb, r2.id), STORE_NOT_FOUND);
    assert_int_equal(h.n, 1);

    /* the user disabled: every credential, key NULL */
    user_update upd = {.set_disabled = true, .disabled = true};
    assert_int_equal(identity_update_user(f->id, &f->sa, u.id, &upd, &out), STORE_OK);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.code, "user_disabled");
    assert_true(h.key_null);
    assert_int_equal(identity_scope_check(f->id, &s2, why, sizeof why), AUTH_DISABLED);
    /* enabling is not a loss */
    upd.disabled = false;
    assert_int_equal(identity_update_user(f->id, &f->sa, u.id, &upd, &out), STORE_OK);
    assert_int_equal(h.n, 2);
    assert_int_equal(identity_scope_check(f->id, &s2, why, sizeof why), AUTH_OK);

    /* the user erased */
    assert_int_equal(identity_delete_user(f->id, &f->sa, u.id), STORE_OK);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.code, "user_deleted");
    assert_string_equal(h.user_id, u.id);
    assert_int_equal(identity_scope_check(f->id, &s2, why, sizeof why), AUTH_INVALID);

    /* a revoked key stays known as revoked after a restart */
    identity_on_revocation(f->id, NULL, NULL);
    user_rec v;
    char k3[KEY_MAX];
    key_rec r3;
    mkuser(f, &f->sa, "ines", &v, k3, &r3);
    scope s3;
    assert_int_equal(auth(f, k3, &s3), AUTH_OK);
    assert_int_equal(identity_revoke_key(f->id, &f->sa, r3.id), STORE_OK);
    assert_int_equal(h.n, 3);                   /* the listener was removed */
    identity_close(f->id);
    char err[256];
    f->id = identity_open(f->st, f->dir, ADMIN_TOKEN, err, sizeof err);
    assert_non_null(f->id);
    assert_int_equal(identity_scope_check(f->id, &s3, why, sizeof why), AUTH_REVOKED);
    /* an unminted scope is never good */
    scope fake = s2;
    fake.minted = 0;
    assert_int_equal(identity_scope_check(f->id, &fake, why, sizeof why), AUTH_INVALID);
}

/* /readyz shows its details to the server admin token only. */
/* A connection's key memo: a hit is the same answer, another key of the
 * same length (one byte off) is not taken for the remembered one, a key
 * revoked while remembered is refused, and what is too long, not a key,
 * or the admin token is never kept. */
static void test_key_memo(void **state)
{
    fx *f = *state;
    user_rec ua, ub;
    char k1[KEY_MAX], k2[KEY_MAX];
    key_rec r1, r2;
    mkuser(f, &f->sa, "memo-a", &ua, k1, &r1);
    mkuser(f, &f->sa, "memo-b", &ub, k2, &r2);
    memset(&f->memo, 0, sizeof f->memo);
    scope s;
    assert_int_equal(auth(f, k1, &s), AUTH_OK);
    assert_string_equal(s.user_id, ua.id);
    assert_int_equal(f->memo.len, strlen(k1));
    assert_memory_equal(f->memo.cred, k1, strlen(k1));
    assert_int_equal(auth(f, k1, &s), AUTH_OK);   /* from the memo */
    assert_string_equal(s.user_id, ua.id);
    assert_string_equal(s.key_id, r1.id);
    /* one byte off at the end, and at the start of the secret part */
    char off[KEY_MAX];
    snprintf(off, sizeof off, "%s", k1);
    size_t n = strlen(off);
    off[n - 1] = off[n - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(auth(f, off, &s), AUTH_INVALID);
    assert_false(scope_valid(&s));
    assert_int_equal(auth(f, k1, &s), AUTH_OK);
    snprintf(off, sizeof off, "%s", k1);
    off[4] = off[4] == 'x' ? 'y' : 'x';
    assert_int_equal(auth(f, off, &s), AUTH_INVALID);
    /* another key of the same length: its own user */
    assert_int_equal(strlen(k2), strlen(k1));
    assert_int_equal(auth(f, k1, &s), AUTH_OK);
    assert_int_equal(auth(f, k2, &s), AUTH_OK);
    assert_string_equal(s.user_id, ub.id);
    /* revoked while remembered */
    assert_int_equal(auth(f, k1, &s), AUTH_OK);
    assert_int_equal(identity_revoke_key(f->id, &f->sa, r1.id), STORE_OK);
    assert_int_equal(auth(f, k1, &s), AUTH_REVOKED);
    /* the user disabled while its key is remembered */
    assert_int_equal(auth(f, k2, &s), AUTH_OK);
    user_update upd = {.set_disabled = true, .disabled = true};
    user_rec out;
    assert_int_equal(identity_update_user(f->id, &f->sa, ub.id, &upd, &out), STORE_OK);
    assert_int_equal(auth(f, k2, &s), AUTH_DISABLED);
    /* not kept: too long for the memo, not a key, the admin token */
    identity_key_memo before = f->memo;
    char longkey[IDENTITY_KEY_MEMO_MAX + 8];
    memset(longkey, 'a', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    memcpy(longkey, "bk_", 3);
    assert_int_equal(auth(f, longkey, &s), AUTH_INVALID);
    assert_int_equal(auth(f, "not-a-key-at-all", &s), AUTH_INVALID);
    assert_int_equal(auth(f, ADMIN_TOKEN, &s), AUTH_OK);
    assert_memory_equal(&f->memo, &before, sizeof before);
    /* an admin token that looks like a key is not kept either */
    char err[256];
    identity *other = identity_open(f->st, f->dir, "bk_server_admin_token_0123456789", err, sizeof err);
    assert_non_null(other);
    identity_key_memo m = {0};
    auth_pending p;
    char why[128];
    assert_int_equal(identity_authenticate_memo(other, "Bearer bk_server_admin_token_0123456789", &m, &s, &p, why,
                                                sizeof why), AUTH_OK);
    assert_int_equal(s.role, SCOPE_SERVER_ADMIN);
    assert_int_equal(m.len, 0);
    identity_close(other);
}

static void test_is_admin_token(void **state)
{
    fx *f = *state;
    assert_true(identity_is_admin_token(f->id, "Bearer " ADMIN_TOKEN));
    assert_true(identity_is_admin_token(f->id, "bearer " ADMIN_TOKEN));
    assert_false(identity_is_admin_token(f->id, "Bearer " ADMIN_TOKEN "x"));
    assert_false(identity_is_admin_token(f->id, ADMIN_TOKEN));
    assert_false(identity_is_admin_token(f->id, NULL));
    assert_false(identity_is_admin_token(f->id, ""));
    char hdr[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", f->ka);     /* a tenant admin key */
    assert_false(identity_is_admin_token(f->id, hdr));
}

typedef struct prov_arg {
    fx *f;
    auth_pending p;
    scope out;
    auth_status st;
} prov_arg;

static void *prov_worker(void *p)
{
    prov_arg *a = p;
    char why[128];
    a->st = identity_provision(a->f->id, &a->p, &a->out, why, sizeof why);
    return NULL;
}

static void test_jwt_provision_race(void **state)
{
    fx *f = *state;
    char *tok = hs_token("sub-42", 600);
    char hdr[2048], why[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    scope s;
    auth_pending p;
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_NEEDS_PROVISION);
    assert_string_equal(p.tenant_id, f->ta.id);
    assert_string_equal(p.external_id, "sub-42");

    enum { T = 8 };
    pthread_t th[T];
    prov_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (prov_arg){.f = f, .p = p};
        pthread_create(&th[i], NULL, prov_worker, &args[i]);
    }
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < T; i++) {
        assert_int_equal(args[i].st, AUTH_OK);
        assert_true(scope_is_user(&args[i].out));
        assert_string_equal(args[i].out.user_id, args[0].out.user_id);
        assert_string_equal(args[i].out.key_id, "jwt");
    }
    user_rec *us; size_t n;
    assert_int_equal(store_user_list(f->st, &f->sa, NULL, 100, &us, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(us[0].external_id, "sub-42");
    assert_string_equal(us[0].tier, "default");
    free(us);
    /* now a known subject */
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_OK);
    assert_string_equal(s.user_id, args[0].out.user_id);
    /* disabled: refused at once */
    user_update upd = {.set_disabled = true, .disabled = true};
    user_rec out;
    assert_int_equal(identity_update_user(f->id, &f->sa, s.user_id, &upd, &out), STORE_OK);
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_DISABLED);
    free(tok);

    /* expired / wrong key / unknown issuer */
    tok = hs_token("sub-42", -3600);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_EXPIRED);
    free(tok);
    tok = test_jwt_sign("HS256", NULL, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"x\",\"exp\":4000000000}",
                        (const unsigned char *)"wrong-secret-wrong-secret-wrong-secret", 38, NULL);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_INVALID);
    free(tok);
    tok = test_jwt_sign("HS256", NULL, "{\"iss\":\"https://nobody\",\"sub\":\"x\",\"exp\":4000000000}",
                        (const unsigned char *)HS_SECRET, strlen(HS_SECRET), NULL);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_INVALID);
    free(tok);
}

static void test_tenant_jwt_settings(void **state)
{
    fx *f = *state;
    tenant_jwt j;
    memset(&j, 0, sizeof j);
    snprintf(j.issuer, sizeof j.issuer, "https://b.example");
    snprintf(j.audience, sizeof j.audience, AUD);
    snprintf(j.alg, sizeof j.alg, "RS256");
    j.key = HS_SECRET;                        /* not a PEM: refused */
    tenant_rec t;
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &j, &t, NULL, NULL), STORE_INVALID);
    snprintf(j.alg, sizeof j.alg, "none");
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &j, &t, NULL, NULL), STORE_INVALID);
    snprintf(j.alg, sizeof j.alg, "HS256");
    j.key = "short";
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &j, &t, NULL, NULL), STORE_INVALID);
    /* an issuer already used by another tenant: conflict */
    snprintf(j.issuer, sizeof j.issuer, ISS);
    j.key = HS_SECRET;
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &j, &t, NULL, NULL), STORE_CONFLICT);
    /* clearing A's JWT makes its tokens fail at once */
    char *tok = hs_token("sub-1", 600);
    scope s;
    assert_int_equal(auth(f, tok, &s), AUTH_NEEDS_PROVISION);
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sa, f->ta.id, NULL, &t, NULL, NULL), STORE_OK);
    assert_false(t.has_jwt);
    tenant_rec_free(&t);
    assert_int_equal(auth(f, tok, &s), AUTH_INVALID);
    /* the server admin may not change an existing tenant's settings
     * (it could sign in as any of its users) */
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->cli, f->tb.id, &j, &t, NULL, NULL), STORE_FORBIDDEN);
    /* settings without an audience are refused */
    tenant_jwt noaud = j;
    noaud.audience[0] = '\0';
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &noaud, &t, NULL, NULL), STORE_INVALID);
    /* and B can now take the issuer; the audit summary names the key by its
     * fingerprint only */
    jwt_settings_summary before, after;
    assert_int_equal(identity_set_tenant_jwt(f->id, &f->sb, f->tb.id, &j, &t, &before, &after), STORE_OK);
    assert_false(before.set);
    assert_true(after.set);
    assert_string_equal(after.issuer, ISS);
    assert_string_equal(after.audience, AUD);
    char fp[17];
    identity_key_fingerprint(HS_SECRET, strlen(HS_SECRET), fp);
    assert_int_equal(strlen(fp), 16);
    assert_string_equal(after.key_fingerprint, fp);
    /* the store holds the key sealed, never the secret */
    assert_non_null(t.jwt.key);
    assert_null(strstr(t.jwt.key, HS_SECRET));
    assert_true(strncmp(t.jwt.key, "sealed:v1:", 10) == 0);
    assert_true(t.has_jwt);
    assert_string_equal(t.jwt.issuer, ISS);
    tenant_rec_free(&t);
    auth_pending p;
    char hdr[2048], why[128];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(identity_authenticate(f->id, hdr, &s, &p, why, sizeof why), AUTH_NEEDS_PROVISION);
    assert_string_equal(p.tenant_id, f->tb.id);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roles_and_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_memo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unminted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_immediate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disable_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_listener_and_scope_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_admin_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jwt_provision_race, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_jwt_settings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
