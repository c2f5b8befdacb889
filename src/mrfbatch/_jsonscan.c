/* mrfbatch._jsonscan: validate one JSON value and find where it ends, in one pass.
 *
 * Written in C for speed: apart from inflating gzip, this is the only code of the fast engine
 * that looks at every byte of an in-network file (see mrfbatch/engines/fast.py).
 *
 * scan_value(buf, pos, eof, key, partial=None) validates exactly one JSON value (RFC 8259)
 * starting at buf[pos] (blanks before it are skipped) and returns
 *
 *   (end, spans, flags)  the value ends at buf[end - 1]. When the value is an object and `key`
 *                        is given, `spans` holds the (start, end) of the value of every member
 *                        at depth 1 whose key is `key` once its escapes are decoded, in order
 *                        (duplicate keys exist; a dict decode keeps the last). `flags`:
 *                        KEY_ESCAPED when some depth-1 key has an escape,
 *                        LONE_SURROGATE when a `\uD800`-`\uDBFF` escape is not followed by a
 *                        `\uDC00`-`\uDFFF` one (the reference decodes it as "?").
 *   a Partial, or None   the value runs past the end of buf: more data is needed. A number
 *                        that touches the end counts as cut unless `eof` is true. Called again
 *                        with more bytes after the old ones (the value's start may have moved:
 *                        `pos` says where it is now) and the Partial, the scan goes on from the
 *                        end of the last complete value it met instead of from the start.
 *
 * and raises ScanError((offset, reason)) at the first byte that cannot be JSON.
 *
 * With skim=d (both functions take it last, 0 by default), a container that brings the depth
 * to d is only checked for its structure (_jsonscan_skim.c says what that checks) and not
 * looked into: d=2 for an in_network item whose members are read but whose arrays may be
 * skipped, d=1 for a value skipped whole. No span or flag is found inside it.
 *
 * scan_elements(buf, pos, eof, key) does the same for the elements of an array, many per call
 * (the fast engine's provider_references and in_network arrays): from buf[pos], just after the
 * array's `[` or a `,`, it scans element after element, reading the `,` between them, until
 * the array's `]`, an element cut by the end of buf, a byte that is not JSON, or MAX_ELEMENTS
 * elements. It returns (pos, elements, state, partial): each element as (start, end, key_start,
 * key_end, flags), with the last span of `key` (-1, -1 when none); where it stopped; whether
 * that is at an element (AT_ELEMENT: cut, not JSON, or enough found; partial is the cut
 * element's Partial, for scan_value to go on with), after one (AFTER_ELEMENT: the caller reads
 * or rejects what follows), or after the `]` (CLOSED). An element that is not JSON is
 * reported, as ScanError, by the call that starts at it.
 *
 * What is accepted is what yajl (ijson's yajl2_c backend, the reference engine) accepts for a
 * single value: blanks are space, tab, CR and LF only; no control characters in strings; no
 * comments, NaN, leading zeros, `1.`, `.5` or `+1`. A low surrogate escape without a high one
 * before it is rejected: yajl passes it on as UTF-8 that ijson cannot decode. Bytes >= 0x80 are
 * taken as they are inside strings (the caller checks UTF-8) and rejected outside them.
 * Containers may nest MAX_DEPTH levels deep.
 */

#include "_jsonscan.h"
#include <structmember.h> /* T_PYSSIZET, READONLY: also in 3.11 */

static PyObject *ScanError;

/* What a scan that ran out of data has found so far, to go on from there with more data. The
 * offsets are relative to the start of the value, which stays put while buf grows. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t resume_at, wanted, scanned;
    int depth, flags, skimming, skim_carry;
    Py_ssize_t nspans;
    Span *spans;
    unsigned char *in_object;
} Partial;

static void
partial_dealloc(Partial *self)
{
    PyMem_Free(self->spans);
    PyMem_Free(self->in_object);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef partial_members[] = {
    {"resume_at", T_PYSSIZET, offsetof(Partial, resume_at), READONLY,
     "offset from the value's start where the scan goes on (what lies before is scanned)"},
    {"flags", T_INT, offsetof(Partial, flags), READONLY, "the flags found so far"},
    {NULL},
};

static PyObject *
partial_droppable(Partial *self, void *closure)
{
    (void)closure;
    Py_ssize_t n = self->resume_at;
    if (self->wanted >= 0 && self->wanted < n) {
        n = self->wanted;
    }
    return PyLong_FromSsize_t(n);
}

static PyObject *
partial_spans(Partial *self, void *closure)
{
    (void)closure;
    PyObject *spans = PyTuple_New(self->nspans);
    for (Py_ssize_t i = 0; spans != NULL && i < self->nspans; i++) {
        PyObject *span = Py_BuildValue("(nn)", self->spans[i].start, self->spans[i].end);
        if (span == NULL) {
            Py_CLEAR(spans);
            break;
        }
        PyTuple_SET_ITEM(spans, i, span);
    }
    return spans;
}

static PyGetSetDef partial_getset[] = {
    {"spans", (getter)partial_spans, NULL,
     "the spans of `key`'s values found so far, from the value's start", NULL},
    {"droppable", (getter)partial_droppable, NULL,
     "how many bytes from the value's start forget() may drop", NULL},
    {NULL},
};

static PyTypeObject PartialType;

/* Partial.forget(n): the same scan, as if the value started n bytes later, so that the caller
 * can drop the n bytes it has scanned: spans that end by then are forgotten. n may not pass
 * the resume point, nor the start of a wanted value still being scanned. */
static PyObject *
partial_forget(Partial *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 0 || n > self->resume_at || (self->wanted >= 0 && n > self->wanted)) {
        PyErr_Format(PyExc_ValueError,
                     "Partial.forget(%zd): only bytes before the resume point can be dropped", n);
        return NULL;
    }
    Partial *other = PyObject_New(Partial, &PartialType);
    if (other == NULL) {
        return NULL;
    }
    other->resume_at = self->resume_at - n;
    other->wanted = self->wanted < 0 ? -1 : self->wanted - n;
    other->scanned = self->scanned - n;
    other->depth = self->depth;
    other->flags = self->flags;
    other->skimming = self->skimming;
    other->skim_carry = self->skim_carry;
    other->nspans = 0;
    other->spans = PyMem_Malloc(sizeof(Span) * (size_t)(self->nspans ? self->nspans : 1));
    other->in_object = PyMem_Malloc((size_t)(self->depth ? self->depth : 1));
    if (other->spans == NULL || other->in_object == NULL) {
        Py_DECREF(other);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < self->nspans; i++) {
        if (self->spans[i].end <= n) {
            continue;
        }
        if (self->spans[i].start < n) {
            Py_DECREF(other);
            PyErr_Format(PyExc_ValueError, "Partial.forget(%zd): a span would be cut", n);
            return NULL;
        }
        other->spans[other->nspans].start = self->spans[i].start - n;
        other->spans[other->nspans].end = self->spans[i].end - n;
        other->nspans++;
    }
    memcpy(other->in_object, self->in_object, (size_t)self->depth);
    return (PyObject *)other;
}

static PyMethodDef partial_methods[] = {
    {"forget", (PyCFunction)partial_forget, METH_O,
     "forget(n, /)\n--\n\nThe same scan as if the value started n bytes later."},
    {NULL},
};

static PyTypeObject PartialType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mrfbatch._jsonscan.Partial",
    .tp_basicsize = sizeof(Partial),
    .tp_dealloc = (destructor)partial_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Where scan_value stopped for want of data: pass it back with more.",
    .tp_members = partial_members,
    .tp_getset = partial_getset,
    .tp_methods = partial_methods,
};

/* A Partial for the state of `s` (its value starts at pos); None when nothing is worth
 * keeping (the scan stopped before the end of the value's first member). */
static PyObject *
partial_new(const Scan *s, Py_ssize_t pos)
{
    if (s->resume_at < 0) {
        return Py_NewRef(Py_None);
    }
    Partial *self = PyObject_New(Partial, &PartialType);
    if (self == NULL) {
        return NULL;
    }
    self->resume_at = s->resume_at - pos;
    self->wanted = s->wanted < 0 ? -1 : s->wanted - pos;
    self->scanned = s->n - pos;
    self->depth = s->depth;
    self->flags = s->flags;
    self->skimming = s->skimming;
    self->skim_carry = s->skim_carry;
    self->nspans = s->nspans;
    self->spans = PyMem_Malloc(sizeof(Span) * (size_t)(s->nspans ? s->nspans : 1));
    self->in_object = PyMem_Malloc((size_t)s->depth);
    if (self->spans == NULL || self->in_object == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < s->nspans; i++) {
        self->spans[i].start = s->spans[i].start - pos;
        self->spans[i].end = s->spans[i].end - pos;
    }
    memcpy(self->in_object, s->in_object, (size_t)s->depth);
    return (PyObject *)self;
}


/* A Scan of the bytes of `view`, ready to start; NULL (MemoryError set) when out of memory. */
static Scan *
scan_new(const Py_buffer *view)
{
    Scan *s = PyMem_Malloc(sizeof(Scan));
    if (s == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    s->b = view->buf;
    s->n = view->len;
    s->spans = s->inline_spans;
    s->skim_depth = 0;
    scan_reset(s);
    return s;
}

static void
scan_free(Scan *s)
{
    if (s->spans != s->inline_spans) {
        free(s->spans);
    }
    PyMem_Free(s);
}

/* Raise ScanError((offset, reason)) for a scan that ended SCAN_INVALID. */
static void
set_scan_error(const Scan *s)
{
    PyObject *error = Py_BuildValue("(ns)", s->error_at, s->error);
    if (error != NULL) {
        PyErr_SetObject(ScanError, error);
        Py_DECREF(error);
    }
}

/* The arguments scan_value and scan_elements share: (buf, pos, eof, key). On success `view`
 * holds buf, to be released by the caller, and pos is inside it. */
static int
scan_args(const char *name, PyObject *const *args, Py_buffer *view, Py_ssize_t *pos, int *eof,
          const char **key, Py_ssize_t *key_len)
{
    *pos = PyLong_AsSsize_t(args[1]);
    if (*pos == -1 && PyErr_Occurred()) {
        return -1;
    }
    *eof = PyObject_IsTrue(args[2]);
    if (*eof < 0) {
        return -1;
    }
    *key = NULL;
    *key_len = 0;
    if (args[3] != Py_None) {
        if (!PyBytes_Check(args[3])) {
            PyErr_Format(PyExc_TypeError, "%s(): key must be bytes or None", name);
            return -1;
        }
        *key = PyBytes_AS_STRING(args[3]);
        *key_len = PyBytes_GET_SIZE(args[3]);
    }
    if (PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (*pos < 0 || *pos > view->len) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s(): pos %zd is outside the buffer", name, *pos);
        return -1;
    }
    return 0;
}

/* The optional `skim` argument: the depth from which containers are only checked structurally
 * (0: none). */
static int
skim_arg(const char *name, PyObject *arg, int *depth)
{
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (value < 0 || value > MAX_DEPTH) {
        PyErr_Format(PyExc_ValueError, "%s(): skim must be 0 to %d", name, MAX_DEPTH);
        return -1;
    }
    *depth = (int)value;
    return 0;
}

static PyObject *
utf8_check_py(PyObject *module, PyObject *arg)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t end = 0;
    int status;
    if (view.len > RELEASE_GIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        status = utf8_check(view.buf, view.len, &end);
        Py_END_ALLOW_THREADS
    }
    else {
        status = utf8_check(view.buf, view.len, &end);
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(in)", status, end);
}

static PyObject *
skim_implementations(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int count;
    const char *const *names = skim_impls(&count);
    PyObject *result = PyTuple_New(count);
    for (int i = 0; result != NULL && i < count; i++) {
        PyObject *name = PyUnicode_FromString(names[i]);
        if (name == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, i, name);
    }
    return result;
}

static PyObject *
use_skim(PyObject *module, PyObject *arg)
{
    (void)module;
    const char *name = PyUnicode_AsUTF8(arg);
    if (name == NULL) {
        return NULL;
    }
    PyObject *previous = PyUnicode_FromString(skim_impl());
    if (previous != NULL && skim_use(name) < 0) {
        Py_CLEAR(previous);
        PyErr_Format(PyExc_ValueError, "use_skim(): no implementation %R on this CPU", arg);
    }
    return previous;
}

static PyObject *
scan_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 4 || nargs > 6) {
        PyErr_Format(PyExc_TypeError, "scan_value() takes 4 to 6 arguments (%zd given)", nargs);
        return NULL;
    }
    int skim_depth = 0;
    if (nargs == 6 && skim_arg("scan_value", args[5], &skim_depth) < 0) {
        return NULL;
    }
    const Partial *partial = NULL;
    if (nargs >= 5 && args[4] != Py_None) {
        if (!Py_IS_TYPE(args[4], &PartialType)) {
            PyErr_SetString(PyExc_TypeError, "scan_value(): partial must be a Partial or None");
            return NULL;
        }
        partial = (const Partial *)args[4];
    }
    Py_buffer view;
    Py_ssize_t pos, key_len;
    int eof;
    const char *key;
    if (scan_args("scan_value", args, &view, &pos, &eof, &key, &key_len) < 0) {
        return NULL;
    }
    if (partial != NULL && partial->scanned > view.len - pos) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "scan_value(): the buffer holds less than it did");
        return NULL;
    }
    Scan *s = scan_new(&view);
    if (s == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    s->skim_depth = skim_depth;
    int rc = SCAN_DONE;
    Py_ssize_t from = pos;
    if (partial != NULL) {
        s->resume_at = from = pos + partial->resume_at;
        s->depth = partial->depth;
        s->wanted = partial->wanted < 0 ? -1 : pos + partial->wanted;
        s->flags = partial->flags;
        s->skimming = partial->skimming;
        s->skim_carry = partial->skim_carry;
        memcpy(s->in_object, partial->in_object, (size_t)partial->depth);
        for (Py_ssize_t i = 0; i < partial->nspans && rc == SCAN_DONE; i++) {
            if (add_span(s, pos + partial->spans[i].start, pos + partial->spans[i].end) < 0) {
                rc = SCAN_NOMEM;
            }
        }
    }
    if (rc == SCAN_DONE) {
        /* Only this thread uses buf meanwhile (the buffer export keeps a bytearray's size). */
        if (view.len - from > RELEASE_GIL_BYTES) {
            Py_BEGIN_ALLOW_THREADS
            rc = scan(s, pos, eof, key, key_len);
            Py_END_ALLOW_THREADS
        }
        else {
            rc = scan(s, pos, eof, key, key_len);
        }
    }
    PyBuffer_Release(&view);

    PyObject *result = NULL;
    switch (rc) {
    case SCAN_DONE: {
        PyObject *spans = PyTuple_New(s->nspans);
        if (spans == NULL) {
            break;
        }
        for (Py_ssize_t i = 0; i < s->nspans; i++) {
            PyObject *span = Py_BuildValue("(nn)", s->spans[i].start, s->spans[i].end);
            if (span == NULL) {
                Py_DECREF(spans);
                spans = NULL;
                break;
            }
            PyTuple_SET_ITEM(spans, i, span);
        }
        if (spans != NULL) {
            result = Py_BuildValue("(nNi)", s->end, spans, s->flags);
        }
        break;
    }
    case SCAN_MORE:
        result = partial_new(s, pos);
        break;
    case SCAN_INVALID:
        set_scan_error(s);
        break;
    default:
        PyErr_NoMemory();
    }
    scan_free(s);
    return result;
}


static PyObject *
scan_elements(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 && nargs != 5) {
        PyErr_Format(PyExc_TypeError, "scan_elements() takes 4 or 5 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    int skim_depth = 0;
    if (nargs == 5 && skim_arg("scan_elements", args[4], &skim_depth) < 0) {
        return NULL;
    }
    Py_buffer view;
    Py_ssize_t pos, key_len;
    int eof;
    const char *key;
    if (scan_args("scan_elements", args, &view, &pos, &eof, &key, &key_len) < 0) {
        return NULL;
    }
    Scan *s = scan_new(&view);
    Element *elements = s == NULL ? NULL : PyMem_Malloc(MAX_ELEMENTS * sizeof(Element));
    if (elements == NULL) {
        if (s != NULL) {
            scan_free(s);
            PyErr_NoMemory();
        }
        PyBuffer_Release(&view);
        return NULL;
    }
    s->skim_depth = skim_depth;
    Py_ssize_t count, at = pos;
    int state, rc;
    if (view.len - pos > RELEASE_GIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        rc = scan_run(s, &at, eof, key, key_len, elements, &count, &state);
        Py_END_ALLOW_THREADS
    }
    else {
        rc = scan_run(s, &at, eof, key, key_len, elements, &count, &state);
    }
    PyBuffer_Release(&view);

    PyObject *result = NULL, *partial = NULL;
    PyObject *list = PyList_New(count);
    if (rc == SCAN_NOMEM) {
        PyErr_NoMemory();
    }
    else if (rc == SCAN_INVALID && count == 0) {
        set_scan_error(s);
    }
    else if (list != NULL) {
        /* An element found invalid after others is reported by the next call. */
        partial = rc == SCAN_MORE ? partial_new(s, at) : Py_NewRef(Py_None);
        for (Py_ssize_t i = 0; partial != NULL && i < count; i++) {
            Element *e = &elements[i];
            PyObject *item = Py_BuildValue("(nnnni)", e->start, e->end, e->key_start,
                                           e->key_end, e->flags);
            if (item == NULL) {
                Py_CLEAR(partial);
                break;
            }
            PyList_SET_ITEM(list, i, item);
        }
        if (partial != NULL) {
            result = Py_BuildValue("(nOiN)", at, list, state, partial);
        }
    }
    Py_XDECREF(list);
    scan_free(s);
    PyMem_Free(elements);
    return result;
}

static PyMethodDef methods[] = {
    {"utf8_check", utf8_check_py, METH_O,
     "utf8_check(data, /)\n--\n\n"
     "(status, end): UTF8_VALID (end = len), UTF8_CUT (data[end:] starts a character that\n"
     "may go on) or UTF8_INVALID (data[end] is where it stops being UTF-8)."},
    {"skim_implementations", skim_implementations, METH_NOARGS,
     "skim_implementations()\n--\n\n"
     "The names of the skim's implementations this CPU runs, best last."},
    {"use_skim", use_skim, METH_O,
     "use_skim(name, /)\n--\n\n"
     "Use the skim implementation `name` (tests); returns the one used before."},
    {"scan_value", (PyCFunction)(void (*)(void))scan_value, METH_FASTCALL,
     "scan_value(buf, pos, eof, key, partial=None, skim=0, /)\n--\n\n"
     "Validate the JSON value at buf[pos]: (end, spans, flags); None or a Partial when it\n"
     "needs more data (pass the Partial back with more); or ScanError((offset, reason)).\n"
     "See the module's C source for the details."},
    {"scan_elements", (PyCFunction)(void (*)(void))scan_elements, METH_FASTCALL,
     "scan_elements(buf, pos, eof, key, skim=0, /)\n--\n\n"
     "Scan array elements from buf[pos]: (pos, [(start, end, key_start, key_end, flags)],\n"
     "state, partial). See the module's C source for the details."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "mrfbatch._jsonscan",
    "Validate one JSON value and find where it ends, in one pass (the fast engine's scanner).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__jsonscan(void)
{
    scan_init();
    skim_init();
    if (PyType_Ready(&PartialType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    ScanError = PyErr_NewExceptionWithDoc(
        "mrfbatch._jsonscan.ScanError",
        "Bytes that are not JSON: args are (offset in buf, reason).", PyExc_ValueError, NULL);
    if (ScanError == NULL || PyModule_AddObjectRef(module, "ScanError", ScanError) < 0
        || PyModule_AddObjectRef(module, "Partial", (PyObject *)&PartialType) < 0
        || PyModule_AddIntConstant(module, "KEY_ESCAPED", FLAG_KEY_ESCAPED) < 0
        || PyModule_AddIntConstant(module, "LONE_SURROGATE", FLAG_LONE_SURROGATE) < 0
        || PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH) < 0
        || PyModule_AddIntConstant(module, "AT_ELEMENT", AT_ELEMENT) < 0
        || PyModule_AddIntConstant(module, "AFTER_ELEMENT", AFTER_ELEMENT) < 0
        || PyModule_AddIntConstant(module, "CLOSED", CLOSED) < 0
        || PyModule_AddIntConstant(module, "UTF8_VALID", UTF8_VALID) < 0
        || PyModule_AddIntConstant(module, "UTF8_CUT", UTF8_CUT) < 0
        || PyModule_AddIntConstant(module, "UTF8_INVALID", UTF8_INVALID) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
