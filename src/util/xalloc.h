/* xalloc.h — allocation that cannot fail: the wrappers brigade uses
 * wherever running out of memory leaves nothing sensible to do but stop.
 *
 * A server that keeps going after malloc returned NULL limps on with half
 * a state (a request answered without its body, a run without its record);
 * stopping at once, with a line that says why, is what an operator can act
 * on. Allocations whose size comes from the network are bounded before
 * they get here (body, header and field limits), so what reaches these
 * wrappers is the server's own working memory.
 *
 * `xnonnull` is for the few constructors of other libraries (libcurl,
 * cJSON) that return NULL only when they could not allocate. */
#ifndef BRIGADE_XALLOC_H
#define BRIGADE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* p, or stop the process ("out of memory: WHAT") when it is NULL. */
void *xnonnull_(void *p, const char *what);
#define xnonnull(p) xnonnull_((p), #p)

/* Stop the process: memory ran out at WHAT. */
_Noreturn void xalloc_die(const char *what);

#endif
