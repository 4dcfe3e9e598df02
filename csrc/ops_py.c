/*
 * ops_py.c -- the Python face of the op table: pf.<op>() functions,
 * Tensor.<op>() and in-place Tensor.<op>_() methods, aliases, the number
 * slots (+ - * / // % ** @ unary - abs ~ & | ^ and their in-place forms),
 * rich comparisons, and pf._C._op_table() for the test sweep.  All of it
 * is generated from ops.def; nothing here is written per op except the
 * parameter quirks of gelu, round and clip.
 */
#include "autograd.h"
#include <math.h>

/* -------------------------------------------------- generic elementwise call */

static int param_value(pf_op op, int i, PyObject *v, double *out)
{
    const char *name = pf_ops[op].name;
    if (op == PF_OP_GELU) {
        /* approximate="none" | "tanh" (PyTorch) or a bool (Keras) */
        if (PyUnicode_Check(v)) {
            const char *s = PyUnicode_AsUTF8(v);
            if (s != NULL && (strcmp(s, "none") == 0 || strcmp(s, "tanh") == 0)) {
                *out = strcmp(s, "tanh") == 0;
                return 0;
            }
            return PF_ERRI(PyExc_ValueError,
                           "gelu: approximate must be 'none' or 'tanh' (or a bool); got %R", v);
        }
        int b = PyObject_IsTrue(v);
        if (b < 0) {
            return -1;
        }
        *out = b;
        return 0;
    }
    if (PyBool_Check(v) || !(PyFloat_Check(v) || PyLong_Check(v) || PyIndex_Check(v) ||
                             PyNumber_Check(v)) || PyComplex_Check(v)) {
        return PF_ERRI(PyExc_TypeError, "%s: %s must be a number; got %.100s", name,
                       pf_op_params[op].names[i], Py_TYPE(v)->tp_name);
    }
    *out = PyFloat_AsDouble(v);
    if (*out == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (op == PF_OP_ROUND && *out != floor(*out)) {
        return PF_ERRI(PyExc_TypeError, "round: decimals must be an integer; got %R", v);
    }
    return 0;
}

/*
 * clip(x, min, max) is minimum(maximum(x, min), max) under the dtype rules of
 * NumPy 2 and PyTorch: Python numbers are weak, so an integer tensor clipped
 * to a float bound becomes float32 and a bool tensor clipped to an integer
 * becomes int64, while tensors, arrays and NumPy scalars are strong.  The
 * one-pass CLIP kernel serves the common case, where the result keeps x's
 * dtype and the bounds are Python numbers; everything else goes through
 * maximum and minimum (errors still name clip).
 *
 * Integer bounds beyond an integer tensor's range clip nothing and are
 * saturated to it, except where every element would have to become a
 * value the dtype cannot hold (min above its largest value, max below its
 * smallest): that raises instead of silently returning a wrong number.
 */
static PyObject *clip_tensors(PyObject *x, PyObject *lo, PyObject *hi, PfTensor *out)
{
    PyObject *cur = Py_NewRef(x);
    if (lo != NULL) {
        PyObject *in[2] = {cur, lo};
        PyObject *r = pf_elementwise_as(PF_OP_MAXIMUM, in, hi == NULL ? out : NULL, NULL,
                                        "clip");
        Py_DECREF(cur);
        if (r == NULL) {
            return NULL;
        }
        cur = r;
    }
    if (hi != NULL) {
        PyObject *in[2] = {cur, hi};
        PyObject *r = pf_elementwise_as(PF_OP_MINIMUM, in, out, NULL, "clip");
        Py_DECREF(cur);
        cur = r;
    }
    return cur;
}

/* The kind of a Python-number bound (0 bool, 1 int, 2 float); -1 for anything else. */
static int clip_bound_rank(PyObject *v)
{
    if (PyBool_Check(v)) {
        return 0;
    }
    if (PyLong_CheckExact(v)) {
        return 1;
    }
    return PyFloat_CheckExact(v) ? 2 : -1;
}

/* the range of an integer or bool dtype */
static void clip_int_range(pf_dtype d, long long *lo, long long *hi)
{
    switch (d) {
    case PF_BOOL: *lo = 0; *hi = 1; break;
    case PF_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case PF_INT8: *lo = INT8_MIN; *hi = INT8_MAX; break;
    case PF_INT16: *lo = INT16_MIN; *hi = INT16_MAX; break;
    case PF_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    default: *lo = INT64_MIN; *hi = INT64_MAX; break;
    }
}

static PyObject *clip_call(PyObject *xo, PyObject *lo, PyObject *hi, PfTensor *out)
{
    static const char *const which[2] = {"min", "max"};
    PyObject *b[2] = {lo, hi};
    PyObject *sat[2] = {NULL, NULL};
    PyObject *result = NULL;
    for (int i = 0; i < 2; i++) {
        if (b[i] != NULL && !(PfTensor_Check(b[i]) || PyList_Check(b[i]) || PyTuple_Check(b[i]) ||
                              pf_is_ndarray(b[i]) ||
                              (PyNumber_Check(b[i]) && !PyComplex_Check(b[i])))) {
            return PF_ERR(PyExc_TypeError, "clip: %s must be a number or a tensor; got %.100s",
                          which[i], Py_TYPE(b[i])->tp_name);
        }
    }
    PyObject *xt = PfTensor_Check(xo) ? Py_NewRef(xo)
                                      : (PyObject *)pf_as_tensor(xo, 0, PF_FLOAT32, "clip");
    if (xt == NULL) {
        return NULL;
    }
    pf_dtype xd = ((PfTensor *)xt)->dtype;
    int xrank = pf_is_float(xd) ? 2 : xd == PF_BOOL ? 0 : 1;
    pf_params p = {{-INFINITY, INFINITY}};
    int fast = 1;
    for (int i = 0; i < 2; i++) {
        if (b[i] == NULL) {
            continue;
        }
        int r = clip_bound_rank(b[i]);
        if (r < 0 || r > xrank) {
            fast = 0;       /* a strong operand, or a bound that promotes the result */
            continue;
        }
        if (xrank == 2) {
            p.p[i] = PyFloat_AsDouble(b[i]);
            if (p.p[i] == -1.0 && PyErr_Occurred()) {
                /* an int beyond float64: as a float bound it is an infinity */
                PyErr_Clear();
                int neg = PyObject_RichCompareBool(b[i], Py_False, Py_LT);
                if (neg < 0) {
                    goto done;
                }
                p.p[i] = neg ? -INFINITY : INFINITY;
            }
            continue;
        }
        long long dlo = 0, dhi = 0;
        clip_int_range(xd, &dlo, &dhi);
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(b[i], &overflow);
        if (v == -1 && PyErr_Occurred()) {
            goto done;
        }
        int above = overflow > 0 || (!overflow && v > dhi);
        int below = overflow < 0 || (!overflow && v < dlo);
        if (i == 0 && above) {
            PyErr_Format(PyExc_ValueError,
                         "clip: min %R is above the largest %s (%lld): every element would "
                         "become %R, which %s cannot hold; cast to a wider dtype first",
                         b[i], pf_dtypes[xd].name, dhi, b[i], pf_dtypes[xd].name);
            goto done;
        }
        if (i == 1 && below) {
            PyErr_Format(PyExc_ValueError,
                         "clip: max %R is below the smallest %s (%lld): every element would "
                         "become %R, which %s cannot hold; cast to a wider dtype first",
                         b[i], pf_dtypes[xd].name, dlo, b[i], pf_dtypes[xd].name);
            goto done;
        }
        v = above ? dhi : below ? dlo : v;
        if ((sat[i] = PyLong_FromLongLong(v)) == NULL) {
            goto done;
        }
        /* doubles carry integers exactly up to 2^53; beyond, compare through int64 */
        if (v > (1LL << 53) || v < -(1LL << 53)) {
            fast = 0;
        }
        p.p[i] = (double)v;
    }
    if (fast) {
        result = pf_elementwise_as(PF_OP_CLIP, &xt, out, &p, "clip");
    }
    else {
        result = clip_tensors(xt, sat[0] != NULL ? sat[0] : b[0], sat[1] != NULL ? sat[1] : b[1],
                              out);
    }
done:
    Py_XDECREF(sat[0]);
    Py_XDECREF(sat[1]);
    Py_DECREF(xt);
    return result;
}

PyObject *pf_py_elementwise(pf_op op, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                            PyObject *kwnames, int inplace)
{
    const char *name = pf_ops[op].name;
    const pf_param_spec *spec = &pf_op_params[op];
    int nin = pf_ops[op].nin;
    PyObject *inputs[PF_MAX_OPERANDS];
    PyObject *pvals[2] = {NULL, NULL};
    PyObject *out_obj = NULL;
    Py_ssize_t at = 0;
    int have = 0;
    if (self != NULL) {
        inputs[have++] = self;
    }
    while (have < nin && at < nargs) {
        inputs[have++] = args[at++];
    }
    if (have < nin) {
        return PF_ERR(PyExc_TypeError, "%s: expected %d tensor argument(s), got %d", name, nin,
                      have);
    }
    for (int i = 0; at < nargs; i++, at++) {
        if (i >= spec->n) {
            return PF_ERR(PyExc_TypeError, "%s: too many positional arguments (%zd given)", name,
                          nargs + (self != NULL));
        }
        pvals[i] = args[at];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t j = 0; j < nkw; j++) {
        const char *key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, j));
        PyObject *val = args[nargs + j];
        if (key == NULL) {
            return NULL;
        }
        if (strcmp(key, "out") == 0 && !inplace) {
            out_obj = val;
            continue;
        }
        int found = 0;
        for (int i = 0; i < spec->n && i < 2; i++) {
            /* clip also answers to PyTorch's and NumPy's names for its bounds */
            int alias = op == PF_OP_CLIP &&
                        ((i == 0 && (strcmp(key, "a_min") == 0 || strcmp(key, "min_value") == 0)) ||
                         (i == 1 && (strcmp(key, "a_max") == 0 || strcmp(key, "max_value") == 0)));
            if (strcmp(key, spec->names[i]) == 0 || alias) {
                if (pvals[i] != NULL) {
                    return PF_ERR(PyExc_TypeError, "%s: %s given twice", name, spec->names[i]);
                }
                pvals[i] = val;
                found = 1;
            }
        }
        if (!found) {
            return PF_ERR(PyExc_TypeError, "%s: unexpected keyword argument '%s'", name, key);
        }
    }
    PfTensor *out = NULL;
    if (inplace) {
        out = (PfTensor *)self;
    }
    else if (out_obj != NULL && out_obj != Py_None) {
        if (!PfTensor_Check(out_obj)) {
            return PF_ERR(PyExc_TypeError, "%s: out must be a pyframe Tensor; got %.100s", name,
                          Py_TYPE(out_obj)->tp_name);
        }
        out = (PfTensor *)out_obj;
    }
    if (op == PF_OP_CLIP) {
        PyObject *lo = pvals[0] == Py_None ? NULL : pvals[0];
        PyObject *hi = pvals[1] == Py_None ? NULL : pvals[1];
        if (lo == NULL && hi == NULL) {
            return PF_ERR(PyExc_ValueError, "clip: give at least one of min and max (or both); "
                          "got neither");
        }
        return clip_call(inputs[0], lo, hi, out);
    }
    pf_params p = {{spec->defaults[0], spec->defaults[1]}};
    for (int i = 0; i < spec->n && i < 2; i++) {
        if (pvals[i] != NULL && param_value(op, i, pvals[i], &p.p[i]) < 0) {
            return NULL;
        }
    }
    return pf_elementwise(op, inputs, out, &p);
}

/* ----------------------------------------------------- generated bindings */

typedef PyObject *(*fastcall_kw)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);

#define GEN_EW(E, py)                                                                     \
    static PyObject *f_##py(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)  \
    {                                                                                     \
        (void)m;                                                                          \
        return pf_py_elementwise(PF_OP_##E, NULL, a, n, kw, 0);                           \
    }                                                                                     \
    static PyObject *m_##py(PyObject *s, PyObject *const *a, Py_ssize_t n, PyObject *kw)  \
    {                                                                                     \
        return pf_py_elementwise(PF_OP_##E, s, a, n, kw, 0);                              \
    }                                                                                     \
    static PyObject *mi_##py(PyObject *s, PyObject *const *a, Py_ssize_t n, PyObject *kw) \
    {                                                                                     \
        return pf_py_elementwise(PF_OP_##E, s, a, n, kw, 1);                              \
    }

/*
 * a hand-written binding, called through autograd's recorder (which runs it
 * directly when nothing requires grad); as a method, self is passed as the
 * first argument
 */
#define GEN_CUSTOM(E, py)                                                                 \
    PyObject *pf_op_##py(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);          \
    static PyObject *f_##py(PyObject *m, PyObject *const *a, Py_ssize_t n, PyObject *kw)  \
    {                                                                                     \
        return pf_ag_custom_call(PF_OP_##E, pf_op_##py, m, a, n, kw);                     \
    }                                                                                     \
    static PyObject *m_##py(PyObject *s, PyObject *const *a, Py_ssize_t n, PyObject *kw)  \
    {                                                                                     \
        return call_with_self(f_##py, s, a, n, kw);                                       \
    }                                                                                     \
    static PyObject *mi_##py(PyObject *s, PyObject *const *a, Py_ssize_t n, PyObject *kw) \
    {                                                                                     \
        (void)s, (void)a, (void)n, (void)kw;                                              \
        return PF_ERR(PyExc_TypeError, "%s has no in-place form", #py);                   \
    }

static inline PyObject *call_with_self(fastcall_kw fn, PyObject *self, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *stack[24];
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    if (total + 1 > 24) {
        return PF_ERR(PyExc_TypeError, "too many arguments (%zd)", total);
    }
    stack[0] = self;
    memcpy(stack + 1, args, sizeof(PyObject *) * (size_t)total);
    return fn(NULL, stack, nargs + 1, kwnames);
}

#define GEN_UFLOAT GEN_EW
#define GEN_USAME GEN_EW
#define GEN_UPRED GEN_EW
#define GEN_ULOGICAL GEN_EW
#define GEN_UBITWISE GEN_EW
#define GEN_BARITH GEN_EW
#define GEN_BFLOAT GEN_EW
#define GEN_COMPARE GEN_EW
#define GEN_LOGICAL GEN_EW
#define GEN_BITWISE GEN_EW
#define GEN_WHERE GEN_EW

#define PF_OP(E, py, K, N, F) GEN_##K(E, py)
#include "ops.def"
#undef PF_OP

static const fastcall_kw fn_table[PF_OP_COUNT] = {
#define PF_OP(E, py, K, N, F) [PF_OP_##E] = f_##py,
#include "ops.def"
#undef PF_OP
};

static const fastcall_kw meth_table[PF_OP_COUNT] = {
#define PF_OP(E, py, K, N, F) [PF_OP_##E] = m_##py,
#include "ops.def"
#undef PF_OP
};

static const fastcall_kw inplace_table[PF_OP_COUNT] = {
#define PF_OP(E, py, K, N, F) [PF_OP_##E] = mi_##py,
#include "ops.def"
#undef PF_OP
};

PyObject *pf_call(pf_op op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return fn_table[op](NULL, args, nargs, kwnames);
}

static const struct {
    const char *alias, *name;
} aliases[] = {
#define PF_OP(E, py, K, N, F)
#define PF_ALIAS(alias, py) {#alias, #py},
#include "ops.def"
#undef PF_ALIAS
#undef PF_OP
};

#define NALIASES (sizeof(aliases) / sizeof(aliases[0]))

static int op_by_name(const char *name)
{
    for (int i = 0; i < PF_OP_COUNT; i++) {
        if (strcmp(pf_ops[i].name, name) == 0) {
            return i;
        }
    }
    return -1;
}

/* Names of in-place methods: "<name>_", kept for the life of the process. */
static char inplace_names[PF_OP_COUNT + NALIASES][40];

#define FK (METH_FASTCALL | METH_KEYWORDS)

PyMethodDef *pf_ops_module_methods(void)
{
    PyMethodDef *defs = PyMem_Calloc(PF_OP_COUNT + NALIASES + 1, sizeof(PyMethodDef));
    if (defs == NULL) {
        return NULL;
    }
    int n = 0;
    for (int i = 0; i < PF_OP_COUNT; i++) {
        defs[n++] = (PyMethodDef){pf_ops[i].name, (PyCFunction)(void (*)(void))fn_table[i], FK,
                                  NULL};
    }
    for (size_t a = 0; a < NALIASES; a++) {
        int i = op_by_name(aliases[a].name);
        if (i >= 0) {
            defs[n++] = (PyMethodDef){aliases[a].alias,
                                      (PyCFunction)(void (*)(void))fn_table[i], FK, NULL};
        }
    }
    return defs;
}

PyMethodDef *pf_ops_tensor_methods(void)
{
    PyMethodDef *defs = PyMem_Calloc(2 * (PF_OP_COUNT + NALIASES) + 1, sizeof(PyMethodDef));
    if (defs == NULL) {
        return NULL;
    }
    int n = 0, ni = 0;
    for (size_t a = 0; a < PF_OP_COUNT + NALIASES; a++) {
        int i;
        const char *name;
        if (a < PF_OP_COUNT) {
            i = (int)a;
            name = pf_ops[i].name;
        }
        else {
            i = op_by_name(aliases[a - PF_OP_COUNT].name);
            name = aliases[a - PF_OP_COUNT].alias;
            if (i < 0) {
                continue;
            }
        }
        if (pf_ops[i].flags & PF_F_M) {
            defs[n++] = (PyMethodDef){name, (PyCFunction)(void (*)(void))meth_table[i], FK, NULL};
        }
        if (pf_ops[i].flags & PF_F_I) {
            snprintf(inplace_names[ni], sizeof(inplace_names[ni]), "%s_", name);
            defs[n++] = (PyMethodDef){inplace_names[ni++],
                                      (PyCFunction)(void (*)(void))inplace_table[i], FK, NULL};
        }
    }
    return defs;
}

/* ------------------------------------------------------------ number slots */

/* Operands the number slots accept; anything else gets NotImplemented. */
static int operand_ok(PyObject *o)
{
    return PfTensor_Check(o) || PyFloat_Check(o) || PyLong_Check(o) || PyList_Check(o) ||
           PyTuple_Check(o) || pf_is_ndarray(o) ||
           (PyNumber_Check(o) && !PyComplex_Check(o) && !PyUnicode_Check(o) &&
            (PyObject_CheckBuffer(o) || PyIndex_Check(o)));
}

static PyObject *binop(pf_op op, PyObject *a, PyObject *b)
{
    if (!operand_ok(a) || !operand_ok(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *in[2] = {a, b};
    return pf_elementwise(op, in, NULL, NULL);
}

static PyObject *ibinop(pf_op op, PyObject *a, PyObject *b)
{
    if (!PfTensor_Check(a) || !operand_ok(b)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    PyObject *in[2] = {a, b};
    return pf_elementwise(op, in, (PfTensor *)a, NULL);
}

#define BINSLOT(slot, OP)                                                                  \
    static PyObject *nb_##slot(PyObject *a, PyObject *b) { return binop(PF_OP_##OP, a, b); } \
    static PyObject *nb_i##slot(PyObject *a, PyObject *b) { return ibinop(PF_OP_##OP, a, b); }

BINSLOT(add, ADD)
BINSLOT(sub, SUB)
BINSLOT(mul, MUL)
BINSLOT(truediv, DIV)
BINSLOT(floordiv, FLOOR_DIVIDE)
BINSLOT(mod, REMAINDER)
BINSLOT(and, BITWISE_AND)
BINSLOT(or, BITWISE_OR)
BINSLOT(xor, BITWISE_XOR)

static PyObject *nb_pow(PyObject *a, PyObject *b, PyObject *mod)
{
    if (mod != Py_None) {
        return PF_ERR(PyExc_TypeError, "power: the three-argument form pow(x, y, mod) is not "
                      "supported for tensors");
    }
    return binop(PF_OP_POW, a, b);
}

static PyObject *nb_ipow(PyObject *a, PyObject *b, PyObject *mod)
{
    if (mod != Py_None) {
        return PF_ERR(PyExc_TypeError, "power: pow(x, y, mod) is not supported for tensors");
    }
    return ibinop(PF_OP_POW, a, b);
}

static PyObject *unop(pf_op op, PyObject *a)
{
    return pf_elementwise(op, &a, NULL, NULL);
}

static PyObject *nb_neg(PyObject *a) { return unop(PF_OP_NEG, a); }
static PyObject *nb_abs(PyObject *a) { return unop(PF_OP_ABS, a); }
static PyObject *nb_invert(PyObject *a) { return unop(PF_OP_BITWISE_NOT, a); }
static PyObject *nb_pos(PyObject *a) { return Py_NewRef(a); }

static PyObject *tensor_richcompare(PyObject *a, PyObject *b, int cmp)
{
    static const pf_op ops[] = {
        [Py_LT] = PF_OP_LT, [Py_LE] = PF_OP_LE, [Py_EQ] = PF_OP_EQ,
        [Py_NE] = PF_OP_NE, [Py_GT] = PF_OP_GT, [Py_GE] = PF_OP_GE,
    };
    return binop(ops[cmp], a, b);
}

/* Tensors stay usable as dict keys and in sets: identity hashing, as PyTorch. */
static Py_hash_t tensor_hash(PyObject *self)
{
    Py_hash_t h = (Py_hash_t)((uintptr_t)self >> 4);
    return h == -1 ? -2 : h;
}

void pf_ops_install_slots(PyTypeObject *type)
{
    PyNumberMethods *nb = type->tp_as_number;
    nb->nb_add = nb_add;
    nb->nb_subtract = nb_sub;
    nb->nb_multiply = nb_mul;
    nb->nb_true_divide = nb_truediv;
    nb->nb_floor_divide = nb_floordiv;
    nb->nb_remainder = nb_mod;
    nb->nb_power = nb_pow;
    nb->nb_and = nb_and;
    nb->nb_or = nb_or;
    nb->nb_xor = nb_xor;
    nb->nb_inplace_add = nb_iadd;
    nb->nb_inplace_subtract = nb_isub;
    nb->nb_inplace_multiply = nb_imul;
    nb->nb_inplace_true_divide = nb_itruediv;
    nb->nb_inplace_floor_divide = nb_ifloordiv;
    nb->nb_inplace_remainder = nb_imod;
    nb->nb_inplace_power = nb_ipow;
    nb->nb_inplace_and = nb_iand;
    nb->nb_inplace_or = nb_ior;
    nb->nb_inplace_xor = nb_ixor;
    nb->nb_negative = nb_neg;
    nb->nb_positive = nb_pos;
    nb->nb_absolute = nb_abs;
    nb->nb_invert = nb_invert;
    /* @ and @= live with matmul in linalg.c */
    nb->nb_matrix_multiply = pf_nb_matmul;
    nb->nb_inplace_matrix_multiply = pf_nb_inplace_matmul;
    type->tp_richcompare = tensor_richcompare;
    type->tp_hash = tensor_hash;
}

/* ------------------------------------------------------------ _op_table */

static const char *kind_names[] = {
    "ufloat", "usame", "upred", "ulogical", "ubitwise", "barith", "bfloat", "compare",
    "logical", "bitwise", "where", "custom",
};

static PyObject *py_op_table(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (int i = 0; i < PF_OP_COUNT; i++) {
        PyObject *dts = PyList_New(0);
        for (int d = 0; dts != NULL && d < PF_NDTYPES; d++) {
            if (pf_ew_kernels[i][d] != NULL) {
                PyObject *s = PyUnicode_FromString(pf_dtypes[d].name);
                if (s == NULL || PyList_Append(dts, s) < 0) {
                    Py_XDECREF(s);
                    Py_CLEAR(dts);
                    break;
                }
                Py_DECREF(s);
            }
        }
        PyObject *params = PyTuple_New(pf_op_params[i].n);
        for (int k = 0; params != NULL && k < pf_op_params[i].n; k++) {
            PyTuple_SET_ITEM(params, k, PyUnicode_FromString(pf_op_params[i].names[k]));
        }
        /* where the op runs on CUDA: "kernel" (G), "cpu only: <reason>", or None (not yet) */
        PyObject *cuda = (pf_ops[i].flags & PF_F_G) ? PyUnicode_FromString("kernel")
                         : pf_op_cpu_only[i] != NULL
                             ? PyUnicode_FromFormat("cpu only: %s", pf_op_cpu_only[i])
                             : Py_NewRef(Py_None);
        if (dts == NULL || params == NULL || cuda == NULL) {
            Py_XDECREF(dts);
            Py_XDECREF(params);
            Py_XDECREF(cuda);
            Py_DECREF(list);
            return NULL;
        }
        PyObject *row = (dts && params && cuda)
            ? Py_BuildValue("{s:s,s:s,s:i,s:O,s:O,s:O,s:O,s:N,s:N,s:N}", "name", pf_ops[i].name, "kind",
                            kind_names[pf_ops[i].kind], "nin", pf_ops[i].nin, "method",
                            (pf_ops[i].flags & PF_F_M) ? Py_True : Py_False, "inplace",
                            (pf_ops[i].flags & PF_F_I) ? Py_True : Py_False, "differentiable",
                            (pf_ops[i].flags & PF_F_D) ? Py_True : Py_False, "composite",
                            (pf_ops[i].flags & PF_F_C) ? Py_True : Py_False, "kernel_dtypes",
                            dts, "params", params, "cuda", cuda)
            : NULL;
        if (row == NULL || PyList_Append(list, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(row);
    }
    return list;
}

static PyObject *py_aliases(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(noargs))
{
    PyObject *d = PyDict_New();
    for (size_t a = 0; d != NULL && a < NALIASES; a++) {
        PyObject *v = PyUnicode_FromString(aliases[a].name);
        if (v == NULL || PyDict_SetItemString(d, aliases[a].alias, v) < 0) {
            Py_XDECREF(v);
            Py_CLEAR(d);
            break;
        }
        Py_DECREF(v);
    }
    return d;
}

PyMethodDef pf_ops_info_methods[] = {
    {"_op_table", py_op_table, METH_NOARGS, "the op table, one dict per row"},
    {"_op_aliases", py_aliases, METH_NOARGS, "alias -> op name"},
    {NULL, NULL, 0, NULL},
};
