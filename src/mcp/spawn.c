/* spawn.c — the one place brigade starts an MCP server's process: the
 * program, its arguments, the whole environment it gets and its working
 * directory go in; nothing else of brigade does (no inherited descriptors
 * beyond the three pipes, no inherited environment). A sandbox for these
 * processes is to wrap this function's argv, and nothing else. */
#include "mcp/mcp_internal.h"

int mcp_spawn(uv_loop_t *loop, uv_process_t *proc, uv_exit_cb on_exit, char **argv, char **envp,
              const char *cwd, uv_pipe_t *in, uv_pipe_t *out, uv_pipe_t *err)
{
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)err},
    };
    uv_process_options_t opt = {
        .exit_cb = on_exit,
        .file = argv[0],
        .args = argv,
        .env = envp,            /* never NULL: NULL would mean "brigade's own" */
        .cwd = cwd,
        .stdio_count = 3,
        .stdio = stdio,
        /* its own process group: a stop reaches what it started too */
        .flags = UV_PROCESS_DETACHED,
    };
    return uv_spawn(loop, proc, &opt);
}
