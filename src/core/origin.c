/* origin.c — provenance objects of a run's messages (origin.h): making
 * them, inferring them for rows older than provenance, reading the trust
 * they carry, and keeping them out of what the model is sent.
 *
 * Includes: only <cjson/cJSON.h>, standard string headers and core/
 * headers — no I/O (invariant 1, docs/architecture.md; checked by
 * tests/unit/core/test_core_purity.c). */
#include <string.h>

#include <cjson/cJSON.h>

#include "core/origin.h"

static const char *const origin_names[ORIGIN_NKINDS] = {
    "system", "user", "model", "tool", "fetched", "memory", "unknown",
};

const char *origin_kind_name(origin_kind k)
{
    return (unsigned)k < ORIGIN_NKINDS ? origin_names[k] : "unknown";
}

origin_kind origin_kind_of(const cJSON *origin)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(origin, "kind");
    if (!cJSON_IsString(k) || !k->valuestring) return ORIGIN_UNKNOWN;
    for (int i = 0; i < ORIGIN_NKINDS; i++)
        if (strcmp(k->valuestring, origin_names[i]) == 0) return (origin_kind)i;
    return ORIGIN_UNKNOWN;
}

cJSON *origin_new(origin_kind k, bool untrusted)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "kind", origin_kind_name(k)) ||
        !cJSON_AddBoolToObject(o, "untrusted", untrusted)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static const char *origin_role(const cJSON *message)
{
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(message, "role");
    return cJSON_IsString(role) && role->valuestring ? role->valuestring : "";
}

static origin_kind origin_kind_of_role(const char *role)
{
    if (strcmp(role, "user") == 0) return ORIGIN_USER;
    if (strcmp(role, "assistant") == 0) return ORIGIN_MODEL;
    if (strcmp(role, "tool") == 0) return ORIGIN_TOOL;
    return ORIGIN_SYSTEM;
}

cJSON *origin_inferred(const char *role)
{
    origin_kind k = origin_kind_of_role(role ? role : "");
    cJSON *o = origin_new(k, k == ORIGIN_TOOL);
    if (o && !cJSON_AddBoolToObject(o, "inferred", true)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

bool origin_message_untrusted(const cJSON *message)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(message, ORIGIN_MEMBER);
    if (!cJSON_IsObject(o)) return strcmp(origin_role(message), "tool") == 0;
    /* Only an explicit false trusts: an origin that forgot the flag is
     * not taken as trusted. */
    return !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "untrusted"));
}

origin_kind origin_message_kind(const cJSON *message)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(message, ORIGIN_MEMBER);
    if (!cJSON_IsObject(o)) return origin_kind_of_role(origin_role(message));
    return origin_kind_of(o);
}

bool origin_set(cJSON *message, cJSON *origin)
{
    if (!cJSON_IsObject(message) || !origin) {
        cJSON_Delete(origin);
        return false;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(message, ORIGIN_MEMBER);
    if (!cJSON_AddItemToObject(message, ORIGIN_MEMBER, origin)) {
        cJSON_Delete(origin);
        return false;
    }
    return true;
}

cJSON *origin_kinds_array(uint32_t mask)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < ORIGIN_NKINDS; i++) {
        if (!(mask & (1u << i))) continue;
        cJSON *s = cJSON_CreateString(origin_names[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}
