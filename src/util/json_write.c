/* json_write.c — a cJSON tree as compact JSON text (see json_write.h). */
#include "util/json_write.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_escape.h"

/* One byte, or a few, into the buf: structure is most of a message's
 * text, so these stay inline rather than a buf_append each (buf_reserve
 * keeps a byte for the NUL, written once at the end of a json_write). */
static inline void put1(buf *out, char c)
{
    if (out->cap - out->len <= 1) buf_reserve(out, 1);
    out->data[out->len++] = c;
}

static inline void put(buf *out, const char *s, size_t n)
{
    if (out->cap - out->len <= n) buf_reserve(out, n);
    memcpy(out->data + out->len, s, n);
    out->len += n;
}

/* As cJSON's print_number: an integral value that fits cJSON's valueint
 * as an integer, else %1.15g when it reads back as the same double, else
 * %1.17g (cJSON compares within an epsilon; exactly here). */
static void write_number(buf *out, const cJSON *item)
{
    double d = item->valuedouble;
    char num[32];
    int n;
    if (isnan(d) || isinf(d)) {
        put(out, "null", 4);
        return;
    }
    if (d == (double)item->valueint && !(d == 0 && signbit(d))) {   /* -0 stays -0, as cJSON's %g */
        n = snprintf(num, sizeof num, "%d", item->valueint);
    } else {
        n = snprintf(num, sizeof num, "%1.15g", d);
        if (strtod(num, NULL) != d) n = snprintf(num, sizeof num, "%1.17g", d);
    }
    if (n > 0) put(out, num, (size_t)n);
}

static void write_string(buf *out, const char *s)
{
    json_escape_string(out, s ? s : "", s ? strlen(s) : 0);
}

static void write_value(buf *out, const cJSON *item);

static void write_members(buf *out, const cJSON *first, const char *omit)
{
    bool any = false;
    put1(out, '{');
    for (const cJSON *c = first; c; c = c->next) {
        if (omit && c->string && strcmp(c->string, omit) == 0) continue;
        if (any) put1(out, ',');
        any = true;
        write_string(out, c->string);
        put1(out, ':');
        write_value(out, c);
    }
    put1(out, '}');
}

static void write_value(buf *out, const cJSON *item)
{
    if (!item) {
        put(out, "null", 4);
        return;
    }
    switch (item->type & 0xFF) {
    case cJSON_NULL: put(out, "null", 4); return;
    case cJSON_False: put(out, "false", 5); return;
    case cJSON_True: put(out, "true", 4); return;
    case cJSON_Number: write_number(out, item); return;
    case cJSON_String: write_string(out, item->valuestring); return;
    case cJSON_Raw:
        /* its text as it is; cJSON refuses to print one without text,
         * and null keeps the output JSON */
        if (item->valuestring) put(out, item->valuestring, strlen(item->valuestring));
        else put(out, "null", 4);
        return;
    case cJSON_Array:
        put1(out, '[');
        for (const cJSON *c = item->child; c; c = c->next) {
            if (c != item->child) put1(out, ',');
            write_value(out, c);
        }
        put1(out, ']');
        return;
    case cJSON_Object: write_members(out, item->child, NULL); return;
    default: put(out, "null", 4); return;   /* cJSON_Invalid, which cJSON refuses */
    }
}

void json_write(buf *out, const cJSON *item)
{
    write_value(out, item);
    out->data[out->len] = '\0';
}

void json_write_omitting(buf *out, const cJSON *obj, const char *omit)
{
    if (cJSON_IsObject(obj)) write_members(out, obj->child, omit);
    else write_value(out, obj);
    out->data[out->len] = '\0';
}
