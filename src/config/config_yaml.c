/* config_yaml.c — reads brigade's YAML configuration and validates all of
 * it before anything starts.
 *
 * Every error names the file, the 1-based line and the key path
 * ("brigade.yaml:14: models[1].provider: no provider named …"), so a typo is
 * a one-line fix rather than a debugging session. The first error stops the
 * load: later errors are often consequences of the first.
 *
 * Shape of the code: each mapping is first "collected" into a table of
 * slots (known key → node and line), which rejects unknown keys in one
 * place; then each section reads its slots with typed readers that check
 * type and range. Cross-references (model → provider, default_tier → tier,
 * duplicate names) are checked once all lists are read; agents are read
 * last, so their references (model, tools, tiers) resolve as they are read.
 * A tool's YAML parameter schema becomes JSON in config_json.c.
 *
 * This file walks the document (parse, one document only, the top-level
 * keys in order, then the cross-references); each section is read by its own
 * file (config_server.c, config_models.c, config_tiers.c,
 * config_observability.c, config_tools.c, config_agents.c) with the toolkit
 * of config_load_fields.c, declared in config_load.h. */
#include <errno.h>
#include <libfyaml.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_load.h"
#include "util/buf.h"
#include "util/utf8.h"

#define CONFIG_MAX_FILE_BYTES (4u << 20)   /* a config larger than this is a mistake */

/* ------------------------------------------------------------------ */
/* the document                                                        */

enum { RT_SERVER, RT_PROVIDERS, RT_MODELS, RT_TIERS, RT_DEFAULT_TIER, RT_TOOLS, RT_AGENTS,
       RT_GOVERNANCE, RT_OBSERVABILITY, RT_CREDENTIALS, RT_EGRESS, RT_SANDBOX, RT_MCP, RT_GUARD, RT_CONSOLE, RT_STORE, RT__N };

static int ld_root(ld *l, struct fy_node *root)
{
    char wbuf[64];
    brigade_config *cfg = l->cfg;
    slot s[RT__N] = {
        [RT_SERVER] = {.key = "server"}, [RT_PROVIDERS] = {.key = "providers"},
        [RT_MODELS] = {.key = "models"}, [RT_TIERS] = {.key = "tiers"},
        [RT_DEFAULT_TIER] = {.key = "default_tier"}, [RT_TOOLS] = {.key = "tools"},
        [RT_AGENTS] = {.key = "agents"},             [RT_GOVERNANCE] = {.key = "governance"},
        [RT_OBSERVABILITY] = {.key = "observability"},
        [RT_CREDENTIALS] = {.key = "credential_providers"}, [RT_EGRESS] = {.key = "egress"},
        [RT_SANDBOX] = {.key = "sandbox"},
        [RT_MCP] = {.key = "mcp_servers"},
        [RT_GUARD] = {.key = "guard"},
        [RT_CONSOLE] = {.key = "console"},
        [RT_STORE] = {.key = "store"},
    };
    if (!config_node_is_null(root) && fy_node_get_type(root) != FYNT_MAPPING)
        return ld_fail(l, config_node_line(root, 1), NULL,
                       "the configuration must be a YAML mapping (key: value), got %s", config_node_what(root, wbuf, sizeof(wbuf)));
    if (ld_collect(l, root, 1, NULL, s, RT__N) < 0)
        return -1;
    if (s[RT_SERVER].present && ld_server(l, s[RT_SERVER].val, s[RT_SERVER].line) < 0)
        return -1;
    if (s[RT_GOVERNANCE].present &&
        ld_governance(l, s[RT_GOVERNANCE].val, s[RT_GOVERNANCE].line) < 0)
        return -1;
    if (s[RT_OBSERVABILITY].present &&
        ld_observability(l, s[RT_OBSERVABILITY].val, s[RT_OBSERVABILITY].line) < 0)
        return -1;
    if (s[RT_EGRESS].present && ld_egress(l, s[RT_EGRESS].val, s[RT_EGRESS].line) < 0)
        return -1;
    if (s[RT_SANDBOX].present && ld_sandbox(l, s[RT_SANDBOX].val, s[RT_SANDBOX].line) < 0)
        return -1;
    if (s[RT_GUARD].present && ld_guard(l, s[RT_GUARD].val, s[RT_GUARD].line) < 0)
        return -1;
    if (s[RT_CONSOLE].present && ld_console(l, s[RT_CONSOLE].val, s[RT_CONSOLE].line) < 0)
        return -1;
    if (s[RT_STORE].present && ld_store(l, s[RT_STORE].val, s[RT_STORE].line) < 0)
        return -1;

    int rc = -1;
    entry_lines *pl = NULL, *ml = NULL, *tl = NULL, *tol = NULL, *al = NULL;
    char known[512];

    /* A list given in the file replaces the embedded one wholesale:
     * merging by name would make "what is configured" depend on defaults
     * the reader of the file cannot see. */
    if (s[RT_PROVIDERS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_PROVIDERS], "providers", sizeof(provider_cfg), ld_provider_fn,
                    ld_provider_free, 0, &arr, &n, &pl) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_providers; i++)
            config_provider_free(&cfg->providers[i]);
        free(cfg->providers);
        cfg->providers = arr;
        cfg->n_providers = n;
        if (ld_check_unique(l, "providers", (const char *const *)&cfg->providers[0].name,
                            sizeof(provider_cfg), n, pl) < 0)
            goto out;
    }
    if (s[RT_MODELS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_MODELS], "models", sizeof(model_cfg), ld_model_fn, ld_model_free,
                    0, &arr, &n, &ml) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_models; i++)
            config_model_free(&cfg->models[i]);
        free(cfg->models);
        cfg->models = arr;
        cfg->n_models = n;
        if (ld_check_unique(l, "models", (const char *const *)&cfg->models[0].name,
                            sizeof(model_cfg), n, ml) < 0)
            goto out;
    }
    if (s[RT_TIERS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_TIERS], "tiers", sizeof(tier_cfg), ld_tier_fn, ld_tier_free,
                    0, &arr, &n, &tl) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_tiers; i++)
            config_tier_free(&cfg->tiers[i]);
        free(cfg->tiers);
        cfg->tiers = arr;
        cfg->n_tiers = n;
        if (ld_check_unique(l, "tiers", (const char *const *)&cfg->tiers[0].name,
                            sizeof(tier_cfg), n, tl) < 0)
            goto out;
    }
    if (s[RT_DEFAULT_TIER].present &&
        ld_name(l, &s[RT_DEFAULT_TIER], "default_tier", &cfg->default_tier) < 0)
        goto out;
    /* Credential providers before tools: a tool's auth names one. */
    if (s[RT_CREDENTIALS].present) {
        void *arr;
        size_t n;
        entry_lines *cl = NULL;
        if (ld_list(l, &s[RT_CREDENTIALS], "credential_providers", sizeof(credential_provider_cfg),
                    ld_credential_provider_fn, ld_credential_provider_free, 1, &arr, &n, &cl) < 0)
            goto out;
        cfg->credential_providers = arr;
        cfg->n_credential_providers = n;
        int bad = n > 1 && ld_check_unique(l, "credential_providers",
                                           (const char *const *)&cfg->credential_providers[0].name,
                                           sizeof(credential_provider_cfg), n, cl) < 0;
        free(cl);
        if (bad)
            goto out;
    }
    if (s[RT_TOOLS].present) {
        void *arr;
        size_t n;
        if (ld_list(l, &s[RT_TOOLS], "tools", sizeof(tool_cfg), ld_tool_fn, ld_tool_free, 0,
                    &arr, &n, &tol) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_tools; i++)
            config_tool_free(&cfg->tools[i]);
        free(cfg->tools);
        cfg->tools = arr;
        cfg->n_tools = n;
        if (ld_check_unique(l, "tools", (const char *const *)&cfg->tools[0].name,
                            sizeof(tool_cfg), n, tol) < 0)
            goto out;
    }

    /* MCP servers before agents: an agent lists their tools as SERVER__TOOL. */
    if (s[RT_MCP].present) {
        void *arr;
        size_t n;
        entry_lines *ml2 = NULL;
        if (ld_list(l, &s[RT_MCP], "mcp_servers", sizeof(mcp_server_cfg), ld_mcp_server_fn,
                    ld_mcp_server_free, 1, &arr, &n, &ml2) < 0)
            goto out;
        cfg->mcp_servers = arr;
        cfg->n_mcp_servers = n;
        int bad = n > 1 && ld_check_unique(l, "mcp_servers", (const char *const *)&cfg->mcp_servers[0].name,
                                           sizeof(mcp_server_cfg), n, ml2) < 0;
        free(ml2);
        if (bad)
            goto out;
    }

    /* Resolve model → provider. Embedded models survive a replaced
     * provider list only if a mock provider of their name is still there. */
    ld_known_names(known, sizeof(known), (const char *const *)&cfg->providers[0].name,
                   sizeof(provider_cfg), cfg->n_providers);
    size_t kept = 0;
    for (size_t i = 0; i < cfg->n_models; i++) {
        model_cfg *m = &cfg->models[i];
        m->provider = NULL;
        for (size_t j = 0; j < cfg->n_providers; j++)
            if (strcmp(cfg->providers[j].name, m->provider_name) == 0)
                m->provider = &cfg->providers[j];
        if (ml && !m->provider) {
            char kp[64];
            snprintf(kp, sizeof(kp), "models[%zu].provider", i);
            ld_fail(l, ml[i].ref, kp, "no provider named \"%s\" (known: %s)", m->provider_name, known);
            goto out;
        }
        if (!ml && (!m->provider || m->provider->kind != PROVIDER_MOCK)) {
            config_model_free(m);
            continue;
        }
        if (kept != i) {
            cfg->models[kept] = *m;
            memset(m, 0, sizeof(*m));
        }
        kept++;
    }
    cfg->n_models = kept;
    if (ld_models_resolve(l, ml) < 0)
        goto out;
    if (cfg->n_models == 0) {
        ld_fail(l, s[RT_PROVIDERS].line, "models",
                "no models: the embedded mock models need the \"mock\" provider, "
                "which the providers list replaced; add a models list");
        goto out;
    }

    if (!config_find_tier(cfg, cfg->default_tier)) {
        ld_known_names(known, sizeof(known), (const char *const *)&cfg->tiers[0].name,
                       sizeof(tier_cfg), cfg->n_tiers);
        int at = s[RT_DEFAULT_TIER].present ? s[RT_DEFAULT_TIER].line : s[RT_TIERS].line;
        ld_fail(l, at, "default_tier", "no tier named \"%s\" (known: %s)%s", cfg->default_tier, known,
                s[RT_DEFAULT_TIER].present ? "" : "; set default_tier to one of them");
        goto out;
    }

    /* Agents last: they refer to models, tiers and tools. */
    if (s[RT_AGENTS].present) {
        void *arr;
        size_t n;
        /* `agents: []` is allowed: a pure gateway with no agents. */
        if (ld_list(l, &s[RT_AGENTS], "agents", sizeof(agent_cfg), ld_agent_fn, ld_agent_free, 1,
                    &arr, &n, &al) < 0)
            goto out;
        for (size_t i = 0; i < cfg->n_agents; i++)
            config_agent_free(&cfg->agents[i]);
        free(cfg->agents);
        cfg->agents = arr;
        cfg->n_agents = n;
        if (n > 1 && ld_check_unique(l, "agents", (const char *const *)&cfg->agents[0].name,
                                     sizeof(agent_cfg), n, al) < 0)
            goto out;
    } else {
        /* The embedded agent survives a replaced models list only if its
         * model is still there (and big enough); it then takes its limits
         * from that model, which the file may have redefined. The models
         * array was rebuilt either way, so the pointer is re-resolved. */
        size_t keep = 0;
        for (size_t i = 0; i < cfg->n_agents; i++) {
            agent_cfg *a = &cfg->agents[i];
            const model_cfg *m = config_find_model(cfg, a->model_name);
            if (!m || m->context_window < CONFIG_AGENT_MIN_CONTEXT) {
                config_agent_free(a);
                continue;
            }
            config_agent_apply_model(a, m);
            if (keep != i) {
                cfg->agents[keep] = *a;
                memset(a, 0, sizeof(*a));
            }
            keep++;
        }
        cfg->n_agents = keep;
    }
    rc = 0;
out:
    free(pl);
    free(ml);
    free(tl);
    free(tol);
    free(al);
    return rc;
}

/* Turn libfyaml's collected diagnostic into our one-line message. */
static int ld_syntax_error(ld *l, struct fy_diag *diag)
{
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type < FYET_ERROR)
            continue;
        /* fy_diag_error lines are already 1-based (unlike fy_mark). */
        return ld_fail(l, e->line > 0 ? e->line : 1, NULL, "syntax error: %s (column %d)",
                       e->msg ? e->msg : "invalid YAML", e->column > 0 ? e->column : 1);
    }
    return ld_fail(l, 1, NULL, "syntax error: the YAML could not be parsed");
}

int config_load_string(const char *name, const char *yaml, size_t len, brigade_config *cfg,
                       char *err, size_t errlen)
{
    ld l = {.name = name ? name : "<config>", .err = err, .errlen = errlen, .cfg = cfg};
    if (errlen)
        err[0] = '\0';
    config_defaults(cfg);

    /* An empty (or comment-only) file means "all defaults"; libfyaml
     * returns no document for it, which is also what it does on a syntax
     * error, so tell the two apart by whether anything but comments and
     * blanks is present. */
    int blank = 1;
    for (size_t i = 0; i < len && blank; i++) {
        char c = yaml[i];
        if (c == '#') {
            while (i < len && yaml[i] != '\n')
                i++;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            blank = 0;
        }
    }
    if (blank)
        return 0;

    /* libfyaml stops at a NUL as if the file ended there; a config with a
     * NUL in it is a binary or corrupted file, so say so. */
    const char *nul = memchr(yaml, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *c = yaml; c < nul; c++)
            line += *c == '\n';
        ld_fail(&l, line, NULL, "the file contains a NUL byte; is it a text file?");
        config_free(cfg);
        return -1;
    }

    /* YAML is UTF-8 text, and libfyaml 0.7 loops forever on some bytes that
     * are not (0xff in a %directive's name: found by fuzz/config), so refuse
     * what is not UTF-8 before parsing, naming the line. A UTF-8 sequence
     * never holds a newline byte, so checking line by line is exact. */
    int at_line = 1;
    for (const char *p = yaml, *end = yaml + len; p < end; at_line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (!utf8_valid(p, n)) {
            ld_fail(&l, at_line, NULL, "not valid UTF-8 (a YAML file is UTF-8 text)");
            config_free(cfg);
            return -1;
        }
        p += n + 1;
    }

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;            /* nothing to stderr: errors become our message */
    dcfg.output_fn = NULL;
    dcfg.level = FYET_ERROR;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag) {
        ld_fail(&l, 1, NULL, "cannot create the YAML parser");
        config_free(cfg);
        return -1;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {
        .flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT | FYPCF_JSON_NONE,
        .diag = diag,
    };
    /* A parser rather than fy_document_build_from_string, so that a
     * second document ("---") is seen and refused instead of ignored. */
    struct fy_parser *fyp = fy_parser_create(&pcfg);
    struct fy_document *doc = NULL;
    int rc;
    if (!fyp || fy_parser_set_string(fyp, yaml, len) < 0) {
        rc = ld_fail(&l, 1, NULL, "cannot create the YAML parser");
    } else if (!(doc = fy_parse_load_document(fyp)) || fy_diag_got_error(diag)) {
        rc = ld_syntax_error(&l, diag);
    } else {
        struct fy_document *more = fy_parse_load_document(fyp);
        if (fy_diag_got_error(diag)) {
            rc = ld_syntax_error(&l, diag);
        } else if (more && fy_document_root(more)) {
            rc = ld_fail(&l, config_node_line(fy_document_root(more), 1), NULL,
                         "only one YAML document is allowed (a second one starts after \"---\")");
        } else {
            rc = ld_root(&l, fy_document_root(doc));
        }
        if (more)
            fy_parse_document_destroy(fyp, more);
    }
    if (doc)
        fy_parse_document_destroy(fyp, doc);
    if (fyp)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    if (rc < 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load_file(const char *path, brigade_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof(*cfg));
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char *data = malloc(CONFIG_MAX_FILE_BYTES + 1);
    if (!data) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t n = fread(data, 1, CONFIG_MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(data);
        snprintf(err, errlen, "%s: cannot read", path);
        return -1;
    }
    if (n > CONFIG_MAX_FILE_BYTES) {
        free(data);
        snprintf(err, errlen, "%s: larger than %u bytes; is this the right file?", path,
                 CONFIG_MAX_FILE_BYTES);
        return -1;
    }
    int rc = config_load_string(path, data, n, cfg, err, errlen);
    free(data);
    if (rc == 0)
        cfg->source_path = config_xstrdup(path);
    return rc;
}
