/*
 * linalg.c -- matrix products: matmul (and PyTorch's stricter mm and bmm),
 * dot, outer, tensordot and einsum, and the @ and @= operators.
 *
 * Every product becomes one batched GEMM problem for the engine in
 * kernels/gemm.c.  Operands are described by their strides, so transposed
 * and sliced views reach OpenBLAS without a copy; only a view that BLAS
 * cannot read (neither its rows nor its columns contiguous), or one in
 * another dtype, is copied first.  Products are computed in an engine dtype
 * -- float64, float32 (also for float16, and for bfloat16 on a CPU without
 * bfloat16 instructions, whose inputs are widened), bfloat16 (two bfloat16
 * operands, gemm_bf16.c: AMX or AVX512-BF16, which writes its float32 sums
 * rounded to bfloat16 itself) or int64 (every integer dtype and bool) --
 * and cast to the promoted dtype at the end, so a bfloat16 result is
 * rounded once from float32 sums either way.  Integer products wrap, as
 * NumPy's do; a bool product is an OR of ANDs (a sum of 0/1 products tested
 * for nonzero).
 *
 * einsum reduces every contraction to that one primitive: labels are
 * classified into batch (in both operands and kept), contracted (in both,
 * summed), left-only and right-only; the operands are permuted to
 * (batch, left, contracted) and (batch, contracted, right) and the groups
 * collapsed into the three matrix dimensions.  Labels that occur in one
 * operand only and are not kept are summed first, as a product with a
 * vector of ones.  More than two operands are contracted left to right.
 */
#include "autograd.h"
#include "cuda_backend.h"
#include "kernels/gemm.h"

/* Products with more multiply-adds than this release the GIL while they run. */
#define GIL_WORK (1 << 20)

#define MAX_EINSUM_OPERANDS 32

/* Label ids: 'A'-'Z' are 0-25 and 'a'-'z' 26-51 (sorted as ASCII), then one per '...' dim. */
#define ELLIPSIS_LABEL 52
#define NLABELS (ELLIPSIS_LABEL + PF_MAX_DIMS)

/* ------------------------------------------------------------- helpers */

static pf_dtype engine_dtype(pf_dtype res)
{
    if (res == PF_FLOAT64) {
        return PF_FLOAT64;
    }
    return pf_is_float(res) ? PF_FLOAT32 : PF_INT64;
}

/* ------------------------------------------------------------- on CUDA */

/*
 * Products of CUDA tensors go to cuBLAS through libpyframe_cuda.so
 * (cuda/blas.cu), in the result's own float dtype: float16 and bfloat16
 * are multiplied as they are, with float32 accumulation, rather than
 * widened first.  Integer and bool products are refused (cuBLAS multiplies
 * floats; a CUDA integer GEMM is not written).  While _C._cuda_host_matmul
 * runs a call (tests only), CPU tensors take that same path into the
 * library's host self-test, which runs the cuBLAS mapping with a reference
 * loop.  The GIL is held throughout: the device calls only queue work.
 */
static int route_to_cuda_host;   /* set by _C._cuda_host_matmul for one call */
static int allow_tf32;           /* pf.set_float32_matmul_precision("high") */
static int blas_loaded;

static int on_cuda_path(const PfTensor *t)
{
    return !pf_tensor_on_cpu(t) || route_to_cuda_host;
}

/* The engine dtype of a product of a and b with result dtype res on their device. */
static int pick_engine(pf_dtype res, const PfTensor *a, const PfTensor *b, const char *op,
                       pf_dtype *edt)
{
    if (!on_cuda_path(a)) {
        *edt = engine_dtype(res);
        return 0;
    }
    if (pf_is_float(res)) {
        *edt = res;
        return 0;
    }
    char d[32];
    return PF_ERRI(PyExc_TypeError,
                   "%s: integer and bool products do not run on CUDA (cuBLAS multiplies "
                   "floating-point matrices); got %s and %s on %s; cast the operands to a float "
                   "dtype (.float()) or compute on the cpu (.cpu())", op,
                   pf_dtypes[a->dtype].name, pf_dtypes[b->dtype].name,
                   pf_device_str(a->storage->device, d, sizeof(d)));
}

/*
 * Loads cuBLAS into the library (once): the loader's search path, then the
 * directories pyframe.cuda._cublas_search_dirs() names (the nvidia-cublas
 * wheel's, a toolkit's).  On failure *report says what was tried; -1 with
 * an exception only when the search itself failed.
 */
static int load_blas(const PfCudaLib *lib, char *report, size_t size)
{
    const char *dirs[32];
    int n = 0;
    PyObject *mod = PyImport_ImportModule("pyframe.cuda");
    PyObject *list = mod ? PyObject_CallMethod(mod, "_cublas_search_dirs", NULL) : NULL;
    Py_XDECREF(mod);
    if (list == NULL || !PyList_Check(list)) {
        if (list != NULL) {
            PyErr_SetString(PyExc_RuntimeError, "pyframe.cuda._cublas_search_dirs() must "
                            "return a list of str");
        }
        Py_XDECREF(list);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list) && n < 32; i++) {
        PyObject *o = PyList_GET_ITEM(list, i);
        const char *sdir = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
        if (sdir == NULL) {
            PyErr_Clear();
            continue;
        }
        dirs[n++] = sdir;
    }
    int status = lib->blas_load(dirs, n, report, size);
    Py_DECREF(list);
    blas_loaded = status == 0;
    return status == 0 ? 0 : 1;
}

/* The product on the library's side: cuBLAS on t's device, or the host self-test. */
static int run_cuda(const pf_gemm *g, const PfTensor *t, const char *op)
{
    const PfCudaLib *lib;
    int device = PF_CUDA_HOST;
    if (!pf_tensor_on_cpu(t)) {
        if ((lib = pf_cuda_lib(op)) == NULL) {
            return -1;
        }
        device = t->storage->device.index;
        char report[4096];
        int r = blas_loaded ? 0 : load_blas(lib, report, sizeof(report));
        if (r < 0) {
            return -1;
        }
        if (r > 0) {
            return PF_ERRI(PyExc_RuntimeError, "%s: products of CUDA tensors need cuBLAS, "
                           "which pyframe loads at run time: %s", op, report);
        }
    }
    else if ((lib = pf_cuda_library(op)) == NULL) {
        return -1;
    }
    PfCudaGemm cg;
    memset(&cg, 0, sizeof(cg));
    cg.dtype = (int)g->dtype;
    cg.allow_tf32 = allow_tf32;
    cg.nb = g->nb;
    memcpy(cg.bshape, g->bshape, sizeof(int64_t) * (size_t)g->nb);
    cg.m = g->m;
    cg.n = g->n;
    cg.k = g->k;
    const pf_gemm_mat *src[3] = {&g->a, &g->b, &g->c};
    PfCudaGemmMat *dst[3] = {&cg.a, &cg.b, &cg.c};
    for (int i = 0; i < 3; i++) {
        dst[i]->data = src[i]->data;
        memcpy(dst[i]->bstrides, src[i]->bstrides, sizeof(int64_t) * (size_t)g->nb);
        dst[i]->rs = src[i]->rs;
        dst[i]->cs = src[i]->cs;
    }
    int status = lib->gemm(device, &cg);
    return status == 0 ? 0 : pf_cuda_raise(lib, op, status);
}

/*
 * The engine of one product of operands of dtypes da and db, within a
 * computation whose engine dtype is edt: two bfloat16 operands take the
 * bfloat16 engine unless the active path is the generic one (a CPU
 * without AMX or AVX512-BF16, or the test switch); anything else, edt.
 */
static void choose_engine(pf_gemm *g, pf_dtype edt, pf_dtype da, pf_dtype db)
{
    g->dtype = edt;
    if (edt == PF_FLOAT32 && da == PF_BFLOAT16 && db == PF_BFLOAT16) {
        pf_bf16_path path = pf_bf16_path_active();
        if (path != PF_BF16_GENERIC) {
            g->dtype = PF_BFLOAT16;
            g->bf16_path = path;
        }
    }
}

/* The dtype the engine writes C in when the result's is not one it writes. */
/* pyframe's own loops (int64, the cpu's bfloat16 kernels) read any strides and any sizes */
static int own_kernel(const pf_gemm *g)
{
    return g->dtype == PF_INT64 || (g->dtype == PF_BFLOAT16 && g->bf16_path != PF_BF16_GENERIC);
}

static pf_dtype engine_out(const pf_gemm *g)
{
    return g->dtype == PF_BFLOAT16 && g->bf16_path != PF_BF16_GENERIC ? PF_FLOAT32 : g->dtype;
}

/*
 * Can the engine write C in dtype d?  The bfloat16 engine writes its
 * float32 sums either as they are or rounded to bfloat16 (so a bfloat16
 * result needs no float32 buffer and no second pass).
 */
static int engine_writes(const pf_gemm *g, pf_dtype d)
{
    /* only the cpu's bfloat16 kernels write float32 sums too; cuBLAS writes its own dtype */
    if (g->dtype == PF_BFLOAT16 && g->bf16_path != PF_BF16_GENERIC) {
        return d == PF_FLOAT32 || d == PF_BFLOAT16;
    }
    return d == g->dtype;
}

static int kind_rank(pf_dtype d)
{
    switch (pf_dtypes[d].kind) {
    case PF_KIND_BOOL: return 0;
    case PF_KIND_FLOAT: return 2;
    default: return 1;
    }
}

/* Byte range a view touches, to tell whether an output may alias an input. */
static void byte_range(const PfTensor *t, const char **lo, const char **hi)
{
    int64_t isz = pf_dtypes[t->dtype].itemsize, first = 0, last = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) {
            *lo = *hi = pf_tensor_data(t);
            return;
        }
        int64_t span = (t->shape[i] - 1) * t->strides[i];
        if (span < 0) {
            first += span;
        }
        else {
            last += span;
        }
    }
    *lo = pf_tensor_data(t) + first * isz;
    *hi = pf_tensor_data(t) + (last + 1) * isz;
}

static int overlaps(const PfTensor *x, const PfTensor *y)
{
    if (x->storage != y->storage) {
        return 0;
    }
    const char *alo, *ahi, *blo, *bhi;
    byte_range(x, &alo, &ahi);
    byte_range(y, &blo, &bhi);
    return alo < bhi && blo < ahi;
}

/*
 * Collapse n dimensions into one of *size elements and stride *stride,
 * when they are laid out like the rows of a row-major block (each stride a
 * multiple of the next).  Size-1 dimensions never matter.  0 if they are not.
 */
static int collapse(int n, const int64_t *shape, const int64_t *strides, int64_t *size,
                    int64_t *stride)
{
    int64_t sz = 1, st = 1;
    int have = 0;
    for (int i = n - 1; i >= 0; i--) {
        if (shape[i] == 1) {
            continue;
        }
        if (shape[i] == 0) {
            *size = 0;
            *stride = 1;
            return 1;
        }
        if (!have) {
            sz = shape[i];
            st = strides[i];
            have = 1;
        }
        else if (strides[i] == st * sz) {
            sz *= shape[i];
        }
        else {
            return 0;
        }
    }
    *size = sz;
    *stride = st;
    return 1;
}

static int gemm_has_work(const pf_gemm *g)
{
    return g->m > 0 && g->n > 0 && pf_numel(g->bshape, g->nb) > 0;
}

/*
 * Describe view `v` -- g->nb batch dimensions (size 1 where it broadcasts),
 * then nr dimensions that make the matrix rows and nc that make its columns
 * -- as operand `mat` of g.  It is copied (contiguous, in the engine dtype)
 * when its dtype differs, its groups do not collapse, or BLAS cannot read
 * its layout (the integer and bfloat16 engines read any strides); *copy
 * then holds the copy, which must outlive the product.
 */
static int prep_operand(const pf_gemm *g, pf_gemm_mat *mat, PfTensor *v, int nr, int nc,
                        PfTensor **copy, const char *op)
{
    *copy = NULL;
    memset(mat, 0, sizeof(*mat));
    mat->data = pf_tensor_data(v);
    if (!gemm_has_work(g) || g->k == 0) {
        return 0;   /* nothing of it is read */
    }
    PfTensor *cur = v;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t rows, rs, cols, cs;
        int trans, ld;
        if (cur->dtype == g->dtype &&
            collapse(nr, cur->shape + g->nb, cur->strides + g->nb, &rows, &rs) &&
            collapse(nc, cur->shape + g->nb + nr, cur->strides + g->nb + nr, &cols, &cs) &&
            (own_kernel(g) || pf_gemm_layout(rows, cols, rs, cs, &trans, &ld))) {
            mat->data = pf_tensor_data(cur);
            for (int d = 0; d < g->nb; d++) {
                mat->bstrides[d] = cur->shape[d] == 1 ? 0 : cur->strides[d];
            }
            mat->rs = rs;
            mat->cs = cs;
            return 0;
        }
        if (attempt == 0) {
            *copy = pf_tensor_copy_as(v, g->dtype, op);
            if (*copy == NULL) {
                return -1;
            }
            cur = *copy;
        }
    }
    return PF_ERRI(PyExc_RuntimeError, "%s: internal error: a contiguous copy is not readable "
                   "as a matrix; please report this", op);
}

/* As prep_operand for the result; 0 if the engine cannot write `v` directly. */
static int prep_output(const pf_gemm *g, pf_gemm_mat *mat, PfTensor *v, int nr, int nc)
{
    int64_t rows, rs, cols, cs;
    int trans, ld;
    memset(mat, 0, sizeof(*mat));
    mat->data = pf_tensor_data(v);
    if (!gemm_has_work(g)) {
        return 1;
    }
    if (!engine_writes(g, v->dtype) ||
        !collapse(nr, v->shape + g->nb, v->strides + g->nb, &rows, &rs) ||
        !collapse(nc, v->shape + g->nb + nr, v->strides + g->nb + nr, &cols, &cs) ||
        (g->dtype != PF_INT64 && !pf_gemm_layout(rows, cols, rs, cs, &trans, &ld))) {
        return 0;
    }
    for (int d = 0; d < g->nb; d++) {
        mat->bstrides[d] = v->shape[d] == 1 ? 0 : v->strides[d];
    }
    mat->rs = rs;
    mat->cs = cs;
    return 1;
}

/* The product of g; t is one of its operands (their device). */
static int run_engine(const pf_gemm *g, const PfTensor *t, const char *op)
{
    if (on_cuda_path(t)) {
        return run_cuda(g, t, op);
    }
    double work = (double)pf_numel(g->bshape, g->nb) * (double)g->m * (double)g->n *
                  (double)g->k;
    int64_t failed;
    if (work > GIL_WORK) {
        Py_BEGIN_ALLOW_THREADS
        failed = pf_gemm_run(g);
        Py_END_ALLOW_THREADS
    }
    else {
        failed = pf_gemm_run(g);
    }
    if (failed) {
        PyErr_Format(PyExc_MemoryError,
                     "%s: out of memory allocating %lld bytes of packing buffers for a bfloat16 "
                     "product of (%lld x %lld) and (%lld x %lld) matrices; use smaller operands "
                     "or fewer at a time", op, (long long)failed, (long long)g->m,
                     (long long)g->k, (long long)g->k, (long long)g->n);
        return -1;
    }
    return 0;
}

static int check_blas_dims(const pf_gemm *g, const char *op)
{
    if (own_kernel(g)) {
        return 0;
    }
    int64_t d[3] = {g->m, g->n, g->k};
    for (int i = 0; i < 3; i++) {
        if (d[i] > PF_GEMM_MAX_DIM) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: a matrix dimension of %lld exceeds the %lld that one BLAS call "
                           "takes; split the product into smaller blocks", op, (long long)d[i],
                           PF_GEMM_MAX_DIM);
        }
    }
    return 0;
}

/* The checks NumPy makes on out=: exact shape, no loss of kind, writable. */
static int check_out(PfTensor *out, int ndim, const int64_t *shape, pf_dtype res, const char *op)
{
    if (out->ndim != ndim || memcmp(out->shape, shape, sizeof(int64_t) * (size_t)ndim) != 0) {
        char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_ValueError,
                       "%s: the output has shape %s but the result has shape %s; out= (and "
                       "@=) need exactly the result's shape", op,
                       pf_shape_str(out->shape, out->ndim, a, sizeof(a)),
                       pf_shape_str(shape, ndim, b, sizeof(b)));
    }
    if (kind_rank(res) > kind_rank(out->dtype)) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: the result has dtype %s, which cannot be stored in the %s output "
                       "without losing its kind; use an output of dtype %s (or cast first)", op,
                       pf_dtypes[res].name, pf_dtypes[out->dtype].name, pf_dtypes[res].name);
    }
    return pf_tensor_check_writable(out, op);
}

/* ------------------------------------------------------------- matmul */

/*
 * v = t seen as (nb batch dims, rows, cols): t's own batch dimensions are
 * right-aligned (missing ones have size 1), and a missing rows or cols
 * dimension (a 1-D operand, or the output of one) has size 1.  v is a
 * stack copy of t's header that only the engine preparation reads.
 */
static void canonical_view(PfTensor *v, const PfTensor *t, int nb, int has_rows, int has_cols)
{
    int tb = t->ndim - has_rows - has_cols;
    int lead = nb - tb;
    *v = *t;
    v->ndim = nb + 2;
    for (int d = 0; d < nb; d++) {
        int td = d - lead;
        v->shape[d] = td < 0 ? 1 : t->shape[td];
        v->strides[d] = td < 0 ? 0 : t->strides[td];
    }
    int p = tb;
    v->shape[nb] = has_rows ? t->shape[p] : 1;
    v->strides[nb] = has_rows ? t->strides[p++] : 0;
    v->shape[nb + 1] = has_cols ? t->shape[p] : 1;
    v->strides[nb + 1] = has_cols ? t->strides[p] : 0;
}

/*
 * matmul with NumPy's rules: a 1-D operand is a row (a) or a column (b)
 * whose added dimension is dropped from the result; other dimensions are
 * batches that broadcast.  `out` may be NULL.  Returns a new reference.
 */
static PyObject *matmul_impl(const char *op, PfTensor *a, PfTensor *b, PfTensor *out)
{
    char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
    PfTensor *ca = NULL, *cb = NULL, *dst = NULL, *tmp = NULL;
    PyObject *result = NULL;
    if (a->ndim == 0 || b->ndim == 0) {
        return PF_ERR(PyExc_ValueError,
                      "%s: operand %s is 0-d (shapes %s and %s), but %s needs operands with at "
                      "least 1 dimension; to scale by a scalar use multiply (*)", op,
                      a->ndim == 0 ? "a" : "b", pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                      pf_shape_str(b->shape, b->ndim, sb, sizeof(sb)), op);
    }
    int a1 = a->ndim == 1, b1 = b->ndim == 1;
    int na = a1 ? 0 : a->ndim - 2, nbt = b1 ? 0 : b->ndim - 2;
    int ka = a->ndim - 1, kb = b1 ? 0 : b->ndim - 2;
    if (a->shape[ka] != b->shape[kb]) {
        return PF_ERR(PyExc_ValueError,
                      "%s: shapes %s and %s are not aligned: dimension %d of a (%lld) != "
                      "dimension %d of b (%lld); the last dimension of a must equal the %s "
                      "dimension of b (transpose an operand with .T or .mT?)", op,
                      pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                      pf_shape_str(b->shape, b->ndim, sb, sizeof(sb)), ka,
                      (long long)a->shape[ka], kb, (long long)b->shape[kb],
                      b1 ? "only" : "second-to-last");
    }
    pf_gemm g;
    memset(&g, 0, sizeof(g));
    g.nb = na > nbt ? na : nbt;
    g.m = a1 ? 1 : a->shape[a->ndim - 2];
    g.k = a->shape[ka];
    g.n = b1 ? 1 : b->shape[b->ndim - 1];
    for (int d = 0; d < g.nb; d++) {
        int da = d - (g.nb - na), db = d - (g.nb - nbt);
        int64_t sza = da < 0 ? 1 : a->shape[da], szb = db < 0 ? 1 : b->shape[db];
        if (sza != szb && sza != 1 && szb != 1) {
            return PF_ERR(PyExc_ValueError,
                          "%s: the batch dimensions of shapes %s and %s cannot be broadcast "
                          "together (%lld vs %lld); batch dimensions (all but the last two) "
                          "must match or be 1", op,
                          pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                          pf_shape_str(b->shape, b->ndim, sb, sizeof(sb)), (long long)sza,
                          (long long)szb);
        }
        g.bshape[d] = sza == 1 ? szb : sza;
    }
    int64_t shape[PF_MAX_DIMS];
    int nd = g.nb;
    memcpy(shape, g.bshape, sizeof(int64_t) * (size_t)g.nb);
    if (!a1) {
        shape[nd++] = g.m;
    }
    if (!b1) {
        shape[nd++] = g.n;
    }
    pf_dtype res = pf_promote(a->dtype, b->dtype);
    if (pick_engine(res, a, b, op, &g.dtype) < 0) {
        return NULL;
    }
    if (!on_cuda_path(a)) {
        choose_engine(&g, g.dtype, a->dtype, b->dtype);
    }
    pf_dtype cdt = engine_writes(&g, res) ? res : engine_out(&g);
    if (check_blas_dims(&g, op) < 0 || (out != NULL && check_out(out, nd, shape, res, op) < 0)) {
        return NULL;
    }

    /* the result: straight into out= when the engine can write it, else aside */
    PfTensor vc;
    if (out != NULL && engine_writes(&g, out->dtype) && !overlaps(out, a) &&
        !overlaps(out, b)) {
        canonical_view(&vc, out, g.nb, !a1, !b1);
        if (prep_output(&g, &g.c, &vc, 1, 1)) {
            dst = out;
        }
    }
    if (dst == NULL) {
        tmp = pf_tensor_empty(nd, shape, cdt, a->storage->device, op);
        if (tmp == NULL) {
            goto done;
        }
        canonical_view(&vc, tmp, g.nb, !a1, !b1);
        prep_output(&g, &g.c, &vc, 1, 1);     /* contiguous: always writable */
        dst = tmp;
    }
    g.c_bf16 = dst->dtype == PF_BFLOAT16;
    PfTensor va, vb;
    canonical_view(&va, a, g.nb, !a1, 1);
    canonical_view(&vb, b, g.nb, 1, !b1);
    if (prep_operand(&g, &g.a, &va, 1, 1, &ca, op) < 0 ||
        prep_operand(&g, &g.b, &vb, 1, 1, &cb, op) < 0 || run_engine(&g, a, op) < 0) {
        goto done;
    }
    if (out != NULL) {
        if (dst == tmp && pf_tensor_assign(out, tmp, op) < 0) {
            goto done;
        }
        if (dst == out) {
            out->storage->version++;
        }
        result = Py_NewRef(out);
    }
    else if (cdt == res) {
        result = (PyObject *)tmp;
        tmp = NULL;
    }
    else {
        result = (PyObject *)pf_tensor_copy_as(tmp, res, op);
    }
done:
    Py_XDECREF(ca);
    Py_XDECREF(cb);
    Py_XDECREF(tmp);
    return result;
}

static PyObject *matmul_objects(const char *op, PyObject *a, PyObject *b, PyObject *out_obj)
{
    PfTensor *out = NULL;
    if (out_obj != NULL && out_obj != Py_None) {
        if (!PfTensor_Check(out_obj)) {
            return PF_ERR(PyExc_TypeError, "%s: out must be a pyframe Tensor; got %.100s", op,
                          Py_TYPE(out_obj)->tp_name);
        }
        out = (PfTensor *)out_obj;
    }
    PfTensor *ta = pf_as_tensor_arg(a, op);
    if (ta == NULL) {
        return NULL;
    }
    PfTensor *tb = pf_as_tensor_arg(b, op);
    if (tb == NULL) {
        Py_DECREF(ta);
        return NULL;
    }
    PyObject *r = matmul_impl(op, ta, tb, out);
    Py_DECREF(ta);
    Py_DECREF(tb);
    return r;
}

/* matmul(a, b, out=None) */
PyObject *pf_op_matmul(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    static const char *const names[] = {"a", "b", "out", NULL};
    PyObject *v[3];
    if (pf_parse_args("matmul", args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    return matmul_objects("matmul", v[0], v[1], v[2]);
}

/* mm and bmm: PyTorch's products of exactly 2-D / 3-D operands, without broadcasting */
static PyObject *strict_product(const char *op, int ndim, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"a", "b", "out", NULL};
    PyObject *v[3], *r = NULL;
    PfTensor *ta = NULL, *tb = NULL;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        (ta = pf_as_tensor_arg(v[0], op)) == NULL || (tb = pf_as_tensor_arg(v[1], op)) == NULL) {
        goto done;
    }
    char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
    if (ta->ndim != ndim || tb->ndim != ndim) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected two %d-D tensors; got shapes %s and %s; use matmul for "
                     "vectors and broadcast batches", op, ndim,
                     pf_shape_str(ta->shape, ta->ndim, sa, sizeof(sa)),
                     pf_shape_str(tb->shape, tb->ndim, sb, sizeof(sb)));
        goto done;
    }
    if (ndim == 3 && ta->shape[0] != tb->shape[0]) {
        PyErr_Format(PyExc_ValueError,
                     "%s: the batch sizes differ: shapes %s and %s; bmm needs equal batch "
                     "sizes (use matmul to broadcast)", op,
                     pf_shape_str(ta->shape, ta->ndim, sa, sizeof(sa)),
                     pf_shape_str(tb->shape, tb->ndim, sb, sizeof(sb)));
        goto done;
    }
    PyObject *out_obj = v[2];
    if (out_obj != NULL && out_obj != Py_None && !PfTensor_Check(out_obj)) {
        PyErr_Format(PyExc_TypeError, "%s: out must be a pyframe Tensor; got %.100s", op,
                     Py_TYPE(out_obj)->tp_name);
        goto done;
    }
    r = matmul_impl(op, ta, tb, out_obj == Py_None ? NULL : (PfTensor *)out_obj);
done:
    Py_XDECREF(ta);
    Py_XDECREF(tb);
    return r;
}

PyObject *pf_op_mm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                   PyObject *kwnames)
{
    return strict_product("mm", 2, args, nargs, kwnames);
}

PyObject *pf_op_bmm(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    return strict_product("bmm", 3, args, nargs, kwnames);
}

/* Operands the @ operator takes; anything else gets NotImplemented. */
static int matmul_operand_ok(PyObject *o)
{
    return PfTensor_Check(o) || PyFloat_Check(o) || PyLong_Check(o) || PyList_Check(o) ||
           PyTuple_Check(o) || pf_is_ndarray(o) ||
           (PyNumber_Check(o) && !PyComplex_Check(o) && !PyUnicode_Check(o) &&
            (PyObject_CheckBuffer(o) || PyIndex_Check(o)));
}

PyObject *pf_nb_matmul(PyObject *a, PyObject *b)
{
    if (!matmul_operand_ok(a) || !matmul_operand_ok(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* through the op's binding, so that autograd records a @ b */
    PyObject *args[2] = {a, b};
    return pf_call(PF_OP_MATMUL, args, 2, NULL);
}

PyObject *pf_nb_inplace_matmul(PyObject *a, PyObject *b)
{
    if (!PfTensor_Check(a) || !matmul_operand_ok(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* the device check the op's binding gets from dispatch: one device, CUDA allowed */
    PyObject *both[2] = {a, b};
    if (pf_dispatch_device("matmul", 1, both, 2, NULL) < 0) {
        return NULL;
    }
    if (pf_grad_enabled() && (pf_needs_grad(a) || pf_needs_grad(b))) {
        return PF_ERR(PyExc_RuntimeError,
                      "matmul: a @= b writes in place, which autograd does not follow for "
                      "matmul; write a = a @ b, or run it inside pf.no_grad()");
    }
    return matmul_objects("matmul", a, b, a);
}

/* ---------------------------------------------------- labelled products */

/* A tensor with one label per dimension (einsum subscripts, tensordot axes). */
typedef struct {
    PfTensor *t;                    /* owned */
    int8_t lab[PF_MAX_DIMS];
} labeled;

static uint64_t lab_mask(const labeled *x)
{
    uint64_t m = 0;
    for (int i = 0; i < x->t->ndim; i++) {
        m |= (uint64_t)1 << x->lab[i];
    }
    return m;
}

static int lab_pos(const labeled *x, int label)
{
    for (int i = 0; i < x->t->ndim; i++) {
        if (x->lab[i] == label) {
            return i;
        }
    }
    return -1;
}

/* Replace x->t by a view of it without dimension d (of size 1). */
static int drop_dim(labeled *x, int d)
{
    PfTensor *t = x->t;
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i != d) {
            shape[n] = t->shape[i];
            strides[n] = t->strides[i];
            x->lab[n++] = x->lab[i];
        }
    }
    PfTensor *v = pf_tensor_view(t, n, shape, strides, t->offset);
    if (v == NULL) {
        return -1;
    }
    Py_SETREF(x->t, v);
    return 0;
}

/* The header of t with its dimensions in the order of perm (a stack view). */
static void permuted_view(PfTensor *v, const PfTensor *t, const int *perm, int n)
{
    *v = *t;
    v->ndim = n;
    for (int i = 0; i < n; i++) {
        v->shape[i] = t->shape[perm[i]];
        v->strides[i] = t->strides[perm[i]];
    }
}

static int contract(labeled *A, labeled *B, uint64_t keep, const int8_t *flab, int nf,
                    pf_dtype edt, pf_dtype res, labeled *R, const char *op);

/*
 * Sum x over the labels in `mask`: the product of x with a tensor of ones
 * carrying those labels.  With flab, the result has exactly those labels
 * in that order and dtype res; without, x's remaining labels in edt.
 */
static int sum_labels(labeled *x, uint64_t mask, const int8_t *flab, int nf, pf_dtype edt,
                      pf_dtype res, labeled *R, const char *op)
{
    labeled ones;
    int64_t shape[PF_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < x->t->ndim; i++) {
        if (mask >> x->lab[i] & 1) {
            ones.lab[n] = x->lab[i];
            shape[n++] = x->t->shape[i];
        }
    }
    ones.t = pf_tensor_empty(n, shape, edt, x->t->storage->device, op);
    if (ones.t == NULL) {
        return -1;
    }
    PyObject *one = PyLong_FromLong(1);
    int rc = -1;
    if (one != NULL && pf_tensor_fill_scalar(ones.t, one, op) == 0) {
        rc = contract(x, &ones, lab_mask(x) & ~mask, flab, nf, edt, res, R, op);
    }
    Py_XDECREF(one);
    Py_DECREF(ones.t);
    return rc;
}

/*
 * R = the contraction of A and B keeping the labels in `keep` (every label
 * not kept is summed).  A label of size 1 in one operand and n in the other
 * broadcasts.  With flab (the final step) R has exactly the labels flab in
 * that order and dtype res; otherwise R's labels are batch, left, right and
 * its dtype is the engine dtype edt.  R->t is a new reference.
 */
static int contract(labeled *A, labeled *B, uint64_t keep, const int8_t *flab, int nf,
                    pf_dtype edt, pf_dtype res, labeled *R, const char *op)
{
    labeled a = *A, b = *B;
    PfTensor *ca = NULL, *cb = NULL, *dst = NULL, *tmp = NULL;
    int rc = -1;
    Py_INCREF(a.t);
    Py_INCREF(b.t);

    /* broadcasting: a label of size 1 facing a larger one leaves the size-1 side */
    for (int i = 0; i < a.t->ndim; i++) {
        int j = lab_pos(&b, a.lab[i]);
        if (j < 0 || a.t->shape[i] == b.t->shape[j]) {
            continue;
        }
        if (a.t->shape[i] == 1) {
            if (drop_dim(&a, i) < 0) {
                goto done;
            }
            i--;
        }
        else if (drop_dim(&b, j) < 0) {
            goto done;
        }
    }
    /* labels of one operand only that are not kept are summed out first */
    uint64_t ma = lab_mask(&a), mb = lab_mask(&b);
    for (int side = 0; side < 2; side++) {
        labeled *x = side == 0 ? &a : &b;
        uint64_t red = (side == 0 ? ma & ~mb : mb & ~ma) & ~keep;
        if (red) {
            labeled s;
            if (sum_labels(x, red, NULL, 0, edt, edt, &s, op) < 0) {
                goto done;
            }
            Py_DECREF(x->t);
            *x = s;
        }
    }
    ma = lab_mask(&a);
    mb = lab_mask(&b);
    uint64_t mbatch = ma & mb & keep, mcontr = ma & mb & ~keep;

    /* dimension orders: batch, left, right as in the final labels when given */
    int pb[PF_MAX_DIMS], pl[PF_MAX_DIMS], pr[PF_MAX_DIMS], pc[PF_MAX_DIMS];
    int8_t lb[PF_MAX_DIMS], ll[PF_MAX_DIMS], lr[PF_MAX_DIMS];
    int nbt = 0, nl = 0, nr = 0, nc = 0;
    int nall = a.t->ndim + b.t->ndim;
    for (int q = 0; q < (flab ? nf : nall); q++) {
        int L = flab ? flab[q] : (q < a.t->ndim ? a.lab[q] : b.lab[q - a.t->ndim]);
        int ia = lab_pos(&a, L), ib = lab_pos(&b, L);
        if (mbatch >> L & 1) {
            if (flab || q < a.t->ndim) {
                lb[nbt] = (int8_t)L;
                pb[nbt++] = ia;
            }
        }
        else if (ia >= 0 && !(mcontr >> L & 1)) {
            ll[nl] = (int8_t)L;
            pl[nl++] = ia;
        }
        else if (ib >= 0 && ia < 0) {
            lr[nr] = (int8_t)L;
            pr[nr++] = ib;
        }
    }
    for (int i = 0; i < a.t->ndim; i++) {
        if (mcontr >> a.lab[i] & 1) {
            pc[nc++] = i;
        }
    }
    int nout = nbt + nl + nr;
    if (nout > PF_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError,
                     "%s: an intermediate result would have %d dimensions, more than the %d "
                     "a pyframe tensor has; contract fewer operands at a time or change their "
                     "order", op, nout, PF_MAX_DIMS);
        goto done;
    }

    pf_gemm g;
    memset(&g, 0, sizeof(g));
    choose_engine(&g, edt, a.t->dtype, b.t->dtype);
    g.nb = nbt;
    g.m = g.n = g.k = 1;
    int perm_a[PF_MAX_DIMS], perm_b[PF_MAX_DIMS], perm_c[PF_MAX_DIMS];
    int64_t shape_c[PF_MAX_DIMS];
    int na = 0, nbb = 0;
    for (int i = 0; i < nbt; i++) {
        g.bshape[i] = shape_c[i] = a.t->shape[pb[i]];
        perm_a[na++] = pb[i];
        perm_b[nbb++] = lab_pos(&b, lb[i]);
    }
    for (int i = 0; i < nl; i++) {
        g.m *= a.t->shape[pl[i]];
        shape_c[nbt + i] = a.t->shape[pl[i]];
        perm_a[na++] = pl[i];
    }
    for (int i = 0; i < nc; i++) {
        g.k *= a.t->shape[pc[i]];
        perm_a[na++] = pc[i];
        perm_b[nbb++] = lab_pos(&b, a.lab[pc[i]]);
    }
    for (int i = 0; i < nr; i++) {
        g.n *= b.t->shape[pr[i]];
        shape_c[nbt + nl + i] = b.t->shape[pr[i]];
        perm_b[nbb++] = pr[i];
    }
    if (check_blas_dims(&g, op) < 0) {
        goto done;
    }

    /* the result tensor, and the engine's (batch, left, right) view of it */
    PfTensor vc;
    if (flab) {
        int64_t fshape[PF_MAX_DIMS];
        int8_t blr[PF_MAX_DIMS];
        memcpy(blr, lb, (size_t)nbt);
        memcpy(blr + nbt, ll, (size_t)nl);
        memcpy(blr + nbt + nl, lr, (size_t)nr);
        for (int q = 0; q < nf; q++) {
            for (int i = 0; i < nout; i++) {
                if (blr[i] == flab[q]) {
                    fshape[q] = shape_c[i];
                    perm_c[i] = q;
                }
            }
        }
        dst = pf_tensor_empty(nf, fshape, res, a.t->storage->device, op);
        if (dst == NULL) {
            goto done;
        }
        permuted_view(&vc, dst, perm_c, nout);
        if (!prep_output(&g, &g.c, &vc, nl, nr)) {
            tmp = pf_tensor_empty(nout, shape_c, engine_out(&g), a.t->storage->device, op);
            if (tmp == NULL) {
                goto done;
            }
            PfTensor vt = *tmp;
            prep_output(&g, &g.c, &vt, nl, nr);
        }
        memcpy(R->lab, flab, (size_t)nf);
    }
    else {
        dst = pf_tensor_empty(nout, shape_c, edt, a.t->storage->device, op);
        if (dst == NULL) {
            goto done;
        }
        PfTensor vt = *dst;
        prep_output(&g, &g.c, &vt, nl, nr);
        memcpy(R->lab, lb, (size_t)nbt);
        memcpy(R->lab + nbt, ll, (size_t)nl);
        memcpy(R->lab + nbt + nl, lr, (size_t)nr);
    }
    g.c_bf16 = (tmp != NULL ? tmp : dst)->dtype == PF_BFLOAT16;
    PfTensor va, vb;
    permuted_view(&va, a.t, perm_a, na);
    permuted_view(&vb, b.t, perm_b, nbb);
    if (prep_operand(&g, &g.a, &va, nl, nc, &ca, op) < 0 ||
        prep_operand(&g, &g.b, &vb, nc, nr, &cb, op) < 0 || run_engine(&g, a.t, op) < 0) {
        goto done;
    }
    if (tmp != NULL && pf_tensor_assign(&vc, tmp, op) < 0) {
        goto done;
    }
    R->t = dst;
    dst = NULL;
    rc = 0;
done:
    Py_DECREF(a.t);
    Py_DECREF(b.t);
    Py_XDECREF(ca);
    Py_XDECREF(cb);
    Py_XDECREF(dst);
    Py_XDECREF(tmp);
    return rc;
}

/* ------------------------------------------------------------- einsum */

static int label_of(char ch)
{
    if (ch >= 'A' && ch <= 'Z') {
        return ch - 'A';
    }
    if (ch >= 'a' && ch <= 'z') {
        return 26 + ch - 'a';
    }
    return -1;
}

static char label_char(int label)
{
    return label < 26 ? (char)('A' + label) : (char)('a' + label - 26);
}

/* One term of the subscripts: its letters, and where '...' sits (-1: nowhere). */
typedef struct {
    int n;
    int8_t lab[PF_MAX_DIMS];
    int ell;
} ein_term;

typedef struct {
    int nterms;
    ein_term in[MAX_EINSUM_OPERANDS];
    int has_out;
    ein_term out;
} ein_spec;

static int parse_subscripts(const char *s, Py_ssize_t len, ein_spec *sp, const char *op)
{
    memset(sp, 0, sizeof(*sp));
    ein_term *cur = &sp->in[0];
    cur->ell = -1;
    sp->out.ell = -1;
    sp->nterms = 1;
    for (Py_ssize_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == ' ') {
            continue;
        }
        if (ch == ',') {
            if (sp->has_out) {
                return PF_ERRI(PyExc_ValueError,
                               "%s: subscripts '%s' have a ',' after '->'; the output is a "
                               "single term", op, s);
            }
            if (sp->nterms == MAX_EINSUM_OPERANDS) {
                return PF_ERRI(PyExc_ValueError, "%s: subscripts '%s' name more than %d "
                               "operands; pyframe's einsum takes at most %d", op, s,
                               MAX_EINSUM_OPERANDS, MAX_EINSUM_OPERANDS);
            }
            cur = &sp->in[sp->nterms++];
            cur->ell = -1;
            continue;
        }
        if (ch == '-') {
            if (i + 1 < len && s[i + 1] == '>' && !sp->has_out) {
                sp->has_out = 1;
                cur = &sp->out;
                i++;
                continue;
            }
            return PF_ERRI(PyExc_ValueError,
                           "%s: subscripts '%s' have a '-' that does not start the one '->' "
                           "before the output", op, s);
        }
        if (ch == '.') {
            if (i + 2 < len && s[i + 1] == '.' && s[i + 2] == '.' && cur->ell < 0) {
                cur->ell = cur->n;
                i += 2;
                continue;
            }
            return PF_ERRI(PyExc_ValueError,
                           "%s: subscripts '%s' have a '.' that is not part of one ellipsis "
                           "('...') per term", op, s);
        }
        int L = label_of(ch);
        if (L < 0) {
            if ((unsigned char)ch >= 128 || ch < 32) {
                return PF_ERRI(PyExc_ValueError,
                               "%s: subscripts '%s' contain a character that is not a letter; "
                               "subscripts are letters a-z and A-Z, with ',' between operands, "
                               "'...' for broadcast dimensions and '->' before the output",
                               op, s);
            }
            return PF_ERRI(PyExc_ValueError,
                           "%s: invalid character '%c' in subscripts '%s'; subscripts are "
                           "letters a-z and A-Z, with ',' between operands, '...' for broadcast "
                           "dimensions and '->' before the output", op, ch, s);
        }
        if (cur->n == PF_MAX_DIMS) {
            return PF_ERRI(PyExc_ValueError,
                           "%s: a term of subscripts '%s' names more than %d dimensions, the "
                           "most a pyframe tensor has", op, s, PF_MAX_DIMS);
        }
        cur->lab[cur->n++] = (int8_t)L;
    }
    return 0;
}

/* Expand a term's '...' into the ellipsis labels of its last `q` of E broadcast dims. */
static int expand_term(const ein_term *t, int q, int E, int8_t *lab)
{
    int n = 0;
    for (int i = 0; i <= t->n; i++) {
        if (i == t->ell) {
            for (int e = 0; e < q; e++) {
                lab[n++] = (int8_t)(ELLIPSIS_LABEL + E - q + e);
            }
        }
        if (i < t->n) {
            lab[n++] = t->lab[i];
        }
    }
    return n;
}

/* Replace x by its diagonal over every label repeated within it ('ii->i'). */
static int take_diagonals(labeled *x, int which, const char *op)
{
    PfTensor *t = x->t;
    int64_t shape[PF_MAX_DIMS], strides[PF_MAX_DIMS];
    int8_t lab[PF_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < t->ndim; d++) {
        int j = 0;
        while (j < n && lab[j] != x->lab[d]) {
            j++;
        }
        if (j < n) {
            if (shape[j] != t->shape[d]) {
                return PF_ERRI(PyExc_ValueError,
                               "%s: subscript '%c' is repeated in operand %d (a diagonal), but "
                               "the dimensions it names differ in size (%lld != %lld); a "
                               "diagonal needs equal sizes", op, label_char(x->lab[d]), which,
                               (long long)shape[j], (long long)t->shape[d]);
            }
            strides[j] += t->strides[d];
            continue;
        }
        lab[n] = x->lab[d];
        shape[n] = t->shape[d];
        strides[n++] = t->strides[d];
    }
    if (n == t->ndim) {
        return 0;
    }
    PfTensor *v = pf_tensor_view(t, n, shape, strides, t->offset);
    if (v == NULL) {
        return -1;
    }
    Py_SETREF(x->t, v);
    memcpy(x->lab, lab, (size_t)n);
    return 0;
}

static PyObject *einsum_impl(const char *op, PyObject *subscripts, PyObject *const *objs,
                             Py_ssize_t nop)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(subscripts, &len);
    if (s == NULL) {
        return NULL;
    }
    ein_spec *sp = PyMem_Malloc(sizeof(ein_spec));
    labeled ops[MAX_EINSUM_OPERANDS];
    labeled cur = {NULL, {0}};
    int nops = 0;
    PyObject *result = NULL;
    if (sp == NULL) {
        return PyErr_NoMemory();
    }
    if (parse_subscripts(s, len, sp, op) < 0) {
        goto done;
    }
    if (sp->nterms != nop) {
        PyErr_Format(PyExc_ValueError, "%s: subscripts '%s' name %d operand(s) but %zd were "
                     "given; give one comma-separated term per operand", op, s, sp->nterms, nop);
        goto done;
    }
    pf_dtype res = PF_BOOL;
    for (Py_ssize_t i = 0; i < nop; i++) {
        ops[i].t = pf_as_tensor_arg(objs[i], op);
        if (ops[i].t == NULL) {
            goto done;
        }
        nops++;
        res = i == 0 ? ops[i].t->dtype : pf_promote(res, ops[i].t->dtype);
    }

    /* '...' covers the dimensions a term does not name; they broadcast right-aligned */
    int E = 0;
    for (int i = 0; i < nops; i++) {
        const ein_term *t = &sp->in[i];
        int nd = ops[i].t->ndim, q = nd - t->n;
        if (q < 0 || (q > 0 && t->ell < 0)) {
            char sh[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError,
                         "%s: operand %d has shape %s (%d dimensions) but its subscripts name "
                         "%d%s; give one letter per dimension%s", op, i,
                         pf_shape_str(ops[i].t->shape, nd, sh, sizeof(sh)), nd, t->n,
                         t->ell >= 0 ? " besides '...'" : "",
                         q > 0 ? ", or '...' for the others" : "");
            goto done;
        }
        E = q > E ? q : E;
    }
    uint64_t counts[NLABELS] = {0};
    for (int i = 0; i < nops; i++) {
        const ein_term *t = &sp->in[i];
        expand_term(t, ops[i].t->ndim - t->n, E, ops[i].lab);
        for (int d = 0; d < t->n; d++) {
            counts[t->lab[d]]++;
        }
    }

    /* the output labels: given after '->', or NumPy's implicit order */
    int8_t flab[PF_MAX_DIMS + PF_MAX_DIMS];
    int nf = 0;
    if (sp->has_out) {
        const ein_term *t = &sp->out;
        if (E > 0 && t->ell < 0) {
            PyErr_Format(PyExc_ValueError,
                         "%s: the operands have dimensions under '...' but the output "
                         "subscripts of '%s' have no '...' to place them; add '...' to the "
                         "output (or sum them with another einsum)", op, s);
            goto done;
        }
        for (int d = 0; d < t->n; d++) {
            int L = t->lab[d];
            if (counts[L] == 0) {
                PyErr_Format(PyExc_ValueError,
                             "%s: output subscript '%c' of '%s' appears in no input; every "
                             "output letter must name an input dimension", op, label_char(L), s);
                goto done;
            }
            for (int e = 0; e < d; e++) {
                if (t->lab[e] == L) {
                    PyErr_Format(PyExc_ValueError,
                                 "%s: output subscript '%c' appears more than once in '%s'; "
                                 "each output letter may appear once", op, label_char(L), s);
                    goto done;
                }
            }
        }
        if (t->n + (t->ell >= 0 ? E : 0) > PF_MAX_DIMS) {
            PyErr_Format(PyExc_ValueError, "%s: the output of '%s' would have %d dimensions, "
                         "more than the %d a pyframe tensor has", op, s,
                         t->n + (t->ell >= 0 ? E : 0), PF_MAX_DIMS);
            goto done;
        }
        nf = expand_term(t, t->ell >= 0 ? E : 0, E, flab);
    }
    else {
        for (int e = 0; e < E; e++) {
            flab[nf++] = (int8_t)(ELLIPSIS_LABEL + e);
        }
        for (int L = 0; L < ELLIPSIS_LABEL; L++) {
            if (counts[L] == 1) {
                if (nf == PF_MAX_DIMS) {
                    PyErr_Format(PyExc_ValueError, "%s: the output of '%s' would have more "
                                 "than the %d dimensions a pyframe tensor has", op, s,
                                 PF_MAX_DIMS);
                    goto done;
                }
                flab[nf++] = (int8_t)L;
            }
        }
    }
    uint64_t outmask = 0;
    for (int q = 0; q < nf; q++) {
        outmask |= (uint64_t)1 << flab[q];
    }

    /* diagonals, then sizes: equal across operands, or 1 to broadcast */
    int64_t size[NLABELS];
    int owner[NLABELS];
    for (int L = 0; L < NLABELS; L++) {
        size[L] = -1;
    }
    for (int i = 0; i < nops; i++) {
        if (take_diagonals(&ops[i], i, op) < 0) {
            goto done;
        }
        for (int d = 0; d < ops[i].t->ndim; d++) {
            int L = ops[i].lab[d];
            int64_t sz = ops[i].t->shape[d];
            if (size[L] < 0 || size[L] == 1) {
                size[L] = sz;
                owner[L] = i;
            }
            else if (sz != size[L] && sz != 1) {
                char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
                PfTensor *o = ops[owner[L]].t;
                if (L >= ELLIPSIS_LABEL) {
                    PyErr_Format(PyExc_ValueError,
                                 "%s: the dimensions under '...' of operands %d (shape %s) and "
                                 "%d (shape %s) cannot be broadcast together (%lld vs %lld)",
                                 op, owner[L], pf_shape_str(o->shape, o->ndim, sa, sizeof(sa)),
                                 i, pf_shape_str(ops[i].t->shape, ops[i].t->ndim, sb,
                                                 sizeof(sb)),
                                 (long long)size[L], (long long)sz);
                }
                else {
                    PyErr_Format(PyExc_ValueError,
                                 "%s: subscript '%c' has size %lld in operand %d but %lld in "
                                 "operand %d; the dimensions a letter names must have equal "
                                 "sizes (or size 1 to broadcast)", op, label_char(L),
                                 (long long)size[L], owner[L], (long long)sz, i);
                }
                goto done;
            }
        }
    }

    pf_dtype edt;
    if (pick_engine(res, ops[0].t, ops[nops - 1].t, op, &edt) < 0) {
        goto done;
    }
    if (nops == 1) {
        uint64_t red = lab_mask(&ops[0]) & ~outmask;
        if (red) {
            if (sum_labels(&ops[0], red, flab, nf, edt, res, &cur, op) < 0) {
                goto done;
            }
            result = (PyObject *)cur.t;
            cur.t = NULL;
            goto done;
        }
        /* a pure transpose (or diagonal): a view, as NumPy and PyTorch return */
        int perm[PF_MAX_DIMS];
        for (int q = 0; q < nf; q++) {
            perm[q] = lab_pos(&ops[0], flab[q]);
        }
        PfTensor v;
        permuted_view(&v, ops[0].t, perm, nf);
        result = (PyObject *)pf_tensor_view(ops[0].t, nf, v.shape, v.strides, ops[0].t->offset);
        goto done;
    }
    cur.t = ops[0].t;
    memcpy(cur.lab, ops[0].lab, sizeof(cur.lab));
    Py_INCREF(cur.t);
    for (int i = 1; i < nops; i++) {
        uint64_t keep = outmask;
        for (int j = i + 1; j < nops; j++) {
            keep |= lab_mask(&ops[j]);
        }
        int last = i == nops - 1;
        labeled next;
        int rc = contract(&cur, &ops[i], keep, last ? flab : NULL, nf, edt, res, &next, op);
        Py_CLEAR(cur.t);
        if (rc < 0) {
            goto done;
        }
        cur = next;
    }
    result = (PyObject *)cur.t;
    cur.t = NULL;
done:
    Py_XDECREF(cur.t);
    for (int i = 0; i < nops; i++) {
        Py_DECREF(ops[i].t);
    }
    PyMem_Free(sp);
    return result;
}

/* einsum(subscripts, *operands); the operands may also come as one list (PyTorch) */
PyObject *pf_op_einsum(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    const char *op = "einsum";
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        return PF_ERR(PyExc_TypeError, "%s: unexpected keyword argument '%U'; einsum takes the "
                      "subscripts and then the operands", op, PyTuple_GET_ITEM(kwnames, 0));
    }
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        return PF_ERR(PyExc_TypeError, "%s: the first argument must be the subscripts string, "
                      "e.g. einsum('ij,jk->ik', a, b); got %.100s", op,
                      nargs < 1 ? "nothing" : Py_TYPE(args[0])->tp_name);
    }
    PyObject *const *objs = args + 1;
    Py_ssize_t nop = nargs - 1;
    if (nop == 1 && (PyList_Check(args[1]) || PyTuple_Check(args[1]))) {
        PyObject *seq = args[1];
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        int all = n > 0;
        for (Py_ssize_t i = 0; i < n && all; i++) {
            all = PfTensor_Check(PySequence_Fast_GET_ITEM(seq, i));
        }
        if (all) {
            objs = PySequence_Fast_ITEMS(seq);
            nop = n;
        }
    }
    if (nop == 0) {
        return PF_ERR(PyExc_ValueError, "%s: no operands given; call einsum(subscripts, "
                      "*operands), e.g. einsum('ij->ji', a)", op);
    }
    if (nop > MAX_EINSUM_OPERANDS) {
        return PF_ERR(PyExc_ValueError, "%s: %zd operands given; pyframe's einsum takes at "
                      "most %d", op, nop, MAX_EINSUM_OPERANDS);
    }
    return einsum_impl(op, args[0], objs, nop);
}

/* ------------------------------------------------- tensordot, dot, outer */

/*
 * Sum the products of a and b over axes ia[i] of a and ib[i] of b: the
 * result has a's other axes, then b's (np.tensordot).
 */
static PyObject *contract_axes(const char *op, PfTensor *a, PfTensor *b, const int *ia,
                               const int *ib, int n)
{
    char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
    labeled la, lbl, R;
    int8_t flab[2 * PF_MAX_DIMS];
    int nf = 0;
    for (int i = 0; i < n; i++) {
        if (a->shape[ia[i]] != b->shape[ib[i]]) {
            return PF_ERR(PyExc_ValueError,
                          "%s: shapes %s and %s are not aligned: dimension %d of a (%lld) != "
                          "dimension %d of b (%lld); the summed dimensions must have equal "
                          "sizes", op, pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                          pf_shape_str(b->shape, b->ndim, sb, sizeof(sb)), ia[i],
                          (long long)a->shape[ia[i]], ib[i], (long long)b->shape[ib[i]]);
        }
    }
    if (a->ndim + b->ndim - 2 * n > PF_MAX_DIMS) {
        return PF_ERR(PyExc_ValueError,
                      "%s: the result of shapes %s and %s would have %d dimensions, more than "
                      "the %d a pyframe tensor has", op,
                      pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                      pf_shape_str(b->shape, b->ndim, sb, sizeof(sb)),
                      a->ndim + b->ndim - 2 * n, PF_MAX_DIMS);
    }
    /* a's axes are labels 0.., b's free axes PF_MAX_DIMS.., summed axes share a's label */
    for (int d = 0; d < a->ndim; d++) {
        la.lab[d] = (int8_t)d;
    }
    for (int d = 0; d < b->ndim; d++) {
        lbl.lab[d] = (int8_t)(PF_MAX_DIMS + d);
    }
    uint64_t summed = 0;
    for (int i = 0; i < n; i++) {
        lbl.lab[ib[i]] = (int8_t)ia[i];
        summed |= (uint64_t)1 << ia[i];
    }
    for (int d = 0; d < a->ndim; d++) {
        if (!(summed >> d & 1)) {
            flab[nf++] = (int8_t)d;
        }
    }
    for (int d = 0; d < b->ndim; d++) {
        if (lbl.lab[d] >= PF_MAX_DIMS) {
            flab[nf++] = lbl.lab[d];
        }
    }
    uint64_t keep = 0;
    for (int q = 0; q < nf; q++) {
        keep |= (uint64_t)1 << flab[q];
    }
    la.t = a;
    lbl.t = b;
    pf_dtype res = pf_promote(a->dtype, b->dtype);
    pf_dtype edt;
    if (pick_engine(res, a, b, op, &edt) < 0 ||
        contract(&la, &lbl, keep, flab, nf, edt, res, &R, op) < 0) {
        return NULL;
    }
    return (PyObject *)R.t;
}

/* An int or a sequence of ints, normalised to axes of a tensor of ndim dimensions. */
static int axis_list(PyObject *o, int ndim, int *axes, int *n, const char *op)
{
    PyObject *seq = NULL;
    PyObject *const *items = &o;
    Py_ssize_t cnt = 1;
    if (!PyIndex_Check(o)) {
        seq = PySequence_Fast(o, "");
        if (seq == NULL) {
            PyErr_Clear();
            return PF_ERRI(PyExc_TypeError, "%s: axes must be an int, or a pair of ints or of "
                           "sequences of ints; got %.100s", op, Py_TYPE(o)->tp_name);
        }
        items = PySequence_Fast_ITEMS(seq);
        cnt = PySequence_Fast_GET_SIZE(seq);
    }
    int rc = 0;
    if (cnt > ndim) {
        rc = PF_ERRI(PyExc_ValueError, "%s: %zd axes given for an operand with %d dimensions",
                     op, cnt, ndim);
    }
    for (Py_ssize_t i = 0; i < cnt && rc == 0; i++) {
        int64_t v;
        if (pf_int_arg(items[i], op, "axis", &v) < 0) {
            rc = -1;
            break;
        }
        Py_ssize_t ax = (Py_ssize_t)v;
        if (pf_normalize_axis(&ax, ndim, op) < 0) {
            rc = -1;
            break;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            if (axes[j] == (int)ax) {
                rc = PF_ERRI(PyExc_ValueError, "%s: axis %zd is given more than once", op, ax);
            }
        }
        axes[i] = (int)ax;
    }
    *n = (int)cnt;
    Py_XDECREF(seq);
    return rc;
}

/* tensordot(a, b, axes=2): `dims` is PyTorch's name for axes */
PyObject *pf_op_tensordot(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                          PyObject *kwnames)
{
    const char *op = "tensordot";
    static const char *const names[] = {"a", "b", "axes", "dims", NULL};
    PyObject *v[4], *r = NULL;
    PfTensor *a = NULL, *b = NULL;
    int ia[PF_MAX_DIMS], ib[PF_MAX_DIMS], na = 0, nb = 0;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0) {
        return NULL;
    }
    if (v[2] != NULL && v[3] != NULL) {
        return PF_ERR(PyExc_TypeError, "%s: give axes or dims, not both", op);
    }
    PyObject *axes = v[2] != NULL ? v[2] : v[3];
    if ((a = pf_as_tensor_arg(v[0], op)) == NULL || (b = pf_as_tensor_arg(v[1], op)) == NULL) {
        goto done;
    }
    if (axes == NULL || PyIndex_Check(axes)) {
        int64_t cnt = 2;
        if (axes != NULL && pf_int_arg(axes, op, "axes", &cnt) < 0) {
            goto done;
        }
        if (cnt < 0 || cnt > a->ndim || cnt > b->ndim) {
            PyErr_Format(PyExc_ValueError,
                         "%s: axes=%lld but a has %d and b %d dimensions; an integer axes sums "
                         "the last axes of a with the first of b, 0 <= axes <= %d", op,
                         (long long)cnt, a->ndim, b->ndim, a->ndim < b->ndim ? a->ndim : b->ndim);
            goto done;
        }
        na = nb = (int)cnt;
        for (int i = 0; i < na; i++) {
            ia[i] = a->ndim - na + i;
            ib[i] = i;
        }
    }
    else {
        PyObject *pair = PySequence_Fast(axes, "");
        if (pair == NULL || PySequence_Fast_GET_SIZE(pair) != 2) {
            Py_XDECREF(pair);
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s: axes must be an int or a pair (axes of a, axes "
                         "of b); got %.100s", op, Py_TYPE(axes)->tp_name);
            goto done;
        }
        int rc = axis_list(PySequence_Fast_GET_ITEM(pair, 0), a->ndim, ia, &na, op);
        if (rc == 0) {
            rc = axis_list(PySequence_Fast_GET_ITEM(pair, 1), b->ndim, ib, &nb, op);
        }
        Py_DECREF(pair);
        if (rc < 0) {
            goto done;
        }
        if (na != nb) {
            PyErr_Format(PyExc_ValueError, "%s: %d axes of a but %d of b given; the axes are "
                         "summed in pairs", op, na, nb);
            goto done;
        }
    }
    r = contract_axes(op, a, b, ia, ib, na);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

/*
 * dot(a, b) as NumPy: scalars multiply, 1-D with 1-D is the inner product,
 * b of at most 2 dimensions is a matmul, and otherwise the last axis of a
 * is summed with the second-to-last of b.  (torch.dot takes 1-D only.)
 */
PyObject *pf_op_dot(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                    PyObject *kwnames)
{
    const char *op = "dot";
    static const char *const names[] = {"a", "b", NULL};
    PyObject *v[2], *r = NULL;
    PfTensor *a = NULL, *b = NULL;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        (a = pf_as_tensor_arg(v[0], op)) == NULL || (b = pf_as_tensor_arg(v[1], op)) == NULL) {
        goto done;
    }
    if (a->ndim == 0 || b->ndim == 0) {
        r = pf_call_ew(PF_OP_MUL, (PyObject *)a, (PyObject *)b);
    }
    else if (b->ndim <= 2) {
        r = matmul_impl(op, a, b, NULL);
    }
    else {
        int ia = a->ndim - 1, ib = b->ndim - 2;
        r = contract_axes(op, a, b, &ia, &ib, 1);
    }
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    return r;
}

/* t as a 1-D view of all its elements (a copy first when they are not evenly spaced). */
static PfTensor *flat(PfTensor *t, const char *op)
{
    if (t->ndim == 1) {
        Py_INCREF(t);
        return t;
    }
    return pf_tensor_flat(t, op);
}

/* outer(a, b): a.ravel()[:, None] * b.ravel()[None, :], as NumPy (inputs are flattened) */
PyObject *pf_op_outer(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    const char *op = "outer";
    static const char *const names[] = {"a", "b", NULL};
    PyObject *v[2], *r = NULL;
    PfTensor *a = NULL, *b = NULL, *fa = NULL, *fb = NULL, *col = NULL, *row = NULL;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        (a = pf_as_tensor_arg(v[0], op)) == NULL || (b = pf_as_tensor_arg(v[1], op)) == NULL ||
        (fa = flat(a, op)) == NULL || (fb = flat(b, op)) == NULL) {
        goto done;
    }
    /* on a device the product is the multiply kernel's; ask for CUDA under outer's name */
    if ((!pf_tensor_on_cpu(a) || !pf_tensor_on_cpu(b)) && pf_cuda_lib(op) == NULL) {
        goto done;
    }
    int64_t cshape[2] = {fa->shape[0], 1}, cstr[2] = {fa->strides[0], 1};
    int64_t rshape[2] = {1, fb->shape[0]}, rstr[2] = {1, fb->strides[0]};
    if ((col = pf_tensor_view(fa, 2, cshape, cstr, fa->offset)) == NULL ||
        (row = pf_tensor_view(fb, 2, rshape, rstr, fb->offset)) == NULL) {
        goto done;
    }
    r = pf_call_ew(PF_OP_MUL, (PyObject *)col, (PyObject *)row);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    Py_XDECREF(fa);
    Py_XDECREF(fb);
    Py_XDECREF(col);
    Py_XDECREF(row);
    return r;
}

/* ------------------------------------------------ CUDA: switches and test entries */

/*
 * set_float32_matmul_precision("highest" | "high" | "medium"), as PyTorch's:
 * "highest" (the default) multiplies float32 CUDA tensors in float32;
 * "high" and "medium" let cuBLAS use TF32 tensor cores (10-bit mantissas,
 * float32 accumulation, about 8x the throughput on an H100).  The cpu's
 * float32 products (OpenBLAS) are always full float32.
 */
static PyObject *py_set_f32_precision(PyObject *Py_UNUSED(m), PyObject *arg)
{
    const char *s = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (s == NULL) {
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError, "set_float32_matmul_precision: precision must be a str "
                      "('highest', 'high' or 'medium'); got %.100s", Py_TYPE(arg)->tp_name);
    }
    if (strcmp(s, "highest") == 0) {
        allow_tf32 = 0;
    }
    else if (strcmp(s, "high") == 0 || strcmp(s, "medium") == 0) {
        allow_tf32 = 1;
    }
    else {
        return PF_ERR(PyExc_ValueError, "set_float32_matmul_precision: precision must be "
                      "'highest' (float32), 'high' or 'medium' (TF32 tensor cores on CUDA); "
                      "got %R", arg);
    }
    Py_RETURN_NONE;
}

static PyObject *py_get_f32_precision(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return PyUnicode_FromString(allow_tf32 ? "high" : "highest");
}

/*
 * _cuda_blas_probe(caller): loads cuBLAS into the CUDA library if it is not
 * yet (no device needed); {"loaded": bool, "library": path or None,
 * "message": where it was found, or what was tried and how to install it}.
 */
static PyObject *py_cuda_blas_probe(PyObject *Py_UNUSED(m), PyObject *arg)
{
    const char *caller = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (caller == NULL) {
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError, "_cuda_blas_probe: the caller's name must be a str");
    }
    const PfCudaLib *lib = pf_cuda_library(caller);
    if (lib == NULL) {
        return NULL;
    }
    char report[4096];
    int r = load_blas(lib, report, sizeof(report));
    if (r < 0) {
        return NULL;
    }
    return Py_BuildValue("{s:O,s:s,s:s}", "loaded", r == 0 ? Py_True : Py_False, "library",
                         r == 0 ? report : NULL, "message", report);
}

/*
 * _cuda_host_matmul(name, *args, **kwargs): pf.<name>(...) on CPU tensors
 * with every product run by the CUDA library's host self-test of its
 * cuBLAS mapping (tests only; no device, no cuBLAS).
 */
static PyObject *py_cuda_host_matmul(PyObject *m, PyObject *const *args, Py_ssize_t nargs,
                                     PyObject *kwnames)
{
    static const pf_named_binding entries[] = {
        {"matmul", pf_op_matmul}, {"mm", pf_op_mm}, {"bmm", pf_op_bmm}, {"dot", pf_op_dot},
        {"tensordot", pf_op_tensordot}, {"einsum", pf_op_einsum},
    };
    return pf_call_routed("_cuda_host_matmul", "a product", "that runs through cuBLAS", entries,
                          sizeof(entries) / sizeof(entries[0]), &route_to_cuda_host, m, args,
                          nargs, kwnames);
}

/* ------------------------------------------------- the bfloat16 GEMM path */

static const char *const bf16_path_list = "'amx', 'avx512' or 'generic'";

/* _bf16_gemm_path(): the path bfloat16 products take now */
static PyObject *py_bf16_gemm_path(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    return PyUnicode_FromString(pf_bf16_path_names[pf_bf16_path_active()]);
}

/* _bf16_gemm_paths(): {path: None if this CPU runs it, else the reason it does not} */
static PyObject *py_bf16_gemm_paths(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    PyObject *d = PyDict_New();
    for (int p = 0; d != NULL && p < PF_BF16_NPATHS; p++) {
        const char *why = NULL;
        int ok = pf_bf16_path_available((pf_bf16_path)p, &why);
        PyObject *v = ok ? Py_NewRef(Py_None) : PyUnicode_FromString(why ? why : "unavailable");
        if (v == NULL || PyDict_SetItemString(d, pf_bf16_path_names[p], v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

/*
 * _set_bf16_gemm_path(name): make bfloat16 products take `name` (tests and
 * benchmarks compare the paths); returns the previous path's name.
 */
static PyObject *py_set_bf16_gemm_path(PyObject *Py_UNUSED(m), PyObject *arg)
{
    const char *op = "_set_bf16_gemm_path";
    if (!PyUnicode_Check(arg)) {
        return PF_ERR(PyExc_TypeError, "%s: expected a path name, %s; got %.100s", op,
                      bf16_path_list, Py_TYPE(arg)->tp_name);
    }
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    for (int p = 0; p < PF_BF16_NPATHS; p++) {
        if (strcmp(name, pf_bf16_path_names[p]) != 0) {
            continue;
        }
        const char *why = NULL;
        if (!pf_bf16_path_available((pf_bf16_path)p, &why)) {
            return PF_ERR(PyExc_RuntimeError, "%s: this CPU cannot run the '%s' path: %s; "
                          "pf._C._bf16_gemm_paths() lists the paths it can run", op, name,
                          why ? why : "unavailable");
        }
        PyObject *prev = PyUnicode_FromString(pf_bf16_path_names[pf_bf16_path_active()]);
        if (prev != NULL) {
            pf_bf16_path_set((pf_bf16_path)p);
        }
        return prev;
    }
    return PF_ERR(PyExc_ValueError, "%s: unknown path '%s'; expected %s", op, name,
                  bf16_path_list);
}

PyMethodDef pf_linalg_module_methods[] = {
    {"set_float32_matmul_precision", py_set_f32_precision, METH_O,
     "set_float32_matmul_precision(precision): 'highest' (float32, the default) or 'high' / "
     "'medium' (TF32 tensor cores) for float32 products of CUDA tensors"},
    {"get_float32_matmul_precision", py_get_f32_precision, METH_NOARGS,
     "get_float32_matmul_precision(): 'highest' or 'high'"},
    {"_cuda_blas_probe", py_cuda_blas_probe, METH_O,
     "_cuda_blas_probe(caller): load cuBLAS if not yet; {loaded, library, message}"},
    {"_cuda_host_matmul", (PyCFunction)(void (*)(void))py_cuda_host_matmul,
     METH_FASTCALL | METH_KEYWORDS,
     "_cuda_host_matmul(name, *args, **kw): the product on CPU tensors through the CUDA "
     "library's host self-test of its cuBLAS mapping (tests only)"},
    {"_bf16_gemm_path", py_bf16_gemm_path, METH_NOARGS,
     "_bf16_gemm_path(): the path bfloat16 matrix products take ('amx', 'avx512' or "
     "'generic')"},
    {"_bf16_gemm_paths", py_bf16_gemm_paths, METH_NOARGS,
     "_bf16_gemm_paths(): {path: None if this CPU runs it, else why not}"},
    {"_set_bf16_gemm_path", py_set_bf16_gemm_path, METH_O,
     "_set_bf16_gemm_path(name): force a bfloat16 GEMM path (tests, benchmarks); returns the "
     "previous one"},
    {NULL, NULL, 0, NULL},
};
