/* jsonrpc.c — JSON-RPC 2.0 messages of the MCP client: one untrusted
 * message read and classified (request, notification, result, error), and
 * the messages brigade writes. The reader is strict where a mistake could
 * route an answer to the wrong call (the id, the "jsonrpc" member) and
 * tolerant of members it does not know. */
#include "mcp/mcp_proto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_strict.h"

bool mcp_protocol_version_ok(const char *v)
{
    return v && (!strcmp(v, MCP_PROTOCOL_VERSION) || !strcmp(v, "2025-06-18") ||
                 !strcmp(v, "2025-03-26"));
}

void mcp_msg_free(mcp_msg *m)
{
    if (!m) return;
    cJSON_Delete(m->root);
    memset(m, 0, sizeof *m);
}

/* An id is a string or an integer (JSON-RPC allows numbers; MCP says
 * string or integer). */
static bool msg_read_id(mcp_msg *m, const cJSON *id, char *err, size_t errlen)
{
    m->id = id;
    if (cJSON_IsString(id)) {
        m->id_str = id->valuestring;
        return true;
    }
    if (cJSON_IsNumber(id)) {
        double d = id->valuedouble;
        if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740991.0) {
            snprintf(err, errlen, "the message's id is not an integer");
            return false;
        }
        m->id_is_num = true;
        m->id_num = (int64_t)d;
        return true;
    }
    snprintf(err, errlen, "the message's id must be a string or an integer");
    return false;
}

bool mcp_msg_parse(const char *text, size_t len, mcp_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!text || len == 0) {
        snprintf(err, errlen, "an empty message");
        return false;
    }
    if (len > MCP_MAX_MESSAGE_BYTES) {
        snprintf(err, errlen, "a message longer than %u bytes", MCP_MAX_MESSAGE_BYTES);
        return false;
    }
    json_strict_error jerr;
    if (!json_strict_text(text, len, "the message", &jerr)) {
        snprintf(err, errlen, "%s", jerr.message);
        return false;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        snprintf(err, errlen, "not valid JSON");
        return false;
    }
    for (const char *p = end; p && p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            snprintf(err, errlen, "text after the JSON value");
            return false;
        }
    out->root = root;
    if (!json_strict_tree(root, "the message", &jerr)) {
        snprintf(err, errlen, "%s", jerr.message);
        goto bad;
    }
    if (cJSON_IsArray(root)) {
        snprintf(err, errlen, "a JSON-RPC batch (batches are not part of MCP)");
        goto bad;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "a message must be a JSON object");
        goto bad;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "jsonrpc");
    if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0) {
        snprintf(err, errlen, "\"jsonrpc\" must be \"2.0\"");
        goto bad;
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (method) {
        if (!cJSON_IsString(method) || !method->valuestring[0]) {
            snprintf(err, errlen, "\"method\" must be a non-empty string");
            goto bad;
        }
        if (params && !cJSON_IsObject(params) && !cJSON_IsArray(params)) {
            snprintf(err, errlen, "\"params\" must be an object or an array");
            goto bad;
        }
        out->method = method->valuestring;
        out->params = params;
        if (!id) {
            out->kind = MCP_MSG_NOTIFICATION;
            return true;
        }
        out->kind = MCP_MSG_REQUEST;
        if (!msg_read_id(out, id, err, errlen)) goto bad;
        return true;
    }
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(root, "result");
    const cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (result && error) {
        snprintf(err, errlen, "a response with both \"result\" and \"error\"");
        goto bad;
    }
    if (result) {
        if (!id || !msg_read_id(out, id, err, errlen)) {
            if (!id) snprintf(err, errlen, "a result without an id");
            goto bad;
        }
        out->kind = MCP_MSG_RESULT;
        out->result = result;
        return true;
    }
    if (error) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(error, "message");
        if (!cJSON_IsObject(error) || !cJSON_IsNumber(code)) {
            snprintf(err, errlen, "\"error\" must be an object with a numeric code");
            goto bad;
        }
        /* An error about a request that could not be read has id null. */
        if (id && !cJSON_IsNull(id) && !msg_read_id(out, id, err, errlen)) goto bad;
        out->kind = MCP_MSG_ERROR;
        double c = code->valuedouble;
        out->error_code = isfinite(c) && fabs(c) < 9e15 ? (int64_t)c : 0;
        out->error_message = cJSON_IsString(msg) ? msg->valuestring : "";
        return true;
    }
    snprintf(err, errlen, "neither a request, a notification nor a response");
bad:
    mcp_msg_free(out);
    return false;
}

static char *write_obj(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *mcp_write_request(int64_t id, const char *method, cJSON *params)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddNumberToObject(o, "id", (double)id);
    cJSON_AddStringToObject(o, "method", method);
    if (params) cJSON_AddItemToObject(o, "params", params);
    return write_obj(o);
}

char *mcp_write_notification(const char *method, cJSON *params)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddStringToObject(o, "method", method);
    if (params) cJSON_AddItemToObject(o, "params", params);
    return write_obj(o);
}

char *mcp_write_response(const cJSON *id, cJSON *result, int code, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "jsonrpc", "2.0");
    cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
    if (result) {
        cJSON_AddItemToObject(o, "result", result);
    } else {
        cJSON *e = cJSON_AddObjectToObject(o, "error");
        cJSON_AddNumberToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", message ? message : "");
    }
    return write_obj(o);
}
