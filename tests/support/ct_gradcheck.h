/* Finite-difference gradient checker for ops and small models.
 *
 * Usage:
 *   static ct_tensor *build(ct_graph *g, ct_tensor **in, void *ctx) {
 *       return ct_relu(g, in[0]);           // any op chain; any output shape
 *   }
 *   ct_tensor *x = ct_gradcheck_input(1, (int64_t[]){4, 5}, 42); // random values
 *   char report[1024];
 *   int bad = ct_gradcheck(build, &x, 1, NULL, 1e-3, 1e-2, report, sizeof report);
 *   ck_assert_msg(bad == 0, "%s", report);
 *   ct_gradcheck_input_free(x);
 *
 * The checker copies each inputs[i] into a fresh leaf tensor that requires a
 * gradient (so the caller's tensors only give shapes and values), builds the
 * graph, and turns a non-scalar output into the scalar L = sum_k w_k out_k
 * with fixed pseudo-random weights w_k in [-1, 1] (so errors that a plain
 * sum would cancel, e.g. in softmax, still show). It compares the analytic
 * dL/dx with central differences (L accumulated in double), element by
 * element: an element fails when
 *     |analytic - numeric| > tol * max(1, |analytic|, |numeric|).
 * Every input is checked. Constants (labels, running statistics, frozen
 * weights) belong in ctx. build() runs 1 + 2 * (total input elements)
 * times, in training mode, on a graph that is reset before each run. */
#ifndef CT_GRADCHECK_H
#define CT_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <contrast/tensor.h>

typedef ct_tensor *(*ct_gradcheck_fn)(ct_graph *g, ct_tensor **inputs, void *ctx);

/* Returns 0 when every element matches, the number of mismatching elements
 * otherwise, or -1 when building or backward failed (graph error in report).
 * report (n bytes, may be NULL) gets a summary: the worst elements and the
 * largest error seen. */
int ct_gradcheck(ct_gradcheck_fn build, ct_tensor **inputs, int n_inputs, void *ctx, double eps,
                 double tol, char *report, size_t n);

/* A heap tensor (not in any graph) of the given shape filled with uniform
 * values in [-1, 1) from Philox stream `seed`; free with
 * ct_gradcheck_input_free. Handy for making checker inputs. */
ct_tensor *ct_gradcheck_input(int ndim, const int64_t *shape, uint64_t seed);
void ct_gradcheck_input_free(ct_tensor *t);

#endif
