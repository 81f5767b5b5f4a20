/* Notes of a graph (internal): one line on stderr the first time an op of
 * this graph meets a given situation worth knowing about, never again for
 * the same text on the same graph (a graph lives for a whole run: resets
 * keep its notes). Used by the conv ops to say which op and shape took a
 * generic (slow) loop instead of a fast path, so no shape is silently slow. */
#ifndef CT_GRAPH_GRAPH_NOTE_H
#define CT_GRAPH_GRAPH_NOTE_H

#include <stdbool.h>

#include "contrast/tensor.h"

/* Print "contrast: note: <text>" to stderr unless g has said this text
 * before (at most 64 distinct notes per graph). True when it printed.
 * Call from the thread that records ops (not from pool workers). */
bool ct__graph_note(ct_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
