/*
 * backward_shape.c -- backward rules of the joining, splitting and
 * reordering ops (shape_ops.c).
 *
 * Most of these ops move elements without changing them, so each rule
 * moves the gradient back: slices for the joins, a join for the splits,
 * the inverse reordering for flip, roll and moveaxis, a sum over the
 * copies for tile and repeat.  Ops whose element map is irregular (repeat
 * with counts, pad's reflections) get it by running the op itself on an
 * int64 arange, and the gradient is scatter-added along that map (see
 * backward_gather.c).  Only forward ops are used, so under create_graph
 * the rules record themselves and second derivatives need nothing more.
 */
#include "backward.h"

/* x[..., start:stop] on axis ax (a view, recorded as one). */
static PyObject *slice_axis(PyObject *x, int ax, int64_t start, int64_t stop)
{
    PyObject *key = PyTuple_New(ax + 1);
    if (key == NULL) {
        return NULL;
    }
    for (int d = 0; d < ax; d++) {
        PyObject *all = PySlice_New(NULL, NULL, NULL);
        if (all == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, d, all);
    }
    PyObject *lo = PyLong_FromLongLong(start), *hi = PyLong_FromLongLong(stop);
    PyObject *s = lo && hi ? PySlice_New(lo, hi, NULL) : NULL;
    Py_XDECREF(lo);
    Py_XDECREF(hi);
    if (s == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyTuple_SET_ITEM(key, ax, s);
    PyObject *r = PyObject_GetItem(x, key);
    Py_DECREF(key);
    return r;
}

/* x[:, ..., i] with i on axis ax: drops the axis. */
static PyObject *index_axis(PyObject *x, int ax, int64_t i)
{
    PyObject *key = PyTuple_New(ax + 1);
    if (key == NULL) {
        return NULL;
    }
    for (int d = 0; d < ax; d++) {
        PyObject *all = PySlice_New(NULL, NULL, NULL);
        if (all == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, d, all);
    }
    PyObject *io = PyLong_FromLongLong(i);
    if (io == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    PyTuple_SET_ITEM(key, ax, io);
    PyObject *r = PyObject_GetItem(x, key);
    Py_DECREF(key);
    return r;
}

/* --------------------------------------------------- concatenate, stack */

static const char *const names_join[] = {"arrays", "axis", "dtype", NULL};

/*
 * The shape of an input given as a list or array (it gets no gradient, but
 * it takes up room in the result): that of the tensor the forward made of it.
 */
static int item_shape(PyObject *item, const char *op, int64_t *shape, int *ndim)
{
    PfTensor *t = pf_as_tensor(item, 0, PF_FLOAT32, op);
    if (t == NULL) {
        return -1;
    }
    *ndim = t->ndim;
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    Py_DECREF(t);
    return 0;
}

/* The gradient of one input of a join: what it filled of g, in its own shape. */
static PyObject *join_piece(PyObject *g, int is_stack, int flat, int ax, int64_t i,
                            int64_t pos, int64_t len, const int64_t *shape, int nd)
{
    if (is_stack) {
        return index_axis(g, ax, i);
    }
    if (!flat) {
        return slice_axis(g, ax, pos, pos + len);
    }
    PyObject *piece = slice_axis(g, 0, pos, pos + len);
    PyObject *r = piece ? pf_reshape(piece, shape, nd) : NULL;
    Py_XDECREF(piece);
    return r;
}

/*
 * concatenate(arrays, axis) and stack(arrays, axis): input i gets the
 * slice of g it filled (stack: index i on the new axis; axis=None: its run
 * of the flattened result).  The results go straight to gin: a join may
 * have more inputs than a rule's arena holds.  `arrays` given as one
 * tensor joins its rows; its gradient is the rows' slices stacked again
 * (for stack, simply the new axis moved back to the front).
 */
static int bw_join(PfNode *n, PyObject **gout, PyObject **gin, int is_stack)
{
    PyObject *v[3];
    if (pf_node_args(n, names_join, 1, v) < 0) {
        return -1;
    }
    PyObject *g = gout[0];
    int flat = !is_stack && v[1] == Py_None, ax = 0;
    if (!flat && pf_bw_axis(n, v[1], 0, ((PfTensor *)g)->ndim, &ax) < 0) {
        return -1;
    }
    int slot = pf_bw_seq_slot(n, names_join, 0);
    if (PfTensor_Check(v[0])) {
        if (!pf_bw_wants(n, slot)) {
            return 0;
        }
        const pf_meta *m = &n->in_meta[slot];
        if (is_stack) {
            PyObject *axo = PyLong_FromLong(ax), *zero = PyLong_FromLong(0);
            PyObject *argv[3] = {g, axo, zero};
            gin[slot] = axo && zero ? pf_call(PF_OP_MOVEAXIS, argv, 3, NULL) : NULL;
            Py_XDECREF(axo);
            Py_XDECREF(zero);
            return gin[slot] == NULL ? -1 : 0;
        }
        const int64_t *row = m->shape + 1;
        int64_t len = flat ? pf_numel(row, m->ndim - 1) : row[ax];
        PyObject *rows = PyList_New(m->shape[0]);
        for (int64_t i = 0; rows != NULL && i < m->shape[0]; i++) {
            PyObject *r = join_piece(g, 0, flat, ax, i, i * len, len, row, m->ndim - 1);
            if (r == NULL) {
                Py_CLEAR(rows);
                break;
            }
            PyList_SET_ITEM(rows, i, r);
        }
        if (rows == NULL) {
            return -1;
        }
        gin[slot] = pf_call(PF_OP_STACK, &rows, 1, NULL);
        Py_DECREF(rows);
        return gin[slot] == NULL ? -1 : 0;
    }
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    PyObject *items = v[0];   /* a list or tuple, frozen to a tuple when recorded */
    if (!PyTuple_Check(items)) {
        return PF_ERRI(PyExc_RuntimeError, "%s: the saved arrays are a %.100s, not a tuple (an "
                       "internal error; please report it)", op, Py_TYPE(items)->tp_name);
    }
    int64_t pos = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(items); i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        int is_t = PfTensor_Check(item);
        int64_t shape[PF_MAX_DIMS];
        int nd;
        if (is_t) {
            nd = n->in_meta[slot].ndim;
            memcpy(shape, n->in_meta[slot].shape, sizeof(int64_t) * (size_t)nd);
        }
        else if (item_shape(item, op, shape, &nd) < 0) {
            return -1;
        }
        int64_t len = flat ? pf_numel(shape, nd) : is_stack ? 1 : shape[ax];
        if (is_t && pf_bw_wants(n, slot)) {
            gin[slot] = join_piece(g, is_stack, flat, ax, i, pos, len, shape, nd);
            if (gin[slot] == NULL) {
                return -1;
            }
        }
        slot += is_t;
        pos += len;
    }
    return 0;
}

static int bw_concatenate(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_join(n, gout, gin, 0);
}

static int bw_stack(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_join(n, gout, gin, 1);
}

/* ------------------------------------------------------- split, chunk */

/* concatenate(gout[0..nout), axis): the pieces' gradients side by side */
static PyObject *join_pieces(PfNode *n, PyObject **gout, int ax)
{
    PyObject *list = PyList_New(n->nout);
    if (list == NULL) {
        return NULL;
    }
    for (int k = 0; k < n->nout; k++) {
        PyList_SET_ITEM(list, k, Py_NewRef(gout[k]));
    }
    PyObject *axo = PyLong_FromLong(ax);
    PyObject *r = axo ? pf_call_kw(PF_OP_CONCATENATE, &list, 1, "axis", axo, NULL, NULL) : NULL;
    Py_XDECREF(axo);
    Py_DECREF(list);
    return r;
}

/* g padded with zeros on axis ax: `before` ahead of it, `after` behind. */
static PyObject *pad_axis(PyObject *g, int ax, int64_t before, int64_t after)
{
    int nd = ((PfTensor *)g)->ndim;
    PyObject *pw = PyTuple_New(nd);
    for (int d = 0; pw != NULL && d < nd; d++) {
        PyObject *pair = d == ax ? Py_BuildValue("(LL)", (long long)before, (long long)after)
                                 : Py_BuildValue("(ii)", 0, 0);
        if (pair == NULL) {
            Py_CLEAR(pw);
            break;
        }
        PyTuple_SET_ITEM(pw, d, pair);
    }
    if (pw == NULL) {
        return NULL;
    }
    PyObject *argv[2] = {g, pw};
    PyObject *r = pf_call(PF_OP_PAD, argv, 2, NULL);
    Py_DECREF(pw);
    return r;
}

static const char *const names_split[] = {"ary", "indices_or_sections", "axis", NULL};

/*
 * split(ary, indices_or_sections, axis): the pieces are consecutive views
 * along the axis, so g is their gradients joined -- unless a list of points
 * goes backwards (split(x, [3, 1]) gives x[:3], x[3:1], x[1:]), when
 * pieces overlap and each gradient is padded to x's length and summed.
 */
static int bw_split(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[3];
    if (pf_node_args(n, names_split, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_split, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    int ax;
    if (pf_bw_axis(n, v[2], 0, xm->ndim, &ax) < 0) {
        return -1;
    }
    int64_t len = xm->shape[ax], total = 0;
    for (int k = 0; k < n->nout; k++) {
        total += n->out_meta[k].shape[ax];
    }
    if (total == len) {
        gin[xs] = join_pieces(n, gout, ax);
        return gin[xs] == NULL ? -1 : 0;
    }
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    PyObject *fast = PySequence_Fast(v[1], "");
    if (fast == NULL) {
        return -1;
    }
    PyObject *acc = NULL;
    int64_t start = 0;
    int rc = 0;
    for (int k = 0; k < n->nout; k++) {
        int64_t stop = len;
        if (k < PySequence_Fast_GET_SIZE(fast)) {
            if (pf_int_arg(PySequence_Fast_GET_ITEM(fast, k), op, "split point", &stop) < 0) {
                rc = -1;
                break;
            }
            /* slice bounds, as the forward reads them */
            stop = stop < 0 ? stop + len : stop;
            stop = stop < 0 ? 0 : stop > len ? len : stop;
        }
        int64_t plen = n->out_meta[k].shape[ax];
        if (plen > 0) {
            PyObject *p = pad_axis(gout[k], ax, start, len - start - plen);
            PyObject *sum = p == NULL ? NULL : acc == NULL ? Py_NewRef(p)
                                                           : pf_ew2(PF_OP_ADD, acc, p);
            Py_XDECREF(p);
            Py_XSETREF(acc, sum);
            if (acc == NULL) {
                rc = -1;
                break;
            }
        }
        start = stop;
    }
    Py_DECREF(fast);
    if (rc == 0 && acc == NULL) {
        acc = pf_zeros_meta(xm);
        rc = acc == NULL ? -1 : 0;
    }
    gin[xs] = rc == 0 ? acc : NULL;
    if (rc < 0) {
        Py_XDECREF(acc);
    }
    return rc;
}

static const char *const names_chunk[] = {"input", "chunks", "axis", NULL};

/* chunk: consecutive pieces that cover the axis (every one empty for an empty axis). */
static int bw_chunk(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[3];
    if (pf_node_args(n, names_chunk, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_chunk, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    int ax;
    if (pf_bw_axis(n, v[2], 0, n->in_meta[xs].ndim, &ax) < 0) {
        return -1;
    }
    gin[xs] = join_pieces(n, gout, ax);
    return gin[xs] == NULL ? -1 : 0;
}

/* ------------------------------------------------------------ tile, repeat */

static const char *const names_tile[] = {"A", "reps", NULL};

/*
 * tile(A, reps): output axis k is r_k copies of input axis k (leading axes
 * added when reps is longer).  Axis by axis, g is viewed as (P, r_k,
 * n_k * Q) and summed over the copies -- three dimensions at most, so even
 * an 8-d tile fits.  The counts come from the shapes: r_k = out_k / n_k.
 */
static int bw_tile(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[2];
    if (pf_node_args(n, names_tile, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_tile, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs], *om = &n->out_meta[0];
    int nd = om->ndim, lead = nd - xm->ndim;
    int64_t cur[PF_MAX_DIMS];
    memcpy(cur, om->shape, sizeof(int64_t) * (size_t)nd);
    PyObject *g = gout[0];
    for (int k = 0; k < nd && g != NULL; k++) {
        int64_t xk = k < lead ? 1 : xm->shape[k - lead];
        int64_t r = xk > 0 ? om->shape[k] / xk : 1;
        if (r == 1) {
            continue;
        }
        int64_t s3[3] = {pf_numel(cur, k), r, xk * pf_numel(cur + k + 1, nd - k - 1)};
        int mask[3] = {0, 1, 0};
        PyObject *g3 = A_reshape(A, g, s3, 3);
        PyObject *s = g3 ? pf_keep(A, pf_sum_axes(g3, mask, 3, 0)) : NULL;
        cur[k] = xk;
        g = A_reshape(A, s, cur, nd);
    }
    int rc = pf_arena_out(A, gin, xs, A_reshape(A, g, xm->shape, xm->ndim));
    pf_arena_free(A);
    return rc;
}

static const char *const names_repeat[] = {"a", "repeats", "axis", NULL};

/*
 * repeat(a, repeats, axis): output element j is input element owner[j]
 * along the axis, with owner = repeat(arange(n), repeats) -- the op itself
 * makes the map, for every form of repeats.  g is scatter-added along it.
 */
static int bw_repeat(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3];
    if (pf_node_args(n, names_repeat, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_repeat, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    const pf_meta *xm = &n->in_meta[xs];
    int ax = -1, rc = -1;
    int64_t len = pf_numel(xm->shape, xm->ndim);
    if (v[2] != NULL && v[2] != Py_None) {
        if (pf_bw_axis(n, v[2], 0, xm->ndim, &ax) < 0) {
            goto done;
        }
        len = xm->shape[ax];
    }
    PyObject *reps = pf_keep(A, pf_bw_arg(n, names_repeat, v, 1));
    PyObject *ar = pf_keep(A, pf_bw_arange(0, len));
    PyObject *owner = NULL;
    if (reps != NULL && ar != NULL) {
        PyObject *argv[2] = {ar, reps};
        owner = pf_keep(A, pf_call(PF_OP_REPEAT, argv, 2, NULL));
    }
    rc = pf_arena_out(A, gin, xs, pf_bw_take_grad(A, xm->shape, xm->ndim, ax, owner, gout[0]));
done:
    pf_arena_free(A);
    return rc;
}

/* ---------------------------------------------------------- flip, roll */

static const char *const names_flip[] = {"m", "axis", "dims", NULL};

/* flip is its own inverse: g flipped on the same axes. */
static int bw_flip(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[3];
    if (pf_node_args(n, names_flip, 1, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_flip, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    PyObject *axes = v[1] != NULL ? v[1] : v[2] != NULL ? v[2] : Py_None;
    gin[xs] = pf_call_kw(PF_OP_FLIP, gout, 1, "axis", axes, NULL, NULL);
    return gin[xs] == NULL ? -1 : 0;
}

static const char *const names_roll[] = {"a", "shift", "axis", "shifts", "dims", NULL};

/* -shift: an int, each entry of a list or tuple, or a tensor / array negated whole. */
static PyObject *negated(PyObject *o)
{
    if (!PyList_Check(o) && !PyTuple_Check(o)) {
        return PyNumber_Negative(o);
    }
    Py_ssize_t len = PySequence_Fast_GET_SIZE(o);
    PyObject *t = PyTuple_New(len);
    for (Py_ssize_t i = 0; t != NULL && i < len; i++) {
        PyObject *e = PyNumber_Negative(PySequence_Fast_GET_ITEM(o, i));
        if (e == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, e);
    }
    return t;
}

/* roll by -shift on the same axes (None: the flattened tensor again). */
static int bw_roll(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[5];
    if (pf_node_args(n, names_roll, 1, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_roll, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    PyObject *shift = v[1] != NULL ? v[1] : v[3];
    PyObject *axis = v[2] != NULL ? v[2] : v[4] != NULL ? v[4] : Py_None;
    if (shift == NULL) {
        char buf[128];
        return PF_ERRI(PyExc_TypeError, "%s: missing required argument 'shift'",
                       pf_node_name(n, buf, sizeof(buf)));
    }
    PyObject *neg = negated(shift);
    if (neg == NULL) {
        return -1;
    }
    gin[xs] = pf_call_kw(PF_OP_ROLL, gout, 1, "shift", neg, "axis", axis);
    Py_DECREF(neg);
    return gin[xs] == NULL ? -1 : 0;
}

/* ------------------------------------------------------------------- pad */

/* The sum of g over the places where mask holds: the gradient of a value that filled them. */
static PyObject *A_masked_sum(pf_arena *A, PyObject *mask, PyObject *g)
{
    PyObject *w = A_ew3(A, PF_OP_WHERE, mask, g, A_f(A, 0.0));
    return w ? pf_keep(A, pf_call(PF_OP_SUM, &w, 1, NULL)) : NULL;
}

static const char *const names_pad[] = {"array", "pad_width", "mode", "constant_values", NULL};

/*
 * pad(array, pad_width, mode): the map of where each output element came
 * from is pad itself applied to the positions 1..N of the input (in its
 * shape) -- constant padding fills 0, "no input element"; reflect and edge
 * copy positions exactly as they copy values, corners included.  g is
 * scatter-added along that map into N + 1 slots and slot 0 dropped.  A
 * single constant_values tensor gets the sum of g over the padding.
 */
static int bw_pad(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[4];
    if (pf_node_args(n, names_pad, 2, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_pad, 0), cs = pf_bw_arg_slot(n, names_pad, 3);
    int want_x = xs >= 0 && pf_bw_wants(n, xs), want_c = cs >= 0 && pf_bw_wants(n, cs);
    if (!want_x && !want_c) {
        return 0;
    }
    char buf[128];
    const char *op = pf_node_name(n, buf, sizeof(buf));
    int rc = -1;
    int per_side = want_c && pf_numel(n->in_meta[cs].shape, n->in_meta[cs].ndim) != 1;
    PyObject *pw = pf_keep(A, pf_bw_arg(n, names_pad, v, 1));
    /* x's meta comes from its slot; without one (a list) it cannot want a gradient */
    pf_meta xm_ = {0};
    const pf_meta *xm = &xm_;
    if (xs >= 0) {
        xm = &n->in_meta[xs];
    }
    else {
        int nd;
        if (pw == NULL || item_shape(v[0], op, xm_.shape, &nd) < 0) {
            goto done;
        }
        xm_.ndim = nd;
    }
    int64_t N = pf_numel(xm->shape, xm->ndim), N1 = N + 1;
    PyObject *pos = A_reshape(A, pf_keep(A, pf_bw_arange(1, N)), xm->shape, xm->ndim);
    PyObject *map = NULL;
    if (pos != NULL && pw != NULL) {
        PyObject *argv[2] = {pos, pw};
        map = pf_keep(A, pf_call_kw(PF_OP_PAD, argv, 2, v[2] ? "mode" : NULL, v[2], NULL,
                                    NULL));
    }
    if (map == NULL) {
        goto done;
    }
    if (want_x) {
        PyObject *acc = pf_bw_take_grad(A, &N1, 1, -1, map, gout[0]);
        PyObject *r = acc ? pf_keep(A, slice_axis(acc, 0, 1, N1)) : NULL;
        if (pf_arena_out(A, gin, xs, A_reshape(A, r, xm->shape, xm->ndim)) < 0) {
            goto done;
        }
    }
    if (per_side) {
        /*
         * constant_values per (axis, side): pad the positions again with a
         * distinct negative id for each (axis, side), so that the op itself
         * says which constant every padded element took (corners included),
         * and give each constant the sum of g over its elements.
         */
        int nd = xm->ndim;
        PyObject *ids = pf_keep(A, PyList_New(nd));
        for (int a = 0; ids != NULL && a < nd; a++) {
            PyList_SET_ITEM(ids, a, Py_BuildValue("[ii]", -(2 * a + 1), -(2 * a + 2)));
        }
        PyObject *cmap = NULL;
        if (ids != NULL && !PyErr_Occurred()) {
            PyObject *argv[2] = {pos, pw};
            cmap = pf_keep(A, pf_call_kw(PF_OP_PAD, argv, 2, "constant_values", ids, NULL, NULL));
        }
        PyObject *sums = cmap ? pf_keep(A, PyList_New(2 * nd)) : NULL;
        for (int k = 0; sums != NULL && k < 2 * nd; k++) {
            PyObject *hit = A_ew2(A, PF_OP_EQ, cmap, pf_keep(A, PyLong_FromLong(-(k + 1))));
            PyObject *sk = A_masked_sum(A, hit, gout[0]);
            if (sk == NULL) {
                goto done;
            }
            PyList_SET_ITEM(sums, k, Py_NewRef(sk));
        }
        PyObject *st = sums ? pf_keep(A, pf_call(PF_OP_STACK, &sums, 1, NULL)) : NULL;
        int64_t shape2[2] = {nd, 2};
        /* the engine sums (nd, 2) back to the shape constant_values was given in */
        if (pf_arena_out(A, gin, cs, A_reshape(A, st, shape2, 2)) < 0) {
            goto done;
        }
    }
    else if (want_c) {
        PyObject *in_pad = A_ew2(A, PF_OP_EQ, map, pf_keep(A, PyLong_FromLong(0)));
        if (pf_arena_out(A, gin, cs, A_masked_sum(A, in_pad, gout[0])) < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ tril, triu */

static const char *const names_tri[] = {"m", "k", "diagonal", NULL};

/* tril / triu keep a fixed set of elements: g through the same mask. */
static int bw_tri(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[3];
    if (pf_node_args(n, names_tri, 1, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_tri, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    PyObject *k = v[1] != NULL ? v[1] : v[2];
    gin[xs] = pf_call_kw((pf_op)n->kind, gout, 1, k ? "k" : NULL, k, NULL, NULL);
    return gin[xs] == NULL ? -1 : 0;
}

/* ------------------------------------------------------------ masked_fill */

static const char *const names_mfill[] = {"input", "mask", "value", NULL};

/*
 * masked_fill(input, mask, value) and masked_fill_ (whose input slot holds
 * the target's history from before the write): input gets g outside the
 * mask; a tensor value gets the sum of g under it.
 */
static int bw_masked_fill(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    PyObject *v[3];
    if (pf_node_args(n, names_mfill, 3, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_mfill, 0), vs = pf_bw_arg_slot(n, names_mfill, 2);
    int want_x = xs >= 0 && pf_bw_wants(n, xs), want_v = vs >= 0 && pf_bw_wants(n, vs);
    int rc = -1;
    PyObject *g = gout[0];
    PyObject *mask = (want_x || want_v) ? pf_keep(A, pf_bw_arg(n, names_mfill, v, 1)) : NULL;
    if (mask != NULL && !PfTensor_Check(mask)) {
        char buf[128];
        mask = pf_keep(A, (PyObject *)pf_as_tensor(mask, 1, PF_BOOL,
                                                    pf_node_name(n, buf, sizeof(buf))));
    }
    if (want_x) {
        PyObject *argv[3] = {g, mask, A_f(A, 0.0)};
        PyObject *r = mask && argv[2] ? pf_keep(A, pf_call(PF_OP_MASKED_FILL, argv, 3, NULL))
                                      : NULL;
        if (pf_arena_out(A, gin, xs, r) < 0 || r == NULL) {
            goto done;
        }
    }
    if (want_v) {
        PyObject *s = A_masked_sum(A, mask, g);
        if (pf_arena_out(A, gin, vs, s) < 0 || s == NULL) {
            goto done;
        }
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

/* --------------------------------------------------------------- moveaxis */

static const char *const names_moveaxis[] = {"a", "source", "destination", NULL};

/* moveaxis back: destination to source. */
static int bw_moveaxis(PfNode *n, PyObject **gout, PyObject **gin)
{
    PyObject *v[3];
    if (pf_node_args(n, names_moveaxis, 3, v) < 0) {
        return -1;
    }
    int xs = pf_bw_arg_slot(n, names_moveaxis, 0);
    if (xs < 0 || !pf_bw_wants(n, xs)) {
        return 0;
    }
    PyObject *argv[3] = {gout[0], v[2], v[1]};
    gin[xs] = pf_call(PF_OP_MOVEAXIS, argv, 3, NULL);
    return gin[xs] == NULL ? -1 : 0;
}

const pf_bw_fn pf_bw_shape_rules[PF_OP_COUNT] = {
    [PF_OP_CONCATENATE] = bw_concatenate,
    [PF_OP_STACK] = bw_stack,
    [PF_OP_SPLIT] = bw_split,
    [PF_OP_CHUNK] = bw_chunk,
    [PF_OP_TILE] = bw_tile,
    [PF_OP_REPEAT] = bw_repeat,
    [PF_OP_FLIP] = bw_flip,
    [PF_OP_ROLL] = bw_roll,
    [PF_OP_PAD] = bw_pad,
    [PF_OP_TRIL] = bw_tri,
    [PF_OP_TRIU] = bw_tri,
    [PF_OP_MASKED_FILL] = bw_masked_fill,
    [PF_OP_MASKED_FILL_] = bw_masked_fill,
    [PF_OP_MOVEAXIS] = bw_moveaxis,
};
