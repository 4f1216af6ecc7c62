/* tool_command.c — the tool kind `command` (docs/sandbox.md): a program
 * the operator declared, run in the sandbox (src/sandbox/) for one call.
 * The model's arguments go to its stdin as one JSON object (and a
 * newline); what it writes to stdout is the result, read up to the tool's
 * max_response_bytes; a non-zero exit, a signal, a timeout or too much
 * output is an error the model sees. Each (tool, user) has a private
 * directory, kept between calls, that no other user's call can see.
 *
 * The argv template's placeholders are filled by tool_argv.c. */
#include "tools/tools_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sandbox/sandbox.h"
#include "util/buf.h"
#include "util/log.h"

typedef struct command_exec {
    tool_exec      base;
    sandbox_run_t *run;
} command_exec;

static void command_done(void *arg, const sandbox_result *r)
{
    command_exec *c = arg;
    c->run = NULL;
    if (r->ok)
        tool_exec_deliver(&c->base, true, r->out, r->out_len);
    else
        tool_exec_deliver(&c->base, false, r->why, strlen(r->why));
    free(c);
}

tool_exec *tool_command_start(const tool_def *t, const tool_env *env, const cJSON *args,
                              char *out, size_t outlen)
{
    const tool_cfg *tc = t->http;
    char why[400];
    if (!tc || tc->kind != TOOL_CFG_COMMAND || tc->argc == 0) {
        snprintf(out, outlen, "tool %s has no command configuration", t->name);
        return NULL;
    }
    if (!sandbox_can_run(why, sizeof why)) {
        snprintf(out, outlen, "the tool %s cannot run here: %s", t->name, why);
        return NULL;
    }
    char dir[1024];
    const scope *sc = env->scope;
    if (!sandbox_private_dir(t->name, sc ? sc->tenant_id : NULL, sc ? sc->user_id : NULL, dir,
                             sizeof dir)) {
        snprintf(out, outlen, "the tool %s has no private directory", t->name);
        return NULL;
    }
    char *argv[SANDBOX_MAX_ARGS];
    char *envv[SANDBOX_MAX_ENV];
    size_t argc = tc->argc, n_env = tc->n_env < SANDBOX_MAX_ENV ? tc->n_env : SANDBOX_MAX_ENV;
    for (size_t i = 0; i < argc; i++) argv[i] = i == 0 ? strdup(tc->argv[0]) : tool_argv_fill(tc->argv[i], args);
    for (size_t i = 0; i < n_env; i++) {
        buf b;
        buf_init(&b);
        buf_printf(&b, "%s=%s", tc->env_names[i], tc->env_values[i]);
        envv[i] = buf_detach(&b);
    }
    char *input = cJSON_PrintUnformatted(args);
    const command_limits_cfg *l = &tc->limits;
    char label[96];
    snprintf(label, sizeof label, "tool %s", t->name);
    sandbox_spec spec = {
        .argv = (const char *const *)argv, .argc = argc,
        .env = (const char *const *)envv, .n_env = n_env,
        .private_dir = dir, .network = tc->network, .label = label,
        .limits = {
            .cpu_seconds = l->cpu_seconds ? l->cpu_seconds : SANDBOX_DEFAULT_CPU_SECONDS,
            .memory_bytes = l->memory_mb ? (uint64_t)l->memory_mb << 20 : SANDBOX_DEFAULT_MEMORY,
            .open_files = l->open_files ? l->open_files : SANDBOX_DEFAULT_OPEN_FILES,
            .file_bytes = l->file_size_mb ? (uint64_t)l->file_size_mb << 20 : SANDBOX_DEFAULT_FILE_BYTES,
            .processes = l->processes ? l->processes : SANDBOX_DEFAULT_PROCESSES,
        },
    };
    command_exec *c = calloc(1, sizeof *c);
    buf in;
    buf_init(&in);
    if (input) buf_printf(&in, "%s\n", input);
    if (c) {
        c->base.impl = EXEC_COMMAND;
        c->run = sandbox_run(env->loop, &spec, in.data ? in.data : "", in.len,
                             tc->max_response_bytes ? tc->max_response_bytes : 262144, 4096,
                             tc->timeout_ms ? tc->timeout_ms : 10000, command_done, c, why,
                             sizeof why);
    }
    buf_free(&in);
    free(input);
    for (size_t i = 0; i < argc; i++) free(argv[i]);
    for (size_t i = 0; i < n_env; i++) {
        explicit_bzero(envv[i], strlen(envv[i]));
        free(envv[i]);
    }
    if (!c || !c->run) {
        if (c) log_warn("tools: %s could not start: %s", t->name, why);
        snprintf(out, outlen, "the tool %s could not start%s%s", t->name, c ? ": " : "",
                 c ? why : "");
        free(c);
        return NULL;
    }
    return &c->base;
}

void tool_command_cancel(tool_exec *x)
{
    command_exec *c = (command_exec *)x;
    sandbox_run_cancel(c->run);
    free(c);
}
