/*
 * dtype.c -- the dtype table, the pyframe.dtype objects (pf.float32 ...),
 * parsing of user-supplied dtypes, and type promotion.
 */
#include "pyframe.h"

/* DLPack type codes: 0 int, 1 uint, 2 float, 4 bfloat, 6 bool. */
const pf_dtype_info pf_dtypes[PF_NDTYPES] = {
    [PF_BOOL] = {"bool", 1, PF_KIND_BOOL, '?', "|b1", 6},
    [PF_UINT8] = {"uint8", 1, PF_KIND_UINT, 'B', "|u1", 1},
    [PF_INT8] = {"int8", 1, PF_KIND_INT, 'b', "|i1", 0},
    [PF_INT16] = {"int16", 2, PF_KIND_INT, 'h', "<i2", 0},
    [PF_INT32] = {"int32", 4, PF_KIND_INT, 'i', "<i4", 0},
    [PF_INT64] = {"int64", 8, PF_KIND_INT, 'q', "<i8", 0},
    [PF_FLOAT16] = {"float16", 2, PF_KIND_FLOAT, 'e', "<f2", 2},
    [PF_BFLOAT16] = {"bfloat16", 2, PF_KIND_FLOAT, 0, NULL, 4},
    [PF_FLOAT32] = {"float32", 4, PF_KIND_FLOAT, 'f', "<f4", 2},
    [PF_FLOAT64] = {"float64", 8, PF_KIND_FLOAT, 'd', "<f8", 2},
};

PyObject *pf_dtype_objs[PF_NDTYPES];

/* Accepted spellings besides the canonical names. */
static const struct {
    const char *alias;
    pf_dtype dtype;
} dtype_aliases[] = {
    {"bool_", PF_BOOL}, {"?", PF_BOOL}, {"b1", PF_BOOL},
    {"u1", PF_UINT8}, {"i1", PF_INT8},
    {"i2", PF_INT16}, {"short", PF_INT16},
    {"i4", PF_INT32}, {"int", PF_INT64}, {"i8", PF_INT64}, {"long", PF_INT64},
    {"f2", PF_FLOAT16}, {"half", PF_FLOAT16},
    {"bf16", PF_BFLOAT16},
    {"f4", PF_FLOAT32}, {"single", PF_FLOAT32},
    {"f8", PF_FLOAT64}, {"double", PF_FLOAT64}, {"float", PF_FLOAT64},
};

/*
 * Promotion, as NumPy 2 and PyTorch agree where both define it:
 *   - within a kind, the wider type;  uint8 with int8 gives int16;
 *   - float16 with bfloat16 gives float32 (neither holds the other);
 *   - across kinds (bool < integer < float) the higher kind's type wins,
 *     as in PyTorch: int64 with float16 gives float16.
 */
static pf_dtype promote_slow(pf_dtype a, pf_dtype b)
{
    if (a == b) {
        return a;
    }
    pf_kind ka = pf_dtypes[a].kind, kb = pf_dtypes[b].kind;
    if (ka == PF_KIND_BOOL) {
        return b;
    }
    if (kb == PF_KIND_BOOL) {
        return a;
    }
    if (ka == PF_KIND_FLOAT && kb == PF_KIND_FLOAT) {
        if ((a == PF_FLOAT16 && b == PF_BFLOAT16) || (a == PF_BFLOAT16 && b == PF_FLOAT16)) {
            return PF_FLOAT32;
        }
        return a > b ? a : b;
    }
    if (ka == PF_KIND_FLOAT) {
        return a;
    }
    if (kb == PF_KIND_FLOAT) {
        return b;
    }
    /* two integers; only uint8 is unsigned */
    if ((a == PF_UINT8 && b == PF_INT8) || (a == PF_INT8 && b == PF_UINT8)) {
        return PF_INT16;
    }
    return a > b ? a : b;
}

static uint8_t promote_table[PF_NDTYPES][PF_NDTYPES];

pf_dtype pf_promote(pf_dtype a, pf_dtype b)
{
    return (pf_dtype)promote_table[a][b];
}

static int dtype_from_string(const char *s, pf_dtype *out)
{
    /* NumPy writes byte order as a prefix; only native (little-endian) order names a dtype */
    if (s[0] == '>' || s[0] == '!') {
        return 0;
    }
    if (s[0] == '<' || s[0] == '=' || s[0] == '|') {
        s++;
    }
    for (int i = 0; i < PF_NDTYPES; i++) {
        if (strcmp(s, pf_dtypes[i].name) == 0) {
            *out = (pf_dtype)i;
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(dtype_aliases) / sizeof(dtype_aliases[0]); i++) {
        if (strcmp(s, dtype_aliases[i].alias) == 0) {
            *out = dtype_aliases[i].dtype;
            return 1;
        }
    }
    return 0;
}

/* NumPy dtypes, scalar types and ml_dtypes.bfloat16, recognised by name. */
static int dtype_from_numpy_like(PyObject *obj, pf_dtype *out)
{
    PyObject *modules = PyImport_GetModuleDict();
    PyObject *np = PyDict_GetItemString(modules, "numpy");
    if (np == NULL) {
        return 0;    /* NumPy was never imported: obj cannot be one of its dtypes */
    }
    PyObject *npdtype = PyObject_GetAttrString(np, "dtype");
    if (npdtype == NULL) {
        return -1;
    }
    PyObject *d = PyObject_CallOneArg(npdtype, obj);
    Py_DECREF(npdtype);
    if (d == NULL) {
        PyErr_Clear();
        return 0;
    }
    int found = 0;
    PyObject *name = PyObject_GetAttrString(d, "name");
    PyObject *isnative = PyObject_GetAttrString(d, "isnative");
    /* big-endian dtypes describe memory pyframe cannot read in place: not a dtype here */
    if (name != NULL && PyUnicode_Check(name) && isnative == Py_True) {
        const char *s = PyUnicode_AsUTF8(name);
        if (s != NULL) {
            for (int i = 0; i < PF_NDTYPES; i++) {
                if (strcmp(s, pf_dtypes[i].name) == 0) {
                    *out = (pf_dtype)i;
                    found = 1;
                }
            }
        }
    }
    Py_XDECREF(name);
    Py_XDECREF(isnative);
    Py_DECREF(d);
    if (PyErr_Occurred()) {
        PyErr_Clear();
    }
    return found;
}

int pf_dtype_from_object(PyObject *obj, const char *op, pf_dtype *out)
{
    if (obj == Py_None) {
        return PF_ERRI(PyExc_TypeError,
                       "%s: dtype None is not a dtype; pass e.g. pf.float32, or leave the "
                       "argument out for the default", op);
    }
    if (Py_IS_TYPE(obj, &PfDType_Type)) {
        *out = ((PfDTypeObject *)obj)->id;
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (s == NULL) {
            return -1;
        }
        if (dtype_from_string(s, out)) {
            return 0;
        }
    }
    else if (obj == (PyObject *)&PyFloat_Type) {
        *out = PF_FLOAT64;
        return 0;
    }
    else if (obj == (PyObject *)&PyLong_Type) {
        *out = PF_INT64;
        return 0;
    }
    else if (obj == (PyObject *)&PyBool_Type) {
        *out = PF_BOOL;
        return 0;
    }
    int r = dtype_from_numpy_like(obj, out);
    if (r != 0) {
        return r > 0 ? 0 : -1;
    }
    PyObject *rep = PyObject_Repr(obj);
    PyErr_Format(PyExc_TypeError,
                 "%s: unknown dtype %s; expected one of pf.bool, pf.uint8, pf.int8, pf.int16, "
                 "pf.int32, pf.int64, pf.float16, pf.bfloat16, pf.float32, pf.float64, their "
                 "names as strings, or the matching NumPy dtype",
                 op, rep ? PyUnicode_AsUTF8(rep) : "?");
    Py_XDECREF(rep);
    return -1;
}

/* --------------------------------------------------- the pyframe.dtype type */

static PyObject *dtype_new(PyTypeObject *Py_UNUSED(type), PyObject *args, PyObject *kwds)
{
    PyObject *obj;
    static char *kwlist[] = {"dtype", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:dtype", kwlist, &obj)) {
        return NULL;
    }
    pf_dtype d;
    if (pf_dtype_from_object(obj, "pf.dtype", &d) < 0) {
        return NULL;
    }
    return Py_NewRef(pf_dtype_objs[d]);
}

static PyObject *dtype_repr(PfDTypeObject *self)
{
    return PyUnicode_FromFormat("pyframe.%s", pf_dtypes[self->id].name);
}

static PyObject *dtype_str(PfDTypeObject *self)
{
    return PyUnicode_FromString(pf_dtypes[self->id].name);
}

static Py_hash_t dtype_hash(PfDTypeObject *self)
{
    /* Equal to the hash of its name, since it compares equal to its name. */
    PyObject *s = PyUnicode_FromString(pf_dtypes[self->id].name);
    if (s == NULL) {
        return -1;
    }
    Py_hash_t h = PyObject_Hash(s);
    Py_DECREF(s);
    return h;
}

static PyObject *dtype_richcompare(PfDTypeObject *self, PyObject *other, int op)
{
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    pf_dtype d;
    if (other == Py_None) {
        return PyBool_FromLong(op == Py_NE);
    }
    if (pf_dtype_from_object(other, "dtype comparison", &d) < 0) {
        PyErr_Clear();
        return PyBool_FromLong(op == Py_NE);
    }
    return PyBool_FromLong((d == self->id) == (op == Py_EQ));
}

static PyObject *dtype_get_name(PfDTypeObject *self, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(pf_dtypes[self->id].name);
}

static PyObject *dtype_get_itemsize(PfDTypeObject *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(pf_dtypes[self->id].itemsize);
}

static PyObject *dtype_get_is_floating_point(PfDTypeObject *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(pf_is_float(self->id));
}

static PyObject *dtype_get_is_signed(PfDTypeObject *self, void *Py_UNUSED(c))
{
    pf_kind k = pf_dtypes[self->id].kind;
    return PyBool_FromLong(k == PF_KIND_INT || k == PF_KIND_FLOAT);
}

static PyObject *dtype_get_kind(PfDTypeObject *self, void *Py_UNUSED(c))
{
    static const char kinds[] = {'b', 'u', 'i', 'f'};
    return PyUnicode_FromOrdinal(kinds[pf_dtypes[self->id].kind]);
}

static PyGetSetDef dtype_getset[] = {
    {"name", (getter)dtype_get_name, NULL, "canonical name, e.g. 'float32'", NULL},
    {"itemsize", (getter)dtype_get_itemsize, NULL, "bytes per element", NULL},
    {"is_floating_point", (getter)dtype_get_is_floating_point, NULL, NULL, NULL},
    {"is_signed", (getter)dtype_get_is_signed, NULL, NULL, NULL},
    {"kind", (getter)dtype_get_kind, NULL, "NumPy kind character: b, u, i or f", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PfDType_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe.dtype",
    .tp_basicsize = sizeof(PfDTypeObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A pyframe element type.  pf.dtype(x) accepts names, NumPy dtypes and Python types.",
    .tp_new = dtype_new,
    .tp_repr = (reprfunc)dtype_repr,
    .tp_str = (reprfunc)dtype_str,
    .tp_hash = (hashfunc)dtype_hash,
    .tp_richcompare = (richcmpfunc)dtype_richcompare,
    .tp_getset = dtype_getset,
};

/* pf.promote_types(a, b) */
static PyObject *promote_types(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *a, *b;
    pf_dtype da, db;
    if (!PyArg_ParseTuple(args, "OO:promote_types", &a, &b)) {
        return NULL;
    }
    if (pf_dtype_from_object(a, "pf.promote_types", &da) < 0 ||
        pf_dtype_from_object(b, "pf.promote_types", &db) < 0) {
        return NULL;
    }
    return Py_NewRef(pf_dtype_objs[pf_promote(da, db)]);
}

static PyMethodDef dtype_module_methods[] = {
    {"promote_types", promote_types, METH_VARARGS,
     "promote_types(a, b): the dtype both a and b convert to without losing their kind."},
    {NULL, NULL, 0, NULL},
};

int pf_dtype_init(PyObject *module)
{
    if (PyType_Ready(&PfDType_Type) < 0) {
        return -1;
    }
    for (int a = 0; a < PF_NDTYPES; a++) {
        for (int b = 0; b < PF_NDTYPES; b++) {
            promote_table[a][b] = (uint8_t)promote_slow((pf_dtype)a, (pf_dtype)b);
        }
    }
    for (int i = 0; i < PF_NDTYPES; i++) {
        PfDTypeObject *o = PyObject_New(PfDTypeObject, &PfDType_Type);
        if (o == NULL) {
            return -1;
        }
        o->id = (pf_dtype)i;
        pf_dtype_objs[i] = (PyObject *)o;
        if (PyModule_AddObjectRef(module, pf_dtypes[i].name, (PyObject *)o) < 0) {
            return -1;
        }
    }
    if (PyModule_AddObjectRef(module, "dtype", (PyObject *)&PfDType_Type) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(module, dtype_module_methods);
}
