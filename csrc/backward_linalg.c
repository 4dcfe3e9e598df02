/*
 * backward_linalg.c -- backward rules of the products (linalg.c): matmul,
 * mm, bmm, dot, outer, tensordot and einsum.
 *
 * The gradient of a product with respect to one operand is a product of
 * the output gradient with the other operand, so every rule here is one
 * or two calls of the same family of ops (recorded under create_graph:
 * the second derivative of a product is again a product).  The engine
 * sums a gradient over broadcast batch dimensions and casts it to the
 * operand's dtype, so the rules may return the broadcast shape.
 *
 * Operands that were not tensors (lists, arrays, scalars) have no input
 * slot and need no gradient, but the other operand's gradient reads their
 * value: they are converted again from the saved call.
 */
#include "backward.h"

/* --------------------------------------------------------------- operands */

/*
 * The operands of a saved call, in the order of `names`, with the input
 * slot of each (-1: not a tensor).  Slots are numbered as pf_ag_custom_call
 * numbers them: the tensors of the call in argument order, positional
 * arguments first, then keywords in the order given.
 */
static int operand_slots(PfNode *n, const char *const *names, int count, int *slots)
{
    Py_ssize_t nkw = n->kwnames ? PyTuple_GET_SIZE(n->kwnames) : 0;
    Py_ssize_t total = PyTuple_GET_SIZE(n->args), npos = total - nkw;
    int s = 0;
    for (int k = 0; k < count; k++) {
        slots[k] = -1;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *a = PyTuple_GET_ITEM(n->args, i);
        int which = -1;
        if (i < npos) {
            which = (int)i;
        }
        else {
            const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(n->kwnames, i - npos));
            if (key == NULL) {
                return -1;
            }
            for (int k = 0; names[k] != NULL; k++) {
                if (strcmp(key, names[k]) == 0) {
                    which = k;
                }
            }
        }
        if (PfTensor_Check(a)) {
            if (which >= 0 && which < count) {
                slots[which] = s;
            }
            s++;
        }
        else if (PyTuple_Check(a)) {
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(a); j++) {
                s += PfTensor_Check(PyTuple_GET_ITEM(a, j));
            }
        }
    }
    return 0;
}

/* The value of an operand: its saved input, or the saved argument converted to a tensor. */
static PyObject *operand(pf_arena *A, PfNode *n, PyObject *arg, int slot)
{
    if (slot >= 0) {
        return pf_keep(A, pf_node_input(n, slot));
    }
    char buf[128];
    return pf_keep(A, (PyObject *)pf_as_tensor_arg(arg, pf_node_name(n, buf, sizeof(buf))));
}

static int ndim_of(PyObject *t)
{
    return ((PfTensor *)t)->ndim;
}

static const int64_t *shape_of(PyObject *t)
{
    return ((PfTensor *)t)->shape;
}

static int wants(PfNode *n, int slot)
{
    return slot >= 0 && pf_bw_wants(n, slot);
}

/* Hand a gradient to a slot; a slot of -1 (not a tensor) takes nothing. */
static int give(pf_arena *A, PyObject **gin, int slot, PyObject *g)
{
    return pf_arena_out(A, gin, slot < 0 ? 0 : slot, slot < 0 ? NULL : g);
}

static PyObject *reshape_to(pf_arena *A, PyObject *t, const int64_t *shape, int ndim)
{
    return t == NULL ? NULL : pf_keep(A, pf_reshape(t, shape, ndim));
}

/* t with its last two dimensions swapped */
static PyObject *swap_last(pf_arena *A, PyObject *t)
{
    if (t == NULL) {
        return NULL;
    }
    int nd = ndim_of(t), perm[PF_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        perm[i] = i;
    }
    perm[nd - 2] = nd - 1;
    perm[nd - 1] = nd - 2;
    return pf_keep(A, pf_permute(t, perm, nd));
}

static PyObject *matmul(pf_arena *A, PyObject *a, PyObject *b)
{
    if (a == NULL || b == NULL) {
        return NULL;
    }
    PyObject *args[2] = {a, b};
    return pf_keep(A, pf_call(PF_OP_MATMUL, args, 2, NULL));
}

static PyObject *int_tuple(pf_arena *A, const int *v, int n)
{
    PyObject *t = pf_keep(A, PyTuple_New(n));
    for (int i = 0; t != NULL && i < n; i++) {
        PyTuple_SET_ITEM(t, i, PyLong_FromLong(v[i]));
    }
    return t;
}

static PyObject *axes_pair(pf_arena *A, PyObject *x, PyObject *y)
{
    return x == NULL || y == NULL ? NULL : pf_keep(A, PyTuple_Pack(2, x, y));
}

/* ----------------------------------------------------------------- matmul */

/*
 * c = a @ b with NumPy's rules.  A 1-D a is a row (1, k) and a 1-D b a
 * column (k, 1) whose added dimension is dropped from c; with those
 * dimensions put back in g (and in the operands),
 *     ga = g @ b^T   (batch..., m, k)      gb = a^T @ g   (batch..., k, n)
 * and the added dimension is dropped again.  Broadcast batch dimensions
 * are summed by the engine.
 */
static int matmul_grads(pf_arena *A, PyObject *g, PyObject *a, PyObject *b, int wa, int wb,
                        PyObject **ga, PyObject **gb)
{
    int na = ndim_of(a), nb = ndim_of(b), ng = ndim_of(g);
    int64_t k = shape_of(a)[na - 1];
    int64_t shape[PF_MAX_DIMS + 2];
    PyObject *a2 = a, *b2 = b, *g2 = g;
    if (na == 1) {
        int64_t s[2] = {1, k};
        a2 = reshape_to(A, a, s, 2);
    }
    if (nb == 1) {
        int64_t s[2] = {k, 1};
        b2 = reshape_to(A, b, s, 2);
    }
    if (na == 1 || nb == 1) {
        /* g's shape with the dropped row and column dimensions put back */
        int nd = 0;
        for (int i = 0; i < ng - (nb == 1 ? 0 : 1); i++) {
            shape[nd++] = shape_of(g)[i];
        }
        if (na == 1) {
            shape[nd++] = 1;
        }
        if (nb != 1) {
            shape[nd++] = shape_of(g)[ng - 1];
        }
        else {
            shape[nd++] = 1;
        }
        g2 = reshape_to(A, g, shape, nd);
    }
    if (wa) {
        PyObject *r = matmul(A, g2, swap_last(A, b2));
        if (r != NULL && na == 1) {
            /* (batch..., 1, k) -> (batch..., k) */
            int nd = ndim_of(r);
            memcpy(shape, shape_of(r), sizeof(int64_t) * (size_t)nd);
            shape[nd - 2] = shape[nd - 1];
            r = reshape_to(A, r, shape, nd - 1);
        }
        *ga = r;
    }
    if (wb && nb == 2 && na > 2) {
        /*
         * A batched input times a 2-D weight (a linear layer on a sequence):
         * the weight's gradient is one GEMM over the flattened rows,
         * a(rows, k)^T g(rows, n), not a batch of GEMMs summed afterwards.
         */
        int64_t rows = 1;
        for (int i = 0; i < na - 1; i++) {
            rows *= shape_of(a)[i];
        }
        int64_t sa[2] = {rows, k}, sg[2] = {rows, shape_of(g)[ng - 1]};
        *gb = matmul(A, swap_last(A, reshape_to(A, a, sa, 2)), reshape_to(A, g, sg, 2));
    }
    else if (wb) {
        PyObject *r = matmul(A, swap_last(A, a2), g2);
        if (r != NULL && nb == 1) {
            /* (batch..., k, 1) -> (batch..., k) */
            r = reshape_to(A, r, shape_of(r), ndim_of(r) - 1);
        }
        *gb = r;
    }
    return A->err ? -1 : 0;
}

static const char *const names_ab[] = {"a", "b", "out", NULL};

/* matmul, mm, bmm (mm and bmm are matmuls of 2-D and 3-D operands) */
static int bw_matmul(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3], *ga = NULL, *gb = NULL;
    int slot[2], rc = -1;
    if (pf_node_args(n, names_ab, 2, v) < 0 || operand_slots(n, names_ab, 2, slot) < 0) {
        goto done;
    }
    int wa = wants(n, slot[0]), wb = wants(n, slot[1]);
    PyObject *a = operand(A, n, v[0], slot[0]), *b = operand(A, n, v[1], slot[1]);
    if (a == NULL || b == NULL || matmul_grads(A, gout[0], a, b, wa, wb, &ga, &gb) < 0) {
        goto done;
    }
    rc = give(A, gin, slot[0], ga);
    if (rc == 0) {
        rc = give(A, gin, slot[1], gb);
    }
done:
    pf_arena_free(A);
    return rc;
}

/* -------------------------------------------------------------- tensordot */

/*
 * c = tensordot(a, b, (ia, ib)): c has a's free axes, then b's.  Then
 *     ga = tensordot(g, b, (g's b-part, b's free axes))
 * has a's free axes, then b's summed axes in b's order, each standing for
 * the axis of a it was paired with; a permutation puts them in a's order.
 * gb likewise, from tensordot(a, g, (a's free axes, g's a-part)).
 */
static int tensordot_grads(pf_arena *A, PyObject *g, PyObject *a, PyObject *b, const int *ia,
                           const int *ib, int cnt, int wa, int wb, PyObject **ga, PyObject **gb)
{
    int na = ndim_of(a), nb = ndim_of(b);
    int summed_a[PF_MAX_DIMS] = {0}, summed_b[PF_MAX_DIMS] = {0};
    int free_a[PF_MAX_DIMS], free_b[PF_MAX_DIMS], nfa = 0, nfb = 0;
    for (int i = 0; i < cnt; i++) {
        summed_a[ia[i]] = 1;
        summed_b[ib[i]] = 1;
    }
    for (int d = 0; d < na; d++) {
        if (!summed_a[d]) {
            free_a[nfa++] = d;
        }
    }
    for (int d = 0; d < nb; d++) {
        if (!summed_b[d]) {
            free_b[nfb++] = d;
        }
    }
    /* the rank of ia[i] among ia, of ib[i] among ib: where a summed axis lands */
    int rank_a[PF_MAX_DIMS], rank_b[PF_MAX_DIMS];
    for (int i = 0; i < cnt; i++) {
        rank_a[i] = rank_b[i] = 0;
        for (int j = 0; j < cnt; j++) {
            rank_a[i] += ia[j] < ia[i];
            rank_b[i] += ib[j] < ib[i];
        }
    }
    int gpos[PF_MAX_DIMS], perm[PF_MAX_DIMS];
    if (wa) {
        for (int j = 0; j < nfb; j++) {
            gpos[j] = nfa + j;
        }
        PyObject *pair = axes_pair(A, int_tuple(A, gpos, nfb), int_tuple(A, free_b, nfb));
        PyObject *args[2] = {g, b};
        PyObject *t = pair ? pf_keep(A, pf_call_kw(PF_OP_TENSORDOT, args, 2, "axes", pair,
                                                   NULL, NULL)) : NULL;
        for (int d = 0, f = 0; d < na; d++) {
            if (!summed_a[d]) {
                perm[d] = f++;
            }
        }
        for (int i = 0; i < cnt; i++) {
            perm[ia[i]] = nfa + rank_b[i];
        }
        *ga = t ? pf_keep(A, pf_permute(t, perm, na)) : NULL;
    }
    if (wb) {
        for (int j = 0; j < nfa; j++) {
            gpos[j] = j;
        }
        PyObject *pair = axes_pair(A, int_tuple(A, free_a, nfa), int_tuple(A, gpos, nfa));
        PyObject *args[2] = {a, g};
        PyObject *t = pair ? pf_keep(A, pf_call_kw(PF_OP_TENSORDOT, args, 2, "axes", pair,
                                                   NULL, NULL)) : NULL;
        for (int d = 0, f = 0; d < nb; d++) {
            if (!summed_b[d]) {
                perm[d] = cnt + f++;
            }
        }
        for (int i = 0; i < cnt; i++) {
            perm[ib[i]] = rank_a[i];
        }
        *gb = t ? pf_keep(A, pf_permute(t, perm, nb)) : NULL;
    }
    return A->err ? -1 : 0;
}

/* An int or a sequence of ints, as axes of a tensor of ndim dimensions (validated by the forward). */
static int axes_of(PyObject *o, int ndim, int *axes, int *cnt)
{
    PyObject *seq = PyIndex_Check(o) ? PyTuple_Pack(1, o) : PySequence_Tuple(o);
    if (seq == NULL) {
        return -1;
    }
    *cnt = (int)PyTuple_GET_SIZE(seq);
    for (int i = 0; i < *cnt; i++) {
        Py_ssize_t ax = PyNumber_AsSsize_t(PyTuple_GET_ITEM(seq, i), PyExc_OverflowError);
        if ((ax == -1 && PyErr_Occurred()) || pf_normalize_axis(&ax, ndim, "tensordot") < 0) {
            Py_DECREF(seq);
            return -1;
        }
        axes[i] = (int)ax;
    }
    Py_DECREF(seq);
    return 0;
}

static int bw_tensordot(PfNode *n, PyObject **gout, PyObject **gin)
{
    static const char *const names[] = {"a", "b", "axes", "dims", NULL};
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4], *ga = NULL, *gb = NULL;
    int slot[2], ia[PF_MAX_DIMS], ib[PF_MAX_DIMS], cnt = 0, rc = -1;
    if (pf_node_args(n, names, 2, v) < 0 || operand_slots(n, names, 2, slot) < 0) {
        goto done;
    }
    PyObject *a = operand(A, n, v[0], slot[0]), *b = operand(A, n, v[1], slot[1]);
    if (a == NULL || b == NULL) {
        goto done;
    }
    PyObject *axes = v[2] != NULL ? v[2] : v[3];
    if (axes == NULL || PyIndex_Check(axes)) {
        Py_ssize_t c = axes == NULL ? 2 : PyNumber_AsSsize_t(axes, PyExc_OverflowError);
        if (c == -1 && PyErr_Occurred()) {
            goto done;
        }
        cnt = (int)c;
        for (int i = 0; i < cnt; i++) {
            ia[i] = ndim_of(a) - cnt + i;
            ib[i] = i;
        }
    }
    else {
        int cb;
        PyObject *pair = PySequence_Tuple(axes);
        if (pair == NULL) {
            goto done;
        }
        int r = axes_of(PyTuple_GET_ITEM(pair, 0), ndim_of(a), ia, &cnt);
        if (r == 0) {
            r = axes_of(PyTuple_GET_ITEM(pair, 1), ndim_of(b), ib, &cb);
        }
        Py_DECREF(pair);
        if (r < 0) {
            goto done;
        }
    }
    if (tensordot_grads(A, gout[0], a, b, ia, ib, cnt, wants(n, slot[0]), wants(n, slot[1]), &ga,
                        &gb) < 0) {
        goto done;
    }
    rc = give(A, gin, slot[0], ga);
    if (rc == 0) {
        rc = give(A, gin, slot[1], gb);
    }
done:
    pf_arena_free(A);
    return rc;
}

/* --------------------------------------------------------------- dot, outer */

/* dot as NumPy: a product with a 0-d operand, a matmul when b has at most 2 dimensions, else
   a tensordot of a's last axis with b's second-to-last */
static int bw_dot(PfNode *n, PyObject **gout, PyObject **gin)
{
    static const char *const names[] = {"a", "b", NULL};
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[2], *ga = NULL, *gb = NULL, *g = gout[0];
    int slot[2], rc = -1;
    if (pf_node_args(n, names, 2, v) < 0 || operand_slots(n, names, 2, slot) < 0) {
        goto done;
    }
    int wa = wants(n, slot[0]), wb = wants(n, slot[1]);
    PyObject *a = operand(A, n, v[0], slot[0]), *b = operand(A, n, v[1], slot[1]);
    if (a == NULL || b == NULL) {
        goto done;
    }
    int na = ndim_of(a), nb = ndim_of(b);
    if (na == 0 || nb == 0) {
        ga = wa ? A_ew2(A, PF_OP_MUL, g, b) : NULL;
        gb = wb ? A_ew2(A, PF_OP_MUL, g, a) : NULL;
    }
    else if (nb <= 2) {
        matmul_grads(A, g, a, b, wa, wb, &ga, &gb);
    }
    else {
        int ia = na - 1, ib = nb - 2;
        tensordot_grads(A, g, a, b, &ia, &ib, 1, wa, wb, &ga, &gb);
    }
    if (A->err) {
        goto done;
    }
    rc = give(A, gin, slot[0], ga);
    if (rc == 0) {
        rc = give(A, gin, slot[1], gb);
    }
done:
    pf_arena_free(A);
    return rc;
}

/* outer(a, b) = a.ravel()[:, None] * b.ravel()[None, :]:  ga = g @ b,  gb = a @ g (raveled) */
static int bw_outer(PfNode *n, PyObject **gout, PyObject **gin)
{
    static const char *const names[] = {"a", "b", NULL};
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[2], *ga = NULL, *gb = NULL, *g = gout[0];
    int slot[2], rc = -1;
    if (pf_node_args(n, names, 2, v) < 0 || operand_slots(n, names, 2, slot) < 0) {
        goto done;
    }
    PyObject *a = operand(A, n, v[0], slot[0]), *b = operand(A, n, v[1], slot[1]);
    if (a == NULL || b == NULL) {
        goto done;
    }
    int64_t ma = pf_numel(shape_of(a), ndim_of(a)), mb = pf_numel(shape_of(b), ndim_of(b));
    if (wants(n, slot[0])) {
        ga = reshape_to(A, matmul(A, g, reshape_to(A, b, &mb, 1)), shape_of(a), ndim_of(a));
    }
    if (wants(n, slot[1])) {
        gb = reshape_to(A, matmul(A, reshape_to(A, a, &ma, 1), g), shape_of(b), ndim_of(b));
    }
    rc = give(A, gin, slot[0], ga);
    if (rc == 0) {
        rc = give(A, gin, slot[1], gb);
    }
done:
    pf_arena_free(A);
    return rc;
}

/* ----------------------------------------------------------------- einsum */

#define EIN_MAX_OPS 32
#define EIN_TERM (PF_MAX_DIMS + 1)

/* One term of the subscripts: its letters, and where '...' sits (-1: nowhere). */
typedef struct {
    int n;
    char lab[PF_MAX_DIMS];
    int ell;
} ein_term;

/*
 * Split subscripts (already validated by the forward) into the operands'
 * terms and the output term (has_out 0: NumPy's implicit output).
 */
static int ein_parse(const char *s, ein_term *in, int *nterms, ein_term *out, int *has_out)
{
    ein_term *cur = &in[0];
    memset(in, 0, sizeof(ein_term) * EIN_MAX_OPS);
    memset(out, 0, sizeof(*out));
    in[0].ell = out->ell = -1;
    *nterms = 1;
    *has_out = 0;
    for (const char *c = s; *c; c++) {
        if (*c == ' ') {
            continue;
        }
        if (*c == ',') {
            if (*nterms == EIN_MAX_OPS) {
                return -1;
            }
            cur = &in[(*nterms)++];
            cur->ell = -1;
        }
        else if (*c == '-') {
            *has_out = 1;
            cur = out;
            c++;
        }
        else if (*c == '.') {
            cur->ell = cur->n;
            c += 2;
        }
        else if (cur->n < PF_MAX_DIMS) {
            cur->lab[cur->n++] = *c;
        }
    }
    return 0;
}

/* Letters not used by the subscripts, handed out for '...' dimensions and repeated letters. */
typedef struct {
    char used[128];
} ein_letters;

static char ein_fresh(ein_letters *L)
{
    for (int c = 'A'; c <= 'z'; c++) {
        if ((c <= 'Z' || c >= 'a') && !L->used[c]) {
            L->used[c] = 1;
            return (char)c;
        }
    }
    return 0;
}

/* A term with its '...' spelled out as the letters of its last q of the E broadcast dimensions. */
static int ein_expand(const ein_term *t, int q, int E, const char *ell, char *dst)
{
    int k = 0;
    for (int i = 0; i <= t->n; i++) {
        if (i == t->ell) {
            for (int e = 0; e < q; e++) {
                dst[k++] = ell[E - q + e];
            }
        }
        if (i < t->n) {
            dst[k++] = t->lab[i];
        }
    }
    dst[k] = 0;
    return k;
}

/* A constant of g's dtype: ones(size), or eye(size) when `eye` (filled through a flat view) */
static PyObject *ein_const(pf_arena *A, PyObject *g, int64_t size, int eye)
{
    pf_meta m = {0};
    m.ndim = eye ? 2 : 1;
    m.shape[0] = m.shape[1] = size;
    m.dtype = ((PfTensor *)g)->dtype;
    int64_t numel = eye ? size * size : size;
    PyObject *t = pf_keep(A, pf_zeros_meta(&m));
    PyObject *flat = reshape_to(A, t, &numel, 1);
    PyObject *one = pf_keep(A, PyFloat_FromDouble(1.0));
    PyObject *step = pf_keep(A, PyLong_FromLongLong(eye ? size + 1 : 1));
    PyObject *key = step ? pf_keep(A, PySlice_New(NULL, NULL, step)) : NULL;
    if (flat == NULL || one == NULL || key == NULL || PyObject_SetItem(flat, key, one) < 0) {
        A->err = 1;
        return NULL;
    }
    return t;
}

/*
 * out = einsum(S_0,...,S_n-1 -> O, x_0, ..., x_n-1).  The gradient of x_i
 * is the sum, over every letter not in S_i, of g times the other operands:
 *     gx_i = einsum(O, S_j (j != i) -> S_i, g, x_j ...)
 * with two repairs where S_i is not a plain set of letters:
 *   - a letter repeated in S_i ('ii->i', a diagonal): only the diagonal
 *     elements were read, so the gradient is zero off it.  The repeats get
 *     fresh letters tied to the first by an identity matrix operand
 *     ('i,ij->ij' for 'ii->i');
 *   - a letter of S_i found in no other term ('ij->', summed out): the
 *     gradient is constant along it, supplied by a ones operand.
 * '...' is spelled out with fresh letters, one per broadcast dimension.
 */
static int bw_einsum(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    ein_term in[EIN_MAX_OPS], out;
    int nops, has_out, rc = -1;
    PyObject *ops[EIN_MAX_OPS];
    int slot[EIN_MAX_OPS];
    char sub[EIN_MAX_OPS][EIN_TERM], osub[2 * PF_MAX_DIMS + 1];
    ein_letters L;
    memset(&L, 0, sizeof(L));
    if (n->released) {
        pf_node_args(n, NULL, 0, NULL);   /* raises: a backward freed the saved call */
        goto done;
    }
    PyObject *spec = PyTuple_GET_ITEM(n->args, 0);
    const char *s = PyUnicode_AsUTF8(spec);
    if (s == NULL || ein_parse(s, in, &nops, &out, &has_out) < 0) {
        goto done;
    }
    /* the operands: the arguments after the subscripts, or one list of them */
    Py_ssize_t nargs = PyTuple_GET_SIZE(n->args) - 1;
    PyObject *const *objs = &PyTuple_GET_ITEM(n->args, 1);
    if (nargs == 1 && PyTuple_Check(objs[0]) && PyTuple_GET_SIZE(objs[0]) > 0) {
        /* as the forward: one list (frozen to a tuple) of tensors holds the operands */
        PyObject *seq = objs[0];
        int all = 1;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(seq) && all; j++) {
            all = PfTensor_Check(PyTuple_GET_ITEM(seq, j));
        }
        if (all) {
            objs = &PyTuple_GET_ITEM(seq, 0);
            nargs = PyTuple_GET_SIZE(seq);
        }
    }
    if (nargs != nops) {
        PyErr_Format(PyExc_RuntimeError, "einsum backward: '%s' names %d operands but the "
                     "saved call has %zd (an internal error; please report it)", s, nops, nargs);
        goto done;
    }
    for (int i = 0, k = 0; i < nops; i++) {
        slot[i] = PfTensor_Check(objs[i]) ? k++ : -1;
        if ((ops[i] = operand(A, n, objs[i], slot[i])) == NULL) {
            goto done;
        }
    }
    /* letters: those of the subscripts, then fresh ones for the '...' dimensions */
    int count[128] = {0};
    for (const char *c = s; *c; c++) {
        L.used[(unsigned char)*c & 127] = 1;
    }
    for (int i = 0; i < nops; i++) {
        for (int d = 0; d < in[i].n; d++) {
            count[(int)in[i].lab[d]]++;
        }
    }
    int E = 0;
    for (int i = 0; i < nops; i++) {
        int q = ndim_of(ops[i]) - in[i].n;
        E = q > E ? q : E;
    }
    char ell[PF_MAX_DIMS];
    for (int e = 0; e < E; e++) {
        if ((ell[e] = ein_fresh(&L)) == 0) {
            goto letters;
        }
    }
    for (int i = 0; i < nops; i++) {
        ein_expand(&in[i], ndim_of(ops[i]) - in[i].n, E, ell, sub[i]);
    }
    if (has_out) {
        ein_expand(&out, out.ell >= 0 ? E : 0, E, ell, osub);
    }
    else {
        /* NumPy's implicit output: the '...' dimensions, then the letters used once, sorted */
        int k = 0;
        for (int e = 0; e < E; e++) {
            osub[k++] = ell[e];
        }
        for (int c = 'A'; c <= 'z'; c++) {
            if (count[c] == 1) {
                osub[k++] = (char)c;
            }
        }
        osub[k] = 0;
    }

    for (int i = 0; i < nops; i++) {
        if (!wants(n, slot[i])) {
            continue;
        }
        /* subscripts and operands of the gradient's einsum */
        /* room for: the output term, the other terms, a 3-letter term per repeat and a
           1-letter term per summed-out letter (at most one of the two per dimension) */
        char spec_i[4 * EIN_MAX_OPS * EIN_TERM], target[EIN_TERM];
        PyObject *args[2 * EIN_MAX_OPS + 2];
        int na = 1, len = 0;
        ein_letters Li = L;
        len += snprintf(spec_i + len, sizeof(spec_i) - (size_t)len, "%s", osub);
        args[na++] = gout[0];
        for (int j = 0; j < nops; j++) {
            if (j != i) {
                len += snprintf(spec_i + len, sizeof(spec_i) - (size_t)len, ",%s", sub[j]);
                args[na++] = ops[j];
            }
        }
        int nd = (int)strlen(sub[i]);
        const int64_t *shp = shape_of(ops[i]);
        for (int d = 0; d < nd; d++) {
            char c = sub[i][d];
            int first = 0;
            while (sub[i][first] != c) {
                first++;
            }
            target[d] = c;
            if (first < d) {
                /* a repeat: a fresh letter, equal to the first by an identity matrix */
                if ((target[d] = ein_fresh(&Li)) == 0) {
                    goto letters;
                }
                len += snprintf(spec_i + len, sizeof(spec_i) - (size_t)len, ",%c%c", c,
                                target[d]);
                args[na++] = ein_const(A, gout[0], shp[d], 1);
                continue;
            }
            /* a letter in no other term and not in the output: summed out of x_i alone */
            int elsewhere = strchr(osub, c) != NULL;
            for (int j = 0; j < nops && !elsewhere; j++) {
                elsewhere = j != i && strchr(sub[j], c) != NULL;
            }
            for (int e = d + 1; e < nd && !elsewhere; e++) {
                elsewhere = sub[i][e] == c;
            }
            if (!elsewhere) {
                len += snprintf(spec_i + len, sizeof(spec_i) - (size_t)len, ",%c", c);
                args[na++] = ein_const(A, gout[0], shp[d], 0);
            }
        }
        target[nd] = 0;
        if (na > EIN_MAX_OPS + 1) {
            PyErr_Format(PyExc_RuntimeError,
                         "einsum backward: the gradient of operand %d of '%s' needs an einsum of "
                         "%d operands, more than the %d einsum takes", i, s, na - 1,
                         EIN_MAX_OPS);
            goto done;
        }
        len += snprintf(spec_i + len, sizeof(spec_i) - (size_t)len, "->%s", target);
        for (int j = 1; j < na; j++) {
            if (args[j] == NULL) {
                goto done;
            }
        }
        if ((args[0] = pf_keep(A, PyUnicode_FromString(spec_i))) == NULL) {
            goto done;
        }
        PyObject *r = pf_keep(A, pf_call(PF_OP_EINSUM, args, na, NULL));
        /* x_i of size 1 along a letter the others broadcast, but summed out ('i,i->' with
           sizes 3 and 1): the gradient has size 1 there and is spread over x_i's size */
        int spread = 0;
        for (int d = 0; r != NULL && d < nd; d++) {
            spread |= shape_of(r)[d] == 1 && shp[d] != 1;
        }
        if (spread) {
            r = A_ew2(A, PF_OP_ADD, r, pf_keep(A, pf_zeros_like_t(ops[i])));
        }
        if (r == NULL || pf_arena_out(A, gin, slot[i], r) < 0) {
            goto done;
        }
    }
    rc = 0;
    goto done;
letters:
    PyErr_Format(PyExc_RuntimeError, "einsum backward: '%s' with its '...' dimensions and "
                 "repeated letters needs more than the 52 letters einsum has", s);
done:
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_linalg_rules[PF_OP_COUNT] = {
    [PF_OP_MATMUL] = bw_matmul,
    [PF_OP_MM] = bw_matmul,
    [PF_OP_BMM] = bw_matmul,
    [PF_OP_DOT] = bw_dot,
    [PF_OP_OUTER] = bw_outer,
    [PF_OP_TENSORDOT] = bw_tensordot,
    [PF_OP_EINSUM] = bw_einsum,
};
