/* config_egress.c — the top-level `egress:` section: `allow_networks`, the
 * operator's list of networks (CIDR, or one address) that every request
 * made for an agent may reach although they are private — an internal API
 * gateway's subnet, say. Unlike a tool's `allow_private_networks`, it
 * applies to tenants' own tools too. docs/egress.md says what else egress
 * refuses; docs/config.md documents the key. */
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_load.h"

#define EGRESS_MAX_ALLOW_NETWORKS 256

enum { EG_ALLOW_NETWORKS, EG__N };

int ld_egress(ld *l, struct fy_node *n, int line)
{
    slot s[EG__N] = {[EG_ALLOW_NETWORKS] = {.key = "allow_networks"}};
    if (ld_collect(l, n, line, "egress", s, EG__N) < 0)
        return -1;
    if (!s[EG_ALLOW_NETWORKS].present)
        return 0;
    const char *path = "egress.allow_networks";
    size_t count = 0;
    if (ld_sequence(l, s[EG_ALLOW_NETWORKS].val, s[EG_ALLOW_NETWORKS].line, path, &count, 1) < 0)
        return -1;
    if (count > EGRESS_MAX_ALLOW_NETWORKS)
        return ld_fail(l, s[EG_ALLOW_NETWORKS].line, path, "at most %d networks", EGRESS_MAX_ALLOW_NETWORKS);
    brigade_config *cfg = l->cfg;
    free(cfg->egress_allow_nets);
    cfg->egress_allow_nets = config_xcalloc(count ? count : 1, sizeof(egress_net));
    cfg->n_egress_allow_nets = 0;
    void *it = NULL;
    struct fy_node *item;
    char kp[96];
    while (cfg->n_egress_allow_nets < count &&
           (item = fy_node_sequence_iterate(s[EG_ALLOW_NETWORKS].val, &it)) != NULL) {
        snprintf(kp, sizeof(kp), "%s[%zu]", path, cfg->n_egress_allow_nets);
        slot is = {.key = path, .val = item, .line = config_node_line(item, line), .present = 1};
        const char *txt;
        size_t len;
        if (ld_scalar(l, &is, kp, "a network such as 10.1.0.0/16", &txt, &len) < 0)
            return -1;
        char text[80], why[160];
        if (len >= sizeof(text))
            return ld_fail(l, is.line, kp, "too long for a network");
        memcpy(text, txt, len);
        text[len] = '\0';
        if (!egress_net_parse(text, &cfg->egress_allow_nets[cfg->n_egress_allow_nets], why, sizeof(why)))
            return ld_fail(l, is.line, kp, "%s", why);
        cfg->n_egress_allow_nets++;
    }
    return 0;
}
