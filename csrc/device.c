/*
 * device.c -- pf.device objects and the parsing of "cpu" / "cuda" / "cuda:1".
 *
 * "cuda" without an index means the current CUDA device, as in PyTorch: it
 * is kept as index -1 (pf.device("cuda").index is None) and resolved when a
 * tensor is placed (pf_device_resolve, cuda_backend.c), so a tensor's device
 * always has an index.
 */
#include "pyframe.h"

PyObject *pf_device_new(pf_device dev)
{
    PfDeviceObject *o = PyObject_New(PfDeviceObject, &PfDevice_Type);
    if (o != NULL) {
        o->dev = dev;
    }
    return (PyObject *)o;
}

static int parse_device_string(const char *s, pf_device *out)
{
    if (strcmp(s, "cpu") == 0) {
        out->type = PF_DEV_CPU;
        out->index = 0;
        return 1;
    }
    if (strncmp(s, "cuda", 4) == 0) {
        out->type = PF_DEV_CUDA;
        out->index = -1;
        if (s[4] == '\0') {
            return 1;
        }
        if (s[4] != ':' || s[5] == '\0') {
            return 0;
        }
        long idx = 0;
        for (const char *p = s + 5; *p; p++) {
            if (*p < '0' || *p > '9' || idx > 1000) {
                return 0;
            }
            idx = idx * 10 + (*p - '0');
        }
        out->index = (int16_t)idx;
        return 1;
    }
    return 0;
}

int pf_device_from_object(PyObject *obj, const char *op, pf_device *out)
{
    if (Py_IS_TYPE(obj, &PfDevice_Type)) {
        *out = ((PfDeviceObject *)obj)->dev;
        return 0;
    }
    if (PyUnicode_Check(obj)) {
        const char *s = PyUnicode_AsUTF8(obj);
        if (s == NULL) {
            return -1;
        }
        if (parse_device_string(s, out)) {
            return 0;
        }
        return PF_ERRI(PyExc_ValueError,
                       "%s: unknown device '%s'; expected 'cpu', 'cuda' or 'cuda:N'", op, s);
    }
    if (PyLong_CheckExact(obj)) {
        /* an index names a CUDA device, as in PyTorch: t.to(0) is t.to("cuda:0") */
        int overflow = 0;
        long idx = PyLong_AsLongAndOverflow(obj, &overflow);
        if (idx == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (overflow || idx < 0 || idx > 1000) {
            return PF_ERRI(PyExc_ValueError, "%s: device index must be from 0 to 1000; got %R",
                           op, obj);
        }
        out->type = PF_DEV_CUDA;
        out->index = (int16_t)idx;
        return 0;
    }
    return PF_ERRI(PyExc_TypeError,
                   "%s: device must be a string such as 'cpu' or 'cuda:0', a device index or "
                   "a pf.device; got %.100s", op, Py_TYPE(obj)->tp_name);
}

const char *pf_device_str(pf_device dev, char *buf, size_t size)
{
    if (dev.type == PF_DEV_CPU) {
        snprintf(buf, size, "cpu");
    }
    else if (dev.index < 0) {
        snprintf(buf, size, "cuda");
    }
    else {
        snprintf(buf, size, "cuda:%d", (int)dev.index);
    }
    return buf;
}

static PyObject *device_new(PyTypeObject *Py_UNUSED(t), PyObject *args, PyObject *kwds)
{
    PyObject *spec;
    int index = -1;
    static char *kwlist[] = {"type", "index", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i:device", kwlist, &spec, &index)) {
        return NULL;
    }
    pf_device d;
    if (pf_device_from_object(spec, "pf.device", &d) < 0) {
        return NULL;
    }
    if (index > 1000) {
        return PF_ERR(PyExc_ValueError, "pf.device: index %d is too large", index);
    }
    if (index >= 0) {
        if (d.type == PF_DEV_CPU && index != 0) {
            return PF_ERR(PyExc_ValueError, "pf.device: the cpu device has only index 0, got %d",
                          index);
        }
        d.index = (int16_t)index;
    }
    return pf_device_new(d);
}

static PyObject *device_repr(PfDeviceObject *self)
{
    if (self->dev.type == PF_DEV_CPU) {
        return PyUnicode_FromString("device(type='cpu')");
    }
    if (self->dev.index < 0) {
        return PyUnicode_FromString("device(type='cuda')");
    }
    return PyUnicode_FromFormat("device(type='cuda', index=%d)", (int)self->dev.index);
}

static PyObject *device_str(PfDeviceObject *self)
{
    char buf[32];
    return PyUnicode_FromString(pf_device_str(self->dev, buf, sizeof(buf)));
}

static Py_hash_t device_hash(PfDeviceObject *self)
{
    return (Py_hash_t)(self->dev.type * 1000 + self->dev.index + 7);
}

static PyObject *device_richcompare(PfDeviceObject *self, PyObject *other, int op)
{
    if (op != Py_EQ && op != Py_NE) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    pf_device d;
    if (!Py_IS_TYPE(other, &PfDevice_Type) && !PyUnicode_Check(other)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (pf_device_from_object(other, "device comparison", &d) < 0) {
        PyErr_Clear();
        return PyBool_FromLong(op == Py_NE);
    }
    int eq = d.type == self->dev.type && d.index == self->dev.index;
    return PyBool_FromLong(eq == (op == Py_EQ));
}

static PyObject *device_get_type(PfDeviceObject *self, void *Py_UNUSED(c))
{
    return PyUnicode_FromString(self->dev.type == PF_DEV_CPU ? "cpu" : "cuda");
}

static PyObject *device_get_index(PfDeviceObject *self, void *Py_UNUSED(c))
{
    if (self->dev.index < 0) {
        Py_RETURN_NONE;     /* "cuda": the current device, whichever it is when used */
    }
    return PyLong_FromLong(self->dev.index);
}

static PyGetSetDef device_getset[] = {
    {"type", (getter)device_get_type, NULL, "'cpu' or 'cuda'", NULL},
    {"index", (getter)device_get_index, NULL,
     "device ordinal; None for 'cuda' (the current device)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PfDevice_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe.device",
    .tp_basicsize = sizeof(PfDeviceObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A compute device: pf.device('cpu'), pf.device('cuda:0').",
    .tp_new = device_new,
    .tp_repr = (reprfunc)device_repr,
    .tp_str = (reprfunc)device_str,
    .tp_hash = (hashfunc)device_hash,
    .tp_richcompare = (richcmpfunc)device_richcompare,
    .tp_getset = device_getset,
};

int pf_device_init(PyObject *module)
{
    if (PyType_Ready(&PfDevice_Type) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "device", (PyObject *)&PfDevice_Type);
}
