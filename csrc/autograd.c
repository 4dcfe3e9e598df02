/*
 * autograd.c -- graph nodes, grad mode, recording, saved values and the
 * backward engine.  The rules themselves live in backward*.c; see
 * autograd.h for the shape of the graph.
 */
#include "autograd.h"
#include "backward.h"

/* Thread-local, as in PyTorch: a DataLoader thread does not see the main
   thread's no_grad. */
_Thread_local int pf_grad_disabled;

/* ------------------------------------------------------------ the node */

static void node_free_arrays(PfNode *n)
{
    PyMem_Free(n->next);
    PyMem_Free(n->out_meta);
    n->next = NULL;
    n->out_meta = NULL;
}

/* One block per side: next, in_meta, inputs, in_version / out_meta, outputs, out_version. */
static int node_alloc_in(PfNode *n, int nin)
{
    size_t each = sizeof(pf_edge) + sizeof(pf_meta) + sizeof(PyObject *) + sizeof(uint64_t);
    char *b = PyMem_Calloc(1, each * (size_t)(nin > 0 ? nin : 1));
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    n->nin = nin;
    n->next = (pf_edge *)b;
    n->in_meta = (pf_meta *)(b + sizeof(pf_edge) * (size_t)nin);
    n->inputs = (PyObject **)((char *)n->in_meta + sizeof(pf_meta) * (size_t)nin);
    n->in_version = (uint64_t *)((char *)n->inputs + sizeof(PyObject *) * (size_t)nin);
    return 0;
}

static int node_alloc_out(PfNode *n, int nout)
{
    size_t each = sizeof(pf_meta) + sizeof(PyObject *) + sizeof(uint64_t);
    char *b = PyMem_Calloc(1, each * (size_t)(nout > 0 ? nout : 1));
    if (b == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    n->nout = nout;
    n->out_meta = (pf_meta *)b;
    n->outputs = (PyObject **)(b + sizeof(pf_meta) * (size_t)nout);
    n->out_version = (uint64_t *)((char *)n->outputs + sizeof(PyObject *) * (size_t)nout);
    return 0;
}

PfNode *pf_node_new(int kind, int nin, int nout)
{
    PfNode *n = PyObject_GC_New(PfNode, &PfNode_Type);
    if (n == NULL) {
        return NULL;
    }
    memset((char *)n + sizeof(PyObject), 0, sizeof(PfNode) - sizeof(PyObject));
    n->kind = kind;
    if (node_alloc_in(n, nin) < 0 || node_alloc_out(n, nout) < 0) {
        PyMem_Free(n->next);
        n->next = NULL;
        Py_DECREF(n);
        return NULL;
    }
    PyObject_GC_Track(n);
    return n;
}

/* Drop what the rule would read; edges and metadata stay. */
static void node_release(PfNode *n)
{
    for (int i = 0; i < n->nin; i++) {
        Py_CLEAR(n->inputs[i]);
    }
    for (int i = 0; i < n->nout; i++) {
        Py_CLEAR(n->outputs[i]);
    }
    Py_CLEAR(n->args);
    Py_CLEAR(n->kwnames);
    n->released = 1;
}

static int node_traverse(PfNode *n, visitproc visit, void *arg)
{
    for (int i = 0; n->next != NULL && i < n->nin; i++) {
        Py_VISIT(n->next[i].fn);
        Py_VISIT(n->inputs[i]);
    }
    for (int i = 0; n->out_meta != NULL && i < n->nout; i++) {
        Py_VISIT(n->outputs[i]);
    }
    Py_VISIT(n->args);
    Py_VISIT(n->kwnames);
    Py_VISIT(n->hooks);
    Py_VISIT(n->retain);
    Py_VISIT(n->dict);
    Py_VISIT(n->pycls);
    return 0;
}

static int node_clear(PfNode *n)
{
    for (int i = 0; n->next != NULL && i < n->nin; i++) {
        Py_CLEAR(n->next[i].fn);
        Py_CLEAR(n->inputs[i]);
    }
    for (int i = 0; n->out_meta != NULL && i < n->nout; i++) {
        Py_CLEAR(n->outputs[i]);
    }
    Py_CLEAR(n->args);
    Py_CLEAR(n->kwnames);
    Py_CLEAR(n->hooks);
    Py_CLEAR(n->retain);
    Py_CLEAR(n->dict);
    Py_CLEAR(n->pycls);
    return 0;
}

/*
 * A chain of 10^5 nodes is freed one node at a time: dropping the last
 * reference to the head would otherwise recurse through every edge and
 * overflow the C stack.  The trashcan turns that recursion into a loop.
 */
static void node_dealloc(PfNode *n)
{
    PyObject_GC_UnTrack(n);
    Py_TRASHCAN_BEGIN(n, node_dealloc)
    if (n->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)n);
    }
    node_clear(n);
    node_free_arrays(n);
    PyObject_GC_Del(n);
    Py_TRASHCAN_END
}

/* "multiply" -> "MultiplyBackward", "log_softmax" -> "LogSoftmaxBackward" */
const char *pf_node_name(PfNode *n, char *buf, size_t size)
{
    static const char *const extra[] = {
        [PF_NODE_RESHAPE - PF_OP_COUNT] = "ReshapeBackward",
        [PF_NODE_PERMUTE - PF_OP_COUNT] = "PermuteBackward",
        [PF_NODE_EXPAND - PF_OP_COUNT] = "ExpandBackward",
        [PF_NODE_GETITEM - PF_OP_COUNT] = "IndexBackward",
        [PF_NODE_SETITEM - PF_OP_COUNT] = "IndexPutBackward",
        [PF_NODE_IDENTITY - PF_OP_COUNT] = "CopyBackward",
        [PF_NODE_COPY_ - PF_OP_COUNT] = "CopyInplaceBackward",
        [PF_NODE_FILL_ - PF_OP_COUNT] = "FillBackward",
        [PF_NODE_PYFUNC - PF_OP_COUNT] = NULL,
        [PF_NODE_ACCUMULATE - PF_OP_COUNT] = "AccumulateGrad",
    };
    if (n->kind == PF_NODE_PYFUNC) {
        const char *cls = n->pycls ? ((PyTypeObject *)n->pycls)->tp_name : "Function";
        const char *dot = strrchr(cls, '.');
        snprintf(buf, size, "%sBackward", dot ? dot + 1 : cls);
        return buf;
    }
    if (n->kind >= PF_OP_COUNT) {
        snprintf(buf, size, "%s", extra[n->kind - PF_OP_COUNT]);
        return buf;
    }
    const char *s = pf_ops[n->kind].name;
    size_t k = 0;
    int up = 1;
    for (; *s && k + 10 < size; s++) {
        if (*s == '_') {
            up = 1;
            continue;
        }
        buf[k++] = up ? (char)(*s >= 'a' && *s <= 'z' ? *s - 32 : *s) : *s;
        up = 0;
    }
    snprintf(buf + k, size - k, "Backward");
    return buf;
}

static PyObject *node_repr(PfNode *n)
{
    char buf[128];
    return PyUnicode_FromFormat("<%s>", pf_node_name(n, buf, sizeof(buf)));
}

static PyObject *node_get_name(PfNode *n, PyObject *Py_UNUSED(a))
{
    char buf[128];
    return PyUnicode_FromString(pf_node_name(n, buf, sizeof(buf)));
}

/* A leaf seen from next_functions: an AccumulateGrad node naming the tensor. */
static PyObject *accumulate_node(PyObject *leaf)
{
    PfNode *a = pf_node_new(PF_NODE_ACCUMULATE, 1, 0);
    if (a != NULL) {
        a->inputs[0] = Py_NewRef(leaf);
    }
    return (PyObject *)a;
}

static PyObject *node_next_functions(PfNode *n, void *Py_UNUSED(c))
{
    if (n->kind == PF_NODE_ACCUMULATE) {
        return PyTuple_New(0);
    }
    PyObject *t = PyTuple_New(n->nin);
    for (int i = 0; t != NULL && i < n->nin; i++) {
        PyObject *fn = n->next[i].fn;
        PyObject *item;
        if (fn == NULL) {
            item = Py_BuildValue("(Oi)", Py_None, 0);
        }
        else if (n->next[i].nr < 0) {
            PyObject *a = accumulate_node(fn);
            item = a ? Py_BuildValue("(Ni)", a, 0) : NULL;
        }
        else {
            item = Py_BuildValue("(Oi)", fn, n->next[i].nr);
        }
        if (item == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

static PyObject *node_variable(PfNode *n, void *Py_UNUSED(c))
{
    if (n->kind != PF_NODE_ACCUMULATE) {
        return PF_ERR(PyExc_AttributeError, "only AccumulateGrad nodes have a variable");
    }
    return Py_NewRef(n->inputs[0]);
}

/* ------------------------------------------------- recording: inputs, outputs */

static void meta_of(pf_meta *m, const PfTensor *t)
{
    m->ndim = t->ndim;
    m->dtype = t->dtype;
    m->device = t->storage->device;
    memcpy(m->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
}

int pf_node_set_input(PfNode *n, int i, PyObject *obj, int save)
{
    if (PfTensor_Check(obj)) {
        PfTensor *t = (PfTensor *)obj;
        meta_of(&n->in_meta[i], t);
        if (t->requires_grad) {
            if (t->grad_fn != NULL) {
                n->next[i].fn = Py_NewRef(t->grad_fn);
                n->next[i].nr = t->output_nr;
            }
            else {
                n->next[i].fn = Py_NewRef(obj);
                n->next[i].nr = -1;
            }
        }
        n->in_version[i] = t->storage->version;
    }
    if (save) {
        Py_XSETREF(n->inputs[i], Py_NewRef(obj));
        n->has_saved = 1;
    }
    return 0;
}

/* A new tensor object over t's memory with no autograd history. */
static PfTensor *alias_of(PfTensor *t)
{
    return pf_tensor_view(t, t->ndim, t->shape, t->strides, t->offset);
}

int pf_node_set_output(PfNode *n, int i, PfTensor *out, int save)
{
    meta_of(&n->out_meta[i], out);
    if (save) {
        PfTensor *a = alias_of(out);
        if (a == NULL) {
            return -1;
        }
        Py_XSETREF(n->outputs[i], (PyObject *)a);
        n->out_version[i] = out->storage->version;
        n->has_saved = 1;
    }
    if (pf_is_float(out->dtype)) {
        Py_INCREF(n);
        Py_XSETREF(out->grad_fn, (PyObject *)n);
        out->output_nr = i;
        out->requires_grad = 1;
    }
    return 0;
}

/* ------------------------------------------------------- saved values */

static int check_released(PfNode *n)
{
    if (n->released) {
        char buf[128];
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: trying to backward through the graph a second time (or to read "
                       "its saved tensors after they were freed). The first backward() frees "
                       "them; call it with retain_graph=True if you need to go through the "
                       "graph again", pf_node_name(n, buf, sizeof(buf)));
    }
    return 0;
}

static int check_version(PfNode *n, PfTensor *t, uint64_t saved, const char *what, int i)
{
    if (t->storage->version != saved) {
        char buf[128], sh[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: %s %d (shape %s, %s), saved for the gradient, was modified by an "
                       "in-place operation after it was saved (version %llu, now %llu), so the "
                       "gradient would be wrong. Use the out-of-place op (x = x * 2 rather than "
                       "x.mul_(2) or x *= 2), or clone() the tensor before changing it",
                       pf_node_name(n, buf, sizeof(buf)), what, i,
                       pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)),
                       pf_dtypes[t->dtype].name, (unsigned long long)saved,
                       (unsigned long long)t->storage->version);
    }
    return 0;
}

PyObject *pf_node_input(PfNode *n, int i)
{
    if (check_released(n) < 0) {
        return NULL;
    }
    PyObject *o = n->inputs[i];
    if (o == NULL) {
        return PF_ERR(PyExc_RuntimeError, "pyframe autograd: input %d of a node was not saved "
                      "(an internal error; please report it)", i);
    }
    if (PfTensor_Check(o) && check_version(n, (PfTensor *)o, n->in_version[i], "input", i) < 0) {
        return NULL;
    }
    return Py_NewRef(o);
}

/*
 * A saved output.  Under create_graph the rule's result must depend on it
 * through this node, so the alias gets the node as its grad_fn -- a fresh
 * object each time, which keeps the graph free of cycles.
 */
static PyObject *unpack_output(PfNode *n, PfTensor *a, int nr)
{
    if (!pf_grad_enabled()) {
        return Py_NewRef(a);
    }
    PfTensor *t = alias_of(a);
    if (t != NULL) {
        t->grad_fn = Py_NewRef(n);
        t->output_nr = nr;
        t->requires_grad = 1;
    }
    return (PyObject *)t;
}

PyObject *pf_node_output(PfNode *n, int i)
{
    if (check_released(n) < 0) {
        return NULL;
    }
    PfTensor *a = (PfTensor *)n->outputs[i];
    if (a == NULL) {
        return PF_ERR(PyExc_RuntimeError, "pyframe autograd: output %d of a node was not saved "
                      "(an internal error; please report it)", i);
    }
    if (check_version(n, a, n->out_version[i], "output", i) < 0) {
        return NULL;
    }
    return unpack_output(n, a, i);
}

int pf_node_args(PfNode *n, const char *const *names, int nreq, PyObject **out)
{
    if (check_released(n) < 0) {
        return -1;
    }
    Py_ssize_t nkw = n->kwnames ? PyTuple_GET_SIZE(n->kwnames) : 0;
    Py_ssize_t nargs = PyTuple_GET_SIZE(n->args) - nkw;
    char buf[128];
    return pf_parse_args(pf_node_name(n, buf, sizeof(buf)), &PyTuple_GET_ITEM(n->args, 0), nargs,
                         n->kwnames, names, nreq, out);
}

int pf_node_slot(PfNode *n, PyObject *obj)
{
    for (int i = 0; i < n->nin; i++) {
        if (n->inputs[i] == obj) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------- in-place writes */

int pf_ag_inplace_begin(PfTensor *t, int record, int differentiable, const char *op,
                        PyObject **alias)
{
    *alias = NULL;
    if (!pf_grad_enabled()) {
        return 0;
    }
    if (t->requires_grad && t->grad_fn == NULL) {
        char sh[PF_SHAPE_STRLEN];
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: writes in place into a leaf tensor that requires grad (shape %s); "
                       "its gradient would be lost. Do the update inside `with pf.no_grad():` "
                       "(as optimizers do), or work on a clone()",
                       op, pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)));
    }
    if (t->grad_fn != NULL && ((PfNode *)t->grad_fn)->is_view) {
        char buf[128];
        return PF_ERRI(PyExc_RuntimeError,
                       "%s: writes in place into a view (made by %s) of a tensor that is part "
                       "of the autograd graph; autograd cannot follow writes through views. "
                       "Use an out-of-place op (pf.where, masked_fill, pf.concatenate), or "
                       "clone() the view before writing", op,
                       pf_node_name((PfNode *)t->grad_fn, buf, sizeof(buf)));
    }
    if (!record) {
        return 0;
    }
    if (!differentiable) {
        return PF_ERRI(PyExc_RuntimeError,
                       "%s is not differentiable, but it would write in place into a tensor "
                       "that needs a gradient; run it under pf.no_grad() or on a detach()ed "
                       "tensor", op);
    }
    PfTensor *a = alias_of(t);
    if (a == NULL) {
        return -1;
    }
    a->requires_grad = t->requires_grad;
    a->grad_fn = Py_XNewRef(t->grad_fn);
    a->output_nr = t->output_nr;
    *alias = (PyObject *)a;
    return 0;
}

int pf_ag_inplace_finish(PfNode *n, PfTensor *t, int save_output)
{
    return pf_node_set_output(n, 0, t, save_output);
}

/* ------------------------------------------------------- elementwise ops */

int pf_ag_ew_begin(pf_op op, PyObject *const *inputs, int nin, PfTensor *out,
                   const pf_params *p, const char *name, PfNode **node)
{
    *node = NULL;
    int need = 0;
    for (int k = 0; k < nin; k++) {
        need |= pf_needs_grad(inputs[k]);
    }
    PyObject *alias = NULL;
    if (out != NULL) {
        if ((PyObject *)out != inputs[0]) {
            if (need || out->requires_grad) {
                return PF_ERRI(PyExc_RuntimeError,
                               "%s: out= does not take part in autograd, and an input or the "
                               "output requires grad; call it without out=, or inside "
                               "pf.no_grad()", name);
            }
            return 0;
        }
        /* errors name the in-place method the user called: add_, not add */
        char iname[64];
        snprintf(iname, sizeof(iname), "%s_", name);
        need |= out->requires_grad;
        if (pf_ag_inplace_begin(out, need, (pf_ops[op].flags & PF_F_D) != 0, iname, &alias) < 0) {
            return -1;
        }
        if (alias == NULL) {
            return 0;
        }
    }
    else if (!need || !(pf_ops[op].flags & PF_F_D)) {
        return 0;
    }
    PfNode *n = pf_node_new(op, nin, 1);
    if (n == NULL) {
        Py_XDECREF(alias);
        return -1;
    }
    int wants = 0;
    for (int k = 0; k < nin; k++) {
        PyObject *o = (alias != NULL && inputs[k] == (PyObject *)out) ? alias : inputs[k];
        pf_node_set_input(n, k, o, 0);
        wants |= (n->next[k].fn != NULL) << k;
    }
    /* keep only what the rule will read for the gradients wanted */
    int saves = pf_bw_ew_saves(op, wants);
    for (int k = 0; k < nin; k++) {
        if ((saves >> k) & 1) {
            PyObject *o = (alias != NULL && inputs[k] == (PyObject *)out) ? alias : inputs[k];
            n->inputs[k] = Py_NewRef(o);
            n->has_saved = 1;
        }
    }
    n->iargs[0] = saves;
    Py_XDECREF(alias);
    if (p != NULL) {
        n->params = *p;
    }
    *node = n;
    return 1;
}

int pf_ag_ew_end(PfNode *n, PyObject *result)
{
    int r = pf_node_set_output(n, 0, (PfTensor *)result, (int)(n->iargs[0] >> 4) & 1);
    Py_DECREF(n);
    return r;
}

/* ------------------------------------------------------- CUSTOM ops */

static int is_inplace_op(pf_op op)
{
    return op == PF_OP_MASKED_FILL_ || op == PF_OP_SCATTER_INPLACE ||
           op == PF_OP_SCATTER_ADD_INPLACE || op == PF_OP_PUT_ALONG_AXIS;
}

int pf_ag_args_need_grad(PyObject *const *args, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *a = args[i];
        if (PfTensor_Check(a)) {
            if (((PfTensor *)a)->requires_grad) {
                return 1;
            }
        }
        else if (PyList_Check(a) || PyTuple_Check(a)) {
            Py_ssize_t m = PySequence_Fast_GET_SIZE(a);
            PyObject **items = PySequence_Fast_ITEMS(a);
            for (Py_ssize_t j = 0; j < m; j++) {
                if (pf_needs_grad(items[j])) {
                    return 1;
                }
            }
        }
    }
    return 0;
}

/* A tuple of the call's arguments with lists frozen to tuples and the in-place target replaced. */
static PyObject *freeze_args(PyObject *const *args, Py_ssize_t total, PyObject *target,
                             PyObject *alias, int *nslots)
{
    PyObject *t = PyTuple_New(total);
    *nslots = 0;
    for (Py_ssize_t i = 0; t != NULL && i < total; i++) {
        PyObject *a = args[i];
        PyObject *item;
        if (a == target && alias != NULL) {
            item = Py_NewRef(alias);
            ++*nslots;
        }
        else if (PfTensor_Check(a)) {
            item = Py_NewRef(a);
            ++*nslots;
        }
        else if (PyList_Check(a) || PyTuple_Check(a)) {
            item = PySequence_Tuple(a);
            for (Py_ssize_t j = 0; item != NULL && j < PyTuple_GET_SIZE(item); j++) {
                *nslots += PfTensor_Check(PyTuple_GET_ITEM(item, j));
            }
        }
        else {
            item = Py_NewRef(a);
        }
        if (item == NULL) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, i, item);
    }
    return t;
}

/* The tensors of the frozen arguments, in order, as the node's inputs. */
static void set_slots(PfNode *n, PyObject *frozen)
{
    int s = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(frozen); i++) {
        PyObject *a = PyTuple_GET_ITEM(frozen, i);
        if (PfTensor_Check(a)) {
            pf_node_set_input(n, s++, a, 1);
        }
        else if (PyTuple_Check(a)) {
            for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(a); j++) {
                if (PfTensor_Check(PyTuple_GET_ITEM(a, j))) {
                    pf_node_set_input(n, s++, PyTuple_GET_ITEM(a, j), 1);
                }
            }
        }
    }
}

/* An output that is one of the inputs gets its own object, so that marking it does not rewrite the input's history. */
static PyObject *fresh_output(PyObject *o, PyObject *frozen)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(frozen); i++) {
        if (PyTuple_GET_ITEM(frozen, i) == o) {
            PyObject *a = (PyObject *)alias_of((PfTensor *)o);
            Py_DECREF(o);
            return a;
        }
    }
    return o;
}

PyObject *pf_ag_custom_call(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                            Py_ssize_t nargs, PyObject *kwnames)
{
    if (pf_autocast_on) {
        return pf_autocast_call(op, fn, m, args, nargs, kwnames);
    }
    return pf_ag_custom_call_raw(op, fn, m, args, nargs, kwnames);
}

PyObject *pf_ag_custom_call_raw(pf_op op, pf_fastcall fn, PyObject *m, PyObject *const *args,
                                Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    /* a row with G handles CUDA tensors in its binding */
    if (pf_dispatch_device(pf_ops[op].name, pf_ops[op].flags & PF_F_G, args, total, NULL) < 0) {
        return NULL;
    }
    if (pf_ops[op].flags & PF_F_C) {
        /* a composite: the ops its binding calls record themselves */
        return fn(m, args, nargs, kwnames);
    }
    int inplace = is_inplace_op(op);
    if (!pf_grad_enabled() || !pf_ag_args_need_grad(args, total)) {
        return fn(m, args, nargs, kwnames);
    }
    for (Py_ssize_t k = nargs; k < total; k++) {
        const char *kw = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k - nargs));
        if (kw != NULL && strcmp(kw, "out") == 0 && args[k] != Py_None) {
            return PF_ERR(PyExc_RuntimeError,
                          "%s: out= does not take part in autograd, and an input requires "
                          "grad; call it without out=, or inside pf.no_grad()", pf_ops[op].name);
        }
    }
    int diff = (pf_ops[op].flags & PF_F_D) != 0;
    if (!diff && !inplace) {
        /* not differentiable: the result simply has no history */
        pf_grad_disabled++;
        PyObject *r = fn(m, args, nargs, kwnames);
        pf_grad_disabled--;
        return r;
    }
    PyObject *target = NULL, *alias = NULL;
    uint64_t target_version = 0;
    if (inplace && nargs > 0 && PfTensor_Check(args[0])) {
        target = args[0];
        if (pf_ag_inplace_begin((PfTensor *)target, 1, diff, pf_ops[op].name, &alias) < 0) {
            return NULL;
        }
        target_version = ((PfTensor *)target)->storage->version;
    }
    int nslots;
    PyObject *frozen = freeze_args(args, total, target, alias, &nslots);
    if (frozen == NULL) {
        Py_XDECREF(alias);
        return NULL;
    }
    /* versions before the op runs: an in-place op bumps its target's */
    PfNode *n = NULL;
    pf_grad_disabled++;
    PyObject *r = fn(m, args, nargs, kwnames);
    pf_grad_disabled--;
    if (r == NULL) {
        goto fail;
    }
    int multi = PyTuple_Check(r) || PyList_Check(r);
    int nout = multi ? (int)PySequence_Fast_GET_SIZE(r) : 1;
    n = pf_node_new(op, nslots, nout);
    if (n == NULL) {
        goto fail;
    }
    set_slots(n, frozen);
    if (alias != NULL) {
        int s = pf_node_slot(n, alias);
        if (s >= 0) {
            n->in_version[s] = target_version;
        }
    }
    n->kwnames = Py_XNewRef(kwnames);
    n->args = frozen;
    frozen = NULL;
    if (inplace) {
        if (target != NULL && r == target) {
            if (pf_ag_inplace_finish(n, (PfTensor *)target, 1) < 0) {
                goto fail;
            }
        }
        Py_DECREF(n);
        Py_XDECREF(alias);
        return r;
    }
    for (int i = 0; i < nout; i++) {
        PyObject *o = multi ? PySequence_Fast_GET_ITEM(r, i) : r;
        if (!PfTensor_Check(o)) {
            continue;
        }
        if (!multi) {
            r = o = fresh_output(o, n->args);
            if (r == NULL) {
                goto fail;
            }
        }
        for (int k = 0; k < n->nin; k++) {
            if (n->inputs[k] != NULL &&
                ((PfTensor *)n->inputs[k])->storage == ((PfTensor *)o)->storage) {
                n->is_view = 1;
            }
        }
        if (pf_node_set_output(n, i, (PfTensor *)o, 1) < 0) {
            goto fail;
        }
    }
    Py_DECREF(n);
    Py_XDECREF(alias);
    return r;
fail:
    Py_XDECREF(r);
    Py_XDECREF(n);
    Py_XDECREF(frozen);
    Py_XDECREF(alias);
    return NULL;
}

/* ------------------------------------------------------- Tensor methods */

PyObject *pf_ag_record_unary(int kind, PfTensor *x, PyObject *out, const int64_t *iargs,
                             int niargs)
{
    if (out == NULL || out == (PyObject *)x || !x->requires_grad || !pf_grad_enabled()) {
        return out;
    }
    PfNode *n = pf_node_new(kind, 1, 1);
    if (n == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    pf_node_set_input(n, 0, (PyObject *)x, 0);
    for (int i = 0; i < niargs; i++) {
        n->iargs[i] = iargs[i];
    }
    n->is_view = ((PfTensor *)out)->storage == x->storage;
    int r = pf_node_set_output(n, 0, (PfTensor *)out, 0);
    Py_DECREF(n);
    if (r < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* ------------------------------------------------------------------ engine */

/*
 * A backward pass:
 *   1. find every node reachable from the roots (an explicit stack, no
 *      recursion) and count the edges into each;
 *   2. order them topologically (Kahn), so a node runs only after every
 *      gradient flowing into it has been summed;
 *   3. when only some inputs are wanted (pf.grad, backward(inputs=)), mark
 *      the nodes that lead to them and skip the rest;
 *   4. run the rules in that order, summing each input's gradient back to
 *      its shape and handing it to the next node or to the leaf's .grad.
 * The nodes' `run`/`idx` fields hold the pass's scratch index; nested
 * passes (a hook or a Function calling backward) use their own run ids.
 */
typedef struct {
    PfNode **nodes;
    Py_ssize_t n, cap;
    PyObject ***gbuf;       /* per node: nout gradients being summed */
    Py_ssize_t *deps;
    Py_ssize_t *order;
    char *needed;
    uint64_t run;
} engine;

static uint64_t engine_runs;
#define MAX_NESTED 64
static uint64_t active_runs[MAX_NESTED];
static int n_active;

static int run_is_active(uint64_t run)
{
    for (int i = 0; i < n_active; i++) {
        if (active_runs[i] == run) {
            return 1;
        }
    }
    return 0;
}

static int engine_add_node(engine *e, PfNode *n)
{
    if (n->run != 0 && n->run != e->run && run_is_active(n->run)) {
        return PF_ERRI(PyExc_RuntimeError,
                       "backward: a backward pass started inside a hook or a Function's "
                       "backward reaches the graph of the backward pass that is running; "
                       "detach() the tensors it works on");
    }
    if (e->n == e->cap) {
        Py_ssize_t cap = e->cap ? e->cap * 2 : 64;
        PfNode **nn = PyMem_Realloc(e->nodes, sizeof(PfNode *) * (size_t)cap);
        if (nn == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->nodes = nn;
        e->cap = cap;
    }
    n->run = e->run;
    n->idx = e->n;
    e->nodes[e->n++] = (PfNode *)Py_NewRef(n);
    return 0;
}

static int engine_discover(engine *e, PyObject *const *roots, Py_ssize_t nroots)
{
    for (Py_ssize_t i = 0; i < nroots; i++) {
        PfNode *fn = (PfNode *)((PfTensor *)roots[i])->grad_fn;
        if (fn != NULL && fn->run != e->run && engine_add_node(e, fn) < 0) {
            return -1;
        }
    }
    /* e->nodes doubles as the stack: everything before `scan` is expanded */
    for (Py_ssize_t scan = 0; scan < e->n; scan++) {
        PfNode *n = e->nodes[scan];
        for (int k = 0; k < n->nin; k++) {
            PyObject *fn = n->next[k].fn;
            if (fn != NULL && n->next[k].nr >= 0 && ((PfNode *)fn)->run != e->run &&
                engine_add_node(e, (PfNode *)fn) < 0) {
                return -1;
            }
        }
    }
    size_t cnt = (size_t)(e->n > 0 ? e->n : 1);
    e->gbuf = PyMem_Calloc(cnt, sizeof(PyObject **));
    e->deps = PyMem_Calloc(cnt, sizeof(Py_ssize_t));
    e->order = PyMem_Calloc(cnt, sizeof(Py_ssize_t));
    e->needed = PyMem_Calloc(cnt, 1);
    if (e->gbuf == NULL || e->deps == NULL || e->order == NULL || e->needed == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < e->n; i++) {
        PfNode *n = e->nodes[i];
        e->gbuf[i] = PyMem_Calloc((size_t)(n->nout > 0 ? n->nout : 1), sizeof(PyObject *));
        if (e->gbuf[i] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (int k = 0; k < n->nin; k++) {
            if (n->next[k].fn != NULL && n->next[k].nr >= 0) {
                e->deps[((PfNode *)n->next[k].fn)->idx]++;
            }
        }
    }
    /* Kahn's order; the stack makes it depth-first, which frees activations early */
    Py_ssize_t *stack = PyMem_Malloc(sizeof(Py_ssize_t) * cnt);
    if (stack == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t sp = 0, no = 0;
    for (Py_ssize_t i = e->n - 1; i >= 0; i--) {
        if (e->deps[i] == 0) {
            stack[sp++] = i;
        }
    }
    while (sp > 0) {
        Py_ssize_t i = stack[--sp];
        e->order[no++] = i;
        PfNode *n = e->nodes[i];
        for (int k = n->nin - 1; k >= 0; k--) {
            if (n->next[k].fn != NULL && n->next[k].nr >= 0) {
                Py_ssize_t c = ((PfNode *)n->next[k].fn)->idx;
                if (--e->deps[c] == 0) {
                    stack[sp++] = c;
                }
            }
        }
    }
    PyMem_Free(stack);
    if (no != e->n) {
        return PF_ERRI(PyExc_RuntimeError, "backward: the graph has a cycle (an internal "
                       "error; please report it)");
    }
    return 0;
}

static void engine_free(engine *e)
{
    for (Py_ssize_t i = 0; i < e->n; i++) {
        PfNode *n = e->nodes[i];
        if (e->gbuf != NULL && e->gbuf[i] != NULL) {
            for (int k = 0; k < n->nout; k++) {
                Py_XDECREF(e->gbuf[i][k]);
            }
            PyMem_Free(e->gbuf[i]);
        }
        n->run = 0;
        Py_DECREF(n);
    }
    PyMem_Free(e->nodes);
    PyMem_Free(e->gbuf);
    PyMem_Free(e->deps);
    PyMem_Free(e->order);
    PyMem_Free(e->needed);
}

/* *slot += g, stealing g (a new reference) */
static int add_into(PyObject **slot, PyObject *g)
{
    if (*slot == NULL) {
        *slot = g;
        return 0;
    }
    PyObject *in[2] = {*slot, g};
    PyObject *s;
    /* a broadcast (stride-0) view is never written in place: its elements alias */
    if (!pf_grad_enabled() && Py_REFCNT(*slot) == 1 && PfTensor_Check(*slot) &&
        ((PfTensor *)*slot)->storage->refcnt == 1 && !((PfTensor *)*slot)->requires_grad &&
        pf_tensor_is_contiguous((PfTensor *)*slot) && !((PfTensor *)*slot)->storage->readonly &&
        ((PfTensor *)*slot)->dtype == pf_promote(((PfTensor *)*slot)->dtype,
                                                 ((PfTensor *)g)->dtype) &&
        ((PfTensor *)*slot)->ndim == ((PfTensor *)g)->ndim &&
        memcmp(((PfTensor *)*slot)->shape, ((PfTensor *)g)->shape,
               sizeof(int64_t) * (size_t)((PfTensor *)g)->ndim) == 0) {
        /* nobody else sees the running sum: add in place */
        s = pf_elementwise(PF_OP_ADD, in, (PfTensor *)*slot, NULL);
    }
    else {
        s = pf_elementwise(PF_OP_ADD, in, NULL, NULL);
    }
    Py_DECREF(g);
    if (s == NULL) {
        return -1;
    }
    Py_SETREF(*slot, s);
    return 0;
}

/* Tensor hooks: each may return a replacement gradient. Steals g; returns a new reference. */
static PyObject *run_hooks(PyObject *hooks, PyObject *g, int with_nr, int nr)
{
    if (hooks == NULL || PyDict_GET_SIZE(hooks) == 0) {
        return g;
    }
    PyObject *vals = PyDict_Values(hooks);
    if (vals == NULL) {
        Py_DECREF(g);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(vals); i++) {
        PyObject *v = PyList_GET_ITEM(vals, i);
        PyObject *fn = v;
        if (with_nr) {
            if (PyLong_AsLong(PyTuple_GET_ITEM(v, 0)) != nr) {
                continue;
            }
            fn = PyTuple_GET_ITEM(v, 1);
        }
        PyObject *r = PyObject_CallOneArg(fn, g);
        if (r == NULL) {
            Py_DECREF(g);
            g = NULL;
            break;
        }
        if (r == Py_None) {
            Py_DECREF(r);
            continue;
        }
        if (!PfTensor_Check(r) || ((PfTensor *)r)->ndim != ((PfTensor *)g)->ndim ||
            memcmp(((PfTensor *)r)->shape, ((PfTensor *)g)->shape,
                   sizeof(int64_t) * (size_t)((PfTensor *)g)->ndim) != 0) {
            char a[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_ValueError,
                         "a gradient hook returned %.100s; it must return None or a tensor "
                         "of the gradient's shape %s", PfTensor_Check(r) ? "a tensor of "
                         "another shape" : Py_TYPE(r)->tp_name,
                         pf_shape_str(((PfTensor *)g)->shape, ((PfTensor *)g)->ndim, a,
                                      sizeof(a)));
            Py_DECREF(r);
            Py_DECREF(g);
            g = NULL;
            break;
        }
        Py_SETREF(g, r);
    }
    Py_DECREF(vals);
    return g;
}

/* t.grad += g (steals g), as a leaf or a retained non-leaf. */
static int accumulate_grad(PfTensor *t, PyObject *g, int create_graph)
{
    if (t->grad == NULL) {
        if (!create_graph) {
            PfTensor *gt = (PfTensor *)g;
            int owned = Py_REFCNT(g) == 1 && gt->storage->refcnt == 1 && gt->grad_fn == NULL &&
                        pf_tensor_is_contiguous(gt) && !gt->storage->readonly &&
                        gt->storage->owner == NULL && gt->storage->release == NULL;
            if (!owned) {
                PyObject *c = (PyObject *)pf_tensor_copy_as(gt, gt->dtype, "backward");
                Py_DECREF(g);
                if (c == NULL) {
                    return -1;
                }
                g = c;
            }
            ((PfTensor *)g)->requires_grad = 0;
        }
        t->grad = g;
        return 0;
    }
    PfTensor *old = (PfTensor *)t->grad;
    PyObject *in[2] = {t->grad, g};
    PyObject *s;
    if (!create_graph && !old->requires_grad && !old->storage->readonly) {
        s = pf_elementwise(PF_OP_ADD, in, old, NULL);
    }
    else {
        s = pf_elementwise(PF_OP_ADD, in, NULL, NULL);
    }
    Py_DECREF(g);
    if (s == NULL) {
        return -1;
    }
    Py_SETREF(t->grad, s);
    return 0;
}

typedef struct {
    PyObject *const *targets;   /* tensors whose gradient is wanted, or NULL (all leaves) */
    Py_ssize_t ntargets;
    PyObject **captured;        /* pf.grad: gradients of the targets; NULL: into .grad */
    int create_graph;
} sink;

static Py_ssize_t target_index(const sink *s, PyObject *t)
{
    for (Py_ssize_t k = 0; k < s->ntargets; k++) {
        if (s->targets[k] == t) {
            return k;
        }
    }
    return -1;
}

/* A gradient that reached a target tensor (steals g). */
static int deliver_target(const sink *s, Py_ssize_t k, PyObject *g)
{
    if (s->captured != NULL) {
        return add_into(&s->captured[k], g);
    }
    return accumulate_grad((PfTensor *)s->targets[k], g, s->create_graph);
}

/* A gradient that reached a leaf (steals g). */
static int deliver_leaf(const sink *s, PfTensor *leaf, PyObject *g)
{
    if (s->targets != NULL) {
        Py_ssize_t k = target_index(s, (PyObject *)leaf);
        if (k < 0) {
            Py_DECREF(g);
            return 0;
        }
        g = run_hooks(leaf->hooks, g, 0, 0);
        return g == NULL ? -1 : deliver_target(s, k, g);
    }
    g = run_hooks(leaf->hooks, g, 0, 0);
    return g == NULL ? -1 : accumulate_grad(leaf, g, s->create_graph);
}

/* Which nodes lead to a target (reverse topological order). */
static void engine_mark_needed(engine *e, const sink *s)
{
    for (Py_ssize_t o = e->n - 1; o >= 0; o--) {
        Py_ssize_t i = e->order[o];
        PfNode *n = e->nodes[i];
        char need = s->targets == NULL;
        for (Py_ssize_t k = 0; !need && k < s->ntargets; k++) {
            need = ((PfTensor *)s->targets[k])->grad_fn == (PyObject *)n;
        }
        for (int k = 0; !need && k < n->nin; k++) {
            PyObject *fn = n->next[k].fn;
            if (fn == NULL) {
                continue;
            }
            need = n->next[k].nr < 0 ? target_index(s, fn) >= 0
                                      : e->needed[((PfNode *)fn)->idx];
        }
        e->needed[i] = need;
    }
}

static int engine_node_feeds(engine *e, const sink *s, PfNode *n)
{
    for (int k = 0; k < n->nin; k++) {
        PyObject *fn = n->next[k].fn;
        if (fn == NULL) {
            continue;
        }
        if (n->next[k].nr < 0 ? (s->targets == NULL || target_index(s, fn) >= 0)
                              : e->needed[((PfNode *)fn)->idx]) {
            return 1;
        }
    }
    return 0;
}

static PyObject *zeros_for(const pf_meta *m)
{
    return (PyObject *)pf_tensor_zeros(m->ndim, m->shape, m->dtype, m->device, "backward");
}

static int engine_run_node(engine *e, const sink *s, PfNode *n, int retain_graph)
{
    PyObject **gbuf = e->gbuf[n->idx];
    int any = 0;
    for (int k = 0; k < n->nout; k++) {
        any |= gbuf[k] != NULL;
    }
    if (!any) {
        return 0;
    }
    /* hooks, retain_grad() and wanted non-leaf tensors see the summed gradient */
    for (int k = 0; k < n->nout; k++) {
        if (gbuf[k] == NULL) {
            continue;
        }
        if (n->hooks != NULL) {
            gbuf[k] = run_hooks(n->hooks, gbuf[k], 1, k);
            if (gbuf[k] == NULL) {
                return -1;
            }
        }
        if (n->retain != NULL) {
            for (Py_ssize_t j = 0; j < PyList_GET_SIZE(n->retain); j++) {
                PyObject *pair = PyList_GET_ITEM(n->retain, j);
                if (PyLong_AsLong(PyTuple_GET_ITEM(pair, 0)) != k) {
                    continue;
                }
                PyObject *t = PyWeakref_GetObject(PyTuple_GET_ITEM(pair, 1));
                if (t != Py_None && ((PfTensor *)t)->grad_fn == (PyObject *)n &&
                    accumulate_grad((PfTensor *)t, Py_NewRef(gbuf[k]), s->create_graph) < 0) {
                    return -1;
                }
            }
        }
        for (Py_ssize_t t = 0; t < s->ntargets; t++) {
            PfTensor *tt = (PfTensor *)s->targets[t];
            if (tt->grad_fn == (PyObject *)n && tt->output_nr == k &&
                deliver_target(s, t, Py_NewRef(gbuf[k])) < 0) {
                return -1;
            }
        }
    }
    if (!engine_node_feeds(e, s, n)) {
        return 0;
    }
    if (n->released && n->has_saved) {
        return check_released(n);
    }
    for (int k = 0; k < n->nout; k++) {
        if (gbuf[k] == NULL && pf_is_float(n->out_meta[k].dtype)) {
            gbuf[k] = zeros_for(&n->out_meta[k]);
            if (gbuf[k] == NULL) {
                return -1;
            }
        }
    }
    PyObject *small[8] = {NULL};
    PyObject **gin = n->nin <= 8 ? small : PyMem_Calloc((size_t)n->nin, sizeof(PyObject *));
    if (gin == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int saved_mode = pf_grad_disabled;
    pf_grad_disabled = !s->create_graph;
    int r = pf_bw_run(n, gbuf, gin);
    pf_grad_disabled = saved_mode;
    for (int k = 0; k < n->nout; k++) {
        Py_CLEAR(gbuf[k]);
    }
    if (!retain_graph) {
        node_release(n);
    }
    for (int k = 0; k < n->nin; k++) {
        PyObject *g = gin[k];
        gin[k] = NULL;
        PyObject *fn = n->next[k].fn;
        if (g == NULL || fn == NULL || r < 0) {
            Py_XDECREF(g);
            continue;
        }
        pf_grad_disabled = !s->create_graph;
        PyObject *gs = g == Py_None ? NULL : pf_sum_to(g, &n->in_meta[k]);
        Py_DECREF(g);
        if (gs == NULL) {
            pf_grad_disabled = saved_mode;
            r = PyErr_Occurred() ? -1 : r;
            continue;
        }
        if (n->next[k].nr < 0) {
            r = deliver_leaf(s, (PfTensor *)fn, gs);
        }
        else if (e->needed[((PfNode *)fn)->idx]) {
            r = add_into(&e->gbuf[((PfNode *)fn)->idx][n->next[k].nr], gs);
        }
        else {
            Py_DECREF(gs);
        }
        pf_grad_disabled = saved_mode;
    }
    if (gin != small) {
        PyMem_Free(gin);
    }
    return r;
}

/*
 * The backward pass from roots (tensors) with gradients grads (tensors of
 * the roots' shapes).  targets NULL: every leaf's .grad accumulates.
 * Otherwise only the targets' gradients are wanted: into captured[k] when
 * captured is given (pf.grad), else into the targets' .grad.
 */
static int engine_backward(PyObject *const *roots, PyObject *const *grads, Py_ssize_t nroots,
                           int retain_graph, int create_graph, PyObject *const *targets,
                           Py_ssize_t ntargets, PyObject **captured)
{
    if (n_active >= MAX_NESTED) {
        return PF_ERRI(PyExc_RuntimeError, "backward: more than %d backward passes nested "
                       "inside each other", MAX_NESTED);
    }
    engine e = {0};
    e.run = ++engine_runs;
    active_runs[n_active++] = e.run;
    sink s = {targets, ntargets, captured, create_graph};
    int saved_mode = pf_grad_disabled;
    int r = engine_discover(&e, roots, nroots);
    if (r == 0) {
        engine_mark_needed(&e, &s);
        pf_grad_disabled = !create_graph;
        for (Py_ssize_t i = 0; r == 0 && i < nroots; i++) {
            PfTensor *t = (PfTensor *)roots[i];
            PyObject *g = Py_NewRef(grads[i]);
            if (t->grad_fn == NULL) {
                r = deliver_leaf(&s, t, g);
                continue;
            }
            Py_ssize_t k = target_index(&s, roots[i]);
            PfNode *fn = (PfNode *)t->grad_fn;
            if (k >= 0 && s.targets != NULL && !e.needed[fn->idx]) {
                r = deliver_target(&s, k, g);
                continue;
            }
            r = add_into(&e.gbuf[fn->idx][t->output_nr], g);
        }
        pf_grad_disabled = saved_mode;
    }
    for (Py_ssize_t o = 0; r == 0 && o < e.n; o++) {
        Py_ssize_t i = e.order[o];
        if (e.needed[i]) {
            r = engine_run_node(&e, &s, e.nodes[i], retain_graph);
        }
    }
    pf_grad_disabled = saved_mode;
    engine_free(&e);
    /* by value: another thread's pass may have started (a hook released the GIL) */
    for (int i = 0; i < n_active; i++) {
        if (active_runs[i] == e.run) {
            active_runs[i] = active_runs[--n_active];
            break;
        }
    }
    return r;
}

/* ------------------------------------------------------------ Python API */

static int check_roots(PyObject *seq, const char *op)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq); i++) {
        PyObject *t = PyTuple_GET_ITEM(seq, i);
        if (!PfTensor_Check(t)) {
            return PF_ERRI(PyExc_TypeError, "%s: expected tensors; element %zd is %.100s", op, i,
                           Py_TYPE(t)->tp_name);
        }
        if (!((PfTensor *)t)->requires_grad) {
            return PF_ERRI(PyExc_RuntimeError,
                           "%s: element %zd of the tensors does not require grad and has no "
                           "grad_fn, so there is nothing to differentiate. Create the inputs "
                           "with requires_grad=True (or call .requires_grad_()) and make sure "
                           "the computation did not run under pf.no_grad()", op, i);
        }
    }
    return 0;
}

static PyObject *as_tensor_tuple(PyObject *o, const char *op, const char *what)
{
    if (PfTensor_Check(o)) {
        return PyTuple_Pack(1, o);
    }
    if (PyList_Check(o) || PyTuple_Check(o)) {
        return PySequence_Tuple(o);
    }
    return PF_ERR(PyExc_TypeError, "%s: %s must be a tensor or a sequence of tensors; got %.100s",
                  op, what, Py_TYPE(o)->tp_name);
}

/* The gradients for the roots: given ones checked, missing ones 1 for scalars. */
static PyObject *make_root_grads(PyObject *roots, PyObject *given, const char *op)
{
    Py_ssize_t n = PyTuple_GET_SIZE(roots);
    PyObject *g = NULL;
    if (given != NULL && given != Py_None) {
        g = as_tensor_tuple(given, op, "the gradients");
        if (g == NULL) {
            return NULL;
        }
        if (PyTuple_GET_SIZE(g) != n) {
            Py_ssize_t got = PyTuple_GET_SIZE(g);
            Py_DECREF(g);
            return PF_ERR(PyExc_ValueError, "%s: %zd gradients for %zd tensors; give one per "
                          "tensor", op, got, n);
        }
    }
    PyObject *out = PyTuple_New(n);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        PfTensor *t = (PfTensor *)PyTuple_GET_ITEM(roots, i);
        PyObject *gi = g ? PyTuple_GET_ITEM(g, i) : Py_None;
        PyObject *v;
        if (gi == Py_None) {
            if (pf_numel(t->shape, t->ndim) != 1) {
                char sh[PF_SHAPE_STRLEN];
                PyErr_Format(PyExc_RuntimeError,
                             "%s: the gradient can be implied only for a tensor of one "
                             "element; this one has shape %s. Pass gradient= (a tensor of "
                             "that shape), or reduce it first (loss.sum() or loss.mean())",
                             op, pf_shape_str(t->shape, t->ndim, sh, sizeof(sh)));
                Py_CLEAR(out);
                break;
            }
            PfTensor *one = pf_tensor_empty(t->ndim, t->shape, t->dtype, t->storage->device, op);
            PyObject *onev = PyLong_FromLong(1);
            if (one == NULL || onev == NULL || pf_tensor_fill_scalar(one, onev, op) < 0) {
                Py_XDECREF(one);
                Py_XDECREF(onev);
                Py_CLEAR(out);
                break;
            }
            Py_DECREF(onev);
            v = (PyObject *)one;
        }
        else {
            v = (PyObject *)pf_as_tensor(gi, 1, t->dtype, op);
            if (v == NULL) {
                Py_CLEAR(out);
                break;
            }
            PfTensor *vt = (PfTensor *)v;
            if (vt->ndim != t->ndim ||
                memcmp(vt->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) != 0) {
                char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
                PyErr_Format(PyExc_ValueError,
                             "%s: the gradient for tensor %zd has shape %s but the tensor has "
                             "shape %s; they must match", op, i,
                             pf_shape_str(vt->shape, vt->ndim, a, sizeof(a)),
                             pf_shape_str(t->shape, t->ndim, b, sizeof(b)));
                Py_DECREF(v);
                Py_CLEAR(out);
                break;
            }
            if (vt->dtype != t->dtype ||
                !pf_device_eq(vt->storage->device, t->storage->device)) {
                /* the gradient on the root's device, in its dtype */
                PyObject *c = (PyObject *)pf_tensor_to_device(vt, t->storage->device, t->dtype,
                                                              op);
                Py_DECREF(v);
                v = c;
                if (v == NULL) {
                    Py_CLEAR(out);
                    break;
                }
            }
        }
        PyTuple_SET_ITEM(out, i, v);
    }
    Py_XDECREF(g);
    return out;
}

static int opt_bool(PyObject *o, int dflt, const char *op, const char *what, int *out)
{
    if (o == NULL || o == Py_None) {
        *out = dflt;
        return 0;
    }
    return pf_parse_bool(o, op, what, dflt, out);
}

/* _C._backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None) */
static PyObject *py_backward(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    static const char *const names[] = {"tensors", "grad_tensors", "retain_graph",
                                        "create_graph", "inputs", NULL};
    const char *op = "backward";
    PyObject *a[5] = {NULL};
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, a) < 0) {
        return NULL;
    }
    int create, retain;
    if (opt_bool(a[3], 0, op, "create_graph", &create) < 0 ||
        opt_bool(a[2], create, op, "retain_graph", &retain) < 0) {
        return NULL;
    }
    PyObject *roots = as_tensor_tuple(a[0], op, "tensors");
    PyObject *grads = NULL, *targets = NULL;
    PyObject *result = NULL;
    if (roots == NULL || check_roots(roots, op) < 0) {
        goto done;
    }
    grads = make_root_grads(roots, a[1], op);
    if (grads == NULL) {
        goto done;
    }
    if (a[4] != NULL && a[4] != Py_None) {
        targets = as_tensor_tuple(a[4], op, "inputs");
        if (targets == NULL || check_roots(targets, "backward(inputs=)") < 0) {
            goto done;
        }
        if (PyTuple_GET_SIZE(targets) == 0) {
            PyErr_Format(PyExc_ValueError, "%s: inputs= is empty; leave it out to accumulate "
                         "into every leaf", op);
            goto done;
        }
    }
    if (engine_backward(&PyTuple_GET_ITEM(roots, 0), &PyTuple_GET_ITEM(grads, 0),
                        PyTuple_GET_SIZE(roots), retain, create,
                        targets ? &PyTuple_GET_ITEM(targets, 0) : NULL,
                        targets ? PyTuple_GET_SIZE(targets) : 0, NULL) == 0) {
        result = Py_NewRef(Py_None);
    }
done:
    Py_XDECREF(roots);
    Py_XDECREF(grads);
    Py_XDECREF(targets);
    return result;
}

/* _C._grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False) */
static PyObject *py_grad(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    static const char *const names[] = {"outputs", "inputs", "grad_outputs", "retain_graph",
                                        "create_graph", "allow_unused", NULL};
    const char *op = "pf.grad";
    PyObject *a[6] = {NULL};
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, a) < 0) {
        return NULL;
    }
    int create, retain, allow_unused;
    if (opt_bool(a[4], 0, op, "create_graph", &create) < 0 ||
        opt_bool(a[3], create, op, "retain_graph", &retain) < 0 ||
        opt_bool(a[5], 0, op, "allow_unused", &allow_unused) < 0) {
        return NULL;
    }
    PyObject *roots = as_tensor_tuple(a[0], op, "outputs");
    PyObject *targets = NULL, *grads = NULL, *result = NULL;
    PyObject **captured = NULL;
    if (roots == NULL || check_roots(roots, op) < 0) {
        goto done;
    }
    targets = as_tensor_tuple(a[1], op, "inputs");
    if (targets == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(targets); i++) {
        PyObject *t = PyTuple_GET_ITEM(targets, i);
        if (!pf_needs_grad(t)) {
            PyErr_Format(PyExc_RuntimeError,
                         "%s: input %zd %s; pass tensors created with requires_grad=True (or "
                         "computed from them)", op, i,
                         PfTensor_Check(t) ? "does not require grad" : "is not a tensor");
            goto done;
        }
    }
    grads = make_root_grads(roots, a[2], op);
    if (grads == NULL) {
        goto done;
    }
    Py_ssize_t nt = PyTuple_GET_SIZE(targets);
    captured = PyMem_Calloc((size_t)(nt > 0 ? nt : 1), sizeof(PyObject *));
    if (captured == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (engine_backward(&PyTuple_GET_ITEM(roots, 0), &PyTuple_GET_ITEM(grads, 0),
                        PyTuple_GET_SIZE(roots), retain, create, &PyTuple_GET_ITEM(targets, 0),
                        nt, captured) < 0) {
        goto done;
    }
    result = PyTuple_New(nt);
    for (Py_ssize_t i = 0; result != NULL && i < nt; i++) {
        if (captured[i] == NULL) {
            if (!allow_unused) {
                PyErr_Format(PyExc_RuntimeError,
                             "%s: input %zd was not used to compute the outputs, so it has no "
                             "gradient; pass allow_unused=True to get None for it", op, i);
                Py_CLEAR(result);
                break;
            }
            PyTuple_SET_ITEM(result, i, Py_NewRef(Py_None));
            continue;
        }
        PyTuple_SET_ITEM(result, i, captured[i]);
        captured[i] = NULL;
    }
done:
    if (captured != NULL) {
        for (Py_ssize_t i = 0; targets != NULL && i < PyTuple_GET_SIZE(targets); i++) {
            Py_XDECREF(captured[i]);
        }
        PyMem_Free(captured);
    }
    Py_XDECREF(roots);
    Py_XDECREF(targets);
    Py_XDECREF(grads);
    return result;
}

static PyObject *py_is_grad_enabled(PyObject *Py_UNUSED(m), PyObject *Py_UNUSED(a))
{
    return PyBool_FromLong(pf_grad_enabled());
}

/* _C._set_grad_enabled(flag) -> previous flag */
static PyObject *py_set_grad_enabled(PyObject *Py_UNUSED(m), PyObject *flag)
{
    int on = PyObject_IsTrue(flag);
    if (on < 0) {
        return NULL;
    }
    int prev = pf_grad_enabled();
    pf_grad_disabled = !on;
    return PyBool_FromLong(prev);
}

/* --------------------------------------------------- pf.autograd.Function */

/* _C._function_ctx(cls, args) -> the node that serves as ctx */
static PyObject *py_function_ctx(PyObject *Py_UNUSED(m), PyObject *args)
{
    PyObject *cls, *fargs;
    if (!PyArg_ParseTuple(args, "OO!", &cls, &PyTuple_Type, &fargs)) {
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(fargs);
    PfNode *node = pf_node_new(PF_NODE_PYFUNC, (int)n, 0);
    if (node == NULL) {
        return NULL;
    }
    node->pycls = Py_NewRef(cls);
    for (Py_ssize_t i = 0; i < n; i++) {
        pf_node_set_input(node, (int)i, PyTuple_GET_ITEM(fargs, i), 0);
    }
    return (PyObject *)node;
}

/*
 * _C._function_finish(ctx, outputs, saved, non_differentiable) -> outputs.
 * Saved tensors are kept with their versions; one that is an output is kept
 * as an alias (no cycle through the node) and gets the node back as grad_fn
 * when read under create_graph.
 */
static PyObject *py_function_finish(PyObject *Py_UNUSED(m), PyObject *args)
{
    PfNode *n;
    PyObject *outs, *saved, *nondiff;
    if (!PyArg_ParseTuple(args, "O!OO!O!", &PfNode_Type, &n, &outs, &PyTuple_Type, &saved,
                          &PyTuple_Type, &nondiff)) {
        return NULL;
    }
    int single = PfTensor_Check(outs);
    PyObject *seq = single ? PyTuple_Pack(1, outs) : PySequence_Tuple(outs);
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t nout = PyTuple_GET_SIZE(seq);
    PyMem_Free(n->out_meta);
    n->out_meta = NULL;
    if (node_alloc_out(n, (int)nout) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    PyObject *result = PyTuple_New(nout);
    int any_grad = 0;
    for (int i = 0; i < n->nin; i++) {
        any_grad |= n->next[i].fn != NULL;
    }
    for (Py_ssize_t i = 0; result != NULL && i < nout; i++) {
        PyObject *o = PyTuple_GET_ITEM(seq, i);
        if (!PfTensor_Check(o)) {
            PyTuple_SET_ITEM(result, i, Py_NewRef(o));
            continue;
        }
        int nd = 0;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(nondiff); j++) {
            nd |= PyTuple_GET_ITEM(nondiff, j) == o;
        }
        /* a tensor with history of its own (an input returned as is): a new
           object, so that marking it does not rewrite that history */
        PyObject *fresh = Py_NewRef(o);
        if (((PfTensor *)o)->grad_fn != NULL || ((PfTensor *)o)->requires_grad) {
            Py_SETREF(fresh, (PyObject *)alias_of((PfTensor *)o));
            if (fresh == NULL) {
                Py_CLEAR(result);
                break;
            }
        }
        if (nd || !any_grad || !pf_is_float(((PfTensor *)fresh)->dtype)) {
            meta_of(&n->out_meta[i], (PfTensor *)fresh);
        }
        else if (pf_node_set_output(n, (int)i, (PfTensor *)fresh, 0) < 0) {
            Py_DECREF(fresh);
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, i, fresh);
    }
    /* saved tensors: (alias or tensor, version, output_nr or -1) */
    if (result != NULL) {
        PyObject *sv = PyTuple_New(PyTuple_GET_SIZE(saved));
        for (Py_ssize_t j = 0; sv != NULL && j < PyTuple_GET_SIZE(saved); j++) {
            PyObject *t = PyTuple_GET_ITEM(saved, j);
            int nr = -1;
            for (Py_ssize_t i = 0; i < nout; i++) {
                if (PyTuple_GET_ITEM(seq, i) == t) {
                    nr = (int)i;
                }
            }
            PyObject *keep;
            if (t == Py_None) {
                keep = Py_NewRef(Py_None);
            }
            else if (!PfTensor_Check(t)) {
                PyErr_Format(PyExc_TypeError, "save_for_backward: only tensors (or None) can be "
                             "saved; got %.100s (keep other values as ctx attributes)",
                             Py_TYPE(t)->tp_name);
                Py_CLEAR(sv);
                break;
            }
            else if (nr >= 0) {
                keep = (PyObject *)alias_of((PfTensor *)PyTuple_GET_ITEM(result, nr));
            }
            else {
                keep = Py_NewRef(t);
            }
            PyObject *item = keep ? Py_BuildValue("(NKi)", keep,
                                                  (unsigned long long)(PfTensor_Check(keep)
                                                  ? ((PfTensor *)keep)->storage->version : 0),
                                                  nr) : NULL;
            if (item == NULL) {
                Py_CLEAR(sv);
                break;
            }
            PyTuple_SET_ITEM(sv, j, item);
        }
        if (sv == NULL) {
            Py_CLEAR(result);
        }
        else {
            Py_XSETREF(n->args, sv);
            n->has_saved = PyTuple_GET_SIZE(sv) > 0;
        }
    }
    Py_DECREF(seq);
    if (result != NULL && single) {
        PyObject *r = Py_NewRef(PyTuple_GET_ITEM(result, 0));
        Py_DECREF(result);
        return r;
    }
    return result;
}

/* ctx.saved_tensors */
static PyObject *node_saved_tensors(PfNode *n, void *Py_UNUSED(c))
{
    if (n->kind != PF_NODE_PYFUNC) {
        return PF_ERR(PyExc_AttributeError, "saved_tensors belongs to the ctx of a "
                      "pf.autograd.Function");
    }
    if (check_released(n) < 0) {
        return NULL;
    }
    if (n->args == NULL) {
        return PyTuple_New(0);
    }
    Py_ssize_t k = PyTuple_GET_SIZE(n->args);
    PyObject *out = PyTuple_New(k);
    for (Py_ssize_t j = 0; out != NULL && j < k; j++) {
        PyObject *item = PyTuple_GET_ITEM(n->args, j);
        PyObject *t = PyTuple_GET_ITEM(item, 0);
        PyObject *v;
        if (t == Py_None) {
            v = Py_NewRef(Py_None);
        }
        else {
            uint64_t ver = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(item, 1));
            int nr = (int)PyLong_AsLong(PyTuple_GET_ITEM(item, 2));
            if (check_version(n, (PfTensor *)t, ver, "saved tensor", (int)j) < 0) {
                Py_CLEAR(out);
                break;
            }
            v = nr >= 0 ? unpack_output(n, (PfTensor *)t, nr) : Py_NewRef(t);
        }
        if (v == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, j, v);
    }
    return out;
}

static PyObject *node_needs_input_grad(PfNode *n, void *Py_UNUSED(c))
{
    PyObject *t = PyTuple_New(n->nin);
    for (int i = 0; t != NULL && i < n->nin; i++) {
        PyTuple_SET_ITEM(t, i, PyBool_FromLong(n->next[i].fn != NULL));
    }
    return t;
}

int pf_bw_pyfunc(PfNode *n, PyObject **gout, PyObject **gin)
{
    char name[128];
    pf_node_name(n, name, sizeof(name));
    PyObject *argv = PyTuple_New(n->nout + 1);
    if (argv == NULL) {
        return -1;
    }
    PyTuple_SET_ITEM(argv, 0, Py_NewRef(n));
    for (int k = 0; k < n->nout; k++) {
        PyTuple_SET_ITEM(argv, k + 1, Py_NewRef(gout[k] ? gout[k] : Py_None));
    }
    PyObject *bw = PyObject_GetAttrString(n->pycls, "backward");
    PyObject *r = bw ? PyObject_Call(bw, argv, NULL) : NULL;
    Py_XDECREF(bw);
    Py_DECREF(argv);
    if (r == NULL) {
        return -1;
    }
    PyObject *seq = PyTuple_Check(r) ? Py_NewRef(r) : PyTuple_Pack(1, r);
    Py_DECREF(r);
    if (seq == NULL) {
        return -1;
    }
    int rc = 0;
    if (PyTuple_GET_SIZE(seq) < n->nin) {
        PyErr_Format(PyExc_RuntimeError,
                     "%s: backward returned %zd gradients but forward took %d arguments; "
                     "return one per argument (None for those without a gradient)", name,
                     PyTuple_GET_SIZE(seq), n->nin);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < n->nin; i++) {
        PyObject *g = PyTuple_GET_ITEM(seq, i);
        if (g == Py_None || n->next[i].fn == NULL) {
            continue;
        }
        if (!PfTensor_Check(g)) {
            PyErr_Format(PyExc_TypeError, "%s: backward returned %.100s for argument %d; "
                         "gradients must be tensors or None", name, Py_TYPE(g)->tp_name, i);
            rc = -1;
            break;
        }
        PfTensor *gt = (PfTensor *)g;
        const pf_meta *m = &n->in_meta[i];
        if (gt->ndim != m->ndim ||
            memcmp(gt->shape, m->shape, sizeof(int64_t) * (size_t)m->ndim) != 0) {
            char a[PF_SHAPE_STRLEN], b[PF_SHAPE_STRLEN];
            PyErr_Format(PyExc_RuntimeError,
                         "%s: backward returned a gradient of shape %s for argument %d, whose "
                         "shape is %s; they must match", name,
                         pf_shape_str(gt->shape, gt->ndim, a, sizeof(a)), i,
                         pf_shape_str(m->shape, m->ndim, b, sizeof(b)));
            rc = -1;
            break;
        }
        gin[i] = Py_NewRef(g);
    }
    Py_DECREF(seq);
    return rc;
}

/* ------------------------------------------------------- hooks, retain_grad */

typedef struct {
    PyObject_HEAD
    PyObject *dict;
    PyObject *key;
} PfHookHandle;

static void handle_dealloc(PfHookHandle *h)
{
    Py_XDECREF(h->dict);
    Py_XDECREF(h->key);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *handle_remove(PfHookHandle *h, PyObject *Py_UNUSED(a))
{
    if (h->dict != NULL && PyDict_Contains(h->dict, h->key) == 1 &&
        PyDict_DelItem(h->dict, h->key) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef handle_methods[] = {
    {"remove", (PyCFunction)handle_remove, METH_NOARGS, "unregister the hook"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PfHookHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe.autograd.RemovableHandle",
    .tp_basicsize = sizeof(PfHookHandle),
    .tp_dealloc = (destructor)handle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_methods = handle_methods,
    .tp_doc = "returned by register_hook; remove() unregisters the hook",
};

static long long hook_ids;

static PyObject *tensor_register_hook(PfTensor *self, PyObject *fn)
{
    if (!PyCallable_Check(fn)) {
        return PF_ERR(PyExc_TypeError, "Tensor.register_hook: expected a callable taking the "
                      "gradient; got %.100s", Py_TYPE(fn)->tp_name);
    }
    if (!self->requires_grad) {
        return PF_ERR(PyExc_RuntimeError, "Tensor.register_hook: this tensor does not require "
                      "grad, so no gradient will ever reach the hook; set requires_grad=True "
                      "first");
    }
    PyObject **dictp = self->grad_fn ? &((PfNode *)self->grad_fn)->hooks : &self->hooks;
    if (*dictp == NULL && (*dictp = PyDict_New()) == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromLongLong(++hook_ids);
    PyObject *val = self->grad_fn ? Py_BuildValue("(iO)", self->output_nr, fn) : Py_NewRef(fn);
    if (key == NULL || val == NULL || PyDict_SetItem(*dictp, key, val) < 0) {
        Py_XDECREF(key);
        Py_XDECREF(val);
        return NULL;
    }
    Py_DECREF(val);
    PfHookHandle *h = PyObject_New(PfHookHandle, &PfHookHandle_Type);
    if (h == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    h->dict = Py_NewRef(*dictp);
    h->key = key;
    return (PyObject *)h;
}

static PyObject *tensor_retain_grad(PfTensor *self, PyObject *Py_UNUSED(a))
{
    if (!self->requires_grad) {
        return PF_ERR(PyExc_RuntimeError, "Tensor.retain_grad: this tensor does not require "
                      "grad; there is no gradient to keep");
    }
    if (self->grad_fn == NULL || self->retains_grad) {
        Py_RETURN_NONE;   /* leaves keep their gradient anyway */
    }
    PfNode *n = (PfNode *)self->grad_fn;
    if (n->retain == NULL && (n->retain = PyList_New(0)) == NULL) {
        return NULL;
    }
    PyObject *wr = PyWeakref_NewRef((PyObject *)self, NULL);
    PyObject *pair = wr ? Py_BuildValue("(iN)", self->output_nr, wr) : NULL;
    if (pair == NULL || PyList_Append(n->retain, pair) < 0) {
        Py_XDECREF(pair);
        return NULL;
    }
    Py_DECREF(pair);
    self->retains_grad = 1;
    Py_RETURN_NONE;
}

static PyObject *tensor_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                                 PyObject *kwnames)
{
    static const char *const names[] = {"gradient", "retain_graph", "create_graph", "inputs",
                                        NULL};
    PyObject *a[4] = {NULL};
    if (pf_parse_args("Tensor.backward", args, nargs, kwnames, names, 0, a) < 0) {
        return NULL;
    }
    PyObject *stack[5] = {self, a[0] ? a[0] : Py_None, a[1] ? a[1] : Py_None,
                          a[2] ? a[2] : Py_False, a[3] ? a[3] : Py_None};
    return py_backward(NULL, stack, 5, NULL);
}

static PyObject *get_retains_grad(PfTensor *self, void *Py_UNUSED(c))
{
    return PyBool_FromLong(self->retains_grad);
}

static PyObject *get_output_nr(PfTensor *self, void *Py_UNUSED(c))
{
    return PyLong_FromLong(self->output_nr);
}

PyMethodDef pf_autograd_tensor_methods[] = {
    {"backward", (PyCFunction)(void (*)(void))tensor_backward, METH_FASTCALL | METH_KEYWORDS,
     "backward(gradient=None, retain_graph=None, create_graph=False, inputs=None): "
     "accumulate the gradient of this tensor into the .grad of the leaves it depends on"},
    {"register_hook", (PyCFunction)tensor_register_hook, METH_O,
     "register_hook(fn): fn(grad) runs when this tensor's gradient is computed; it may "
     "return a replacement. Returns a handle with remove()"},
    {"retain_grad", (PyCFunction)tensor_retain_grad, METH_NOARGS,
     "keep the gradient of this non-leaf tensor in .grad after backward"},
    {NULL, NULL, 0, NULL},
};

PyGetSetDef pf_autograd_tensor_getset[] = {
    {"retains_grad", (getter)get_retains_grad, NULL, "True after retain_grad() on a non-leaf",
     NULL},
    {"output_nr", (getter)get_output_nr, NULL, "which output of its grad_fn this tensor is",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ------------------------------------------------------------ the Node type */

/* ctx.save_for_backward(*tensors) / ctx.mark_non_differentiable(*tensors): read by Function.apply */
static PyObject *node_save_for_backward(PyObject *self, PyObject *args)
{
    if (PyObject_SetAttrString(self, "_pf_saved", args) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *node_mark_non_differentiable(PyObject *self, PyObject *args)
{
    if (PyObject_SetAttrString(self, "_pf_nondiff", args) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef node_methods[] = {
    {"name", (PyCFunction)node_get_name, METH_NOARGS, "the node's name"},
    {"save_for_backward", node_save_for_backward, METH_VARARGS,
     "Function ctx: keep tensors for backward (read back as ctx.saved_tensors)"},
    {"mark_non_differentiable", node_mark_non_differentiable, METH_VARARGS,
     "Function ctx: these outputs get no gradient"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef node_getset[] = {
    {"next_functions", (getter)node_next_functions, NULL,
     "(node, output_nr) for each input: where its gradient goes", NULL},
    {"variable", (getter)node_variable, NULL, "AccumulateGrad: the leaf tensor", NULL},
    {"saved_tensors", (getter)node_saved_tensors, NULL,
     "Function ctx: the tensors given to save_for_backward", NULL},
    {"needs_input_grad", (getter)node_needs_input_grad, NULL,
     "for each input: whether a gradient is wanted", NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject PfNode_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "pyframe.autograd.Node",
    .tp_basicsize = sizeof(PfNode),
    .tp_dealloc = (destructor)node_dealloc,
    .tp_repr = (reprfunc)node_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)node_traverse,
    .tp_clear = (inquiry)node_clear,
    .tp_weaklistoffset = offsetof(PfNode, weakreflist),
    .tp_dictoffset = offsetof(PfNode, dict),
    .tp_methods = node_methods,
    .tp_getset = node_getset,
    .tp_doc = "a step of the autograd graph (Tensor.grad_fn); the ctx of a Function",
};

PyMethodDef pf_autograd_module_methods[] = {
    {"_backward", (PyCFunction)(void (*)(void))py_backward, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"_grad", (PyCFunction)(void (*)(void))py_grad, METH_FASTCALL | METH_KEYWORDS, NULL},
    {"is_grad_enabled", py_is_grad_enabled, METH_NOARGS,
     "True unless inside pf.no_grad() (per thread)"},
    {"_set_grad_enabled", py_set_grad_enabled, METH_O, NULL},
    {"_function_ctx", py_function_ctx, METH_VARARGS, NULL},
    {"_function_finish", py_function_finish, METH_VARARGS, NULL},
    {"_bw_rules", pf_bw_rule_list, METH_NOARGS,
     "names of the differentiable ops that have a backward rule"},
    {NULL, NULL, 0, NULL},
};

int pf_autograd_init(PyObject *module)
{
    if (PyType_Ready(&PfNode_Type) < 0 || PyType_Ready(&PfHookHandle_Type) < 0) {
        return -1;
    }
    if (PyModule_AddObjectRef(module, "Node", (PyObject *)&PfNode_Type) < 0 ||
        PyModule_AddObjectRef(module, "RemovableHandle", (PyObject *)&PfHookHandle_Type) < 0) {
        return -1;
    }
    return 0;
}
