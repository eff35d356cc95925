/*
 * xalloc: allocation for resyncctl.  A CLI that runs out of memory has
 * nothing better to do than say so and stop (tmux's xmalloc), so these
 * never return NULL.  The library and the responder do not use them.
 */
#ifndef RS_XALLOC_H
#define RS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
