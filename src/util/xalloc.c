/* xalloc.c — allocation that cannot fail (see xalloc.h). */
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void xalloc_die(const char *what)
{
    /* write(2), not the logger: the logger may itself need memory */
    static const char prefix[] = "brigade: out of memory: ";
    ssize_t ignored = write(STDERR_FILENO, prefix, sizeof prefix - 1);
    ignored = write(STDERR_FILENO, what, strlen(what));
    ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) xalloc_die("malloc");
    return p;
}

void *xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) xalloc_die("calloc");
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) xalloc_die("realloc");
    return q;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) xalloc_die("strdup");
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (!p) xalloc_die("strndup");
    return p;
}

void *xnonnull_(void *p, const char *what)
{
    if (!p) xalloc_die(what);
    return p;
}
