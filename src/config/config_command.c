/* config_command.c — the parts of the configuration about tool processes:
 * a tool's `kind: command` (argv template, env, network, limits; read for
 * config_tools.c) and the top-level `sandbox:` section. Command tools run
 * a program on the server's machine, so only the server's file may declare
 * them: a tenant's body (the API) naming them is refused. */
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"

/* Bounds of a command tool (the sandbox refuses more). */
#define CMD_MAX_ARGS 64
#define CMD_MAX_ENV  64
#define CMD_MAX_ARG_BYTES 4096

static int ld_cmd_argv(ld *l, const slot *s, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[200];
    size_t n = 0;
    if (!s->val || fy_node_get_type(s->val) != FYNT_SEQUENCE)
        return ld_fail(l, s->line, path, "expected a list of strings (the program and its "
                       "arguments), got %s", config_node_what(s->val, wbuf, sizeof wbuf));
    if (ld_sequence(l, s->val, s->line, path, &n, 0) < 0)
        return -1;
    if (n > CMD_MAX_ARGS)
        return ld_fail(l, s->line, path, "at most %d entries", CMD_MAX_ARGS);
    t->argv = config_xcalloc(n, sizeof(char *));
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(s->val, &it)) != NULL && t->argc < n) {
        snprintf(kp, sizeof kp, "%.160s[%zu]", path, t->argc);
        slot is = {.key = "", .val = item, .line = config_node_line(item, s->line), .present = 1};
        const char *txt;
        size_t len;
        if (ld_text(l, &is, kp, &txt, &len) < 0)
            return -1;
        if (len > CMD_MAX_ARG_BYTES)
            return ld_fail(l, is.line, kp, "longer than %d bytes", CMD_MAX_ARG_BYTES);
        if (memchr(txt, '\0', len))
            return ld_fail(l, is.line, kp, "contains a NUL byte");
        /* a process's arguments are visible to every local user: secrets
         * belong in env */
        if (config_env_has_ref(txt, len))
            return ld_fail(l, is.line, kp, "${VAR} is not expanded in argv (arguments are "
                           "visible in the process list); pass it in env");
        if (t->argc == 0 && len == 0)
            return ld_fail(l, is.line, kp, "the program must not be empty");
        t->argv[t->argc++] = config_xstrndup(txt, len);
    }
    return 0;
}

static int ld_cmd_env(ld *l, const slot *s, const char *path, tool_cfg *t)
{
    char wbuf[64], kp[300];
    if (config_node_is_null(s->val))
        return 0;
    if (fy_node_get_type(s->val) != FYNT_MAPPING)
        return ld_fail(l, s->line, path, "expected a mapping (NAME: value), got %s",
                       config_node_what(s->val, wbuf, sizeof wbuf));
    int cnt = fy_node_mapping_item_count(s->val);
    if (cnt > CMD_MAX_ENV)
        return ld_fail(l, s->line, path, "at most %d variables", CMD_MAX_ENV);
    if (cnt <= 0)
        return 0;
    t->env_names = config_xcalloc((size_t)cnt, sizeof(char *));
    t->env_values = config_xcalloc((size_t)cnt, sizeof(char *));
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(s->val, &it)) != NULL && t->n_env < (size_t)cnt) {
        struct fy_node *k = fy_node_pair_key(p);
        int kline = config_node_line(k, s->line);
        size_t klen = 0;
        const char *ks = (k && fy_node_get_type(k) == FYNT_SCALAR) ? fy_node_get_scalar(k, &klen) : NULL;
        int ok = ks && klen > 0 && klen <= 128 && !(ks[0] >= '0' && ks[0] <= '9');
        for (size_t i = 0; ok && i < klen; i++)
            ok = (ks[i] >= 'A' && ks[i] <= 'Z') || (ks[i] >= 'a' && ks[i] <= 'z') ||
                 (ks[i] >= '0' && ks[i] <= '9') || ks[i] == '_';
        if (!ok)
            return ld_fail(l, kline, path, "variable names are [A-Za-z_][A-Za-z0-9_]*, up to 128");
        size_t i = t->n_env++;
        t->env_names[i] = config_xstrndup(ks, klen);
        snprintf(kp, sizeof kp, "%.160s.%.130s", path, t->env_names[i]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t->env_names[j], t->env_names[i]))
                return ld_fail(l, kline, kp, "given twice");
        slot vs = {.key = t->env_names[i], .val = fy_node_pair_value(p), .line = kline, .present = 1};
        if (ld_string(l, &vs, kp, &t->env_values[i], NULL) < 0)
            return -1;
        if (strlen(t->env_values[i]) > 65536)
            return ld_fail(l, kline, kp, "longer than 65536 bytes");
    }
    return 0;
}

enum { LI_CPU, LI_MEM, LI_FILES, LI_FSIZE, LI_PROCS, LI__N };

int ld_sandbox_limits(ld *l, const slot *s, const char *path, uint32_t cpu_max,
                      command_limits_cfg *out)
{
    slot ls[LI__N] = {
        [LI_CPU] = {.key = "cpu_seconds"}, [LI_MEM] = {.key = "memory_mb"},
        [LI_FILES] = {.key = "open_files"}, [LI_FSIZE] = {.key = "file_size_mb"},
        [LI_PROCS] = {.key = "processes"},
    };
    if (config_node_is_null(s->val))
        return 0;
    if (ld_collect(l, s->val, s->line, path, ls, LI__N) < 0)
        return -1;
    char kp[200];
    struct { int i; int64_t min, max; uint32_t *out; } f[] = {
        {LI_CPU, 1, cpu_max, &out->cpu_seconds},
        {LI_MEM, 16, 65536, &out->memory_mb},
        {LI_FILES, 16, 65536, &out->open_files},
        {LI_FSIZE, 1, 65536, &out->file_size_mb},
        /* bwrap itself takes two (its monitor and the namespace's first) */
        {LI_PROCS, 4, 4096, &out->processes},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!ls[f[i].i].present) continue;
        ld_path(kp, sizeof kp, path, ls[f[i].i].key);
        if (ld_u32(l, &ls[f[i].i], kp, f[i].min, f[i].max, f[i].out) < 0)
            return -1;
    }
    return 0;
}

int ld_tool_command(ld *l, const ld_command_slots *cs, int line, const char *path, tool_cfg *t)
{
    char kp[200];
    const slot *parts[] = {cs->argv, cs->env, cs->network, cs->limits};
    const char *names[] = {"argv", "env", "network", "limits"};
    t->kind = TOOL_CFG_HTTP;
    if (cs->kind->present) {
        const char *txt;
        size_t len;
        ld_path(kp, sizeof kp, path, "kind");
        if (ld_scalar(l, cs->kind, kp, "http or command", &txt, &len) < 0)
            return -1;
        if (len == 7 && !memcmp(txt, "command", 7))
            t->kind = TOOL_CFG_COMMAND;
        else if (!(len == 4 && !memcmp(txt, "http", 4)))
            return ld_fail(l, cs->kind->line, kp, "expected http or command, got \"%.*s\"",
                           (int)(len > 40 ? 40 : len), txt);
    }
    if (t->kind != TOOL_CFG_COMMAND) {
        for (size_t i = 0; i < 4; i++)
            if (parts[i]->present) {
                ld_path(kp, sizeof kp, path, names[i]);
                return ld_fail(l, parts[i]->line, kp, "only for tools of kind: command");
            }
        return 0;
    }
    if (l->api_body) {
        ld_path(kp, sizeof kp, path, "kind");
        return ld_fail(l, cs->kind->line, kp, "command tools run programs on the server: only "
                       "the server's configuration may declare them");
    }
    if (!cs->argv->present)
        return ld_fail(l, line, path, "missing required key \"argv\" (kind: command)");
    ld_path(kp, sizeof kp, path, "argv");
    if (ld_cmd_argv(l, cs->argv, kp, t) < 0)
        return -1;
    if (cs->env->present) {
        ld_path(kp, sizeof kp, path, "env");
        if (ld_cmd_env(l, cs->env, kp, t) < 0)
            return -1;
    }
    if (cs->network->present) {
        ld_path(kp, sizeof kp, path, "network");
        if (ld_bool(l, cs->network, kp, &t->network) < 0)
            return -1;
    }
    if (cs->limits->present) {
        ld_path(kp, sizeof kp, path, "limits");
        if (ld_sandbox_limits(l, cs->limits, kp, 3600, &t->limits) < 0)
            return -1;
    }
    return 0;
}

enum { SB_ALLOW, SB_BWRAP, SB_HELPER, SB__N };

int ld_sandbox(ld *l, struct fy_node *n, int line)
{
    slot s[SB__N] = {
        [SB_ALLOW] = {.key = "allow_unsandboxed"}, [SB_BWRAP] = {.key = "bwrap"},
        [SB_HELPER] = {.key = "helper"},
    };
    if (config_node_is_null(n))
        return 0;
    if (ld_collect(l, n, line, "sandbox", s, SB__N) < 0)
        return -1;
    brigade_config *cfg = l->cfg;
    if (s[SB_ALLOW].present &&
        ld_bool(l, &s[SB_ALLOW], "sandbox.allow_unsandboxed", &cfg->sandbox.allow_unsandboxed) < 0)
        return -1;
    const char *paths[] = {"sandbox.bwrap", "sandbox.helper"};
    char **outs[] = {&cfg->sandbox.bwrap, &cfg->sandbox.helper};
    for (int i = 0; i < 2; i++) {
        const slot *ps = &s[SB_BWRAP + i];
        if (!ps->present) continue;
        if (ld_nonempty(l, ps, paths[i], outs[i], NULL) < 0)
            return -1;
        if ((*outs[i])[0] != '/')
            return ld_fail(l, ps->line, paths[i], "must be an absolute path");
    }
    return 0;
}
