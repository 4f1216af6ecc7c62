/* usage_shares.h — each tenant's part of the usage rows not yet committed.
 *
 * When the store's writer falls behind, the gate sheds new model calls
 * (store.h, STORE_USAGE_SHED_ROWS). Shedding every tenant alike would let
 * one tenant's flood refuse everybody's calls until the writer caught up:
 * a noisy neighbour turned into an outage. These counts let the gate shed
 * first the tenants that hold at least an even share of the rows waiting
 * (govern/gate.c). Both backends keep one: a row is added when it is
 * queued and settled when its commit is over, committed or not — exactly
 * the rows store_usage_backlog counts.
 *
 * Thread-safe (its own mutex). A tenant's entry goes when its count
 * reaches zero, so the table holds only tenants with rows waiting. */
#ifndef BRIGADE_USAGE_SHARES_H
#define BRIGADE_USAGE_SHARES_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct usage_shares usage_shares;

usage_shares *usage_shares_new(void);   /* aborts on out of memory */
void          usage_shares_free(usage_shares *s);

/* One row of tenant_id's queued. */
void usage_shares_add(usage_shares *s, const char *tenant_id);
/* n rows out of the queue (their commit is over). Rows of a tenant the
 * table does not hold are ignored. */
void usage_shares_settle(usage_shares *s, const usage_rec *rows, size_t n);
/* tenant_id's rows waiting; *tenants: how many tenants have rows waiting. */
uint64_t usage_shares_of(usage_shares *s, const char *tenant_id, size_t *tenants);

#endif
