/*
 * sort.c -- sort, argsort, topk, unique and searchsorted.
 *
 * Every dtype sorts as unsigned integer keys of its own width: a key
 * transform maps each value to a key whose unsigned order is the value
 * order, with every NaN on one key above +inf (NaN sorts last, as NumPy)
 * and -0.0 on the key of 0.0 (they tie, and ties keep their order).
 * Descending order sorts the complemented keys, so equal values still
 * keep their original order and NaN comes first (as PyTorch).
 *
 * The sort itself is stable for every input: insertion sort for short
 * rows, a bottom-up merge sort for medium ones, and an LSD radix sort
 * (one byte per pass, passes where every key shares the byte skipped) for
 * long ones.  It sorts (key, index) pairs; values are then gathered from
 * the row through the indices, so -0.0 and NaN payloads survive.  Rows
 * are independent and split across threads when there is enough work.
 *
 * On a CUDA device (cuda/gather.cu) the same keys are sorted as (key,
 * position) pairs by a bitonic network per row, which gives the same
 * stable order; searchsorted bisects the same keys.
 */
#include "ops.h"
#include "gather_cuda.h"
#include "kernels/half.h"
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ------------------------------------------------------------ the keys */

static int key_width(pf_dtype d)
{
    return pf_dtypes[d].itemsize;
}

/* the key of one value; `flip` (all ones or zero) complements it for descending order */
#define KEY_SINT(T, U, SIGN) ((U)(*(const T *)p) ^ (U)(SIGN))

static inline uint16_t key_f16(uint16_t h, int bf16)
{
    uint16_t mag = h & 0x7fffu;
    if (mag > (bf16 ? 0x7f80u : 0x7c00u)) {
        return 0xffffu;
    }
    if (mag == 0) {
        h = 0;
    }
    return (h & 0x8000u) ? (uint16_t)~h : (uint16_t)(h | 0x8000u);
}

static inline uint32_t key_f32(const char *p)
{
    uint32_t u;
    memcpy(&u, p, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return 0xffffffffu;
    }
    if ((u & 0x7fffffffu) == 0) {
        u = 0;
    }
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

static inline uint64_t key_f64(const char *p)
{
    uint64_t u;
    memcpy(&u, p, 8);
    const uint64_t sign = (uint64_t)1 << 63;
    if ((u & ~sign) > 0x7ff0000000000000ull) {
        return ~(uint64_t)0;
    }
    if ((u & ~sign) == 0) {
        u = 0;
    }
    return (u & sign) ? ~u : u | sign;
}

/* Keys of n values at p (byte stride st) into out, whose width is the dtype's. */
static void make_keys(const char *p, int64_t st, int64_t n, pf_dtype d, int desc, void *out)
{
    switch (d) {
    case PF_BOOL: {
        uint8_t *k = out, f = desc ? 0xff : 0;
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = (uint8_t)((*(const uint8_t *)p != 0) ^ f);
        }
        break;
    }
    case PF_UINT8:
    case PF_INT8: {
        uint8_t *k = out, f = (uint8_t)((desc ? 0xff : 0) ^ (d == PF_INT8 ? 0x80 : 0));
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = *(const uint8_t *)p ^ f;
        }
        break;
    }
    case PF_INT16: {
        uint16_t *k = out, f = (uint16_t)((desc ? 0xffff : 0) ^ 0x8000);
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = *(const uint16_t *)p ^ f;
        }
        break;
    }
    case PF_FLOAT16:
    case PF_BFLOAT16: {
        uint16_t *k = out, f = desc ? 0xffff : 0;
        int bf = d == PF_BFLOAT16;
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = key_f16(*(const uint16_t *)p, bf) ^ f;
        }
        break;
    }
    case PF_INT32: {
        uint32_t *k = out, f = (desc ? 0xffffffffu : 0) ^ 0x80000000u;
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = *(const uint32_t *)p ^ f;
        }
        break;
    }
    case PF_FLOAT32: {
        uint32_t *k = out, f = desc ? 0xffffffffu : 0;
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = key_f32(p) ^ f;
        }
        break;
    }
    case PF_INT64: {
        uint64_t *k = out, f = (desc ? ~(uint64_t)0 : 0) ^ ((uint64_t)1 << 63);
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = *(const uint64_t *)p ^ f;
        }
        break;
    }
    default: {
        uint64_t *k = out, f = desc ? ~(uint64_t)0 : 0;
        for (int64_t i = 0; i < n; i++, p += st) {
            k[i] = key_f64(p) ^ f;
        }
        break;
    }
    }
}

/* The key every NaN of a float dtype gets (ascending). */
static uint64_t nan_key(pf_dtype d)
{
    if (!pf_is_float(d)) {
        return 0;
    }
    return key_width(d) == 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * key_width(d))) - 1;
}

/* ------------------------------------------------- stable (key, index) sort */

#define INSERTION_MAX 16
#define MERGE_MAX 512

/*
 * sort_<K>(key, idx, n, tkey, tidx): sort the pairs by key, stably, in
 * place; tkey/tidx are scratch of n entries.
 */
#define DEFINE_SORT(K)                                                                    \
    static void insertion_##K(K *key, int64_t *idx, int64_t n)                            \
    {                                                                                     \
        for (int64_t i = 1; i < n; i++) {                                                 \
            K k = key[i];                                                                 \
            int64_t x = idx[i], j = i;                                                    \
            for (; j > 0 && key[j - 1] > k; j--) {                                        \
                key[j] = key[j - 1];                                                      \
                idx[j] = idx[j - 1];                                                      \
            }                                                                             \
            key[j] = k;                                                                   \
            idx[j] = x;                                                                   \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void merge_##K(K *key, int64_t *idx, int64_t n, K *tkey, int64_t *tidx)        \
    {                                                                                     \
        for (int64_t lo = 0; lo < n; lo += INSERTION_MAX) {                               \
            int64_t len = n - lo < INSERTION_MAX ? n - lo : INSERTION_MAX;                \
            insertion_##K(key + lo, idx + lo, len);                                       \
        }                                                                                 \
        K *sk = key, *dk = tkey;                                                          \
        int64_t *si = idx, *di = tidx;                                                    \
        for (int64_t w = INSERTION_MAX; w < n; w *= 2) {                                  \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                   \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n; \
                int64_t a = lo, b = mid, o = lo;                                          \
                while (a < mid && b < hi) {                                               \
                    /* the left run wins ties: stability */                               \
                    int right = sk[b] < sk[a];                                            \
                    dk[o] = right ? sk[b] : sk[a];                                        \
                    di[o++] = right ? si[b++] : si[a++];                                  \
                }                                                                         \
                for (; a < mid; a++, o++) {                                               \
                    dk[o] = sk[a];                                                        \
                    di[o] = si[a];                                                        \
                }                                                                         \
                for (; b < hi; b++, o++) {                                                \
                    dk[o] = sk[b];                                                        \
                    di[o] = si[b];                                                        \
                }                                                                         \
            }                                                                             \
            K *tk = sk; sk = dk; dk = tk;                                                 \
            int64_t *ti = si; si = di; di = ti;                                           \
        }                                                                                 \
        if (sk != key) {                                                                  \
            memcpy(key, sk, sizeof(K) * (size_t)n);                                       \
            memcpy(idx, si, sizeof(int64_t) * (size_t)n);                                 \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void radix_##K(K *key, int64_t *idx, int64_t n, K *tkey, int64_t *tidx)        \
    {                                                                                     \
        enum { NB = sizeof(K) };                                                          \
        int64_t (*hist)[256] = calloc(NB, sizeof(*hist));                                 \
        if (hist == NULL) {                                                               \
            merge_##K(key, idx, n, tkey, tidx);                                           \
            return;                                                                       \
        }                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                                 \
            K k = key[i];                                                                 \
            for (int b = 0; b < NB; b++) {                                                \
                hist[b][(k >> (8 * b)) & 0xff]++;                                         \
            }                                                                             \
        }                                                                                 \
        K *sk = key, *dk = tkey;                                                          \
        int64_t *si = idx, *di = tidx;                                                    \
        for (int b = 0; b < NB; b++) {                                                    \
            /* a byte that every key shares orders nothing: skip the pass */              \
            if (hist[b][(sk[0] >> (8 * b)) & 0xff] == n) {                                \
                continue;                                                                 \
            }                                                                             \
            int64_t pos[256], sum = 0;                                                    \
            for (int v = 0; v < 256; v++) {                                               \
                pos[v] = sum;                                                             \
                sum += hist[b][v];                                                        \
            }                                                                             \
            for (int64_t i = 0; i < n; i++) {                                             \
                int64_t o = pos[(sk[i] >> (8 * b)) & 0xff]++;                             \
                dk[o] = sk[i];                                                            \
                di[o] = si[i];                                                            \
            }                                                                             \
            K *tk = sk; sk = dk; dk = tk;                                                 \
            int64_t *ti = si; si = di; di = ti;                                           \
        }                                                                                 \
        free(hist);                                                                       \
        if (sk != key) {                                                                  \
            memcpy(key, sk, sizeof(K) * (size_t)n);                                       \
            memcpy(idx, si, sizeof(int64_t) * (size_t)n);                                 \
        }                                                                                 \
    }                                                                                     \
                                                                                          \
    static void sort_##K(K *key, int64_t *idx, int64_t n, K *tkey, int64_t *tidx)         \
    {                                                                                     \
        if (n <= INSERTION_MAX) {                                                         \
            insertion_##K(key, idx, n);                                                   \
        }                                                                                 \
        else if (n <= MERGE_MAX && sizeof(K) > 1) {                                       \
            merge_##K(key, idx, n, tkey, tidx);                                           \
        }                                                                                 \
        else {                                                                            \
            radix_##K(key, idx, n, tkey, tidx);                                           \
        }                                                                                 \
    }

DEFINE_SORT(uint8_t)
DEFINE_SORT(uint16_t)
DEFINE_SORT(uint32_t)
DEFINE_SORT(uint64_t)

/* Sort pairs whose keys have width w bytes. */
static void sort_pairs(void *key, int64_t *idx, int64_t n, void *tkey, int64_t *tidx, int w)
{
    switch (w) {
    case 1: sort_uint8_t(key, idx, n, tkey, tidx); break;
    case 2: sort_uint16_t(key, idx, n, tkey, tidx); break;
    case 4: sort_uint32_t(key, idx, n, tkey, tidx); break;
    default: sort_uint64_t(key, idx, n, tkey, tidx); break;
    }
}

static inline uint64_t key_at(const void *key, int64_t i, int w)
{
    switch (w) {
    case 1: return ((const uint8_t *)key)[i];
    case 2: return ((const uint16_t *)key)[i];
    case 4: return ((const uint32_t *)key)[i];
    default: return ((const uint64_t *)key)[i];
    }
}

/* ------------------------------------------------------------- top k */

/* (key, index) pairs ordered by key, then index: a total order */
static inline int pair_less(uint64_t ka, int64_t ia, uint64_t kb, int64_t ib)
{
    return ka < kb || (ka == kb && ia < ib);
}

static void sift_down(uint64_t *hk, int64_t *hi, int64_t k, int64_t i)
{
    for (;;) {
        int64_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && pair_less(hk[m], hi[m], hk[l], hi[l])) {
            m = l;
        }
        if (r < k && pair_less(hk[m], hi[m], hk[r], hi[r])) {
            m = r;
        }
        if (m == i) {
            return;
        }
        uint64_t tk = hk[i];
        int64_t ti = hi[i];
        hk[i] = hk[m];
        hi[i] = hi[m];
        hk[m] = tk;
        hi[m] = ti;
        i = m;
    }
}

/*
 * The k smallest (key, index) pairs of n keys (width w), in order, into
 * idx[0..k): a max-heap of the best k so far, then heap sort.
 */
static void select_k(const void *key, int w, int64_t n, int64_t k, uint64_t *hk, int64_t *hi)
{
    for (int64_t i = 0; i < k; i++) {
        hk[i] = key_at(key, i, w);
        hi[i] = i;
    }
    for (int64_t i = k / 2 - 1; i >= 0; i--) {
        sift_down(hk, hi, k, i);
    }
    /* later indices lose ties, so only a strictly smaller key gets in */
#define SCAN(K)                                                                          \
    for (int64_t i = k; i < n; i++) {                                                    \
        uint64_t kv = ((const K *)key)[i];                                               \
        if (kv < hk[0]) {                                                                \
            hk[0] = kv;                                                                  \
            hi[0] = i;                                                                   \
            sift_down(hk, hi, k, 0);                                                     \
        }                                                                                \
    }
    switch (w) {
    case 1: SCAN(uint8_t) break;
    case 2: SCAN(uint16_t) break;
    case 4: SCAN(uint32_t) break;
    default: SCAN(uint64_t) break;
    }
#undef SCAN
    for (int64_t end = k - 1; end > 0; end--) {
        uint64_t tk = hk[0];
        int64_t ti = hi[0];
        hk[0] = hk[end];
        hi[0] = hi[end];
        hk[end] = tk;
        hi[end] = ti;
        sift_down(hk, hi, end, 0);
    }
}

/* ------------------------------------------------------------ row driver */

typedef struct {
    const PfTensor *x;
    int axis;
    int desc;
    int64_t k;              /* outputs per row: n for sort, k for topk */
    int select;             /* topk: pick k with a heap rather than sorting the row */
    PfTensor *vals, *inds;  /* contiguous outputs (either may be NULL) */
} rows_job;

/* Byte offsets of row r's start in x and in the outputs. */
static void row_offsets(const rows_job *j, int64_t r, int64_t *xo, int64_t *vo, int64_t *io)
{
    const PfTensor *x = j->x;
    int isz = pf_dtypes[x->dtype].itemsize;
    *xo = *vo = *io = 0;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (d == j->axis) {
            continue;
        }
        int64_t c = r % x->shape[d];
        r /= x->shape[d];
        *xo += c * x->strides[d] * isz;
        if (j->vals) {
            *vo += c * j->vals->strides[d] * isz;
        }
        if (j->inds) {
            *io += c * j->inds->strides[d] * 8;
        }
    }
}

/* Copy one element of the given size. */
static inline void put_elem(char *d, const char *s, int isz)
{
    switch (isz) {
    case 1: *(uint8_t *)d = *(const uint8_t *)s; break;
    case 2: *(uint16_t *)d = *(const uint16_t *)s; break;
    case 4: *(uint32_t *)d = *(const uint32_t *)s; break;
    default: *(uint64_t *)d = *(const uint64_t *)s; break;
    }
}

/* Sort (or select from) rows [lo, hi) with scratch of the row length. */
static int run_rows(const rows_job *j, int64_t lo, int64_t hi)
{
    const PfTensor *x = j->x;
    int64_t n = x->ndim ? x->shape[j->axis] : 1;
    int w = key_width(x->dtype), isz = pf_dtypes[x->dtype].itemsize;
    int64_t xs = (x->ndim ? x->strides[j->axis] : 0) * isz;
    int64_t vs = j->vals && j->vals->ndim ? j->vals->strides[j->axis] * isz : 0;
    int64_t is = j->inds && j->inds->ndim ? j->inds->strides[j->axis] * 8 : 0;
    size_t cap = (size_t)(n > 0 ? n : 1);
    /* key regions rounded up to 8 bytes so that the int64 index arrays after them are aligned */
    size_t kbytes = (cap * (size_t)w + 7) & ~(size_t)7;
    char *buf = malloc(2 * kbytes + 2 * 8 * cap);
    if (buf == NULL) {
        return -1;
    }
    void *key = buf, *tkey = buf + kbytes;
    int64_t *idx = (int64_t *)(buf + 2 * kbytes), *tidx = idx + cap;
    for (int64_t r = lo; r < hi; r++) {
        int64_t xo, vo, io;
        row_offsets(j, r, &xo, &vo, &io);
        const char *row = pf_tensor_data(x) + xo;
        make_keys(row, xs, n, x->dtype, j->desc, key);
        if (j->select) {
            /* the heap's keys are widened to 64 bits: tkey and tidx hold them */
            select_k(key, w, n, j->k, (uint64_t *)tidx, idx);
        }
        else {
            for (int64_t i = 0; i < n; i++) {
                idx[i] = i;
            }
            sort_pairs(key, idx, n, tkey, tidx, w);
        }
        if (j->vals) {
            char *vp = pf_tensor_data(j->vals) + vo;
            for (int64_t i = 0; i < j->k; i++) {
                put_elem(vp + i * vs, row + idx[i] * xs, isz);
            }
        }
        if (j->inds) {
            char *ip = pf_tensor_data(j->inds) + io;
            for (int64_t i = 0; i < j->k; i++) {
                *(int64_t *)(ip + i * is) = idx[i];
            }
        }
    }
    free(buf);
    return 0;
}

/* The rows of j through the CUDA library (0, or -1 raised). */
static int run_rows_cuda(const pf_cu_route *r, const rows_job *j, const char *op)
{
    const PfTensor *x = j->x;
    PfCudaSort g;
    memset(&g, 0, sizeof(g));
    g.ndim = x->ndim;
    g.axis = j->axis;
    for (int d = 0; d < x->ndim; d++) {
        g.shape[d] = x->shape[d];
        g.strides[d] = x->strides[d];
        g.vals_strides[d] = j->vals ? j->vals->strides[d] : 0;
        g.inds_strides[d] = j->inds ? j->inds->strides[d] : 0;
    }
    g.dtype = x->dtype;
    g.descending = j->desc;
    g.k = j->k;
    int status = r->lib->sort_rows(r->device, j->vals ? pf_tensor_data(j->vals) : NULL,
                                   j->inds ? (int64_t *)pf_tensor_data(j->inds) : NULL,
                                   pf_tensor_data(x), &g);
    if (status != 0) {
        return pf_cu_raise(r, op, status);
    }
    return 0;
}

static int run_all_rows(const rows_job *j, const char *op)
{
    const PfTensor *x = j->x;
    int64_t n = x->ndim ? x->shape[j->axis] : 1;
    int64_t total = pf_numel(x->shape, x->ndim);
    int64_t nrows = n > 0 ? total / n : 0;
    if (nrows == 0 || j->k == 0) {
        return 0;
    }
    pf_cu_route r;
    int routed = pf_cu_route_for(x, op, &r);
    if (routed != 0) {
        return routed < 0 ? -1 : run_rows_cuda(&r, j, op);
    }
    int nth = pf_get_num_threads();
    if (total < PF_GRAIN / 2 || nrows < 2 || nth <= 1) {
        nth = 1;
    }
    if (nth > nrows) {
        nth = (int)nrows;
    }
    int failed = 0;
    #pragma omp parallel for num_threads(nth) schedule(static) if (nth > 1) reduction(|:failed)
    for (int t = 0; t < nth; t++) {
        failed |= run_rows(j, nrows * t / nth, nrows * (t + 1) / nth) < 0;
    }
    if (failed) {
        PyErr_Format(PyExc_MemoryError, "%s: out of memory for the sort's scratch buffers "
                     "(rows of %lld elements)", op, (long long)n);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ bindings */

/*
 * The sort arguments shared by sort and argsort: axis (default -1, None
 * flattens), kind (any NumPy kind: the sort is always stable), stable,
 * descending.  Sets *x to the tensor to sort (flattened for None).
 */
static int sort_args(PyObject *const *v, const char *op, PfTensor **x, int *axis, int *desc)
{
    if (v[2] != NULL && v[2] != Py_None) {
        const char *s = PyUnicode_Check(v[2]) ? PyUnicode_AsUTF8(v[2]) : NULL;
        if (s == NULL || (strcmp(s, "quicksort") && strcmp(s, "mergesort") &&
                          strcmp(s, "heapsort") && strcmp(s, "stable"))) {
            PyErr_Clear();
            return PF_ERRI(PyExc_ValueError, "%s: kind must be 'quicksort', 'mergesort', "
                           "'heapsort' or 'stable' (all sort stably here); got %R", op, v[2]);
        }
    }
    int stable;
    if (v[3] != NULL && v[3] != Py_None && pf_parse_bool(v[3], op, "stable", 1, &stable) < 0) {
        return -1;
    }
    if (pf_parse_bool(v[4], op, "descending", 0, desc) < 0) {
        return -1;
    }
    *x = pf_as_tensor_arg(v[0], op);
    if (*x == NULL) {
        return -1;
    }
    if (v[1] == Py_None) {
        Py_SETREF(*x, pf_tensor_flat(*x, op));
        *axis = 0;
        return *x == NULL ? -1 : 0;
    }
    int64_t a = -1;
    if (v[1] != NULL && pf_int_arg(v[1], op, "axis", &a) < 0) {
        Py_CLEAR(*x);
        return -1;
    }
    Py_ssize_t ax = (Py_ssize_t)a;
    if (pf_normalize_axis(&ax, (*x)->ndim, op) < 0) {
        Py_CLEAR(*x);
        return -1;
    }
    *axis = (int)ax;
    return 0;
}

static PyObject *sort_common(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                             const char *op, int want_values)
{
    static const char *const names[] = {"a", "axis", "kind", "stable", "descending", NULL};
    PyObject *v[5];
    PfTensor *x;
    int axis, desc;
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0 ||
        sort_args(v, op, &x, &axis, &desc) < 0) {
        return NULL;
    }
    pf_device dev = x->storage->device;
    PfTensor *out = pf_tensor_empty(x->ndim, x->shape, want_values ? x->dtype : PF_INT64, dev,
                                    op);
    rows_job j = {x, axis, desc, x->shape[axis], 0, want_values ? out : NULL,
                  want_values ? NULL : out};
    if (out != NULL && run_all_rows(&j, op) < 0) {
        Py_CLEAR(out);
    }
    Py_DECREF(x);
    return (PyObject *)out;
}

/* sort(a, axis=-1, kind=None, stable=None, descending=False): the sorted values. */
PyObject *pf_op_sort(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    return sort_common(args, nargs, kwnames, "sort", 1);
}

/* argsort(a, axis=-1, kind=None, stable=None, descending=False): int64 indices. */
PyObject *pf_op_argsort(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames)
{
    return sort_common(args, nargs, kwnames, "argsort", 0);
}

/*
 * topk(x, k, axis=-1, largest=True, sorted=True) -> (values, indices), as
 * PyTorch; equal values keep the lower index first, NaN counts as the
 * largest value.  The result is always sorted (sorted=False allows any
 * order, so sorted order is one).
 */
PyObject *pf_op_topk(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                     PyObject *kwnames)
{
    const char *op = "topk";
    static const char *const names[] = {"x", "k", "axis", "largest", "sorted", NULL};
    PyObject *v[5];
    int largest, sorted_;
    int64_t k, a = -1;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        pf_int_arg(v[1], op, "k", &k) < 0 ||
        (v[2] != NULL && pf_int_arg(v[2], op, "axis", &a) < 0) ||
        pf_parse_bool(v[3], op, "largest", 1, &largest) < 0 ||
        pf_parse_bool(v[4], op, "sorted", 1, &sorted_) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor_arg(v[0], op), *vals = NULL, *inds = NULL;
    PyObject *r = NULL;
    Py_ssize_t ax = (Py_ssize_t)a;
    if (x == NULL || pf_normalize_axis(&ax, x->ndim, op) < 0) {
        goto done;
    }
    int64_t n = x->shape[ax];
    if (k < 0 || k > n) {
        char b[PF_SHAPE_STRLEN];
        PyErr_Format(PyExc_ValueError, "%s: k=%lld is out of range for axis %d of size %lld "
                     "(tensor of shape %s); k must be between 0 and %lld", op, (long long)k,
                     (int)ax, (long long)n, pf_shape_str(x->shape, x->ndim, b, sizeof(b)),
                     (long long)n);
        goto done;
    }
    int64_t shape[PF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    shape[ax] = k;
    pf_device dev = x->storage->device;
    vals = pf_tensor_empty(x->ndim, shape, x->dtype, dev, op);
    inds = vals ? pf_tensor_empty(x->ndim, shape, PF_INT64, dev, op) : NULL;
    if (inds == NULL) {
        goto done;
    }
    /* a heap pays when k is small next to the row; otherwise sort the whole row */
    rows_job j = {x, (int)ax, largest, k, k > 0 && k * 8 <= n, vals, inds};
    if (run_all_rows(&j, op) < 0) {
        goto done;
    }
    PyObject *items[2] = {Py_NewRef(vals), Py_NewRef(inds)};
    r = PyTuple_Pack(2, items[0], items[1]);
    Py_DECREF(items[0]);
    Py_DECREF(items[1]);
done:
    Py_XDECREF(x);
    Py_XDECREF(vals);
    Py_XDECREF(inds);
    return r;
}

/*
 * unique on a CUDA device, given the argsort perm of the flat x: the group
 * starts are the nonzero positions of a marks array (a compaction, one
 * read back of their count), then one pass fills the per-group outputs
 * and the inverse.  The requested outputs are new tensors.
 */
static int unique_cuda(const pf_cu_route *r, PfTensor *flat, PfTensor *perm, PfTensor *x,
                       int nan_alone, int ret_index, int ret_inverse, int ret_counts,
                       PfTensor **vals, PfTensor **first, PfTensor **inverse,
                       PfTensor **counts, const char *op)
{
    int64_t n = flat->shape[0], one = 1;
    pf_device dev = flat->storage->device;
    PfCudaUnique g = {x->dtype, nan_alone, n, flat->strides[0], 0};
    PfTensor *marks = pf_tensor_empty(1, &n, PF_BOOL, dev, op), *starts = NULL;
    int rc = -1, status = 0;
    if (marks == NULL) {
        return -1;
    }
    if (n > 0 && (status = r->lib->unique_marks(r->device, (uint8_t *)pf_tensor_data(marks),
                                                pf_tensor_data(flat),
                                                (const int64_t *)pf_tensor_data(perm), &g)) != 0) {
        pf_cu_raise(r, op, status);
        goto done;
    }
    if ((starts = pf_cu_nonzero(r, marks, &one, 0, op)) == NULL) {
        goto done;
    }
    g.groups = starts->shape[0];
    if ((*vals = pf_tensor_empty(1, &g.groups, x->dtype, dev, op)) == NULL ||
        (ret_index && (*first = pf_tensor_empty(1, &g.groups, PF_INT64, dev, op)) == NULL) ||
        (ret_counts && (*counts = pf_tensor_empty(1, &g.groups, PF_INT64, dev, op)) == NULL) ||
        (ret_inverse &&
         (*inverse = pf_tensor_empty(x->ndim, x->shape, PF_INT64, dev, op)) == NULL)) {
        goto done;
    }
    status = r->lib->unique_groups(
        r->device, pf_tensor_data(*vals), *first ? (int64_t *)pf_tensor_data(*first) : NULL,
        *inverse ? (int64_t *)pf_tensor_data(*inverse) : NULL,
        *counts ? (int64_t *)pf_tensor_data(*counts) : NULL, pf_tensor_data(flat),
        (const int64_t *)pf_tensor_data(perm), (const int64_t *)pf_tensor_data(starts), &g);
    if (status != 0) {
        pf_cu_raise(r, op, status);
        goto done;
    }
    rc = 0;
done:
    Py_DECREF(marks);
    Py_XDECREF(starts);
    return rc;
}

/*
 * unique(a, return_index=False, return_inverse=False, return_counts=False,
 * equal_nan=True, sorted=True): NumPy's, for the flattened input.  Returns
 * the sorted unique values, or a tuple (values, [index], [inverse],
 * [counts]) with the requested extras in that order.  index: first
 * occurrence; inverse: a's shape, values[inverse] == a; counts: how often
 * each value occurs.  -0.0 and 0.0 are one value, and so are all NaNs
 * unless equal_nan=False.  PyTorch's return_inverse / return_counts
 * keywords are the same.
 */
PyObject *pf_op_unique(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    const char *op = "unique";
    static const char *const names[] = {"a", "return_index", "return_inverse", "return_counts",
                                        "equal_nan", "sorted", NULL};
    PyObject *v[6];
    int ret_index, ret_inverse, ret_counts, equal_nan, sorted_;
    if (pf_parse_args(op, args, nargs, kwnames, names, 1, v) < 0 ||
        pf_parse_bool(v[1], op, "return_index", 0, &ret_index) < 0 ||
        pf_parse_bool(v[2], op, "return_inverse", 0, &ret_inverse) < 0 ||
        pf_parse_bool(v[3], op, "return_counts", 0, &ret_counts) < 0 ||
        pf_parse_bool(v[4], op, "equal_nan", 1, &equal_nan) < 0 ||
        pf_parse_bool(v[5], op, "sorted", 1, &sorted_) < 0) {
        return NULL;
    }
    PfTensor *x = pf_as_tensor_arg(v[0], op), *flat = NULL, *inds = NULL;
    PfTensor *vals = NULL, *first = NULL, *inverse = NULL, *counts = NULL;
    PyObject *r = NULL;
    if (x == NULL || (flat = pf_tensor_flat(x, op)) == NULL) {
        goto done;
    }
    int64_t n = flat->shape[0];
    pf_device dev = x->storage->device;
    /* the sorted order: an argsort of the flat input */
    inds = pf_tensor_empty(1, &n, PF_INT64, dev, op);
    if (inds == NULL) {
        goto done;
    }
    rows_job j = {flat, 0, 0, n, 0, NULL, inds};
    if (run_all_rows(&j, op) < 0) {
        goto done;
    }
    pf_cu_route cr;
    int routed = pf_cu_route_for(flat, op, &cr);
    if (routed < 0 ||
        (routed && unique_cuda(&cr, flat, inds, x, !equal_nan && pf_is_float(x->dtype),
                               ret_index, ret_inverse, ret_counts, &vals, &first, &inverse,
                               &counts, op) < 0)) {
        goto done;
    }
    if (routed) {
        goto pack;
    }
    const int64_t *perm = (const int64_t *)pf_tensor_data(inds);
    int w = key_width(x->dtype), isz = pf_dtypes[x->dtype].itemsize;
    int64_t xs = flat->strides[0] * isz;
    const char *data = pf_tensor_data(flat);
    /* group starts: where the key changes (or a NaN that is its own group) */
    uint64_t nank = nan_key(x->dtype);
    int nan_alone = !equal_nan && pf_is_float(x->dtype);
    int64_t ngroups = 0, *start = PyMem_Malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (start == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    uint64_t prev = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t k;
        make_keys(data + perm[i] * xs, 0, 1, x->dtype, 0, &k);
        k = key_at(&k, 0, w);
        if (i == 0 || k != prev || (nan_alone && k == nank)) {
            start[ngroups++] = i;
        }
        prev = k;
    }
    start[ngroups] = n;
    vals = pf_tensor_empty(1, &ngroups, x->dtype, dev, op);
    if (vals == NULL) {
        PyMem_Free(start);
        goto done;
    }
    for (int64_t g = 0; g < ngroups; g++) {
        put_elem(pf_tensor_data(vals) + g * isz, data + perm[start[g]] * xs, isz);
    }
    if (ret_index && (first = pf_tensor_empty(1, &ngroups, PF_INT64, dev, op)) != NULL) {
        for (int64_t g = 0; g < ngroups; g++) {
            ((int64_t *)pf_tensor_data(first))[g] = perm[start[g]];
        }
    }
    if (ret_inverse && (inverse = pf_tensor_empty(x->ndim, x->shape, PF_INT64, dev, op)) != NULL) {
        int64_t *inv = (int64_t *)pf_tensor_data(inverse);
        for (int64_t g = 0; g < ngroups; g++) {
            for (int64_t i = start[g]; i < start[g + 1]; i++) {
                inv[perm[i]] = g;
            }
        }
    }
    if (ret_counts && (counts = pf_tensor_empty(1, &ngroups, PF_INT64, dev, op)) != NULL) {
        for (int64_t g = 0; g < ngroups; g++) {
            ((int64_t *)pf_tensor_data(counts))[g] = start[g + 1] - start[g];
        }
    }
    PyMem_Free(start);
pack:
    if ((ret_index && first == NULL) || (ret_inverse && inverse == NULL) ||
        (ret_counts && counts == NULL)) {
        goto done;
    }
    if (!ret_index && !ret_inverse && !ret_counts) {
        r = Py_NewRef(vals);
        goto done;
    }
    PyObject *items[4];
    int nout = 0;
    items[nout++] = (PyObject *)vals;
    if (ret_index) {
        items[nout++] = (PyObject *)first;
    }
    if (ret_inverse) {
        items[nout++] = (PyObject *)inverse;
    }
    if (ret_counts) {
        items[nout++] = (PyObject *)counts;
    }
    r = PyTuple_New(nout);
    for (int i = 0; r != NULL && i < nout; i++) {
        PyTuple_SET_ITEM(r, i, Py_NewRef(items[i]));
    }
done:
    Py_XDECREF(x);
    Py_XDECREF(flat);
    Py_XDECREF(inds);
    Py_XDECREF(vals);
    Py_XDECREF(first);
    Py_XDECREF(inverse);
    Py_XDECREF(counts);
    return r;
}

/* ------------------------------------------------------------ searchsorted */

typedef struct {
    const char *a;          /* keys of the sorted rows, width w */
    int w;
    int64_t n;              /* row length */
    int right;
} search_ctx;

/* First position in the row whose key is > key (right) or >= key (left). */
static int64_t bisect(const char *row, int w, int64_t n, uint64_t key, int right)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        uint64_t k = key_at(row, mid, w);
        if (right ? k <= key : k < key) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

/*
 * searchsorted(a, v, side='left', sorter=None, right=False): NumPy for a
 * 1-D a (any v); PyTorch's batched form for an N-D a, whose leading dims v
 * shares.  Compared in the promoted dtype, NaN last as sort puts it.
 */
PyObject *pf_op_searchsorted(PyObject *Py_UNUSED(m), PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    const char *op = "searchsorted";
    static const char *const names[] = {"a", "v", "side", "sorter", "right", NULL};
    PyObject *v[5];
    int right = 0;
    if (pf_parse_args(op, args, nargs, kwnames, names, 2, v) < 0 ||
        pf_parse_bool(v[4], op, "right", 0, &right) < 0) {
        return NULL;
    }
    if (v[2] != NULL && v[2] != Py_None) {
        const char *s = PyUnicode_Check(v[2]) ? PyUnicode_AsUTF8(v[2]) : NULL;
        if (s == NULL || (strcmp(s, "left") && strcmp(s, "right"))) {
            PyErr_Clear();
            return PF_ERR(PyExc_ValueError, "%s: side must be 'left' or 'right'; got %R", op,
                          v[2]);
        }
        if (v[4] != NULL && right != (strcmp(s, "right") == 0)) {
            return PF_ERR(PyExc_ValueError, "%s: side=%R and right=%R disagree; give one of "
                          "them", op, v[2], v[4]);
        }
        right = strcmp(s, "right") == 0;
    }
    PfTensor *a = pf_as_tensor_arg(v[0], op), *x = NULL, *ac = NULL, *xc = NULL, *out = NULL;
    char *akeys = NULL, *xkeys = NULL;
    PyObject *r = NULL;
    char sa[PF_SHAPE_STRLEN], sb[PF_SHAPE_STRLEN];
    if (a == NULL || (x = pf_as_tensor_arg(v[1], op)) == NULL) {
        goto done;
    }
    if (a->ndim == 0) {
        PyErr_Format(PyExc_ValueError, "%s: a must be at least 1-D (the sorted sequence); got a "
                     "0-d tensor", op);
        goto done;
    }
    if (v[3] != NULL && v[3] != Py_None) {
        if (a->ndim != 1) {
            PyErr_Format(PyExc_ValueError, "%s: sorter needs a 1-D a; got shape %s", op,
                         pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)));
            goto done;
        }
        PfTensor *sorter = pf_as_tensor_arg(v[3], op);
        if (sorter == NULL) {
            goto done;
        }
        if (!pf_is_int(sorter->dtype) || sorter->ndim != 1 || sorter->shape[0] != a->shape[0]) {
            PyErr_Format(PyExc_ValueError, "%s: sorter must be a 1-D integer tensor as long as "
                         "a (%lld); got dtype %s, shape %s", op, (long long)a->shape[0],
                         pf_dtypes[sorter->dtype].name,
                         pf_shape_str(sorter->shape, sorter->ndim, sb, sizeof(sb)));
            Py_DECREF(sorter);
            goto done;
        }
        PfTensor *sorted_a = pf_index_take(a, 0, sorter, PF_IDX_RAISE, op);
        Py_DECREF(sorter);
        if (sorted_a == NULL) {
            goto done;
        }
        Py_SETREF(a, sorted_a);
    }
    int batched = a->ndim > 1;
    if (batched && (x->ndim != a->ndim ||
                    memcmp(x->shape, a->shape, sizeof(int64_t) * (size_t)(a->ndim - 1)) != 0)) {
        PyErr_Format(PyExc_ValueError, "%s: for an N-D a, v must have the same leading "
                     "dimensions; got a of shape %s and v of shape %s", op,
                     pf_shape_str(a->shape, a->ndim, sa, sizeof(sa)),
                     pf_shape_str(x->shape, x->ndim, sb, sizeof(sb)));
        goto done;
    }
    pf_dtype dt = pf_promote(a->dtype, x->dtype);
    if ((ac = pf_tensor_copy_as(a, dt, op)) == NULL ||
        (xc = pf_tensor_copy_as(x, dt, op)) == NULL ||
        (out = pf_tensor_empty(x->ndim, x->shape, PF_INT64, x->storage->device, op)) == NULL) {
        goto done;
    }
    int w = key_width(dt);
    int64_t na = pf_numel(ac->shape, ac->ndim), nx = pf_numel(xc->shape, xc->ndim);
    int64_t n = ac->shape[ac->ndim - 1];
    int64_t m = batched ? xc->shape[xc->ndim - 1] : nx;
    pf_cu_route cr;
    int routed = pf_cu_route_for(ac, op, &cr);
    if (routed < 0) {
        goto done;
    }
    if (routed) {
        PfCudaSearch g = {dt, right, n, m, nx};
        int status = cr.lib->search_sorted(cr.device, (int64_t *)pf_tensor_data(out),
                                           pf_tensor_data(ac), pf_tensor_data(xc), &g);
        if (status == 0) {
            r = Py_NewRef(out);
        }
        else {
            pf_cu_raise(&cr, op, status);
        }
        goto done;
    }
    akeys = PyMem_Malloc((size_t)(na > 0 ? na : 1) * (size_t)w);
    xkeys = PyMem_Malloc((size_t)(nx > 0 ? nx : 1) * (size_t)w);
    if (akeys == NULL || xkeys == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    int isz = pf_dtypes[dt].itemsize;
    make_keys(pf_tensor_data(ac), isz, na, dt, 0, akeys);
    make_keys(pf_tensor_data(xc), isz, nx, dt, 0, xkeys);
    int64_t *res = (int64_t *)pf_tensor_data(out);
    int nth = nx * 16 >= PF_GRAIN ? pf_get_num_threads() : 1;
    #pragma omp parallel for num_threads(nth) if (nth > 1) schedule(static)
    for (int64_t i = 0; i < nx; i++) {
        int64_t row = m > 0 ? i / m : 0;
        res[i] = bisect(akeys + (size_t)(row * n) * (size_t)w, w, n, key_at(xkeys, i, w), right);
    }
    r = Py_NewRef(out);
done:
    PyMem_Free(akeys);
    PyMem_Free(xkeys);
    Py_XDECREF(a);
    Py_XDECREF(x);
    Py_XDECREF(ac);
    Py_XDECREF(xc);
    Py_XDECREF(out);
    return r;
}
