/* serve_sync.h — the identity cache following other instances' changes
 * through the shared store's audit log (serve_sync.c). */
#ifndef BRIGADE_SERVE_SYNC_H
#define BRIGADE_SERVE_SYNC_H

#include "identity/identity.h"

typedef struct serve_sync serve_sync;

/* Start following (NULL, logged, if the thread cannot start). */
serve_sync *serve_sync_start(identity *id);
/* Stop and join; NULL is fine. */
void        serve_sync_stop(serve_sync *s);

#endif
