/* governance.c — the runs' side of governance: who a run's user is for
 * the gate (tier, and the limit overrides identity caches for the user,
 * the key and the tenant). The model call itself is a metered call
 * (govern/call.h, made by model.c), the concurrent-runs count is in
 * exec.c; the rules are govern/gate.h's. */
#include "runs/runs_internal.h"

#include <string.h>

void runs_gate_who(runs *r, const scope *sc, runs_who *out)
{
    memset(out, 0, sizeof *out);
    if (r->identity) identity_limits(r->identity, sc, &out->lim[0], &out->lim[1], &out->lim[2]);
    else
        for (int i = 0; i < 3; i++) out->lim[i] = (user_limits){-1, -1, -1, -1, -1};
    out->who.tenant_id = sc->tenant_id;
    out->who.user_id = sc->user_id;
    out->who.key_id = sc->key_id;
    out->who.tier = sc->tier;
    out->who.user = &out->lim[0];
    out->who.key = &out->lim[1];
    out->who.tenant = &out->lim[2];
}
