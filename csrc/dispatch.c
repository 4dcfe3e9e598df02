/*
 * dispatch.c -- the path every elementwise op takes: turn inputs into
 * tensors (Python scalars stay weak, NEP 50), pick the result and compute
 * dtypes, check shapes and out=, allocate, and run the kernel through the
 * iterator.  Operands whose dtype differs from the kernel's (float16,
 * bfloat16, mixed dtypes) are converted in small chunks on the way in and
 * out, never as whole temporary tensors.
 */
#include "autograd.h"
#include <math.h>

#define M PF_F_M
#define I PF_F_I
#define D PF_F_D
#define C PF_F_C
#define G PF_F_G
const pf_opinfo pf_ops[PF_OP_COUNT] = {
#define PF_OP(E, py, K, N, F) {#py, PF_OK_##K, N, F},
#include "ops.def"
#undef PF_OP
};
#undef M
#undef I
#undef D
#undef C
#undef G

const char *const pf_op_cpu_only[PF_OP_COUNT] = {
#define PF_OP(E, py, K, N, F)
#define PF_CPU_ONLY(E, reason) [PF_OP_##E] = reason,
#include "ops.def"
#undef PF_CPU_ONLY
#undef PF_OP
};

const pf_param_spec pf_op_params[PF_OP_COUNT] = {
    [PF_OP_LEAKY_RELU] = {1, {"negative_slope", NULL}, {0.01, 0}},
    [PF_OP_ELU] = {1, {"alpha", NULL}, {1.0, 0}},
    [PF_OP_SOFTPLUS] = {2, {"beta", "threshold"}, {1.0, 20.0}},
    [PF_OP_CLIP] = {2, {"min", "max"}, {-INFINITY, INFINITY}},
    [PF_OP_GELU] = {1, {"approximate", NULL}, {0, 0}},
    [PF_OP_ROUND] = {1, {"decimals", NULL}, {0, 0}},
};

/* ------------------------------------------------------------ dtype rules */

static pf_dtype float_compute(pf_dtype d)
{
    return (d == PF_FLOAT16 || d == PF_BFLOAT16) ? PF_FLOAT32 : d;
}

static int dtype_error(const char *name, const pf_dtype *in, int nin, const char *why)
{
    char got[64] = "";
    for (int i = 0; i < nin; i++) {
        strcat(got, i ? ", " : "");
        strcat(got, pf_dtypes[in[i]].name);
    }
    return PF_ERRI(PyExc_TypeError, "%s: not supported for dtype%s %s; %s", name,
                   nin > 1 ? "s" : "", got, why);
}

static int ew_dtypes(pf_op op, const char *name, const pf_dtype *in, int nin, pf_dtype *compute,
                     pf_dtype *result);

int pf_ew_dtypes(pf_op op, const pf_dtype *in, int nin, pf_dtype *compute, pf_dtype *result)
{
    return ew_dtypes(op, pf_ops[op].name, in, nin, compute, result);
}

static int ew_dtypes(pf_op op, const char *name, const pf_dtype *in, int nin, pf_dtype *compute,
                     pf_dtype *result)
{
    pf_dtype r = in[0];
    for (int i = 1; i < nin; i++) {
        r = pf_promote(r, in[i]);
    }
    switch (pf_ops[op].kind) {
    case PF_OK_UFLOAT:
    case PF_OK_BFLOAT:
        *result = pf_is_float(r) ? r : PF_FLOAT32;
        *compute = float_compute(*result);
        return 0;
    case PF_OK_USAME:
        if (op == PF_OP_NEG && r == PF_BOOL) {
            return dtype_error(name, in, nin, "use logical_not (or ~) to negate booleans");
        }
        *result = r;
        *compute = r == PF_BOOL ? PF_UINT8 : float_compute(r);
        return 0;
    case PF_OK_UPRED:
        *result = PF_BOOL;
        *compute = r == PF_FLOAT64 ? PF_FLOAT64 : PF_FLOAT32;
        return 0;
    case PF_OK_ULOGICAL:
    case PF_OK_LOGICAL:
        *result = PF_BOOL;
        *compute = PF_BOOL;
        return 0;
    case PF_OK_UBITWISE:
    case PF_OK_BITWISE:
        if (pf_is_float(r)) {
            return dtype_error(name, in, nin, "bitwise operations need integer or bool tensors");
        }
        *result = *compute = r;
        return 0;
    case PF_OK_BARITH:
        if (r == PF_BOOL && op != PF_OP_ADD && op != PF_OP_MUL && op != PF_OP_MAXIMUM &&
            op != PF_OP_MINIMUM) {
            return dtype_error(name, in, nin, "cast booleans to an integer dtype first "
                               "(.astype(pf.int64))");
        }
        *result = r;
        *compute = float_compute(r);
        return 0;
    case PF_OK_COMPARE:
        *result = PF_BOOL;
        *compute = float_compute(r);
        return 0;
    case PF_OK_WHERE:
        /* in[0] is the condition; the values decide the dtype */
        r = nin == 3 ? pf_promote(in[1], in[2]) : r;
        *result = *compute = r;
        return 0;
    case PF_OK_CUSTOM:
        break;
    }
    return PF_ERRI(PyExc_RuntimeError, "%s: not an elementwise op", name);
}

/* The dtype a kernel reads for input k and writes for its output. */
static pf_dtype kernel_in_dtype(pf_op op, int k, pf_dtype compute)
{
    pf_opkind kind = pf_ops[op].kind;
    if (kind == PF_OK_ULOGICAL || kind == PF_OK_LOGICAL || (kind == PF_OK_WHERE && k == 0)) {
        return PF_BOOL;
    }
    return compute;
}

static pf_dtype kernel_out_dtype(pf_op op, pf_dtype compute)
{
    switch (pf_ops[op].kind) {
    case PF_OK_UPRED:
    case PF_OK_COMPARE:
    case PF_OK_ULOGICAL:
    case PF_OK_LOGICAL:
        return PF_BOOL;
    default:
        return compute;
    }
}

/* where's kernels are picked by item size, not by dtype */
static pf_loop find_kernel(pf_op op, pf_dtype compute)
{
    if (pf_ops[op].kind == PF_OK_WHERE) {
        static const pf_dtype by_size[9] = {0, PF_UINT8, PF_INT16, 0, PF_INT32, 0, 0, 0, PF_INT64};
        return pf_ew_kernels[op][by_size[pf_dtypes[compute].itemsize]];
    }
    return pf_ew_kernels[op][compute];
}

/* ---------------------------------------------------- chunked conversion */

#define CHUNK 256

typedef struct {
    pf_loop inner;
    void *inner_ctx;
    int nop;                        /* inputs then one output */
    pf_dtype actual[PF_MAX_OPERANDS];
    pf_dtype want[PF_MAX_OPERANDS];
} cast_ctx;

/*
 * Run `inner` on chunks of CHUNK elements, converting each operand whose
 * dtype differs from what the kernel wants through a stack buffer.
 */
static void cast_loop(char **data, const int64_t *strides, int64_t n, void *vctx)
{
    cast_ctx *c = vctx;
    _Alignas(64) char buf[PF_MAX_OPERANDS][CHUNK * 8];
    char *ptr[PF_MAX_OPERANDS];
    int64_t st[PF_MAX_OPERANDS];
    int out = c->nop - 1;
    for (int64_t done = 0; done < n; done += CHUNK) {
        int64_t m = n - done < CHUNK ? n - done : CHUNK;
        for (int k = 0; k < c->nop; k++) {
            char *p = data[k] + done * strides[k];
            if (c->actual[k] == c->want[k]) {
                ptr[k] = p;
                st[k] = strides[k];
                continue;
            }
            ptr[k] = buf[k];
            st[k] = pf_dtypes[c->want[k]].itemsize;
            if (k != out) {
                char *args[2] = {p, buf[k]};
                int64_t cst[2] = {strides[k], st[k]};
                pf_cast_loops[c->actual[k]][c->want[k]](args, cst, m, NULL);
            }
        }
        c->inner(ptr, st, m, c->inner_ctx);
        if (c->actual[out] != c->want[out]) {
            char *args[2] = {buf[out], data[out] + done * strides[out]};
            int64_t cst[2] = {st[out], strides[out]};
            pf_cast_loops[c->want[out]][c->actual[out]](args, cst, m, NULL);
        }
    }
}

/* ------------------------------------------------------------ operands */

/* 0 bool, 1 int, 2 float for a Python scalar (exact types only), else -1 */
static int scalar_rank(PyObject *o)
{
    if (PyBool_Check(o)) {
        return 0;
    }
    return PyLong_CheckExact(o) ? 1 : PyFloat_CheckExact(o) ? 2 : -1;
}

static int kind_rank(pf_dtype d)
{
    switch (pf_dtypes[d].kind) {
    case PF_KIND_BOOL: return 0;
    case PF_KIND_FLOAT: return 2;
    default: return 1;
    }
}

/* Does Python int `v` fit integer dtype d?  (bool and floats: not asked) */
static int int_fits(PyObject *v, pf_dtype d)
{
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (overflow) {
        return 0;
    }
    switch (d) {
    case PF_UINT8: return x >= 0 && x <= UINT8_MAX;
    case PF_INT8: return x >= INT8_MIN && x <= INT8_MAX;
    case PF_INT16: return x >= INT16_MIN && x <= INT16_MAX;
    case PF_INT32: return x >= INT32_MIN && x <= INT32_MAX;
    default: return 1;
    }
}

/*
 * A Python scalar operand becomes a stack tensor: no allocation, never
 * seen by Python.  Its storage is the 8-byte slot inside the struct.
 */
typedef struct {
    PfTensor t;
    pf_storage s;
    union {
        double d;
        int64_t i;
        char raw[8];
    } v;
} stack_scalar;

static int make_stack_scalar(stack_scalar *ss, PyObject *value, pf_dtype dtype, const char *op)
{
    memset(ss, 0, sizeof(*ss));
    if (pf_scalar_to_raw(value, dtype, ss->v.raw, op) < 0) {
        return -1;
    }
    ss->s.refcnt = 1;
    ss->s.data = ss->v.raw;
    ss->s.nbytes = 8;
    ss->t.storage = &ss->s;
    ss->t.ndim = 0;
    ss->t.dtype = dtype;
    return 0;
}

/* out may be written while reading `in` only if they are the same view or disjoint */
static int unsafe_overlap(const PfTensor *out, const PfTensor *in)
{
    if (out->storage != in->storage) {
        return 0;
    }
    if (out->offset == in->offset && out->ndim == in->ndim && out->dtype == in->dtype &&
        memcmp(out->shape, in->shape, sizeof(int64_t) * (size_t)out->ndim) == 0 &&
        memcmp(out->strides, in->strides, sizeof(int64_t) * (size_t)out->ndim) == 0) {
        return 0;
    }
    return pf_tensor_may_overlap(out, in);
}

/* ------------------------------------------------------------ devices */

/* The tensor at o, or inside o when it is a list or tuple (one level: concatenate's). */
static int note_device(PyObject *o, pf_device *first, PyObject **first_obj, pf_device *other,
                       int *mixed)
{
    if (PfTensor_Check(o)) {
        pf_device d = ((PfTensor *)o)->storage->device;
        if (*first_obj == NULL) {
            *first = d;
            *first_obj = o;
        }
        else if (!*mixed && !pf_device_eq(d, *first)) {
            *other = d;
            *mixed = 1;
        }
        return d.type != PF_DEV_CPU;
    }
    int any = 0;
    if (PyList_Check(o) || PyTuple_Check(o)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        PyObject **items = PySequence_Fast_ITEMS(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PfTensor_Check(items[i])) {
                any |= note_device(items[i], first, first_obj, other, mixed);
            }
        }
    }
    return any;
}

/*
 * Where an op's tensors live.  Every op passes here before anything reads
 * its operands: elementwise ops from pf_elementwise_as, the CUSTOM ops from
 * pf_ag_custom_call (autograd.c) with all their arguments, looking one
 * level into lists and tuples.  Returns 0 when every tensor is on the cpu.
 * Tensors on two devices raise RuntimeError naming both; tensors all on one
 * CUDA device raise NotImplementedError, because no op has a CUDA kernel
 * yet (the kernels will be looked up here, per op and dtype).  Python
 * scalars and lists of numbers are not tensors and go anywhere.
 */
/* A tensor (or subclass)?  Python numbers, the commonest other arguments, answer first. */
static inline int is_tensor(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    return t == &PfTensor_Type ||
           (t != &PyLong_Type && t != &PyFloat_Type && t != &PyBool_Type &&
            PyType_IsSubtype(t, &PfTensor_Type));
}

static inline int tensor_off_cpu(PyObject *o)
{
    return is_tensor(o) && ((PfTensor *)o)->storage->device.type != PF_DEV_CPU;
}

/* Any tensor among args (one level into lists and tuples) not on the cpu. */
static int any_off_cpu(PyObject *const *args, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = args[i];
        if (o == NULL) {
            continue;
        }
        if (tensor_off_cpu(o)) {
            return 1;
        }
        if (PyList_Check(o) || PyTuple_Check(o)) {
            Py_ssize_t m = PySequence_Fast_GET_SIZE(o);
            PyObject **items = PySequence_Fast_ITEMS(o);
            for (Py_ssize_t j = 0; j < m; j++) {
                if (tensor_off_cpu(items[j])) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

int pf_dispatch_device(const char *name, int allow_cuda, PyObject *const *args, Py_ssize_t n,
                       pf_device *dev)
{
    pf_device first = {PF_DEV_CPU, 0}, other = {PF_DEV_CPU, 0};
    /* the common case, everything on the cpu, in one tight pass */
    if (!any_off_cpu(args, n)) {
        if (dev != NULL) {
            *dev = first;
        }
        return 0;
    }
    PyObject *first_obj = NULL;
    int mixed = 0, off_cpu = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (args[i] != NULL) {
            off_cpu |= note_device(args[i], &first, &first_obj, &other, &mixed);
        }
    }
    if (mixed) {
        char a[32], b[32];
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: tensors on %s and %s; move them to one device with .to(...)", name,
                       pf_device_str(first, a, sizeof(a)), pf_device_str(other, b, sizeof(b)));
    }
    if (dev != NULL) {
        *dev = first;
    }
    if (off_cpu) {
        return allow_cuda ? 1 : pf_no_cuda_kernel(name, name, first);
    }
    return 0;
}

int pf_dispatch_devices(const char *name, PyObject *const *args, Py_ssize_t n)
{
    return pf_dispatch_device(name, 0, args, n, NULL);
}

/* ------------------------------------------------------------ dispatch */

PyObject *pf_elementwise(pf_op op, PyObject *const *inputs, PfTensor *out, const pf_params *p)
{
    return pf_elementwise_as(op, inputs, out, p, NULL);
}

/*
 * Any operand (or out) not on the cpu: the slow path names what is wrong
 * (0: cpu, 1: all on the CUDA device *dev, -1).
 */
static int ew_devices(pf_op op, PyObject *const *inputs, PfTensor *out, const char *name,
                      pf_device *dev)
{
    int nin = pf_ops[op].nin;
    int off_cpu = out != NULL && !pf_tensor_on_cpu(out);
    for (int k = 0; k < nin && !off_cpu; k++) {
        off_cpu = tensor_off_cpu(inputs[k]);
    }
    if (!off_cpu) {
        return 0;
    }
    PyObject *all[PF_MAX_OPERANDS + 1];
    for (int k = 0; k < nin; k++) {
        all[k] = inputs[k];
    }
    all[nin] = (PyObject *)out;
    return pf_dispatch_device(name != NULL ? name : pf_ops[op].name, pf_ops[op].flags & PF_F_G,
                              all, nin + 1, dev);
}

/*
 * The small-model fast path: tensor operands of one dtype and one shape,
 * contiguous, below the threading grain, no out=, and a kernel that reads
 * and writes exactly those dtypes.  It gives the same result as the general
 * path below, minus broadcasting, iterator set-up and conversion checks.
 * Returns NULL without an error when it does not apply.
 */
static PyObject *fast_same_shape(pf_op op, PyObject *const *inputs, const pf_params *p)
{
    int nin = pf_ops[op].nin;
    if (pf_ops[op].kind == PF_OK_WHERE || !Py_IS_TYPE(inputs[0], &PfTensor_Type)) {
        return NULL;
    }
    PfTensor *a = (PfTensor *)inputs[0];
    if (!pf_tensor_is_contiguous(a) || pf_numel(a->shape, a->ndim) >= PF_GRAIN) {
        return NULL;
    }
    for (int k = 1; k < nin; k++) {
        PfTensor *b = (PfTensor *)inputs[k];
        if (!Py_IS_TYPE(inputs[k], &PfTensor_Type) || b->dtype != a->dtype ||
            b->ndim != a->ndim || !pf_tensor_is_contiguous(b) ||
            memcmp(b->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim) != 0) {
            return NULL;
        }
    }
    pf_dtype in_dt[PF_MAX_OPERANDS] = {a->dtype, a->dtype, a->dtype}, compute, res;
    if (ew_dtypes(op, pf_ops[op].name, in_dt, nin, &compute, &res) < 0) {
        PyErr_Clear();      /* let the general path raise with its full message */
        return NULL;
    }
    pf_loop kernel = find_kernel(op, compute);
    if (kernel == NULL || compute != a->dtype || kernel_in_dtype(op, 0, compute) != compute ||
        kernel_out_dtype(op, compute) != res) {
        return NULL;
    }
    PfTensor *dst = pf_tensor_empty(a->ndim, a->shape, res, a->storage->device, pf_ops[op].name);
    if (dst == NULL) {
        return NULL;
    }
    char *data[PF_MAX_OPERANDS + 1];
    int64_t strides[PF_MAX_OPERANDS + 1];
    for (int k = 0; k < nin; k++) {
        data[k] = pf_tensor_data((PfTensor *)inputs[k]);
        strides[k] = pf_dtypes[compute].itemsize;
    }
    data[nin] = pf_tensor_data(dst);
    strides[nin] = pf_dtypes[res].itemsize;
    kernel(data, strides, pf_numel(a->shape, a->ndim), (void *)p);
    return (PyObject *)dst;
}

static PyObject *ew_compute(pf_op op, PyObject *const *inputs, PfTensor *out,
                            const pf_params *p, const char *name, pf_ew_target target,
                            pf_device dev);

/*
 * Every elementwise op passes here: the kernel run, and the autograd
 * record when grad mode is on and an input requires grad (or an in-place
 * write lands in a tensor that does).
 */
PyObject *pf_elementwise_as(pf_op op, PyObject *const *inputs, PfTensor *out, const pf_params *p,
                            const char *name)
{
    pf_device dev = {PF_DEV_CPU, 0};
    int on_cuda = ew_devices(op, inputs, out, name, &dev);
    if (on_cuda < 0) {
        return NULL;
    }
    pf_ew_target target = on_cuda ? PF_EW_CUDA : PF_EW_CPU;
    if (pf_grad_enabled()) {
        int nin = pf_ops[op].nin;
        int any = out != NULL && out->requires_grad;
        for (int k = 0; k < nin; k++) {
            any |= pf_needs_grad(inputs[k]);
        }
        if (any) {
            PfNode *node;
            int r = pf_ag_ew_begin(op, inputs, nin, out, p, name ? name : pf_ops[op].name,
                                   &node);
            if (r < 0) {
                return NULL;
            }
            if (r > 0) {
                PyObject *res = ew_compute(op, inputs, out, p, name, target, dev);
                if (res == NULL) {
                    Py_DECREF(node);
                    return NULL;
                }
                if (pf_ag_ew_end(node, res) < 0) {
                    Py_DECREF(res);
                    return NULL;
                }
                return res;
            }
        }
    }
    return ew_compute(op, inputs, out, p, name, target, dev);
}

PyObject *pf_elementwise_host_selftest(pf_op op, PyObject *const *inputs, PfTensor *out,
                                       const pf_params *p)
{
    pf_device cpu = {PF_DEV_CPU, 0};
    return ew_compute(op, inputs, out, p, NULL, PF_EW_CUDA_HOST, cpu);
}

/* The cpu kernel over the broadcast shape, converting operands in chunks where needed. */
static void ew_run_cpu(pf_op op, PfTensor *const *t, int nin, PfTensor *dst,
                       const int64_t *shape, int ndim, pf_loop kernel, pf_dtype compute,
                       const pf_params *p)
{
    PfTensor *ops[PF_MAX_OPERANDS + 1];
    for (int k = 0; k < nin; k++) {
        ops[k] = t[k];
    }
    ops[nin] = dst;
    pf_iter it;
    pf_iter_build(&it, nin + 1, ops, shape, ndim);
    cast_ctx cc = {kernel, (void *)p, nin + 1, {0}, {0}};
    int needs_cast = 0;
    for (int k = 0; k <= nin; k++) {
        cc.actual[k] = ops[k]->dtype;
        cc.want[k] = k < nin ? kernel_in_dtype(op, k, compute) : kernel_out_dtype(op, compute);
        if (pf_ops[op].kind == PF_OK_WHERE && k > 0) {
            cc.want[k] = compute;
        }
        needs_cast |= cc.actual[k] != cc.want[k];
    }
    if (needs_cast) {
        pf_iter_run(&it, cast_loop, &cc);
    }
    else {
        pf_iter_run(&it, kernel, (void *)p);
    }
}

/*
 * The dtype a CUDA kernel runs in: the cpu's compute dtype, except that
 * operands all of float16 (or all of bfloat16) are read and written as
 * such, computed in float32 inside the kernel as the cpu computes them
 * after converting: mixed precision pays no conversion pass.  Operands of
 * mixed dtypes are each converted to the compute dtype, as on the cpu
 * (converting an int32 to float16 on the way would round it twice).
 */
static pf_dtype cuda_kernel_dtype(pf_op op, const pf_dtype *in, int nin, pf_dtype compute)
{
    pf_opkind kind = pf_ops[op].kind;
    if (compute != PF_FLOAT32 || !(kind == PF_OK_UFLOAT || kind == PF_OK_USAME ||
                                   kind == PF_OK_BARITH || kind == PF_OK_BFLOAT ||
                                   kind == PF_OK_UPRED || kind == PF_OK_COMPARE)) {
        return compute;
    }
    pf_dtype h = in[0];
    for (int i = 0; i < nin; i++) {
        if (in[i] != h || (h != PF_FLOAT16 && h != PF_BFLOAT16)) {
            return compute;
        }
    }
    return h;
}

static PyObject *ew_compute(pf_op op, PyObject *const *inputs, PfTensor *out,
                            const pf_params *p, const char *name, pf_ew_target target,
                            pf_device dev)
{
    /* the fast path runs cpu loops: never for device memory */
    if (out == NULL && name == NULL && target == PF_EW_CPU) {
        PyObject *r = fast_same_shape(op, inputs, p);
        if (r != NULL || PyErr_Occurred()) {
            return r;
        }
    }
    name = name != NULL ? name : pf_ops[op].name;
    int nin = pf_ops[op].nin;
    PfTensor *t[PF_MAX_OPERANDS] = {NULL};
    PyObject *owned[PF_MAX_OPERANDS] = {NULL};
    stack_scalar scal[PF_MAX_OPERANDS];
    PyObject *result = NULL;
    pf_dtype in_dt[PF_MAX_OPERANDS] = {PF_BOOL};
    int weak[PF_MAX_OPERANDS];

    /* strong operands first: tensors and array-likes fix the dtype */
    int strong_rank = -1;
    pf_dtype strong = PF_BOOL;
    for (int k = 0; k < nin; k++) {
        weak[k] = scalar_rank(inputs[k]);
        if (weak[k] >= 0) {
            continue;
        }
        if (PfTensor_Check(inputs[k])) {
            t[k] = (PfTensor *)inputs[k];
        }
        else {
            owned[k] = (PyObject *)pf_as_tensor(inputs[k], 0, PF_FLOAT32, name);
            if (owned[k] == NULL) {
                goto done;
            }
            t[k] = (PfTensor *)owned[k];
        }
        in_dt[k] = t[k]->dtype;
        /* where's condition does not take part in the value dtype */
        if (!(pf_ops[op].kind == PF_OK_WHERE && k == 0)) {
            strong = strong_rank < 0 ? t[k]->dtype : pf_promote(strong, t[k]->dtype);
            strong_rank = 0;
        }
    }
    /* weak scalars adapt to the strong dtype unless they are of a higher kind */
    for (int k = 0; k < nin; k++) {
        if (weak[k] < 0) {
            continue;
        }
        static const pf_dtype by_rank[3] = {PF_BOOL, PF_INT64, PF_FLOAT32};
        pf_dtype d = (strong_rank >= 0 && kind_rank(strong) >= weak[k]) ? strong
                                                                         : by_rank[weak[k]];
        if (pf_ops[op].kind == PF_OK_WHERE && k == 0) {
            d = PF_BOOL;
        }
        PyObject *value = inputs[k];
        PyObject *inf = NULL;
        if (pf_ops[op].kind == PF_OK_COMPARE && weak[k] == 1 && pf_is_int(d) &&
            !int_fits(value, d)) {
            /*
             * uint8_tensor == 300 is simply False (NumPy 2, PyTorch), not an
             * error: compare in int64, or against +-inf in float64 when the
             * integer is beyond int64 (that order is exact; rounding the
             * integer to float64 would not be).
             */
            if (int_fits(value, PF_INT64)) {
                d = PF_INT64;
            }
            else {
                int neg = PyObject_RichCompareBool(value, Py_False, Py_LT);
                if (neg < 0 || (inf = PyFloat_FromDouble(neg ? -INFINITY : INFINITY)) == NULL) {
                    goto done;
                }
                value = inf;
                d = PF_FLOAT64;
            }
        }
        int r = make_stack_scalar(&scal[k], value, d, name);
        Py_XDECREF(inf);
        if (r < 0) {
            goto done;
        }
        t[k] = &scal[k].t;
        in_dt[k] = d;
    }

    pf_dtype compute, res;
    if (ew_dtypes(op, name, in_dt, nin, &compute, &res) < 0) {
        goto done;
    }
    pf_loop kernel = NULL;
    pf_dtype cuda_dtype = cuda_kernel_dtype(op, in_dt, nin, compute);
    if (target != PF_EW_CPU) {
        int has = pf_ew_cuda_has_kernel(op, cuda_dtype, target, name);
        if (has < 0) {
            goto done;
        }
        if (!has) {
            dtype_error(name, in_dt, nin, "no CUDA kernel for this dtype");
            goto done;
        }
    }
    else if ((kernel = find_kernel(op, compute)) == NULL) {
        dtype_error(name, in_dt, nin, "no kernel for this dtype");
        goto done;
    }

    /*
     * broadcast shape; pf_broadcast_shapes right-aligns its inputs, so its
     * output must not alias them: accumulate through a second buffer
     */
    int64_t shape[PF_MAX_DIMS], acc[PF_MAX_DIMS];
    int ndim = 0;
    for (int k = 0; k < nin; k++) {
        memcpy(acc, shape, sizeof(int64_t) * (size_t)ndim);
        if (pf_broadcast_shapes(acc, ndim, t[k]->shape, t[k]->ndim, shape, &ndim, name) < 0) {
            goto done;
        }
    }

    PfTensor *dst;
    PfTensor *tmp_out = NULL;
    if (out != NULL) {
        if (out->ndim != ndim || memcmp(out->shape, shape, sizeof(int64_t) * (size_t)ndim) != 0) {
            char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError,
                         "%s: the output has shape %s but the inputs broadcast to %s; in-place "
                         "ops and out= need exactly the broadcast shape", name,
                         pf_shape_str(out->shape, out->ndim, a, sizeof(a)),
                         pf_shape_str(shape, ndim, b, sizeof(b)));
            goto done;
        }
        if (kind_rank(res) > kind_rank(out->dtype)) {
            PyErr_Format(PyExc_TypeError,
                         "%s: the result has dtype %s, which cannot be stored in the %s output "
                         "without losing its kind; use an output of dtype %s (or cast first)",
                         name, pf_dtypes[res].name, pf_dtypes[out->dtype].name,
                         pf_dtypes[res].name);
            goto done;
        }
        if (pf_tensor_check_writable(out, name) < 0) {
            goto done;
        }
        dst = out;
        /*
         * A float16 / bfloat16 result is computed in float32; written into
         * an output of another dtype it must still be rounded to the
         * result dtype first, so that out= gives what assigning the result
         * would (f16(60000) + f16(60000) is inf, also into a float32 out).
         */
        int round_first = out->dtype != res && kernel_out_dtype(op, compute) != res;
        int overlap = 0;
        for (int k = 0; k < nin && !overlap; k++) {
            /* shifted views of one buffer: compute aside, then copy in */
            overlap = unsafe_overlap(out, t[k]);
        }
        if (round_first || overlap) {
            tmp_out = pf_tensor_empty(ndim, shape, round_first ? res : out->dtype,
                                      out->storage->device, name);
            if (tmp_out == NULL) {
                goto done;
            }
            dst = tmp_out;
        }
    }
    else {
        /* t[0] may be a Python scalar, on no device: the operands' device is dev */
        dst = pf_tensor_empty(ndim, shape, res,
                              target == PF_EW_CUDA ? dev : t[0]->storage->device, name);
        if (dst == NULL) {
            goto done;
        }
    }

    if (target != PF_EW_CPU) {
        pf_dtype want[PF_MAX_OPERANDS + 1];
        for (int k = 0; k <= nin; k++) {
            want[k] = k < nin ? kernel_in_dtype(op, k, cuda_dtype)
                              : kernel_out_dtype(op, cuda_dtype);
        }
        if (pf_ew_cuda_run(op, t, weak, nin, dst, want, shape, ndim, p, target, name) < 0) {
            if (dst != out) {
                Py_DECREF(dst);
            }
            goto done;
        }
    }
    else {
        ew_run_cpu(op, t, nin, dst, shape, ndim, kernel, compute, p);
    }
    if (out != NULL) {
        if (tmp_out != NULL) {
            int r = pf_tensor_assign(out, tmp_out, name);
            Py_DECREF(tmp_out);
            if (r < 0) {
                goto done;
            }
        }
        else {
            out->storage->version++;
        }
        result = Py_NewRef(out);
    }
    else {
        result = (PyObject *)dst;
    }
done:
    for (int k = 0; k < nin; k++) {
        Py_XDECREF(owned[k]);
    }
    return result;
}

int pf_ops_check_kernels(void)
{
    for (int op = 0; op < PF_OP_COUNT; op++) {
        if (pf_ops[op].kind == PF_OK_CUSTOM) {
            continue;
        }
        int any = 0;
        for (int d = 0; d < PF_NDTYPES; d++) {
            any |= pf_ew_kernels[op][d] != NULL;
        }
        if (!any) {
            return PF_ERRI(PyExc_ImportError,
                           "pyframe._C: op '%s' is in the op table but has no kernel; add it "
                           "to kernels/elementwise.c", pf_ops[op].name);
        }
    }
    return 0;
}

PyObject *pf_call_routed(const char *who, const char *kind, const char *what,
                         const pf_named_binding *entries, size_t n, int *route_flag,
                         PyObject *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    const char *name = nargs > 0 && PyUnicode_Check(args[0]) ? PyUnicode_AsUTF8(args[0]) : NULL;
    if (name == NULL) {
        PyErr_Clear();
        return PF_ERR(PyExc_TypeError, "%s: the first argument must be the name of %s (a str)",
                      who, kind);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(entries[i].name, name) == 0) {
            *route_flag = 1;
            PyObject *r = entries[i].fn(m, args + 1, nargs - 1, kwnames);
            *route_flag = 0;
            return r;
        }
    }
    char list[512];
    size_t len = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && len < sizeof(list); i++) {
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", i ? ", " : "",
                                entries[i].name);
    }
    return PF_ERR(PyExc_ValueError, "%s: %s is not %s %s; expected one of %s", who, name, kind,
                  what, list);
}
