/* buf.h — a growable byte buffer, for building responses and bodies. */
#ifndef BRIGADE_BUF_H
#define BRIGADE_BUF_H

#include <stddef.h>

typedef struct buf {
    char  *data;
    size_t len;
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_reserve(buf *b, size_t extra);          /* aborts on OOM */
void buf_append(buf *b, const void *data, size_t n);
void buf_puts(buf *b, const char *s);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(buf *b, size_t n);              /* drop n bytes from the front */
char *buf_detach(buf *b);                        /* NUL-terminated, caller frees */
void buf_free(buf *b);

#endif
