/*
 * backward_nnops.c -- backward rules of the normalisation, dropout, losses
 * and attention (nn_ops.c).
 *
 * Every rule has two paths.  Under create_graph (grad mode on while the
 * rule runs) it is written with forward ops -- mean, sum, elementwise,
 * matmul -- over the saved inputs with the statistics recomputed, so its
 * own ops record and second derivatives need nothing more.  Without
 * create_graph nothing needs recording, and the norms, cross-entropy and
 * attention call fused kernels instead (kernels/nn_kernels.c): one or two
 * passes instead of a dozen ops, measured in bench/bench_nn_ops.py.
 * gradcheck exercises the fast path and gradgradcheck the composite one;
 * tests/test_nn_ops.py also compares the two directly.
 *
 * dropout and scaled_dot_product_attention are composite rows: their
 * gradients come from the multiply op and from _attention's rule.
 */
#include "backward.h"
#include "nn_ops.h"
#include "nn_conv.h"
#include <math.h>

#pragma GCC diagnostic ignored "-Wfloat-equal"

static const pf_device CPU = {PF_DEV_CPU, 0};

/* ------------------------------------------------------------ helpers */

/*
 * slot[i]: the node input that call argument v[i] became, or -1 when it is
 * not a tensor.  A tensor passed twice fills two slots; any assignment of
 * the two is right, since both lead to the same place.
 */
static void arg_slots(PfNode *n, PyObject *const *v, int nv, int *slot)
{
    uint64_t used = 0;
    for (int i = 0; i < nv; i++) {
        slot[i] = -1;
        if (v[i] == NULL || !PfTensor_Check(v[i])) {
            continue;
        }
        for (int s = 0; s < n->nin && s < 64; s++) {
            if (!((used >> s) & 1) && n->inputs[s] == v[i]) {
                slot[i] = s;
                used |= (uint64_t)1 << s;
                break;
            }
        }
    }
}

static int wants(PfNode *n, int slot)
{
    return slot >= 0 && pf_bw_wants(n, slot);
}

/*
 * Argument o of the saved call as a tensor (kept in the arena): a saved
 * input is read through pf_node_input (its version is checked), anything
 * else converted.  NULL for None or a missing argument.
 */
static PyObject *arg_in(pf_arena *A, PfNode *n, PyObject *o, int slot)
{
    if (o == NULL || o == Py_None) {
        return NULL;
    }
    if (slot >= 0) {
        return pf_keep(A, pf_node_input(n, slot));
    }
    return pf_keep(A, (PyObject *)pf_nn_tensor(o, pf_ops[n->kind].name));
}

static PyObject *axes_tuple(const int *mask, int ndim)
{
    int cnt = 0;
    for (int i = 0; i < ndim; i++) {
        cnt += mask[i] != 0;
    }
    PyObject *t = PyTuple_New(cnt);
    for (int i = 0, k = 0; t != NULL && i < ndim; i++) {
        if (mask[i]) {
            PyTuple_SET_ITEM(t, k++, PyLong_FromLong(i));
        }
    }
    return t;
}

/* mean or sum of t over the axes in mask (a reduction op, so it records) */
static PyObject *A_red(pf_arena *A, pf_op op, PyObject *t, const int *mask, int ndim, int keep)
{
    if (t == NULL) {
        return NULL;
    }
    PyObject *axes = axes_tuple(mask, ndim);
    if (axes == NULL) {
        return pf_keep(A, NULL);
    }
    PyObject *r = pf_call_kw(op, &t, 1, "axis", axes, "keepdims", keep ? Py_True : Py_False);
    Py_DECREF(axes);
    return pf_keep(A, r);
}

static PyObject *A_swap(pf_arena *A, PyObject *t)
{
    return t == NULL ? NULL : pf_keep(A, PyObject_CallMethod(t, "swapaxes", "ii", -1, -2));
}

static PyObject *A_matmul(pf_arena *A, PyObject *a, PyObject *b)
{
    if (a == NULL || b == NULL) {
        return NULL;
    }
    PyObject *argv[2] = {a, b};
    return pf_keep(A, pf_call(PF_OP_MATMUL, argv, 2, NULL));
}

static PyObject *A_clip(pf_arena *A, PyObject *t, double lo, double hi)
{
    return t == NULL ? NULL : pf_keep(A, pf_ew_p(PF_OP_CLIP, t, lo, hi));
}

#define E1(op, a) A_ew1(A, PF_OP_##op, (a))
#define E2(op, a, b) A_ew2(A, PF_OP_##op, (a), (b))
#define F(v) A_f(A, (v))
#define MUL(a, b) E2(MUL, a, b)
#define DIV(a, b) E2(DIV, a, b)
#define ADD(a, b) E2(ADD, a, b)
#define SUB(a, b) E2(SUB, a, b)

/* a kernel's output as an arena value (the kernels' tensors are new references) */
static PyObject *A_t(pf_arena *A, PfTensor *t)
{
    return pf_keep(A, (PyObject *)t);
}

/* (1, ..., n at axis, ..., 1): a per-channel vector seen against an ndim tensor */
static void channel_shape(int ndim, int axis, int64_t n, int64_t *shape)
{
    for (int d = 0; d < ndim; d++) {
        shape[d] = d == axis ? n : 1;
    }
}

/* ------------------------------------------------------------ layer, RMS, group norm */


/* ------------------------------------------------------------ norms on CUDA */

/*
 * The fused gradients of a norm on a CUDA device (or the host self-test):
 * g made contiguous in x's dtype (it is x's dtype: the output's), dx in
 * x's dtype, dw and db in the dtypes and shapes of the weight and bias.
 * want[3]: dx, dw, db; like[3]: x, w, b (the shapes and dtypes to give).
 * out[k] gets a new reference for each wanted gradient.
 */
static int cuda_grad_outputs(const char *op, PfTensor *g, PfTensor *x, PfTensor **like,
                             const int *want, PfTensor **gc, PfTensor **out)
{
    if (g->dtype != x->dtype) {
        return PF_ERRI(PyExc_TypeError, "%s: the gradient's dtype (%s) differs from the "
                       "input's (%s); on CUDA the fused backward takes them equal", op,
                       pf_dtypes[g->dtype].name, pf_dtypes[x->dtype].name);
    }
    if ((*gc = pf_nn_contig(g, g->dtype, op)) == NULL) {
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        if (want[k] && (out[k] = pf_tensor_empty(like[k]->ndim, like[k]->shape, like[k]->dtype,
                                                 x->storage->device, op)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static void cuda_grads_clear(PfTensor **gc, PfTensor **xc, PfTensor **out)
{
    Py_CLEAR(*gc);
    Py_CLEAR(*xc);
    for (int k = 0; k < 3; k++) {
        Py_CLEAR(out[k]);
    }
}

static int rownorm_bwd_cuda(const char *op, const pf_rownorm *P, PfTensor *g, PfTensor *x,
                            PfTensor *w, PfTensor *b, const int *want, int device,
                            const PfCudaLib *lib, PfTensor **out)
{
    PfTensor *gc = NULL, *xc = NULL, *wc = NULL, *like[3] = {x, w, b};
    if (cuda_grad_outputs(op, g, x, like, want, &gc, out) < 0 ||
        (xc = pf_nn_contig(x, x->dtype, op)) == NULL ||
        (w != NULL && (wc = pf_nn_contig(w, w->dtype, op)) == NULL)) {
        goto fail;
    }
    PfCudaRowNorm R = {P->rows, P->n, P->groups, P->nch, P->inner, P->eps, P->rms};
    PfCudaVec wv = pf_nn_cuda_vec(wc), dw = pf_nn_cuda_vec(out[1]), db = pf_nn_cuda_vec(out[2]);
    int status = lib->rownorm_backward(device, (int)x->dtype, &R, pf_tensor_data(gc),
                                       pf_tensor_data(xc), &wv,
                                       out[0] != NULL ? pf_tensor_data(out[0]) : NULL, &dw, &db);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        goto fail;
    }
    Py_DECREF(gc);
    Py_DECREF(xc);
    Py_XDECREF(wc);
    return 0;
fail:
    Py_XDECREF(wc);
    cuda_grads_clear(&gc, &xc, out);
    return -1;
}

static int batch_norm_bwd_cuda(const char *op, const pf_bn_geom *G, int training, double eps,
                               PfTensor *g, PfTensor *x, PfTensor *rm, PfTensor *rv, PfTensor *w,
                               PfTensor *b, const int *want, int device, const PfCudaLib *lib,
                               PfTensor **out)
{
    PfTensor *gc = NULL, *xc = NULL, *like[3] = {x, w, b};
    if (cuda_grad_outputs(op, g, x, like, want, &gc, out) < 0 ||
        (xc = pf_nn_contig(x, x->dtype, op)) == NULL) {
        goto fail;
    }
    PfCudaBatchNorm B = {G->outer, G->C, G->inner, training, 0.0, eps};
    PfCudaVec vm = pf_nn_cuda_vec(rm), vv = pf_nn_cuda_vec(rv), vw = pf_nn_cuda_vec(w),
              dw = pf_nn_cuda_vec(out[1]), db = pf_nn_cuda_vec(out[2]);
    int status = lib->batch_norm_backward(device, (int)x->dtype, &B, pf_tensor_data(gc),
                                          pf_tensor_data(xc), &vm, &vv, &vw,
                                          out[0] != NULL ? pf_tensor_data(out[0]) : NULL, &dw,
                                          &db);
    if (status != 0) {
        pf_cuda_raise(lib, op, status);
        goto fail;
    }
    Py_DECREF(gc);
    Py_DECREF(xc);
    return 0;
fail:
    cuda_grads_clear(&gc, &xc, out);
    return -1;
}

typedef enum { NORM_LAYER, NORM_RMS, NORM_GROUP } norm_kind;

static int bw_rownorm(PfNode *n, PyObject **gout, PyObject **gin, norm_kind kind)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = pf_ops[n->kind].name;
    const char *const *names = kind == NORM_LAYER ? pf_nn_args_layer_norm
                               : kind == NORM_RMS ? pf_nn_args_rms_norm : pf_nn_args_group_norm;
    PyObject *v[5] = {NULL};
    int slot[5];
    int rc = -1;
    double *buf = NULL;
    if (pf_node_args(n, names, 2, v) < 0) {
        return -1;
    }
    int ib = kind == NORM_RMS ? -1 : 3, ie = kind == NORM_RMS ? 3 : 4;
    arg_slots(n, v, 5, slot);
    PyObject *xo = arg_in(A, n, v[0], slot[0]), *wo = arg_in(A, n, v[2], slot[2]);
    if (xo == NULL) {
        goto done;
    }
    PfTensor *x = (PfTensor *)xo, *w = (PfTensor *)wo;
    pf_rownorm P;
    int64_t ns[PF_MAX_DIMS];
    int k = 0;
    if ((kind == NORM_GROUP ? pf_nn_group_norm_geom(x, v[1], op, &P)
                            : pf_nn_layer_norm_geom(x, v[1], op, ns, &k, &P)) < 0) {
        goto done;
    }
    P.rms = kind == NORM_RMS;
    if (kind == NORM_RMS ? pf_nn_rms_eps(v[ie], x->dtype, op, &P.eps) < 0
                         : (v[ie] != NULL && pf_double_arg(v[ie], op, "eps", &P.eps) < 0)) {
        goto done;
    }
    int wx = wants(n, slot[0]), ww = wants(n, slot[2]), wb = ib >= 0 && wants(n, slot[ib]);
    PyObject *g = gout[0];
    PyObject *dx = NULL, *dw = NULL, *db = NULL;
    int where = PF_NN_ON_CPU;
    const PfCudaLib *lib = NULL;
    if (!pf_grad_enabled() && kind != NORM_LAYER) {
        PfTensor *ts[3] = {(PfTensor *)g, x, w};
        if ((where = pf_nn_cuda_route(op, ts, 3, &lib)) == PF_NN_ROUTE_ERROR) {
            goto done;
        }
    }
    if (where != PF_NN_ON_CPU) {
        /* the fused backward kernels of the CUDA library */
        int want[3] = {wx, ww, wb};
        PfTensor *r[3] = {NULL, NULL, NULL};
        if (rownorm_bwd_cuda(op, &P, (PfTensor *)g, x, w, wb ? (PfTensor *)v[ib] : NULL, want,
                             where, lib, r) < 0) {
            goto done;
        }
        dx = r[0] != NULL ? A_t(A, r[0]) : NULL;
        dw = r[1] != NULL ? A_t(A, r[1]) : NULL;
        db = r[2] != NULL ? A_t(A, r[2]) : NULL;
    }
    else if (!pf_grad_enabled()) {
        /* the fused backward kernel */
        pf_dtype comp = pf_nn_comp(x->dtype);
        int64_t wlen = P.groups * P.nch;
        PfTensor *gc = (PfTensor *)A_t(A, pf_nn_contig((PfTensor *)g, comp, op));
        PfTensor *xc = (PfTensor *)A_t(A, pf_nn_contig(x, comp, op));
        PfTensor *wc = w != NULL ? (PfTensor *)A_t(A, pf_nn_contig(w, comp, op)) : NULL;
        if (gc == NULL || xc == NULL || (w != NULL && wc == NULL)) {
            goto done;
        }
        if (!pf_tensor_on_cpu(x)) {
            /* layer_norm on a device (its row has G): the library's fused backward */
            pf_device dev = x->storage->device;
            PfTensor *b = ib >= 0 && wb ? (PfTensor *)v[ib] : NULL;
            PfTensor *dxd = wx ? (PfTensor *)A_t(A, pf_tensor_empty(x->ndim, x->shape, comp,
                                                                      dev, op)) : NULL;
            PfTensor *dwd = ww ? (PfTensor *)A_t(A, pf_tensor_empty(w->ndim, w->shape, comp,
                                                                      dev, op)) : NULL;
            PfTensor *dbd = wb ? (PfTensor *)A_t(A, pf_tensor_empty(b->ndim, b->shape, comp,
                                                                      dev, op)) : NULL;
            if ((wx && dxd == NULL) || (ww && dwd == NULL) || (wb && dbd == NULL) ||
                pf_layer_norm_bwd_cuda(gc, xc, wc, dxd, dwd, dbd, P.rows, P.n, P.eps, op) < 0) {
                goto done;
            }
            dx = (PyObject *)dxd;
            dw = (PyObject *)dwd;
            db = (PyObject *)dbd;
        }
        else {
            PfTensor *dxt = wx ? (PfTensor *)A_t(A, pf_tensor_empty(x->ndim, x->shape, comp, CPU,
                                                                      op)) : NULL;
            buf = PyMem_Malloc(sizeof(double) * (size_t)(2 * (wlen > 0 ? wlen : 1)));
            if ((wx && dxt == NULL) || buf == NULL) {
                if (buf == NULL) {
                    PyErr_NoMemory();
                }
                goto done;
            }
            if (pf_rownorm_bwd(&P, comp, pf_tensor_data(gc), pf_tensor_data(xc),
                               wc ? pf_tensor_data(wc) : NULL, dxt ? pf_tensor_data(dxt) : NULL,
                               ww ? buf : NULL, wb ? buf + wlen : NULL) < 0) {
                goto done;
            }
            dx = (PyObject *)dxt;
            if (ww) {
                dw = A_t(A, pf_nn_from_doubles(buf, w->ndim, w->shape, comp, op));
            }
            if (wb) {
                PfTensor *b = (PfTensor *)v[ib];
                db = A_t(A, pf_nn_from_doubles(buf + wlen, b->ndim, b->shape, comp, op));
            }
        }
    }
    else if (kind != NORM_GROUP) {
        /* with forward ops: xh = (x - mean) rstd over the last k axes */
        int nd = x->ndim, norm[PF_MAX_DIMS] = {0}, lead[PF_MAX_DIMS] = {0};
        for (int d = 0; d < nd; d++) {
            norm[d] = d >= nd - k;
            lead[d] = !norm[d];
        }
        PyObject *xc = kind == NORM_RMS ? xo : SUB(xo, A_red(A, PF_OP_MEAN, xo, norm, nd, 1));
        PyObject *rstd = E1(RSQRT, ADD(A_red(A, PF_OP_MEAN, MUL(xc, xc), norm, nd, 1),
                                       F(P.eps)));
        PyObject *xh = MUL(xc, rstd);
        if (wx) {
            PyObject *gw = w != NULL ? MUL(g, wo) : g;
            PyObject *t = SUB(gw, MUL(xh, A_red(A, PF_OP_MEAN, MUL(gw, xh), norm, nd, 1)));
            if (kind == NORM_LAYER) {
                t = SUB(t, A_red(A, PF_OP_MEAN, gw, norm, nd, 1));
            }
            dx = MUL(rstd, t);
        }
        if (ww) {
            dw = A_red(A, PF_OP_SUM, MUL(g, xh), lead, nd, 0);
        }
        if (wb) {
            db = A_red(A, PF_OP_SUM, g, lead, nd, 0);
        }
    }
    else {
        /* group norm with forward ops: (N, C, *) seen as (N, G, M) for the statistics */
        int nd = x->ndim, last[3] = {0, 0, 1}, notc[PF_MAX_DIMS];
        int64_t s3[3] = {x->shape[0], P.groups, P.n}, cs[PF_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            notc[d] = d != 1;
        }
        channel_shape(nd, 1, x->shape[1], cs);
        PyObject *x3 = A_reshape(A, xo, s3, 3);
        PyObject *xc3 = SUB(x3, A_red(A, PF_OP_MEAN, x3, last, 3, 1));
        PyObject *rstd = E1(RSQRT, ADD(A_red(A, PF_OP_MEAN, MUL(xc3, xc3), last, 3, 1),
                                       F(P.eps)));
        PyObject *xh3 = MUL(xc3, rstd);
        PyObject *xh = A_reshape(A, xh3, x->shape, nd);
        if (wx) {
            PyObject *gw = w != NULL ? MUL(g, A_reshape(A, wo, cs, nd)) : g;
            PyObject *gw3 = A_reshape(A, gw, s3, 3);
            PyObject *t = SUB(SUB(gw3, A_red(A, PF_OP_MEAN, gw3, last, 3, 1)),
                              MUL(xh3, A_red(A, PF_OP_MEAN, MUL(gw3, xh3), last, 3, 1)));
            dx = A_reshape(A, MUL(rstd, t), x->shape, nd);
        }
        if (ww) {
            dw = A_red(A, PF_OP_SUM, MUL(g, xh), notc, nd, 0);
        }
        if (wb) {
            db = A_red(A, PF_OP_SUM, g, notc, nd, 0);
        }
    }
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wx) {
        pf_arena_out(A, gin, slot[0], dx);
    }
    if (ww) {
        pf_arena_out(A, gin, slot[2], dw);
    }
    if (wb) {
        pf_arena_out(A, gin, slot[ib], db);
    }
    rc = 0;
done:
    PyMem_Free(buf);
    pf_arena_free(A);
    return rc;
}

static int bw_layer_norm(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_rownorm(n, gout, gin, NORM_LAYER);
}

static int bw_rms_norm(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_rownorm(n, gout, gin, NORM_RMS);
}

static int bw_group_norm(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_rownorm(n, gout, gin, NORM_GROUP);
}

/* ------------------------------------------------------------ batch norm */

/*
 * Training: dx = w rstd (g - mean(g) - xh mean(g xh)) over the axes other
 * than the channel's; eval: dx = g w rstd_running.  dw = sum(g xh),
 * db = sum(g).  The running buffers are not read in training (they have
 * been updated since).
 */
static int bw_batch_norm(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = "batch_norm";
    PyObject *v[9] = {NULL};
    int slot[9];
    int rc = -1, training, ax;
    double eps = 1e-5;
    double *buf = NULL;
    pf_bn_geom G;
    if (pf_node_args(n, pf_nn_args_batch_norm, 1, v) < 0) {
        return -1;
    }
    arg_slots(n, v, 9, slot);
    PyObject *xo = arg_in(A, n, v[0], slot[0]), *wo = arg_in(A, n, v[3], slot[3]);
    if (xo == NULL || pf_parse_bool(v[5], op, "training", 0, &training) < 0 ||
        (v[7] != NULL && pf_double_arg(v[7], op, "eps", &eps) < 0) ||
        pf_nn_batch_norm_geom((PfTensor *)xo, v[8], op, &G, &ax) < 0) {
        goto done;
    }
    PfTensor *x = (PfTensor *)xo, *w = (PfTensor *)wo;
    PyObject *rmo = NULL, *rvo = NULL;
    if (!training && ((rmo = arg_in(A, n, v[1], slot[1])) == NULL ||
                      (rvo = arg_in(A, n, v[2], slot[2])) == NULL)) {
        goto done;
    }
    int wx = wants(n, slot[0]), ww = wants(n, slot[3]), wb = wants(n, slot[4]);
    int64_t C = G.C;
    double M = (double)(G.outer * G.inner);
    PyObject *g = gout[0], *dx = NULL, *dw = NULL, *db = NULL;
    int where = PF_NN_ON_CPU;
    const PfCudaLib *lib = NULL;
    if (!pf_grad_enabled()) {
        PfTensor *ts[5] = {(PfTensor *)g, x, w, (PfTensor *)rmo, (PfTensor *)rvo};
        if ((where = pf_nn_cuda_route(op, ts, 5, &lib)) == PF_NN_ROUTE_ERROR) {
            goto done;
        }
    }
    if (where != PF_NN_ON_CPU) {
        /* the fused backward kernels of the CUDA library */
        int want[3] = {wx, ww, wb};
        PfTensor *r[3] = {NULL, NULL, NULL};
        if (batch_norm_bwd_cuda(op, &G, training, eps, (PfTensor *)g, x, (PfTensor *)rmo,
                                (PfTensor *)rvo, w, wb ? (PfTensor *)v[4] : NULL, want, where,
                                lib, r) < 0) {
            goto done;
        }
        dx = r[0] != NULL ? A_t(A, r[0]) : NULL;
        dw = r[1] != NULL ? A_t(A, r[1]) : NULL;
        db = r[2] != NULL ? A_t(A, r[2]) : NULL;
    }
    else if (!pf_grad_enabled()) {
        pf_dtype comp = pf_nn_comp(x->dtype);
        PfTensor *gc = (PfTensor *)A_t(A, pf_nn_contig((PfTensor *)g, comp, op));
        PfTensor *xc = (PfTensor *)A_t(A, pf_nn_contig(x, comp, op));
        buf = PyMem_Malloc(sizeof(double) * (size_t)(8 * (C > 0 ? C : 1)));
        if (gc == NULL || xc == NULL || buf == NULL) {
            if (buf == NULL) {
                PyErr_NoMemory();
            }
            goto done;
        }
        double *mean = buf, *var = buf + C, *sg = buf + 2 * C, *sgx = buf + 3 * C;
        double *wv = buf + 4 * C, *cA = buf + 5 * C, *cB = buf + 6 * C, *cD = buf + 7 * C;
        if (training) {
            if (pf_bn_stats(&G, comp, pf_tensor_data(xc), mean, var) < 0) {
                goto done;
            }
        }
        else {
            PfTensor *rm = (PfTensor *)rmo, *rv = (PfTensor *)rvo;
            for (int64_t c = 0; c < C; c++) {
                pf_cast_one(pf_tensor_data(rm) + c * rm->strides[0] * pf_dtypes[rm->dtype].itemsize,
                            rm->dtype, &mean[c], PF_FLOAT64);
                pf_cast_one(pf_tensor_data(rv) + c * rv->strides[0] * pf_dtypes[rv->dtype].itemsize,
                            rv->dtype, &var[c], PF_FLOAT64);
            }
        }
        for (int64_t c = 0; c < C; c++) {
            wv[c] = 1.0;
            if (w != NULL) {
                pf_cast_one(pf_tensor_data(w) + c * w->strides[0] * pf_dtypes[w->dtype].itemsize,
                            w->dtype, &wv[c], PF_FLOAT64);
            }
            var[c] = 1.0 / sqrt(var[c] + eps);      /* rstd from here on */
        }
        if (pf_bn_grad_sums(&G, comp, pf_tensor_data(gc), pf_tensor_data(xc), mean, sg, sgx) < 0) {
            goto done;
        }
        if (wx) {
            PfTensor *dxt = (PfTensor *)A_t(A, pf_tensor_empty(x->ndim, x->shape, comp, CPU, op));
            if (dxt == NULL) {
                goto done;
            }
            for (int64_t c = 0; c < C; c++) {
                double r = var[c];
                cA[c] = wv[c] * r;
                cB[c] = training ? -wv[c] * r * r * r * sgx[c] / M : 0.0;
                cD[c] = training ? -wv[c] * r * sg[c] / M : 0.0;
            }
            if (pf_bn_map(&G, comp, pf_tensor_data(gc), NULL, cA, training ? pf_tensor_data(xc)
                          : NULL, mean, cB, cD, pf_tensor_data(dxt)) < 0) {
                goto done;
            }
            dx = (PyObject *)dxt;
        }
        for (int64_t c = 0; c < C; c++) {
            sgx[c] *= var[c];       /* sum(g xh) */
        }
        int64_t cshape[1] = {C};
        if (ww) {
            dw = A_t(A, pf_nn_from_doubles(sgx, 1, cshape, comp, op));
        }
        if (wb) {
            db = A_t(A, pf_nn_from_doubles(sg, 1, cshape, comp, op));
        }
    }
    else {
        int nd = x->ndim, axes[PF_MAX_DIMS];
        int64_t cs[PF_MAX_DIMS];
        for (int d = 0; d < nd; d++) {
            axes[d] = d != ax;
        }
        channel_shape(nd, ax, C, cs);
        PyObject *wb_ = w != NULL ? A_reshape(A, wo, cs, nd) : NULL;
        PyObject *xh, *rstd;
        if (training) {
            PyObject *xc = SUB(xo, A_red(A, PF_OP_MEAN, xo, axes, nd, 1));
            rstd = E1(RSQRT, ADD(A_red(A, PF_OP_MEAN, MUL(xc, xc), axes, nd, 1), F(eps)));
            xh = MUL(xc, rstd);
        }
        else {
            rstd = E1(RSQRT, ADD(A_reshape(A, rvo, cs, nd), F(eps)));
            xh = MUL(SUB(xo, A_reshape(A, rmo, cs, nd)), rstd);
        }
        if (wx) {
            PyObject *s = wb_ != NULL ? MUL(rstd, wb_) : rstd;
            if (training) {
                dx = MUL(s, SUB(SUB(g, A_red(A, PF_OP_MEAN, g, axes, nd, 1)),
                                MUL(xh, A_red(A, PF_OP_MEAN, MUL(g, xh), axes, nd, 1))));
            }
            else {
                dx = MUL(g, s);
            }
        }
        if (ww) {
            dw = A_red(A, PF_OP_SUM, MUL(g, xh), axes, nd, 0);
        }
        if (wb) {
            db = A_red(A, PF_OP_SUM, g, axes, nd, 0);
        }
    }
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wx) {
        pf_arena_out(A, gin, slot[0], dx);
    }
    if (ww) {
        pf_arena_out(A, gin, slot[3], dw);
    }
    if (wb) {
        pf_arena_out(A, gin, slot[4], db);
    }
    rc = 0;
done:
    PyMem_Free(buf);
    pf_arena_free(A);
    return rc;
}

/* ------------------------------------------------------------ cross-entropy, nll */

/* the per-row factor of a class loss's gradient: g shaped to broadcast against the input */
static PyObject *class_scale(pf_arena *A, PyObject *g, pf_nn_red red, const PfTensor *x,
                             const pf_nn_ce *cg, PyObject *den)
{
    if (red == PF_RED_SUM) {
        return g;
    }
    if (red == PF_RED_MEAN) {
        return DIV(g, den);
    }
    if (cg->unbatched) {
        return g;
    }
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[1] = 1;
    return A_reshape(A, g, shape, x->ndim);
}

/*
 * cross_entropy and nll_loss.  With q the weighted target distribution
 * (constant for class indices) and Q its row sum:
 *   cross_entropy: dx = s (softmax(x) Q - q), dtarget (probabilities)
 *                  = -s (1 - eps) w log_softmax(x);
 *   nll_loss:      dx = -s q  (q = w[t] at the target).
 * s is g per row (none), g / den (mean) or g (sum).
 */
static int bw_class_loss(PfNode *n, PyObject **gout, PyObject **gin, int is_nll)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = is_nll ? "nll_loss" : "cross_entropy";
    PyObject *v[6] = {NULL};
    int slot[6];
    int rc = -1;
    double *srow = NULL;
    if (pf_node_args(n, is_nll ? pf_nn_args_nll_loss : pf_nn_args_cross_entropy, 2, v) < 0) {
        return -1;
    }
    arg_slots(n, v, 6, slot);
    PyObject *xo = arg_in(A, n, v[0], slot[0]), *to = arg_in(A, n, v[1], slot[1]);
    PyObject *wo = arg_in(A, n, v[2], slot[2]);
    pf_nn_ce cg;
    pf_nn_red red;
    int64_t ignore = -100;
    double eps = 0;
    if (xo == NULL || to == NULL || (v[2] != NULL && v[2] != Py_None && wo == NULL) ||
        pf_nn_ce_geom((PfTensor *)xo, (PfTensor *)to, !is_nll, op, &cg) < 0 ||
        (v[3] != NULL && pf_int_arg(v[3], op, "ignore_index", &ignore) < 0) ||
        pf_nn_reduction(v[4], op, &red) < 0 ||
        (!is_nll && v[5] != NULL && pf_double_arg(v[5], op, "label_smoothing", &eps) < 0)) {
        goto done;
    }
    if (wants(n, slot[2])) {
        PyErr_Format(PyExc_RuntimeError, "%s: no gradient with respect to weight (class weights "
                     "are constants, as in PyTorch); pass weight.detach()", op);
        goto done;
    }
    PfTensor *x = (PfTensor *)xo, *t = (PfTensor *)to, *w = (PfTensor *)wo;
    pf_dtype comp = pf_nn_comp(x->dtype);
    int64_t rows = cg.N * cg.K, C = cg.C;
    int wx = wants(n, slot[0]), wt = cg.probs && wants(n, slot[1]);
    PfTensor *xr = NULL, *tr = NULL, *wc = NULL;
    /* on a device: q and the mean's denominator from ops there, then the composed path */
    int dev = !pf_tensor_on_cpu(x);
    PyObject *qd = NULL, *dend = NULL;
    if (dev && (wx || wt)) {
        if (pf_nn_class_q_cuda(op, x, t, w, &cg, ignore, eps, &qd, &dend) < 0) {
            goto done;
        }
        pf_keep(A, qd);
        pf_keep(A, dend);
    }
    if (!dev && (wx || wt) && ((xr = (PfTensor *)A_t(A, pf_nn_class_rows(x, &cg, comp, op))) == NULL ||
                       (tr = (PfTensor *)A_t(A, cg.probs ? pf_nn_class_rows(t, &cg, comp, op)
                                             : pf_nn_class_targets(t, &cg, ignore, op))) == NULL ||
                       (w != NULL && (wc = (PfTensor *)A_t(A, pf_nn_contig(w, comp, op))) == NULL))) {
        goto done;
    }
    if (!wx && !wt) {
        rc = 0;
        goto done;
    }
    pf_xent P = {rows, C, NULL, NULL, NULL, ignore, eps};
    if (!dev) {
        P.target = cg.probs ? NULL : (const int64_t *)pf_tensor_data(tr);
        P.probs = cg.probs ? pf_tensor_data(tr) : NULL;
        P.weight = wc ? pf_tensor_data(wc) : NULL;
    }
    /* the mean's denominator: summed target weights (class indices) or the row count */
    double den = (double)rows;
    if (!cg.probs && !dev) {
        den = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t tv = P.target[r];
            if (tv != ignore) {
                double wt_ = 1.0;
                if (wc != NULL) {
                    pf_cast_one(pf_tensor_data(wc) + tv * pf_dtypes[comp].itemsize, comp, &wt_,
                                PF_FLOAT64);
                }
                den += wt_;
            }
        }
    }
    PyObject *g = gout[0], *dx = NULL, *dt = NULL;
    int64_t rshape[2] = {rows, C};
    PyObject *s = NULL, *deno = dev ? dend : F(den);
    if (wx && (is_nll || dev || pf_grad_enabled())) {
        /* class indices: q is a constant, built by the kernel in the input's layout;
           probabilities: q depends on the target and is built from ops below */
        PyObject *q = NULL;
        if (dev) {
            q = qd;
        }
        else if (!cg.probs) {
            PfTensor *qr = (PfTensor *)A_t(A, pf_tensor_empty(2, rshape, comp, CPU, op));
            if (qr == NULL) {
                goto done;
            }
            pf_xent_target_dist(&P, comp, pf_tensor_data(qr));
            q = A_t(A, pf_nn_class_unrows(qr, x, &cg));
        }
        s = class_scale(A, g, red, x, &cg, deno);
        int cls = cg.unbatched ? 0 : 1;
        int cmask[PF_MAX_DIMS] = {0};
        cmask[cls] = 1;
        if (is_nll) {
            dx = E1(NEG, MUL(s, q));
        }
        else {
            if (cg.probs) {
                int64_t cs[PF_MAX_DIMS];
                channel_shape(x->ndim, cls, C, cs);
                PyObject *tt = ADD(MUL(to, F(1.0 - eps)), F(eps / (double)C));
                q = w != NULL ? MUL(tt, A_reshape(A, wo, cs, x->ndim)) : tt;
            }
            /* softmax from exp(x - max): the max is a constant (softmax does not depend on it) */
            pf_grad_disabled++;
            PyObject *mx = A_red(A, PF_OP_MAX, xo, cmask, x->ndim, 1);
            PyObject *fin = mx ? E1(ISFINITE, mx) : NULL;
            PyObject *m = fin ? A_ew3(A, PF_OP_WHERE, fin, mx, F(0.0)) : NULL;
            pf_grad_disabled--;
            PyObject *e = E1(EXP, SUB(xo, m));
            PyObject *p = DIV(e, A_red(A, PF_OP_SUM, e, cmask, x->ndim, 1));
            PyObject *Q = A_red(A, PF_OP_SUM, q, cmask, x->ndim, 1);
            dx = MUL(s, SUB(MUL(p, Q), q));
        }
    }
    else if (wx) {
        /* the fused kernel: dx rows = s (softmax Q - q) */
        PfTensor *dxr = (PfTensor *)A_t(A, pf_tensor_empty(2, rshape, comp, CPU, op));
        if (dxr == NULL) {
            goto done;
        }
        double scale = 1.0;
        if (red == PF_RED_NONE) {
            PfTensor *gc = (PfTensor *)A_t(A, pf_nn_contig((PfTensor *)g, PF_FLOAT64, op));
            if (gc == NULL) {
                goto done;
            }
            srow = (double *)pf_tensor_data(gc);
        }
        else {
            scale = pf_nn_scalar((PfTensor *)g) / (red == PF_RED_MEAN ? den : 1.0);
        }
        pf_xent_bwd(&P, comp, pf_tensor_data(xr), scale, srow, pf_tensor_data(dxr));
        dx = A_t(A, pf_nn_class_unrows(dxr, x, &cg));
    }
    if (wt) {
        /* dtarget = -s (1 - eps) w log_softmax(x), with forward ops */
        int cls = cg.unbatched ? 0 : 1;
        int cmask[PF_MAX_DIMS] = {0};
        int64_t cs[PF_MAX_DIMS];
        cmask[cls] = 1;
        channel_shape(x->ndim, cls, C, cs);
        if (s == NULL) {
            s = class_scale(A, g, red, x, &cg, deno);
        }
        int saved = pf_grad_disabled;
        pf_grad_disabled++;
        PyObject *mx = A_red(A, PF_OP_MAX, xo, cmask, x->ndim, 1);
        PyObject *fin = mx ? E1(ISFINITE, mx) : NULL;
        PyObject *m = fin ? A_ew3(A, PF_OP_WHERE, fin, mx, F(0.0)) : NULL;
        pf_grad_disabled = saved;
        PyObject *xs = SUB(xo, m);
        PyObject *logp = SUB(xs, E1(LOG, A_red(A, PF_OP_SUM, E1(EXP, xs), cmask, x->ndim, 1)));
        PyObject *f = MUL(s, F(-(1.0 - eps)));
        if (w != NULL) {
            f = MUL(f, A_reshape(A, wo, cs, x->ndim));
        }
        dt = MUL(f, logp);
    }
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wx) {
        pf_arena_out(A, gin, slot[0], dx);
    }
    if (wt) {
        pf_arena_out(A, gin, slot[1], dt);
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

static int bw_cross_entropy(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_class_loss(n, gout, gin, 0);
}

static int bw_nll_loss(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_class_loss(n, gout, gin, 1);
}

/* ------------------------------------------------ elementwise losses */

/*
 * d = x - t, s = g (none), g / numel (mean) or g (sum):
 *   mse 2 d s; l1 sign(d) s; huber clip(d, -delta, delta) s;
 *   smooth_l1 clip(d / beta, -1, 1) s (sign(d) s for beta 0);
 * the target's gradient is the negative.
 */
static int bw_pointwise(PfNode *n, PyObject **gout, PyObject **gin, pf_ewloss kind)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = pf_ops[n->kind].name;
    const char *const *names = kind == PF_LOSS_HUBER ? pf_nn_args_huber_loss
                               : kind == PF_LOSS_SMOOTH_L1 ? pf_nn_args_smooth_l1_loss
                               : pf_nn_args_pointwise_loss;
    PyObject *v[4] = {NULL};
    int slot[4], rc = -1;
    pf_nn_red red;
    double prm = 1.0;
    if (pf_node_args(n, names, 2, v) < 0) {
        return -1;
    }
    arg_slots(n, v, 4, slot);
    PyObject *xo = arg_in(A, n, v[0], slot[0]), *to = arg_in(A, n, v[1], slot[1]);
    if (xo == NULL || to == NULL || pf_nn_reduction(v[2], op, &red) < 0 ||
        (v[3] != NULL && pf_double_arg(v[3], op, "beta or delta", &prm) < 0)) {
        goto done;
    }
    PfTensor *x = (PfTensor *)xo, *t = (PfTensor *)to;
    int64_t bs[PF_MAX_DIMS];
    int bnd;
    if (pf_broadcast_shapes(x->shape, x->ndim, t->shape, t->ndim, bs, &bnd, op) < 0) {
        goto done;
    }
    PyObject *g = gout[0];
    PyObject *s = red == PF_RED_MEAN ? DIV(g, F((double)pf_numel(bs, bnd))) : g;
    PyObject *d = SUB(xo, to), *gd;
    switch (kind) {
    case PF_LOSS_MSE:
        gd = MUL(d, F(2.0));
        break;
    case PF_LOSS_HUBER:
        gd = A_clip(A, d, -prm, prm);
        break;
    case PF_LOSS_SMOOTH_L1:
        /* beta 0 is the L1 loss */
        gd = prm > 0 ? A_clip(A, DIV(d, F(prm)), -1.0, 1.0) : E1(SIGN, d);
        break;
    default:
        gd = E1(SIGN, d);
        break;
    }
    PyObject *gx = MUL(s, gd);
    PyObject *gt = wants(n, slot[1]) ? E1(NEG, gx) : NULL;
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wants(n, slot[0])) {
        pf_arena_out(A, gin, slot[0], gx);
    }
    if (gt != NULL) {
        pf_arena_out(A, gin, slot[1], gt);
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

static int bw_mse_loss(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_pointwise(n, gout, gin, PF_LOSS_MSE);
}

static int bw_l1_loss(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_pointwise(n, gout, gin, PF_LOSS_L1);
}

static int bw_huber_loss(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_pointwise(n, gout, gin, PF_LOSS_HUBER);
}

static int bw_smooth_l1_loss(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_pointwise(n, gout, gin, PF_LOSS_SMOOTH_L1);
}

/*
 * binary_cross_entropy on probabilities p (lp, lq the clamped logs of p
 * and 1 - p):  dp = s w (p - t) / max((1 - p) p, 1e-12) (PyTorch's
 * backward), dt = s w (lq - lp), dw = s l.
 * with logits (sp = softplus(-x), lw = 1 + (pw - 1) t):
 *   dx = s w ((1 - t) - lw (1 - sigmoid(x))), dt = s w ((pw - 1) sp - x),
 *   dpw = s w t sp, dw = s l.
 */
static int bw_bce(PfNode *n, PyObject **gout, PyObject **gin, int logits)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = pf_ops[n->kind].name;
    PyObject *v[5] = {NULL};
    int slot[5], rc = -1;
    pf_nn_red red;
    if (pf_node_args(n, logits ? pf_nn_args_bce_logits : pf_nn_args_bce, 2, v) < 0) {
        return -1;
    }
    arg_slots(n, v, 5, slot);
    PyObject *xo = arg_in(A, n, v[0], slot[0]), *to = arg_in(A, n, v[1], slot[1]);
    PyObject *wo = arg_in(A, n, v[2], slot[2]);
    PyObject *pwo = logits ? arg_in(A, n, v[4], slot[4]) : NULL;
    if (xo == NULL || to == NULL || pf_nn_reduction(v[3], op, &red) < 0 || A->err) {
        goto done;
    }
    PfTensor *x = (PfTensor *)xo;
    int wx = wants(n, slot[0]), wt = wants(n, slot[1]), ww = wants(n, slot[2]);
    int wp = logits && wants(n, slot[4]);
    PyObject *g = gout[0];
    PyObject *s = red == PF_RED_MEAN ? DIV(g, F((double)pf_numel(x->shape, x->ndim))) : g;
    PyObject *sw = wo != NULL ? MUL(s, wo) : s;
    PyObject *dx = NULL, *dt = NULL, *dw = NULL, *dp = NULL;
    if (!logits) {
        PyObject *lp = E2(MAXIMUM, E1(LOG, xo), F(-100.0));
        PyObject *lq = E2(MAXIMUM, E1(LOG1P, E1(NEG, xo)), F(-100.0));
        if (wx) {
            PyObject *den = E2(MAXIMUM, MUL(SUB(F(1.0), xo), xo), F(1e-12));
            dx = DIV(MUL(sw, SUB(xo, to)), den);
        }
        if (wt) {
            dt = MUL(sw, SUB(lq, lp));
        }
        if (ww) {
            PyObject *l = E1(NEG, ADD(MUL(to, lp), MUL(SUB(F(1.0), to), lq)));
            dw = MUL(s, l);
        }
    }
    else {
        PyObject *sp = ADD(E1(RELU, E1(NEG, xo)), E1(LOG1P, E1(EXP, E1(NEG, E1(ABS, xo)))));
        PyObject *pm1 = pwo != NULL ? SUB(pwo, F(1.0)) : NULL;
        PyObject *lw = pwo != NULL ? ADD(F(1.0), MUL(pm1, to)) : NULL;
        if (wx) {
            PyObject *sig = E1(SIGMOID, xo);
            dx = pwo == NULL ? MUL(sw, SUB(sig, to))
                             : MUL(sw, SUB(SUB(F(1.0), to), MUL(lw, SUB(F(1.0), sig))));
        }
        if (wt) {
            dt = pwo == NULL ? E1(NEG, MUL(sw, xo)) : MUL(sw, SUB(MUL(pm1, sp), xo));
        }
        if (wp) {
            dp = MUL(sw, MUL(to, sp));
        }
        if (ww) {
            PyObject *l = ADD(MUL(SUB(F(1.0), to), xo), lw != NULL ? MUL(lw, sp) : sp);
            dw = MUL(s, l);
        }
    }
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wx) {
        pf_arena_out(A, gin, slot[0], dx);
    }
    if (wt) {
        pf_arena_out(A, gin, slot[1], dt);
    }
    if (ww) {
        pf_arena_out(A, gin, slot[2], dw);
    }
    if (wp) {
        pf_arena_out(A, gin, slot[4], dp);
    }
    rc = 0;
done:
    pf_arena_free(A);
    return rc;
}

static int bw_binary_cross_entropy(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_bce(n, gout, gin, 0);
}

static int bw_bce_with_logits(PfNode *n, PyObject **gout, PyObject **gin)
{
    return bw_bce(n, gout, gin, 1);
}

/* ------------------------------------------------------------ attention */

/*
 * O = P' V with P = softmax(scale Q K^T + mask), P' = P * dropout mask:
 *   dV = P'^T dO; dP' = dO V^T; dP = dP' * mask;
 *   dS = P (dP - sum(P dP)) (the masked scores' gradient, also the float
 *   mask's); dQ = scale dS K; dK = scale dS^T Q.
 * P is recomputed (one GEMM and the row pass) rather than saved.
 * Gradients come in the broadcast batch shape; the engine sums them to
 * each input's.
 */
static int bw_attention(PfNode *n, PyObject **gout, PyObject **gin)
{
    pf_arena A_ = {0}, *A = &A_;
    const char *op = "scaled_dot_product_attention";
    PyObject *v[9] = {NULL};
    int slot[9], rc = -1;
    int64_t *moff = NULL;
    if (pf_node_args(n, pf_nn_args_attention, 3, v) < 0) {
        return -1;
    }
    arg_slots(n, v, 9, slot);
    for (int i = 0; i < 4; i++) {
        if (slot[i] >= 0 && arg_in(A, n, v[i], slot[i]) == NULL) {
            goto done;      /* a saved input changed in place since */
        }
    }
    pf_nn_attn G;
    PfTensor *q, *k, *val, *mask;
    if (pf_nn_attn_parse(v, op, &G, &q, &k, &val, &mask) < 0) {
        goto done;
    }
    pf_keep(A, (PyObject *)q);
    pf_keep(A, (PyObject *)k);
    pf_keep(A, (PyObject *)val);
    if (mask != NULL) {
        pf_keep(A, (PyObject *)mask);
    }
    int wq = wants(n, slot[0]), wk = wants(n, slot[1]), wv = wants(n, slot[2]);
    int wm = mask != NULL && mask->dtype != PF_BOOL && wants(n, slot[3]);
    pf_dtype comp = pf_nn_comp(q->dtype);
    int64_t sshape[PF_MAX_DIMS];
    memcpy(sshape, G.bshape, sizeof(int64_t) * (size_t)G.nbd);
    sshape[G.nbd] = G.L;
    sshape[G.nbd + 1] = G.S;
    int nd = G.nbd + 2;
    PyObject *g = gout[0], *dq = NULL, *dk = NULL, *dv = NULL, *dm = NULL;
    if (!pf_grad_enabled()) {
        /* the fused backward (kernels/nn_kernels.c: pf_attn_backward) */
        pf_attn K = {0, G.nb, G.L, G.S, G.scale, G.causal, NULL, 0, NULL, 0, 0, G.dropout_p,
                     G.seed, G.offset};
        PfTensor *mc = NULL;
        PfTensor *qc = (PfTensor *)A_t(A, pf_nn_attn_full(q, &G, G.L, G.E, comp, op));
        PfTensor *kc = (PfTensor *)A_t(A, pf_nn_attn_full(k, &G, G.S, G.E, comp, op));
        PfTensor *vc = (PfTensor *)A_t(A, pf_nn_attn_full(val, &G, G.S, G.Ev, comp, op));
        PfTensor *gc = (PfTensor *)A_t(A, pf_nn_contig((PfTensor *)g, comp, op));
        if (qc == NULL || kc == NULL || vc == NULL || gc == NULL ||
            pf_nn_attn_mask(&G, mask, comp, op, &mc, &moff, &K) < 0) {
            goto done;
        }
        if (mc != NULL) {
            pf_keep(A, (PyObject *)mc);
        }
        int64_t shp[PF_MAX_DIMS];
        memcpy(shp, G.bshape, sizeof(int64_t) * (size_t)G.nbd);
        PfTensor *out[4] = {NULL, NULL, NULL, NULL};      /* dq, dk, dv, dmask */
        int want[4] = {wq, wk, wv, wm};
        int64_t rows[4] = {G.L, G.S, G.S, G.L}, cols[4] = {G.E, G.E, G.Ev, G.S};
        void *d[4] = {NULL, NULL, NULL, NULL};
        for (int i = 0; i < 4; i++) {
            if (!want[i]) {
                continue;
            }
            shp[G.nbd] = rows[i];
            shp[G.nbd + 1] = cols[i];
            out[i] = (PfTensor *)A_t(A, pf_tensor_empty(nd, shp, comp, CPU, op));
            if (out[i] == NULL) {
                goto done;
            }
            d[i] = pf_tensor_data(out[i]);
        }
        if (pf_attn_backward(&K, comp, G.E, G.Ev, pf_tensor_data(qc), pf_tensor_data(kc),
                             pf_tensor_data(vc), pf_tensor_data(gc), d[0], d[1], d[2],
                             d[3]) < 0) {
            goto done;
        }
        dq = (PyObject *)out[0];
        dk = (PyObject *)out[1];
        dv = (PyObject *)out[2];
        dm = (PyObject *)out[3];
    }
    else {
        /* with forward ops: matmul, a softmax built from exp and sum, where */
        PyObject *dmask = NULL;
        if (G.dropout_p > 0) {
            /* the dropout mask, scaled, as a constant tensor of the scores' shape */
            PfTensor *mt = (PfTensor *)A_t(A, pf_tensor_empty(nd, sshape, comp, CPU, op));
            if (mt == NULL) {
                goto done;
            }
            pf_dropout_mask(comp, pf_tensor_data(mt), G.nb * G.L * G.S, G.dropout_p, G.seed,
                            G.offset);
            dmask = (PyObject *)mt;
        }
        PyObject *qo = (PyObject *)q, *ko = (PyObject *)k, *vo = (PyObject *)val;
        PyObject *sc = MUL(A_matmul(A, qo, A_swap(A, ko)), F(G.scale));
        PyObject *madd = NULL;
        if (mask != NULL && mask->dtype != PF_BOOL) {
            sc = ADD(sc, (PyObject *)mask);
        }
        else if (mask != NULL || G.causal) {
            /* a constant additive mask: 0 where attended, -inf elsewhere */
            PfTensor *ma = (PfTensor *)A_t(A, pf_tensor_empty(2, sshape + G.nbd, comp, CPU, op));
            if (ma == NULL) {
                goto done;
            }
            for (int64_t i = 0; i < G.L; i++) {
                for (int64_t j = 0; j < G.S; j++) {
                    double val_ = G.causal && j > i ? -INFINITY : 0.0;
                    pf_cast_one(&val_, PF_FLOAT64, pf_tensor_data(ma) + (i * G.S + j) *
                                pf_dtypes[comp].itemsize, comp);
                }
            }
            madd = (PyObject *)ma;
            if (mask != NULL) {
                madd = A_ew3(A, PF_OP_WHERE, (PyObject *)mask, madd, F(-INFINITY));
            }
            sc = ADD(sc, madd);
        }
        int last[PF_MAX_DIMS] = {0};
        last[nd - 1] = 1;
        pf_grad_disabled++;
        PyObject *mx = A_red(A, PF_OP_MAX, sc, last, nd, 1);
        PyObject *fin = mx ? E1(ISFINITE, mx) : NULL;
        PyObject *m = fin ? A_ew3(A, PF_OP_WHERE, fin, mx, F(0.0)) : NULL;
        pf_grad_disabled--;
        PyObject *e = E1(EXP, SUB(sc, m));
        PyObject *se = A_red(A, PF_OP_SUM, e, last, nd, 1);
        PyObject *zero = NULL;
        if (se != NULL) {
            pf_grad_disabled++;
            zero = E2(EQ, se, F(0.0));
            pf_grad_disabled--;
        }
        /* a row that attends to nothing: 0 / 1 instead of 0 / 0 */
        PyObject *P = DIV(e, zero ? A_ew3(A, PF_OP_WHERE, zero, F(1.0), se) : NULL);
        PyObject *Pd = dmask != NULL ? MUL(P, dmask) : P;
        if (wv) {
            dv = A_matmul(A, A_swap(A, Pd), g);
        }
        PyObject *dP = A_matmul(A, g, A_swap(A, vo));
        if (dmask != NULL) {
            dP = MUL(dP, dmask);
        }
        PyObject *dS = MUL(P, SUB(dP, A_red(A, PF_OP_SUM, MUL(dP, P), last, nd, 1)));
        if (wq) {
            dq = MUL(A_matmul(A, dS, ko), F(G.scale));
        }
        if (wk) {
            dk = MUL(A_matmul(A, A_swap(A, dS), qo), F(G.scale));
        }
        dm = dS;
    }
    if (A->err || PyErr_Occurred()) {
        goto done;
    }
    if (wq) {
        pf_arena_out(A, gin, slot[0], dq);
    }
    if (wk) {
        pf_arena_out(A, gin, slot[1], dk);
    }
    if (wv) {
        pf_arena_out(A, gin, slot[2], dv);
    }
    if (wm) {
        pf_arena_out(A, gin, slot[3], dm);
    }
    rc = 0;
done:
    PyMem_Free(moff);
    pf_arena_free(A);
    return rc;
}

const pf_bw_fn pf_bw_nnops_rules[PF_OP_COUNT] = {
    [PF_OP_BATCH_NORM] = bw_batch_norm,
    [PF_OP_LAYER_NORM] = bw_layer_norm,
    [PF_OP_GROUP_NORM] = bw_group_norm,
    [PF_OP_RMS_NORM] = bw_rms_norm,
    [PF_OP_CROSS_ENTROPY] = bw_cross_entropy,
    [PF_OP_NLL_LOSS] = bw_nll_loss,
    [PF_OP_BINARY_CROSS_ENTROPY] = bw_binary_cross_entropy,
    [PF_OP_BCE_WITH_LOGITS] = bw_bce_with_logits,
    [PF_OP_MSE_LOSS] = bw_mse_loss,
    [PF_OP_L1_LOSS] = bw_l1_loss,
    [PF_OP_HUBER_LOSS] = bw_huber_loss,
    [PF_OP_SMOOTH_L1_LOSS] = bw_smooth_l1_loss,
    [PF_OP_ATTENTION] = bw_attention,
};
