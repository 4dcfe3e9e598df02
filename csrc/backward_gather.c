/*
 * backward_gather.c -- backward rules of the gathers, scatters and sorts
 * (gather.c, sort.c), and the helpers they share with backward_shape.c.
 *
 * Every gather is a read of x at computed positions, so its gradient is
 * the adjoint write: the output gradient scatter-added into zeros of x's
 * shape at the same positions (scatter_add sums where a position is read
 * more than once).  A scatter's adjoint is in turn a gather.  Positions are
 * never worked out by hand: the op that computed them runs once more --
 * take (wrap and clip modes), repeat (counts) and pad (reflections) on an
 * int64 arange, which yields the source position of every output element;
 * sort as argsort.  The rules therefore consist of forward ops only, and
 * under create_graph their second derivatives come for free.
 */
#include "backward.h"

/* ------------------------------------------------------ argument slots */

/*
 * Where the argument a binding parses as names[k] sits in the node's saved
 * call, replaying pf_parse_args: positionals first, then keywords by name
 * (dim= for axis).  -1 when it was not given.
 */
static Py_ssize_t arg_pos(PfNode *n, const char *const *names, int k)
{
    Py_ssize_t nkw = n->kwnames ? PyTuple_GET_SIZE(n->kwnames) : 0;
    Py_ssize_t npos = PyTuple_GET_SIZE(n->args) - nkw;
    if (k < npos) {
        return k;
    }
    for (Py_ssize_t j = 0; j < nkw; j++) {
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(n->kwnames, j));
        if (key == NULL) {
            PyErr_Clear();
            continue;
        }
        if (strcmp(key, names[k]) == 0 ||
            (strcmp(names[k], "axis") == 0 && strcmp(key, "dim") == 0)) {
            return npos + j;
        }
    }
    return -1;
}

/* The first input slot at or after args[pos]: pf_ag_custom_call numbers the tensors in order. */
static int slot_at(PfNode *n, Py_ssize_t pos)
{
    int s = 0;
    for (Py_ssize_t i = 0; i < pos; i++) {
        PyObject *a = PyTuple_GET_ITEM(n->args, i);
        if (PfTensor_Check(a)) {
            s++;
        }
        else if (PyTuple_Check(a)) {
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(a); j++) {
                s += PfTensor_Check(PyTuple_GET_ITEM(a, j));
            }
        }
    }
    return s;
}

/*
 * Slots are found by position rather than by identity, so that a tensor
 * passed twice (scatter(x, 0, i, x)) gets each of its gradients.
 */
int pf_bw_arg_slot(PfNode *n, const char *const *names, int k)
{
    Py_ssize_t pos = arg_pos(n, names, k);
    if (pos < 0 || !PfTensor_Check(PyTuple_GET_ITEM(n->args, pos))) {
        return -1;
    }
    return slot_at(n, pos);
}

int pf_bw_seq_slot(PfNode *n, const char *const *names, int k)
{
    Py_ssize_t pos = arg_pos(n, names, k);
    return pos < 0 ? -1 : slot_at(n, pos);
}

PyObject *pf_bw_arg(PfNode *n, const char *const *names, PyObject *const *v, int k)
{
    int s = pf_bw_arg_slot(n, names, k);
    return s >= 0 ? pf_node_input(n, s) : Py_NewRef(v[k]);
}

/* ------------------------------------------------------ shared helpers */

PyObject *pf_bw_arange(int64_t start, int64_t count)
{
    PfTensor *t = pf_tensor_empty(1, &count, PF_INT64, (pf_device){PF_DEV_CPU, 0}, "backward");
    if (t != NULL) {
        int64_t *p = (int64_t *)t->storage->data;
        for (int64_t i = 0; i < count; i++) {
            p[i] = start + i;
        }
    }
    return (PyObject *)t;
}

PyObject *pf_bw_to_device_of(pf_arena *A, PyObject *t, PyObject *like)
{
    if (t == NULL || like == NULL) {
        return NULL;
    }
    pf_device dev = ((PfTensor *)like)->storage->device;
    PfTensor *x = (PfTensor *)t;
    if (pf_device_eq(x->storage->device, dev)) {
        return t;
    }
    return pf_keep(A, (PyObject *)pf_tensor_to_device(x, dev, x->dtype, "backward"));
}

PyObject *pf_bw_zeros(pf_arena *A, const int64_t *shape, int ndim, pf_dtype dtype,
                      PyObject *like)
{
    pf_meta m = {0};
    m.ndim = ndim;
    m.dtype = dtype;
    m.device = ((PfTensor *)like)->storage->device;
    memcpy(m.shape, shape, sizeof(int64_t) * (size_t)ndim);
    return pf_keep(A, pf_zeros_meta(&m));
}

PyObject *A_reshape(pf_arena *A, PyObject *t, const int64_t *shape, int ndim)
{
    return t == NULL ? NULL : pf_keep(A, pf_reshape(t, shape, ndim));
}

PyObject *A_broadcast(pf_arena *A, PyObject *t, const int64_t *shape, int ndim)
{
    if (t == NULL) {
        return NULL;
    }
    PyObject *s = pf_keep(A, pf_shape_tuple(shape, ndim));
    return s == NULL ? NULL : pf_keep(A, PyObject_CallMethod(t, "broadcast_to", "(O)", s));
}

/* scatter_add(dst, axis, index, src): out-of-place, recorded */
PyObject *A_scatter_add(pf_arena *A, PyObject *dst, int axis, PyObject *index, PyObject *src)
{
    if (dst == NULL || index == NULL || src == NULL) {
        return NULL;
    }
    PyObject *ax = pf_keep(A, PyLong_FromLong(axis));
    PyObject *argv[4] = {dst, ax, index, src};
    return ax == NULL ? NULL : pf_keep(A, pf_call(PF_OP_SCATTER_ADD, argv, 4, NULL));
}

/*
 * The gradient of y = take(x, pos, axis): x of shape (shape, ndim), pos
 * int64 of any shape (entries in [0, shape[axis])), axis < 0 for the
 * flattened x; g has y's shape.  Seen as (P, n, Q) -> (P, K, Q), g is
 * scatter-added along the middle axis.
 */
PyObject *pf_bw_take_grad(pf_arena *A, const int64_t *shape, int ndim, int axis, PyObject *pos,
                          PyObject *g)
{
    if (pos == NULL || g == NULL) {
        return NULL;
    }
    PfTensor *p = (PfTensor *)pos;
    int64_t K = pf_numel(p->shape, p->ndim);
    int64_t P = 1, N = pf_numel(shape, ndim), Q = 1;
    if (axis >= 0) {
        P = pf_numel(shape, axis);
        N = shape[axis];
        Q = pf_numel(shape + axis + 1, ndim - axis - 1);
    }
    int64_t gs[3] = {P, K, Q}, is[3] = {1, K, 1}, zs[3] = {P, N, Q};
    PyObject *g3 = A_reshape(A, g, gs, 3);
    PyObject *i3 = A_broadcast(A, A_reshape(A, pos, is, 3), gs, 3);
    PyObject *z = g3 ? pf_bw_zeros(A, zs, 3, ((PfTensor *)g3)->dtype, g3) : NULL;
    return A_reshape(A, A_scatter_add(A, z, 1, i3, g3), shape, ndim);
}

int pf_bw_axis(PfNode *n, PyObject *o, int dflt, int ndim, int *axis)
{
    int64_t v = dflt;
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    if (o != NULL && o != Py_None && pf_int_arg(o, op, "axis", &v) < 0) {
        return -1;
    }
    Py_ssize_t a = (Py_ssize_t)v;
    if (pf_normalize_axis(&a, ndim, op) < 0) {
        return -1;
    }
    *axis = (int)a;
    return 0;
}

/* ------------------------------------------------- take_along_axis, gather */

static const char *const names_tal[] = {"arr", "indices", "axis", NULL};

/*
 * take_along_axis(arr, indices, axis): indices and arr broadcast off the
 * axis, so g is scattered into zeros of the broadcast shape (arr's length
 * along the axis) with the indices broadcast to g's shape; the engine sums
 * the broadcast axes back to arr's shape.  axis=None: the flattened arr.
 */
static int bw_take_along_axis(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3];
    int rc = -1;
    if (pf_node_args(n, names_tal, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_tal, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    PyObject *g = gout[0];
    PfTensor *gt = (PfTensor *)g;
    PyObject *idx = pf_keep(A, pf_bw_arg(n, names_tal, v, 1));
    if (idx == NULL) {
        goto done;
    }
    if (!PfTensor_Check(idx)) {
        /* a list or array of indices: the forward converted it the same way */
        char buf[128];
        idx = pf_keep(A, (PyObject *)pf_as_tensor(idx, 1, PF_INT64, pf_node_name(n, buf, 128)));
        if ((idx = pf_bw_to_device_of(A, idx, g)) == NULL) {
            goto done;
        }
    }
    PyObject *r;
    if (v[2] == Py_None) {
        int64_t N = pf_numel(xm->shape, xm->ndim);
        r = A_scatter_add(A, pf_bw_zeros(A, &N, 1, gt->dtype, g), 0, idx, g);
    }
    else {
        int axis;
        if (pf_bw_axis(n, v[2], -1, xm->ndim, &axis) < 0) {
            goto done;
        }
        int64_t zs[PF_MAX_DIMS];
        memcpy(zs, gt->shape, sizeof(int64_t) * (size_t)gt->ndim);
        zs[axis] = xm->shape[axis];
        r = A_scatter_add(A, pf_bw_zeros(A, zs, gt->ndim, gt->dtype, g), axis,
                          A_broadcast(A, idx, gt->shape, gt->ndim), g);
    }
    rc = pf_arena_out(A, gin, xs, r);
done:
    pf_arena_free(A);
    return rc;
}

static const char *const names_gather[] = {"input", "axis", "index", "sparse_grad", NULL};

/*
 * gather(input, axis, index): g (index's shape) scatter-added into zeros of
 * input's shape; scatter_add shares gather's rules (index no longer than
 * input off the axis, 0-d and 1-d mixing), so the call mirrors the forward.
 */
static int bw_gather(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4];
    if (pf_node_args(n, names_gather, 3, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_gather, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    PyObject *g = gout[0];
    PyObject *idx = pf_keep(A, pf_bw_arg(n, names_gather, v, 2));
    PyObject *z = pf_bw_zeros(A, xm->shape, xm->ndim, ((PfTensor *)g)->dtype, g);
    PyObject *r = NULL;
    if (idx != NULL && z != NULL) {
        PyObject *argv[4] = {z, v[1], idx, g};
        r = pf_keep(A, pf_call(PF_OP_SCATTER_ADD, argv, 4, NULL));
    }
    int rc = pf_arena_out(A, gin, xs, r);
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------ scatter family */

static const char *const names_scatter[] = {"input", "axis", "index", "src", "value", NULL};

/*
 * The part of g that reaches src: gather(g, axis, index), where index
 * reads g exactly at the places src was written.  For scatter (not add)
 * with repeated positions only the last write (row-major order over
 * index, the forward's order) reached the output; the others get zero.
 * The winners are found by scattering the numbers 1..K of the index
 * positions the same way and reading back which number survived.
 * PyTorch gives every duplicate the gradient instead, which is the true
 * gradient only when the positions are distinct; the two agree then.
 */
static PyObject *scatter_src_grad(PfNode *n, pf_arena *A, PyObject *g, PyObject *axis,
                                  PyObject *idx, int add, int src_slot)
{
    PfTensor *it = (PfTensor *)idx;
    PyObject *argv[4] = {g, axis, idx, NULL};
    PyObject *gs = pf_keep(A, pf_call(PF_OP_GATHER, argv, 3, NULL));
    if (gs == NULL) {
        return NULL;
    }
    if (!add) {
        int64_t K = pf_numel(it->shape, it->ndim);
        PyObject *ids = A_reshape(A, pf_bw_to_device_of(A, pf_keep(A, pf_bw_arange(1, K)), g),
                                  it->shape, it->ndim);
        PfTensor *gt = (PfTensor *)g;
        PyObject *z = pf_bw_zeros(A, gt->shape, gt->ndim, PF_INT64, g);
        if (ids == NULL || z == NULL) {
            return NULL;
        }
        PyObject *sv[4] = {z, axis, idx, ids};
        PyObject *last = pf_keep(A, pf_call(PF_OP_SCATTER, sv, 4, NULL));
        PyObject *gv[3] = {last, axis, idx};
        PyObject *back = last ? pf_keep(A, pf_call(PF_OP_GATHER, gv, 3, NULL)) : NULL;
        gs = A_ew3(A, PF_OP_WHERE, A_ew2(A, PF_OP_EQ, back, ids), gs, A_f(A, 0.0));
    }
    /*
     * src may be longer than index (PyTorch reads its leading part): the
     * gradient is zero-padded to src's shape.  A 0-d src broadcast over the
     * index is summed back by the engine.
     */
    const pf_meta *sm = &n->in_meta[src_slot];
    if (gs == NULL || sm->ndim == 0) {
        return gs;
    }
    PfTensor *gst = (PfTensor *)gs;
    if (gst->ndim == 0) {
        int64_t one = 1;
        gs = A_reshape(A, gs, &one, 1);
        if (gs == NULL) {
            return NULL;
        }
        gst = (PfTensor *)gs;
    }
    int differ = gst->ndim != sm->ndim;
    for (int d = 0; !differ && d < sm->ndim; d++) {
        differ = gst->shape[d] != sm->shape[d];
    }
    if (!differ || gst->ndim != sm->ndim) {
        return gs;
    }
    PyObject *pw = pf_keep(A, PyTuple_New(sm->ndim));
    if (pw == NULL) {
        return NULL;
    }
    for (int d = 0; d < sm->ndim; d++) {
        PyObject *pair = Py_BuildValue("(iL)", 0, (long long)(sm->shape[d] - gst->shape[d]));
        if (pair == NULL) {
            A->err = 1;
            return NULL;
        }
        PyTuple_SET_ITEM(pw, d, pair);
    }
    PyObject *pv[2] = {gs, pw};
    return pf_keep(A, pf_call(PF_OP_PAD, pv, 2, NULL));
}

/*
 * scatter / scatter_add and their in-place forms (whose input slot holds
 * the target's history from before the write).  input: scatter_add passes
 * g through; scatter overwrote the indexed places, so they get zero.
 * src (a tensor given as src= or value=): see scatter_src_grad.
 */
static int bw_scatter_common(PfNode *n, PyObject **gout, PyObject **gin, int add)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[5];
    int rc = -1;
    if (pf_node_args(n, names_scatter, 3, v) < 0) {
        return -1;
    }
    PyObject *g = gout[0];
    int xs = pf_bw_arg_slot(n, names_scatter, 0);
    int sk = v[3] != NULL ? 3 : 4;
    int ss = pf_bw_arg_slot(n, names_scatter, sk);
    PyObject *idx = pf_keep(A, pf_bw_arg(n, names_scatter, v, 2));
    if (idx != NULL && !PfTensor_Check(idx)) {
        char buf[128];
        idx = pf_keep(A, (PyObject *)pf_as_tensor(idx, 1, PF_INT64, pf_node_name(n, buf, 128)));
    }
    if (idx == NULL) {
        goto done;
    }
    if (xs >= 0 && pf_bw_wants(n, xs)) {
        PyObject *r = g;
        if (!add) {
            PyObject *argv[4] = {g, v[1], idx, A_f(A, 0.0)};
            r = argv[3] ? pf_keep(A, pf_call(PF_OP_SCATTER, argv, 4, NULL)) : NULL;
        }
        if (pf_arena_out(A, gin, xs, r) < 0) {
            goto done;
        }
    }
    if (ss >= 0 && pf_bw_wants(n, ss)) {
        if (pf_arena_out(A, gin, ss, scatter_src_grad(n, A, g, v[1], idx, add, ss)) < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

static int bw_scatter(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_scatter_common(n, gout, gin, 0);
}

static int bw_scatter_add(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_scatter_common(n, gout, gin, 1);
}

/* ------------------------------------------------------ index_select, take */

static const char *const names_isel[] = {"input", "axis", "index", NULL};

/* index_select(input, axis, index): take along the axis with a 1-D (or 0-d) index. */
static int bw_index_select(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3];
    if (pf_node_args(n, names_isel, 3, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_isel, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    /* a 0-d input reads as one element along its only axis, as in the forward */
    int64_t one = 1;
    const int64_t *shape = xm->ndim > 0 ? xm->shape : &one;
    int ndim = xm->ndim > 0 ? xm->ndim : 1, axis;
    int rc = -1;
    PyObject *idx = pf_keep(A, pf_bw_arg(n, names_isel, v, 2));
    if (idx != NULL && !PfTensor_Check(idx)) {
        char buf[128];
        idx = pf_keep(A, (PyObject *)pf_as_tensor(idx, 1, PF_INT64, pf_node_name(n, buf, 128)));
        idx = pf_bw_to_device_of(A, idx, gout[0]);
    }
    if (idx != NULL && pf_bw_axis(n, v[1], 0, ndim, &axis) == 0) {
        rc = pf_arena_out(A, gin, xs, pf_bw_take_grad(A, shape, ndim, axis, idx, gout[0]));
    }
    pf_arena_free(A);
    return rc;
}

static const char *const names_take[] = {"a", "indices", "axis", "mode", NULL};

/*
 * take(a, indices, axis=None, mode): the positions actually read (after
 * wrap or clip) are those take itself returns from an arange of the
 * axis's length with the same indices and mode.
 */
static int bw_take(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4];
    if (pf_node_args(n, names_take, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_take, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    int rc = -1, axis = -1;
    int64_t len = pf_numel(xm->shape, xm->ndim);
    if (v[2] != NULL && v[2] != Py_None) {
        if (pf_bw_axis(n, v[2], 0, xm->ndim, &axis) < 0) {
            goto done;
        }
        len = xm->shape[axis];
    }
    PyObject *idx = pf_keep(A, pf_bw_arg(n, names_take, v, 1));
    PyObject *ar = pf_bw_to_device_of(A, pf_keep(A, pf_bw_arange(0, len)), gout[0]);
    PyObject *pos = NULL;
    if (idx != NULL && ar != NULL) {
        PyObject *argv[2] = {ar, idx};
        pos = pf_keep(A, pf_call_kw(PF_OP_TAKE, argv, 2, v[3] ? "mode" : NULL, v[3], NULL,
                                    NULL));
    }
    rc = pf_arena_out(A, gin, xs, pf_bw_take_grad(A, xm->shape, xm->ndim, axis, pos, gout[0]));
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ sort, topk */

static const char *const names_sort[] = {"a", "axis", "kind", "stable", "descending", NULL};

/*
 * sort(a, axis, ..., descending): the values are a[perm] along the axis,
 * with perm = argsort(a) called with the very same arguments (both sorts
 * are stable, so ties resolve alike); g goes back through perm.
 */
static int bw_sort(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[5];
    if (pf_node_args(n, names_sort, 1, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_sort, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    PyObject *g = gout[0];
    PfTensor *gt = (PfTensor *)g;
    int rc = -1;
    /* the saved input, version-checked, before argsort reads it through the saved call */
    PyObject *x = pf_keep(A, pf_node_input(n, xs));
    Py_ssize_t nkw = n->kwnames ? PyTuple_GET_SIZE(n->kwnames) : 0;
    PyObject *perm = x ? pf_keep(A, pf_call(PF_OP_ARGSORT, &PyTuple_GET_ITEM(n->args, 0),
                                            PyTuple_GET_SIZE(n->args) - nkw, n->kwnames))
                       : NULL;
    PyObject *r = NULL;
    if (perm != NULL) {
        if (v[1] == Py_None) {
            int64_t N = pf_numel(xm->shape, xm->ndim);
            r = A_scatter_add(A, pf_bw_zeros(A, &N, 1, gt->dtype, g), 0, perm,
                              A_reshape(A, g, &N, 1));
        }
        else {
            int axis;
            if (pf_bw_axis(n, v[1], -1, xm->ndim, &axis) < 0) {
                goto done;
            }
            r = A_scatter_add(A, pf_bw_zeros(A, xm->shape, xm->ndim, gt->dtype, g), axis, perm,
                              g);
        }
    }
    rc = pf_arena_out(A, gin, xs, r);
done:
    pf_arena_free(A);
    return rc;
}

static const char *const names_topk[] = {"x", "k", "axis", "largest", "sorted", NULL};

/* topk -> (values, indices): the values' gradient goes back to the indices' positions. */
static int bw_topk(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[5];
    if (pf_node_args(n, names_topk, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_topk, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    PyObject *g = gout[0];
    int rc = -1, axis;
    /* the indices as a plain tensor: under create_graph the saved output would
       otherwise come back attached to this node, and it is no gradient path */
    PyObject *saved = pf_keep(A, pf_node_output(n, 1));
    PyObject *ind = saved ? pf_keep(A, PyObject_CallMethod(saved, "detach", NULL)) : NULL;
    if (ind != NULL && pf_bw_axis(n, v[2], -1, xm->ndim, &axis) == 0) {
        PyObject *z = pf_bw_zeros(A, xm->shape, xm->ndim, ((PfTensor *)g)->dtype, g);
        rc = pf_arena_out(A, gin, xs, A_scatter_add(A, z, axis, ind, g));
    }
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_gather_rules[PF_OP_COUNT] = {
    [PF_OP_TAKE_ALONG_AXIS] = bw_take_along_axis,
    [PF_OP_GATHER] = bw_gather,
    [PF_OP_SCATTER] = bw_scatter,
    [PF_OP_SCATTER_INPLACE] = bw_scatter,
    [PF_OP_SCATTER_ADD] = bw_scatter_add,
    [PF_OP_SCATTER_ADD_INPLACE] = bw_scatter_add,
    [PF_OP_INDEX_SELECT] = bw_index_select,
    [PF_OP_TAKE] = bw_take,
    [PF_OP_SORT] = bw_sort,
    [PF_OP_TOPK] = bw_topk,
};
