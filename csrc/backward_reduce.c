/*
 * backward_reduce.c -- backward rules of the reductions, scans and softmax
 * (reduce.c).  A reduction's gradient is broadcast back over the reduced
 * axes: pf_unreduce puts the reduced axes back as size 1 (when keepdims was
 * false), and broadcasting in the elementwise op that follows does the rest.
 *
 * Every rule is written with forward ops, so under create_graph the rule
 * records its own graph and second derivatives need nothing more.  Where a
 * formula would divide by an element that may be zero (prod, cumprod) or
 * by a result that may be zero (std, norm), the division is made safe with
 * a where() on both sides: a NaN in the branch where() does not pick would
 * otherwise come back as NaN in the second derivative.
 *
 * Choices at points where the derivative is not defined:
 *   max, min, norm(ord=+-inf)  ties share the gradient evenly (PyTorch's
 *                              amax/amin), so the sum over a group is g;
 *   norm(ord=2), std           0 where the result is 0 (PyTorch's subgradient);
 *   norm(ord=p)                0 at elements that are 0;
 *   norm(ord=0)                0 everywhere (a count is piecewise constant).
 */
#include "backward.h"
#include <math.h>

static const char *const names_dtype[] = {"x", "axis", "keepdims", "dtype", "out", NULL};
static const char *const names_plain[] = {"x", "axis", "keepdims", "out", NULL};
static const char *const names_var[] = {"x", "axis", "keepdims", "ddof", "correction",
                                        "unbiased", "out", NULL};
static const char *const names_norm[] = {"x", "ord", "axis", "keepdims", "p", "out", NULL};
static const char *const names_scan[] = {"x", "axis", "dtype", "out", NULL};
static const char *const names_softmax[] = {"x", "axis", "dtype", NULL};

#define E1(op, a) A_ew1(A, PF_OP_##op, (a))
#define E2(op, a, b) A_ew2(A, PF_OP_##op, (a), (b))
#define F(v) A_f(A, (v))
#define MUL(a, b) E2(MUL, a, b)
#define DIV(a, b) E2(DIV, a, b)
#define ADD(a, b) E2(ADD, a, b)
#define SUB(a, b) E2(SUB, a, b)
#define WHERE(c, a, b) A_ew3(A, PF_OP_WHERE, (c), (a), (b))

/* ------------------------------------------------------------ helpers */

/* The reduced-axes mask and keepdims of a reduction node, parsed from its saved call. */
static int reduced_axes(PfNode *n, const char *const *names, int axis_at, int keep_at,
                        int *mask, int *keepdims, PyObject **v)
{
    if (pf_node_args(n, names, 1, v) < 0) {
        return -1;
    }
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    if (pf_parse_axes(v[axis_at] ? v[axis_at] : Py_None, n->in_meta[0].ndim, op, mask) < 0 ||
        pf_parse_bool(v[keep_at], op, "keepdims", 0, keepdims) < 0) {
        return -1;
    }
    return 0;
}

/* The number of elements each output element of a reduction reads. */
static double reduced_count(const PfNode *n, const int *mask)
{
    double count = 1;
    for (int i = 0; i < n->in_meta[0].ndim; i++) {
        count *= mask[i] ? (double)n->in_meta[0].shape[i] : 1.0;
    }
    return count;
}

/* op(x, axis=<the axes in mask>, keepdims=True) */
static PyObject *reduce_keep(pf_arena *A, pf_op op, PyObject *x, const int *mask, int ndim)
{
    if (x == NULL) {
        return NULL;
    }
    if (op == PF_OP_SUM) {
        return pf_keep(A, pf_sum_axes(x, mask, ndim, 1));
    }
    int cnt = 0;
    for (int i = 0; i < ndim; i++) {
        cnt += mask[i] != 0;
    }
    PyObject *axes = pf_keep(A, PyTuple_New(cnt));
    for (int i = 0, k = 0; axes != NULL && i < ndim; i++) {
        if (mask[i]) {
            PyTuple_SET_ITEM(axes, k++, PyLong_FromLong(i));
        }
    }
    if (axes == NULL) {
        return NULL;
    }
    return pf_keep(A, pf_call_kw(op, &x, 1, "axis", axes, "keepdims", Py_True));
}

static PyObject *unreduce(pf_arena *A, PyObject *g, const int *mask, const pf_meta *m, int keep)
{
    return g == NULL ? NULL : pf_keep(A, pf_unreduce(g, mask, m, keep));
}

/* True when some element of the bool tensor b is set, -1 on error. */
static int any_true(pf_arena *A, PyObject *b)
{
    if (b == NULL) {
        return -1;
    }
    PyObject *r = pf_keep(A, pf_call(PF_OP_ANY, &b, 1, NULL));
    return r == NULL ? -1 : PyObject_IsTrue(r);
}

/* v along axis `ax` in reverse order (a view, recorded as indexing). */
static PyObject *flip_axis(pf_arena *A, PyObject *v, int ax)
{
    if (v == NULL) {
        return NULL;
    }
    PyObject *key = pf_keep(A, PyTuple_New(ax + 1));
    PyObject *m1 = pf_keep(A, PyLong_FromLong(-1));
    if (key == NULL || m1 == NULL) {
        return NULL;
    }
    for (int i = 0; i <= ax; i++) {
        PyObject *s = PySlice_New(NULL, NULL, i == ax ? m1 : NULL);
        if (s == NULL) {
            A->err = 1;
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, s);
    }
    return pf_keep(A, PyObject_GetItem(v, key));
}

static PyObject *scan(pf_arena *A, pf_op op, PyObject *v, int ax)
{
    PyObject *axis = pf_keep(A, PyLong_FromLong(ax));
    if (v == NULL || axis == NULL) {
        return NULL;
    }
    return pf_keep(A, pf_call_kw(op, &v, 1, "axis", axis, NULL, NULL));
}

/* r[k] = sum of v[i] for i >= k along axis ax: a cumsum of the reversed axis, reversed */
static PyObject *rev_cumsum(pf_arena *A, PyObject *v, int ax)
{
    return flip_axis(A, scan(A, PF_OP_CUMSUM, flip_axis(A, v, ax), ax), ax);
}

/* x with its zeros replaced by 1: a denominator that is safe where x is 0 */
static PyObject *nonzero_or_one(pf_arena *A, PyObject *x, PyObject *is_zero)
{
    return WHERE(is_zero, F(1.0), x);
}

/* ------------------------------------------------------------ sum, mean */

/* sum: the gradient, broadcast back over the reduced axes */
static int bw_sum(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep;
    PyObject *v[8];
    int rc = -1;
    if (reduced_axes(n, names_dtype, 1, 2, mask, &keep, v) == 0) {
        PyObject *g = unreduce(A, gout[0], mask, &n->in_meta[0], keep);
        /* materialise the broadcast: the engine expects the input's shape or a broadcast of it */
        PyObject *z = g ? pf_keep(A, pf_zeros_meta(&n->in_meta[0])) : NULL;
        rc = pf_arena_out(A, gin, 0, ADD(z, g));
    }
    pf_arena_free(A);
    return rc;
}

/* mean: the sum's gradient divided by the number of elements reduced */
static int bw_mean(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep;
    PyObject *v[8];
    int rc = -1;
    if (reduced_axes(n, names_dtype, 1, 2, mask, &keep, v) == 0) {
        double count = reduced_count(n, mask);
        PyObject *g = unreduce(A, gout[0], mask, &n->in_meta[0], keep);
        PyObject *z = g ? pf_keep(A, pf_zeros_meta(&n->in_meta[0])) : NULL;
        rc = pf_arena_out(A, gin, 0, ADD(z, DIV(g, F(count))));
    }
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ prod */

/*
 * d prod / d x_i is the product of the other elements of x_i's group.
 * Without zeros that is prod / x_i.  With zeros, per group of the
 * reduction, with nz its number of zeros, p the product of its nonzero
 * elements and c the sum of its zero elements:
 *     nz == 0:  p / x_i
 *     nz == 1:  p at the zero, c p / x_i elsewhere
 *     nz == 2:  (c - x_i) p at the zeros, 0 elsewhere
 *     nz >= 3:  0
 * c is 0 in value, but its derivative is 1 with respect to each zero, so
 * that the second derivatives come out right: d^2 prod / dx_i dx_zero =
 * p / x_i with one zero, and p between the two zeros of a pair (c - x_i is
 * the other zero).  Each branch equals the true gradient as a function
 * near the point (masks held fixed) up to terms with two zero factors,
 * whose value and first derivatives vanish: the first and second
 * derivatives are exact for any number of zeros.
 */
static int bw_prod(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep, rc = -1;
    PyObject *v[8];
    const pf_meta *m = &n->in_meta[0];
    if (reduced_axes(n, names_dtype, 1, 2, mask, &keep, v) < 0) {
        goto done;
    }
    PyObject *x = pf_keep(A, pf_node_input(n, 0));
    PyObject *g = unreduce(A, gout[0], mask, m, keep);
    PyObject *is_zero = E2(EQ, x, F(0.0));
    int zeros = any_true(A, is_zero);
    if (zeros < 0) {
        goto done;
    }
    PyObject *r;
    if (!zeros) {
        PyObject *y = unreduce(A, pf_keep(A, pf_node_output(n, 0)), mask, m, keep);
        r = MUL(g, DIV(y, x));
    }
    else {
        PyObject *nz = reduce_keep(A, PF_OP_SUM, is_zero, mask, m->ndim);
        PyObject *xs = nonzero_or_one(A, x, is_zero);
        PyObject *others = DIV(reduce_keep(A, PF_OP_PROD, xs, mask, m->ndim), xs);
        PyObject *c = reduce_keep(A, PF_OP_SUM, WHERE(is_zero, x, F(0.0)), mask, m->ndim);
        PyObject *one_zero = WHERE(is_zero, others, MUL(c, others));
        PyObject *two_zeros = WHERE(is_zero, MUL(SUB(c, x), others), F(0.0));
        PyObject *d = WHERE(E2(EQ, nz, F(0.0)), others,
                            WHERE(E2(EQ, nz, F(1.0)), one_zero,
                                  WHERE(E2(EQ, nz, F(2.0)), two_zeros, F(0.0))));
        r = MUL(g, d);
    }
    rc = pf_arena_out(A, gin, 0, r);
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ max, min */

/*
 * max / min (amax / amin): the gradient goes to the elements equal to the
 * result; k tied elements each get 1/k of it (PyTorch's amax/amin), so the
 * gradient stays a valid subgradient and its sum over a group is g.
 */
static int bw_extreme(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep, rc = -1;
    PyObject *v[8];
    const pf_meta *m = &n->in_meta[0];
    if (reduced_axes(n, names_plain, 1, 2, mask, &keep, v) == 0) {
        PyObject *x = pf_keep(A, pf_node_input(n, 0));
        PyObject *y = unreduce(A, pf_keep(A, pf_node_output(n, 0)), mask, m, keep);
        PyObject *g = unreduce(A, gout[0], mask, m, keep);
        PyObject *hit = E2(EQ, x, y);
        PyObject *count = reduce_keep(A, PF_OP_SUM, hit, mask, m->ndim);
        rc = pf_arena_out(A, gin, 0, WHERE(hit, DIV(g, count), F(0.0)));
    }
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ var, std */

/* The divisor of var / std: max(n - ddof, 0), ddof from ddof=, correction= or unbiased=. */
static int var_divisor(PfNode *n, PyObject **v, const int *mask, double *dof)
{
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    double ddof = 0;
    PyObject *o = v[3] != NULL && v[3] != Py_None ? v[3] : v[4];
    if (v[5] != NULL && v[5] != Py_None) {
        int u;
        if (pf_parse_bool(v[5], op, "unbiased", 0, &u) < 0) {
            return -1;
        }
        ddof = u;
    }
    else if (o != NULL && o != Py_None && pf_double_arg(o, op, "ddof", &ddof) < 0) {
        return -1;
    }
    double d = reduced_count(n, mask) - ddof;
    *dof = d > 0 ? d : 0.0;
    return 0;
}

/*
 * var = sum((x - mean)^2) / dof:  d/dx_i = 2 (x_i - mean) / dof (the mean's own
 * derivative cancels in the sum).  std = sqrt(var):  (x_i - mean) / (dof std),
 * 0 where std is 0.  Both are the exact functions of x, so the mean is
 * recomputed with a recorded op for the second derivative.
 */
static int bw_var_std(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep, rc = -1;
    PyObject *v[8];
    double dof;
    const pf_meta *m = &n->in_meta[0];
    if (reduced_axes(n, names_var, 1, 2, mask, &keep, v) < 0 || var_divisor(n, v, mask, &dof) < 0) {
        goto done;
    }
    PyObject *x = pf_keep(A, pf_node_input(n, 0));
    PyObject *g = unreduce(A, gout[0], mask, m, keep);
    PyObject *dev = SUB(x, reduce_keep(A, PF_OP_MEAN, x, mask, m->ndim));
    PyObject *r;
    if (n->kind == PF_OP_VAR) {
        r = MUL(g, MUL(dev, F(2.0 / dof)));
    }
    else {
        PyObject *y = unreduce(A, pf_keep(A, pf_node_output(n, 0)), mask, m, keep);
        PyObject *is_zero = E2(EQ, y, F(0.0));
        PyObject *den = MUL(nonzero_or_one(A, y, is_zero), F(dof));
        r = WHERE(is_zero, F(0.0), MUL(g, DIV(dev, den)));
    }
    rc = pf_arena_out(A, gin, 0, r);
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ logsumexp */

/* d/dx_i logsumexp(x) = exp(x_i - logsumexp(x)): the softmax */
static int bw_logsumexp(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep, rc = -1;
    PyObject *v[8];
    const pf_meta *m = &n->in_meta[0];
    if (reduced_axes(n, names_plain, 1, 2, mask, &keep, v) == 0) {
        PyObject *x = pf_keep(A, pf_node_input(n, 0));
        PyObject *y = unreduce(A, pf_keep(A, pf_node_output(n, 0)), mask, m, keep);
        PyObject *g = unreduce(A, gout[0], mask, m, keep);
        rc = pf_arena_out(A, gin, 0, MUL(g, E1(EXP, SUB(x, y))));
    }
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ norm */

/* The order of a norm call, as reduce.c reads it: None and 'fro' are 2. */
static int norm_order(PyObject **v, double *p)
{
    PyObject *o = v[1] != NULL ? v[1] : v[4];
    *p = 2.0;
    if (o == NULL || o == Py_None || PyUnicode_Check(o)) {
        return 0;   /* the forward accepted only 'fro' among strings */
    }
    return pf_double_arg(o, "norm", "ord", p);
}

/*
 * Vector norms over the reduced axes, y = (sum |x|^p)^(1/p):
 *   p = 2     x / y                      (0 where y = 0)
 *   p = 1     sign(x)
 *   p = +-inf sign(x) at the elements with |x| = y, shared evenly by ties
 *   p = 0     0 (a count of nonzeros)
 *   other p   sign(x) |x|^(p-1) / y^(p-1) (0 at x = 0 and where y = 0)
 */
static int bw_norm(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    int mask[PF_MAX_DIMS], keep, rc = -1;
    PyObject *v[8];
    double p;
    const pf_meta *m = &n->in_meta[0];
    if (reduced_axes(n, names_norm, 2, 3, mask, &keep, v) < 0 || norm_order(v, &p) < 0) {
        goto done;
    }
    PyObject *x = pf_keep(A, pf_node_input(n, 0));
    PyObject *y = unreduce(A, pf_keep(A, pf_node_output(n, 0)), mask, m, keep);
    PyObject *g = unreduce(A, gout[0], mask, m, keep);
    PyObject *r;
    if (p == 0) {
        r = A_zeros_like(A, x);
    }
    else if (p == 1) {
        r = MUL(g, E1(SIGN, x));
    }
    else if (isinf(p)) {
        PyObject *hit = E2(EQ, E1(ABS, x), y);
        PyObject *count = reduce_keep(A, PF_OP_SUM, hit, mask, m->ndim);
        r = WHERE(hit, DIV(MUL(g, E1(SIGN, x)), count), F(0.0));
    }
    else {
        PyObject *y_zero = E2(EQ, y, F(0.0));
        PyObject *ys = nonzero_or_one(A, y, y_zero);
        PyObject *d;
        if (p == 2) {
            d = DIV(x, ys);
        }
        else {
            PyObject *ax = E1(ABS, x);
            PyObject *axs = nonzero_or_one(A, ax, E2(EQ, x, F(0.0)));
            PyObject *num = MUL(E1(SIGN, x), E2(POW, axs, F(p - 1)));
            d = DIV(num, E2(POW, ys, F(p - 1)));
        }
        r = WHERE(y_zero, F(0.0), MUL(g, d));
    }
    rc = pf_arena_out(A, gin, 0, r);
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ scans */

/* The scan axis of a cumsum/cumprod node; axis None (and a 0-d input) scans the flattened input. */
static int scan_axis(PfNode *n, PyObject **v, int *flat, int *ax)
{
    if (pf_node_args(n, names_scan, 1, v) < 0) {
        return -1;
    }
    const pf_meta *m = &n->in_meta[0];
    *flat = v[1] == NULL || v[1] == Py_None || m->ndim == 0;
    *ax = 0;
    if (!*flat) {
        int mask[PF_MAX_DIMS];
        char buf[128];
        if (pf_parse_axes(v[1], m->ndim, pf_node_name(n, buf, sizeof(buf)), mask) < 0) {
            return -1;
        }
        while (!mask[*ax]) {
            ++*ax;
        }
    }
    return 0;
}

/* cumsum: each x_k feeds the outputs at k and after it, so its gradient is a reversed cumsum of g */
static int bw_cumsum(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4];
    int flat, ax, rc = -1;
    const pf_meta *m = &n->in_meta[0];
    if (scan_axis(n, v, &flat, &ax) == 0) {
        PyObject *r = rev_cumsum(A, gout[0], ax);
        if (flat && r != NULL) {
            r = pf_keep(A, pf_reshape(r, m->shape, m->ndim));
        }
        rc = pf_arena_out(A, gin, 0, r);
    }
    pf_arena_free(A);
    return rc;
}

/*
 * cumprod, y_i = x_0 ... x_i:  d/dx_k = sum_{i >= k} g_i y_i / x_k  when x_k != 0.
 * With zeros, along each line with its first zeros at z1 < z2 and
 * c = x_z1 (0 in value, derivative 1):
 *     k < z1:        the formula above (x_k is not 0);
 *     k = z1:        sum_{i >= k} g_i y1_i, y1 the cumprod of x with x_z1 set to 1;
 *     k = z2:        c sum_{i >= k} g_i y2_i, y2 with x_z1 and x_z2 set to 1;
 *     other k > z1:  c sum_{i >= k} g_i y1_i / x_k (or / 1 at a third zero).
 * Each branch is the true gradient as a function near the point, up to
 * terms with two zero factors (value and first derivatives 0), so first
 * and second derivatives are exact for any number of zeros.
 */
static int bw_cumprod(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4];
    int flat, ax, rc = -1;
    const pf_meta *m = &n->in_meta[0];
    if (scan_axis(n, v, &flat, &ax) < 0) {
        goto done;
    }
    PyObject *x = pf_keep(A, pf_node_input(n, 0));
    if (flat && x != NULL) {
        int64_t numel = pf_numel(m->shape, m->ndim);
        x = pf_keep(A, pf_reshape(x, &numel, 1));
    }
    PyObject *g = gout[0];
    PyObject *y = pf_keep(A, pf_node_output(n, 0));
    PyObject *s = rev_cumsum(A, MUL(g, y), ax);
    PyObject *is_zero = E2(EQ, x, F(0.0));
    int zeros = any_true(A, is_zero);
    if (zeros < 0) {
        goto done;
    }
    PyObject *r;
    if (!zeros) {
        r = DIV(s, x);
    }
    else {
        PyObject *seen = scan(A, PF_OP_CUMSUM, is_zero, ax);   /* zeros up to k */
        PyObject *before = E2(EQ, seen, F(0.0));
        PyObject *first = E2(LOGICAL_AND, is_zero, E2(EQ, seen, F(1.0)));
        PyObject *second = E2(LOGICAL_AND, is_zero, E2(EQ, seen, F(2.0)));
        PyObject *xs = nonzero_or_one(A, x, is_zero);
        PyObject *x1 = WHERE(first, F(1.0), x);
        PyObject *s1 = rev_cumsum(A, MUL(g, scan(A, PF_OP_CUMPROD, x1, ax)), ax);
        PyObject *s2 = rev_cumsum(A, MUL(g, scan(A, PF_OP_CUMPROD, WHERE(second, F(1.0), x1), ax)),
                                  ax);
        int line[PF_MAX_DIMS] = {0};
        line[ax] = 1;
        PyObject *c = reduce_keep(A, PF_OP_SUM, WHERE(first, x, F(0.0)), line, flat ? 1 : m->ndim);
        r = WHERE(before, DIV(s, xs),
                  WHERE(first, s1, WHERE(second, MUL(c, s2), DIV(MUL(c, s1), xs))));
    }
    if (flat && r != NULL) {
        r = pf_keep(A, pf_reshape(r, m->shape, m->ndim));
    }
    rc = pf_arena_out(A, gin, 0, r);
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ softmax */

/* softmax: y (g - sum(g y));  log_softmax: g - exp(y) sum(g), sums along the softmax axis */
static int bw_softmax(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3];
    int mask[PF_MAX_DIMS], rc = -1;
    char buf[128];
    const pf_meta *m = &n->in_meta[0];
    if (pf_node_args(n, names_softmax, 1, v) < 0) {
        goto done;
    }
    PyObject *axis = v[1] != NULL ? v[1] : pf_keep(A, PyLong_FromLong(-1));
    if (axis == NULL || pf_parse_axes(axis, m->ndim, pf_node_name(n, buf, sizeof(buf)), mask) < 0) {
        goto done;
    }
    PyObject *g = gout[0];
    PyObject *y = pf_keep(A, pf_node_output(n, 0));
    PyObject *r;
    if (n->kind == PF_OP_SOFTMAX) {
        r = MUL(y, SUB(g, reduce_keep(A, PF_OP_SUM, MUL(g, y), mask, m->ndim)));
    }
    else {
        r = SUB(g, MUL(E1(EXP, y), reduce_keep(A, PF_OP_SUM, g, mask, m->ndim)));
    }
    rc = pf_arena_out(A, gin, 0, r);
done:
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_reduce_rules[PF_OP_COUNT] = {
    [PF_OP_SUM] = bw_sum,
    [PF_OP_MEAN] = bw_mean,
    [PF_OP_PROD] = bw_prod,
    [PF_OP_MAX] = bw_extreme,
    [PF_OP_MIN] = bw_extreme,
    [PF_OP_VAR] = bw_var_std,
    [PF_OP_STD] = bw_var_std,
    [PF_OP_LOGSUMEXP] = bw_logsumexp,
    [PF_OP_NORM] = bw_norm,
    [PF_OP_CUMSUM] = bw_cumsum,
    [PF_OP_CUMPROD] = bw_cumprod,
    [PF_OP_SOFTMAX] = bw_softmax,
    [PF_OP_LOG_SOFTMAX] = bw_softmax,
};
