/* test_tools_mcp.c — MCP servers' tools in the registry (tool_registry.c):
 * SERVER__TOOL names, the server's schema kept when brigade's subset can
 * check it and offered as it is (with an open check) when it cannot, a
 * name a model cannot call left out, an unreachable server's tool with its
 * reason; and an agent's list: SERVER__* in tools_name_listed and in the
 * tools array offered to a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/mcp.h"
#include "tools/tools.h"

static mcp_server_cfg server = {.name = "fs"};

static mcp_tool_info info(const char *name, const char *schema)
{
    return (mcp_tool_info){.name = (char *)name, .description = "a tool", .input_schema = (char *)schema};
}

static void test_add_and_find(void **state)
{
    (void)state;
    char err[200];
    tool_registry *r = tools_registry_of(NULL, 0, err, sizeof err);
    assert_non_null(r);
    mcp_tool_info a = info("read_file", "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}},"
                                        "\"required\":[\"path\"],\"$schema\":\"http://json-schema.org/draft-07/schema#\"}");
    mcp_tool_info b = info("fancy", "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"format\":\"uri\"}}}");
    mcp_tool_info bad = info("has.dot", "{\"type\":\"object\"}");
    assert_true(tools_registry_add_mcp(r, &server, a.name, &a, NULL));
    assert_true(tools_registry_add_mcp(r, &server, b.name, &b, NULL));
    assert_false(tools_registry_add_mcp(r, &server, bad.name, &bad, NULL));    /* not a function name */
    assert_false(tools_registry_add_mcp(r, &server, a.name, &a, NULL));        /* taken */
    assert_true(tools_registry_add_mcp(r, &server, "gone", NULL, "it did not start"));

    const tool_def *d = tools_find(r, "fs__read_file");
    assert_non_null(d);
    assert_int_equal(d->kind, TOOL_MCP);
    assert_string_equal(d->mcp_tool, "read_file");
    assert_ptr_equal(d->mcp_server, &server);
    assert_null(d->offered);   /* brigade checks it */
    assert_true(tools_validate_args(d, "{\"path\":\"a.txt\"}", err, sizeof err));
    assert_false(tools_validate_args(d, "{\"path\":7}", err, sizeof err));
    assert_non_null(strstr(err, "path"));

    const tool_def *f = tools_find(r, "fs__fancy");
    assert_non_null(f->offered);   /* "format" is outside the subset: offered as given */
    assert_true(tools_validate_args(f, "{\"p\":\"anything\"}", err, sizeof err));

    const tool_def *g = tools_find(r, "fs__gone");
    assert_non_null(strstr(g->description, "it did not start"));
    assert_null(tools_find(r, "fs__has.dot"));

    /* 64 bytes at most with the server's name */
    char longname[80];
    memset(longname, 'x', 62);
    longname[62] = '\0';
    mcp_tool_info l = info(longname, "{\"type\":\"object\"}");
    assert_false(tools_registry_add_mcp(r, &server, longname, &l, NULL));
    tools_registry_free(r);
}

static void test_listed_and_offered(void **state)
{
    (void)state;
    char *names[] = {"memory", "fs__*", "fs__read_file", "other__x"};
    assert_true(tools_name_listed(names, 4, "fs__read_file"));
    assert_true(tools_name_listed(names, 4, "fs__fancy"));
    assert_true(tools_name_listed(names, 4, "memory"));
    assert_false(tools_name_listed(names, 4, "clock"));
    assert_false(tools_name_listed(names, 4, "fs__"));
    assert_false(tools_name_listed(names, 4, "other__y"));
    assert_false(tools_name_listed(names, 4, "fsx__a"));

    char err[200];
    tool_registry *r = tools_registry_of(NULL, 0, err, sizeof err);
    mcp_tool_info a = info("read_file", "{\"type\":\"object\"}");
    mcp_tool_info b = info("fancy", "{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"string\",\"format\":\"uri\"}}}");
    tools_registry_add_mcp(r, &server, a.name, &a, NULL);
    tools_registry_add_mcp(r, &server, b.name, &b, NULL);
    cJSON *specs = tools_openai_specs(r, names, 4);
    /* memory, then fs__read_file and fs__fancy once each (read_file also listed by name) */
    assert_int_equal(cJSON_GetArraySize(specs), 3);
    int fancy = 0, rf = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, specs) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(s, "function");
        const char *n = cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring;
        if (!strcmp(n, "fs__fancy")) {
            fancy++;
            /* the server's own schema is what the model sees */
            char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(fn, "parameters"));
            assert_non_null(strstr(txt, "\"format\":\"uri\""));
            free(txt);
        }
        if (!strcmp(n, "fs__read_file")) rf++;
    }
    assert_int_equal(fancy, 1);
    assert_int_equal(rf, 1);
    cJSON_Delete(specs);
    tools_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_find),
        cmocka_unit_test(test_listed_and_offered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
