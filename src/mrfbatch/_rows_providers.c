/* mrfbatch._rows.ProviderRows: provider rows gathered straight into Arrow buffers.
 *
 * A ProviderRows object gathers the rows of many group lists, in order, each with its group id and
 * source (lists of str), from either
 *
 *   add_text(text, group_id)
 *                    the JSON text of one provider_references entry of the usual shape:
 *                    {"provider_group_id": any, "network_name": null | [string...],
 *                     "provider_groups": [{"npi": null | [integer...], "tin": {"type": ...,
 *                     "value": ..., "business_name": ...}}...], "location": null | string}
 *                    with every member optional but `tin`, no other member, no duplicate, no
 *                    escape in a string, integers within int64, tin values strings or null.
 *                    Returns False, having gathered nothing, for anything else (and for an
 *                    entry without provider_groups whose location is a string: its groups are
 *                    remote), which the caller decodes in Python (provider_rows.read_reference
 *                    accepts exactly this shape, and counts or converts what differs);
 *   add_records(data, at, end, keys, defined, limit)
 *                    add_text for the records of the provider spill file in data[at:end]
 *                    whose key is in `keys`, until one it cannot take (see rows_add_records);
 *   add_groups(groups, network_name, group_id, source)
 *                    groups decoded in Python: (npis, type, value, name) tuples, and the
 *                    list's network names (a list of str, or None).
 *
 * Each group gives one row per NPI, or one row with NPI 0 when it has none (null or []).
 * take() hands the buffers over as bytes and starts afresh: ((rows, groups, lists, names), the
 * buffers, the lists' group ids, their sources). The buffers: npi (int64), the group of each row
 * (int32), the list of each group (int32), for each of tin type, tin value and business name
 * per group its validity bitmap, offsets (int32) and data, then per list the network names'
 * validity bitmap and offsets (int32), and the names' offsets (int32) and data.
 * provider_rows.ProviderRows makes Arrow arrays of them.
 */

#include "_rows.h"
#include "_rows_arrow.h"
#include "_rows_text.h"

/* The columns gathered so far. */
enum { TIN_TYPE, TIN_VALUE, BUSINESS_NAME, TIN_FIELDS };

typedef struct {
    PyObject_HEAD
    Py_ssize_t rows, groups, lists, names;
    Buf npi, row_group, group_list;
    Strings tin[TIN_FIELDS];
    Buf list_valid, list_offsets; /* network_name per list */
    Strings name;                 /* the network names, all valid */
    PyObject *group_ids, *sources; /* per list: lists of str, made on first use */
} Rows;

/* Where each buffer and count stood, to undo an entry add_text gives up on halfway. */
typedef struct {
    Py_ssize_t rows, groups, lists, names;
    Py_ssize_t npi, row_group, group_list, list_valid, list_offsets;
    Py_ssize_t tin[TIN_FIELDS][3], name[3];
} Mark;

static void
mark(const Rows *r, Mark *m)
{
    m->rows = r->rows;
    m->groups = r->groups;
    m->lists = r->lists;
    m->names = r->names;
    m->npi = r->npi.len;
    m->row_group = r->row_group.len;
    m->group_list = r->group_list.len;
    m->list_valid = r->list_valid.len;
    m->list_offsets = r->list_offsets.len;
    for (int f = 0; f < TIN_FIELDS; f++) {
        m->tin[f][0] = r->tin[f].valid.len;
        m->tin[f][1] = r->tin[f].offsets.len;
        m->tin[f][2] = r->tin[f].data.len;
    }
    m->name[0] = r->name.valid.len;
    m->name[1] = r->name.offsets.len;
    m->name[2] = r->name.data.len;
}

static void
undo(Rows *r, const Mark *m)
{
    r->rows = m->rows;
    r->groups = m->groups;
    r->lists = m->lists;
    r->names = m->names;
    r->npi.len = m->npi;
    r->row_group.len = m->row_group;
    r->group_list.len = m->group_list;
    r->list_valid.len = m->list_valid;
    r->list_offsets.len = m->list_offsets;
    for (int f = 0; f < TIN_FIELDS; f++) {
        r->tin[f].valid.len = m->tin[f][0];
        r->tin[f].offsets.len = m->tin[f][1];
        r->tin[f].data.len = m->tin[f][2];
    }
    r->name.valid.len = m->name[0];
    r->name.offsets.len = m->name[1];
    r->name.data.len = m->name[2];
    /* A bitmap byte that now lies partly past the end keeps stale bits: clear them. */
    Buf *bitmaps[] = {&r->tin[0].valid, &r->tin[1].valid, &r->tin[2].valid, &r->list_valid};
    Py_ssize_t counts[] = {r->groups, r->groups, r->groups, r->lists};
    for (int i = 0; i < 4; i++) {
        if (counts[i] % 8) {
            bitmaps[i]->data[counts[i] / 8] &= (char)((1u << (counts[i] % 8)) - 1);
        }
    }
}

/* Which member a key names, by its text. */
enum { K_ID = 1, K_GROUPS = 2, K_NAMES = 4, K_LOCATION = 8, K_NPI = 16, K_TIN = 32 };

static int
key_of(const char *s, Py_ssize_t size)
{
#define IS(text) (size == (Py_ssize_t)sizeof(text) - 1 && memcmp(s, text, size) == 0)
    if (IS("provider_group_id")) return K_ID;
    if (IS("provider_groups")) return K_GROUPS;
    if (IS("network_name")) return K_NAMES;
    if (IS("location")) return K_LOCATION;
    if (IS("npi")) return K_NPI;
    if (IS("tin")) return K_TIN;
    if (IS("type")) return TIN_TYPE + 64;
    if (IS("value")) return TIN_VALUE + 64;
    if (IS("business_name")) return BUSINESS_NAME + 64;
#undef IS
    return 0;
}

/* A string or null for tin[field]; `seen` guards against duplicates. */
typedef struct {
    const char *text[TIN_FIELDS];
    Py_ssize_t size[TIN_FIELDS];
    int seen;
} Tin;

static int
tin_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Tin *tin = arg;
    int key = key_of(name, size);
    if (key < 64 || (tin->seen & (1 << (key - 64)))) {
        return GIVE_UP;
    }
    int f = key - 64;
    tin->seen |= 1 << f;
    char c = next(t);
    if (c == 'n') {
        return null(t);
    }
    return c == '"' ? string(t, &tin->text[f], &tin->size[f]) : GIVE_UP;
}

typedef struct {
    Rows *r;
    Py_ssize_t npi_start; /* where this group's NPIs start in r->npi */
    int seen;
    Tin tin;
} Group;

/* One NPI: an integer within int64. */
static int
npi(Text *t, char c, void *arg)
{
    Rows *r = arg;
    int64_t v;
    if ((c != '-' && (c < '0' || c > '9')) || integer(t, &v) != DONE) {
        return GIVE_UP;
    }
    return buf_add(&r->npi, &v, sizeof(v)) < 0 ? FAILED : DONE;
}

static int
group_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Group *g = arg;
    Rows *r = g->r;
    int key = key_of(name, size);
    if ((key != K_NPI && key != K_TIN) || (g->seen & key)) {
        return GIVE_UP;
    }
    g->seen |= key;
    char c = next(t);
    if (key == K_TIN) {
        return c == '{' ? members(t, tin_field, &g->tin) : GIVE_UP;
    }
    if (c == 'n') {
        return null(t);
    }
    return c == '[' ? elements(t, npi, r) : GIVE_UP;
}

/* One group object: its rows and its tin. */
static int
group(Text *t, char c, void *arg)
{
    Rows *r = arg;
    if (c != '{') {
        return GIVE_UP;
    }
    Group g = {.r = r, .npi_start = r->npi.len};
    int rc = members(t, group_field, &g);
    if (rc != DONE) {
        return rc;
    }
    if (!(g.seen & K_TIN)) {
        return GIVE_UP; /* msgspec requires it; Python counts it as invalid */
    }
    if (r->npi.len == g.npi_start) { /* no NPI: one row with NPI 0 */
        int64_t zero = 0;
        if (buf_add(&r->npi, &zero, sizeof(zero)) < 0) {
            return FAILED;
        }
    }
    for (Py_ssize_t i = (r->npi.len - g.npi_start) / 8; i > 0; i--) {
        if (buf_int32(&r->row_group, r->groups) < 0) {
            return FAILED;
        }
        r->rows++;
    }
    for (int f = 0; f < TIN_FIELDS; f++) {
        if (strings_add(&r->tin[f], r->groups, g.tin.text[f], g.tin.size[f]) < 0) {
            return FAILED;
        }
    }
    if (buf_int32(&r->group_list, r->lists) < 0) {
        return FAILED;
    }
    r->groups++;
    return DONE;
}

typedef struct {
    Rows *r;
    int seen;
    int location; /* a string location was given */
    int names;    /* network_name was a list (else null or absent) */
} Entry;

/* One network name: a string. */
static int
network_name(Text *t, char c, void *arg)
{
    Rows *r = arg;
    const char *s;
    Py_ssize_t size;
    if (c != '"' || string(t, &s, &size) != DONE) {
        return GIVE_UP;
    }
    return strings_add(&r->name, r->names++, s, size) < 0 ? FAILED : DONE;
}

static int
entry_field(Text *t, const char *name, Py_ssize_t size_of_name, void *arg)
{
    Entry *e = arg;
    Rows *r = e->r;
    int key = key_of(name, size_of_name);
    if (key == 0 || key > K_LOCATION || (e->seen & key)) {
        return GIVE_UP;
    }
    e->seen |= key;
    char c = next(t);
    const char *s;
    Py_ssize_t size;
    switch (key) {
    case K_ID:
        return skip(t, c);
    case K_LOCATION:
        if (c == 'n') {
            return null(t);
        }
        e->location = 1;
        return c == '"' ? string(t, &s, &size) : GIVE_UP;
    case K_NAMES:
        if (c == 'n') {
            return null(t);
        }
        if (c != '[') {
            return GIVE_UP;
        }
        e->names = 1;
        return elements(t, network_name, r);
    default: /* K_GROUPS */
        return c == '[' ? elements(t, group, r) : GIVE_UP;
    }
}

/* The list's own columns, once its groups are in: network_name's validity and end offset. */
static int
end_list(Rows *r, int has_names)
{
    if (r->lists == 0 && buf_int32(&r->list_offsets, 0) < 0) {
        return -1;
    }
    if (bit_add(&r->list_valid, r->lists, has_names) < 0
        || buf_int32(&r->list_offsets, r->names) < 0) {
        return -1;
    }
    r->lists++;
    return 0;
}

/* The per-list Python values: its group id and source. */
static int
list_values(Rows *r, PyObject *group_id, PyObject *source)
{
    if (r->group_ids == NULL && ((r->group_ids = PyList_New(0)) == NULL
                                 || (r->sources = PyList_New(0)) == NULL)) {
        return -1;
    }
    if (PyList_Append(r->group_ids, group_id) < 0) {
        return -1;
    }
    if (PyList_Append(r->sources, source) < 0) {
        Py_ssize_t n = PyList_GET_SIZE(r->group_ids);
        PyList_SetSlice(r->group_ids, n - 1, n, NULL);
        return -1;
    }
    return 0;
}

static PyObject *FILE_SOURCE; /* "file" */

/* The rows of one entry's JSON text (see add_text): DONE, GIVE_UP (nothing added) or FAILED. */
static int
add_text(Rows *r, const char *text, Py_ssize_t size, PyObject *group_id)
{
    Text t = {.b = text, .p = 0, .n = size};
    Mark m;
    mark(r, &m);
    Entry e = {.r = r};
    int rc = next(&t) == '{' ? members(&t, entry_field, &e) : GIVE_UP;
    if (rc == DONE && next(&t) != 0) {
        rc = GIVE_UP; /* more than one value */
    }
    if (rc == DONE && !(e.seen & K_GROUPS) && e.location) {
        rc = GIVE_UP; /* remote groups */
    }
    if (rc == DONE && (end_list(r, e.names) < 0 || list_values(r, group_id, FILE_SOURCE) < 0)) {
        rc = FAILED;
    }
    if (rc != DONE) {
        undo(r, &m);
    }
    return rc;
}

static PyObject *
rows_add_text(Rows *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "add_text(text, group_id: str) takes 2 arguments");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    int rc = add_text(r, view.buf, view.len, args[1]);
    PyBuffer_Release(&view);
    return rc == FAILED ? NULL : PyBool_FromLong(rc == DONE);
}

/* add_records(data, at, end, keys, defined, limit): the spill-file records in data[at:end]
 * (providers._HEADER: kind, key size, payload size; the key; the payload), one after the other:
 * a reference whose key is not in `keys` is passed over; one whose key is, and whose text has
 * the usual shape, becomes rows, and its key goes into `defined`. Stops at the first record that
 * is not whole in data[:end] (NEED_MORE), once `limit` rows are gathered (FULL), or at a record
 * Python must read (an inline one, or a reference of another shape): its kind. Returns (where
 * it stopped, why). */
#define INLINE 2
#define NEED_MORE -1
#define FULL -2

static PyObject *
rows_add_records(Rows *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t at, end, limit;
    if (nargs != 6 || !PySet_Check(args[3]) || !PySet_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "add_records(data, at, end, keys: set, defined: set, limit)");
        return NULL;
    }
    if ((at = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((end = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[5])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *b = view.buf;
    if (end > view.len) {
        end = view.len;
    }
    int why = NEED_MORE;
    while (at >= 0 && at + 9 <= end) {
        uint32_t key_size, size;
        memcpy(&key_size, b + at + 1, 4); /* little-endian, as struct "<BII" wrote them */
        memcpy(&size, b + at + 5, 4);
#if PY_BIG_ENDIAN
        key_size = __builtin_bswap32(key_size);
        size = __builtin_bswap32(size);
#endif
        Py_ssize_t key_at = at + 9, text_at = key_at + key_size, stop = text_at + size;
        if (stop > end) {
            break;
        }
        if (b[at] == INLINE) {
            why = INLINE;
            break;
        }
        PyObject *key = PyUnicode_DecodeUTF8((const char *)b + key_at, key_size, "surrogatepass");
        int wanted = key == NULL ? -1 : PySet_Contains(args[3], key);
        int rc = wanted == 1 ? add_text(r, (const char *)b + text_at, size, key) : DONE;
        if (wanted == 1 && rc == DONE && PySet_Add(args[4], key) < 0) {
            rc = FAILED; /* the rows stay: the error ends the extraction */
        }
        Py_XDECREF(key);
        if (wanted < 0 || rc == FAILED) {
            PyBuffer_Release(&view);
            return NULL;
        }
        if (rc == GIVE_UP) {
            why = b[at];
            break;
        }
        at = stop;
        if (r->rows >= limit) {
            why = FULL;
            break;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(ni)", at, why);
}

/* UTF-8 of a str (None: NULL text); -1 with an error set when it is neither. */
static int
text_of(PyObject *o, const char **text, Py_ssize_t *size)
{
    if (o == Py_None) {
        *text = NULL;
        *size = 0;
        return 0;
    }
    if (!PyUnicode_Check(o)) {
        PyErr_Format(PyExc_TypeError, "provider rows: expected str or None, not %.50s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    *text = PyUnicode_AsUTF8AndSize(o, size);
    return *text == NULL ? -1 : 0;
}

static int
add_group(Rows *r, PyObject *g)
{
    if (!PyTuple_Check(g) || PyTuple_GET_SIZE(g) != 4) {
        PyErr_SetString(PyExc_TypeError, "provider rows: a group is (npis, type, value, name)");
        return -1;
    }
    PyObject *npis = PySequence_Fast(PyTuple_GET_ITEM(g, 0), "provider rows: npis");
    if (npis == NULL) {
        return -1;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(npis);
    int rc = 0;
    for (Py_ssize_t i = 0; i < count && rc == 0; i++) {
        int64_t v = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(npis, i));
        if (v == -1 && PyErr_Occurred()) {
            rc = -1;
            break;
        }
        rc = buf_add(&r->npi, &v, sizeof(v));
        rc = rc < 0 ? rc : buf_int32(&r->row_group, r->groups);
        r->rows += rc == 0;
    }
    Py_DECREF(npis);
    for (int f = 0; f < TIN_FIELDS && rc == 0; f++) {
        const char *text;
        Py_ssize_t size;
        rc = text_of(PyTuple_GET_ITEM(g, f + 1), &text, &size);
        rc = rc < 0 ? rc : strings_add(&r->tin[f], r->groups, text, size);
    }
    if (rc == 0 && buf_int32(&r->group_list, r->lists) == 0) {
        r->groups++;
        return 0;
    }
    return -1;
}

static PyObject *
rows_add_groups(Rows *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyUnicode_Check(args[2]) || !PyUnicode_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError,
                        "add_groups(groups, network_name, group_id: str, source: str)");
        return NULL;
    }
    Mark m;
    mark(r, &m);
    PyObject *groups = PySequence_Fast(args[0], "add_groups: groups must be a sequence");
    if (groups == NULL) {
        return NULL;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(groups) && rc == 0; i++) {
        rc = add_group(r, PySequence_Fast_GET_ITEM(groups, i));
    }
    Py_DECREF(groups);
    PyObject *names = args[1] == Py_None ? NULL : PySequence_Fast(args[1], "network_name");
    if (args[1] != Py_None && names == NULL) {
        rc = -1;
    }
    for (Py_ssize_t i = 0; names != NULL && rc == 0 && i < PySequence_Fast_GET_SIZE(names); i++) {
        const char *text;
        Py_ssize_t size;
        rc = text_of(PySequence_Fast_GET_ITEM(names, i), &text, &size);
        if (rc == 0 && text == NULL) {
            PyErr_SetString(PyExc_TypeError, "provider rows: a network name is None");
            rc = -1;
        }
        rc = rc < 0 ? rc : strings_add(&r->name, r->names++, text, size);
    }
    Py_XDECREF(names);
    if (rc == 0 && (end_list(r, args[1] != Py_None) < 0 || list_values(r, args[2], args[3]) < 0)) {
        rc = -1;
    }
    if (rc < 0) {
        undo(r, &m);
        return NULL;
    }
    Py_RETURN_NONE;
}

static void
rows_clear(Rows *r)
{
    buf_free(&r->npi);
    buf_free(&r->row_group);
    buf_free(&r->group_list);
    for (int f = 0; f < TIN_FIELDS; f++) {
        buf_free(&r->tin[f].valid);
        buf_free(&r->tin[f].offsets);
        buf_free(&r->tin[f].data);
    }
    buf_free(&r->list_valid);
    buf_free(&r->list_offsets);
    buf_free(&r->name.valid);
    buf_free(&r->name.offsets);
    buf_free(&r->name.data);
    r->rows = r->groups = r->lists = r->names = 0;
    Py_CLEAR(r->group_ids);
    Py_CLEAR(r->sources);
}

static PyObject *
rows_take(Rows *r, PyObject *unused)
{
    (void)unused;
    const Buf *bufs[] = {
        &r->npi,
        &r->row_group,
        &r->group_list,
        &r->tin[0].valid, &r->tin[0].offsets, &r->tin[0].data,
        &r->tin[1].valid, &r->tin[1].offsets, &r->tin[1].data,
        &r->tin[2].valid, &r->tin[2].offsets, &r->tin[2].data,
        &r->list_valid, &r->list_offsets,
        &r->name.offsets, &r->name.data,
    };
    const Buf *offsets[] = {&r->tin[0].offsets, &r->tin[1].offsets, &r->tin[2].offsets,
                            &r->list_offsets, &r->name.offsets};
    PyObject *buffers = buffers_tuple(bufs, sizeof(bufs) / sizeof(bufs[0]), offsets,
                                      sizeof(offsets) / sizeof(offsets[0]));
    if (buffers == NULL) {
        return NULL;
    }
    if (r->group_ids == NULL && ((r->group_ids = PyList_New(0)) == NULL
                                 || (r->sources = PyList_New(0)) == NULL)) {
        Py_DECREF(buffers);
        return NULL;
    }
    PyObject *result = Py_BuildValue("((nnnn)NOO)", r->rows, r->groups, r->lists, r->names,
                                     buffers, r->group_ids, r->sources);
    if (result == NULL) {
        return NULL;
    }
    rows_clear(r);
    return result;
}

static PyObject *
rows_get_count(Rows *r, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(r->rows);
}

static void
rows_dealloc(Rows *r)
{
    rows_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef rows_methods[] = {
    {"add_text", (PyCFunction)(void (*)(void))rows_add_text, METH_FASTCALL,
     "add_text(text, group_id, /)\n--\n\nThe rows of one provider_references entry of the "
     "usual shape, given as JSON text: True, or False (nothing added) when it is not of that "
     "shape."},
    {"add_groups", (PyCFunction)(void (*)(void))rows_add_groups, METH_FASTCALL,
     "add_groups(groups, network_name, group_id, source, /)\n--\n\nThe rows of groups "
     "decoded in Python."},
    {"add_records", (PyCFunction)(void (*)(void))rows_add_records, METH_FASTCALL,
     "add_records(data, at, end, keys, defined, limit, /)\n--\n\nThe rows of the spill-file "
     "records in data[at:end] it can read: (where it stopped, why). See the C source."},
    {"take", (PyCFunction)rows_take, METH_NOARGS,
     "take()\n--\n\nThe counts and buffers gathered so far (see the module's source); starts "
     "afresh."},
    {NULL},
};

static PyGetSetDef rows_getset[] = {
    {"count", (getter)rows_get_count, NULL, "rows gathered so far", NULL},
    {NULL},
};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mrfbatch._rows.ProviderRows",
    .tp_basicsize = sizeof(Rows),
    .tp_dealloc = (destructor)rows_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Provider rows of many group lists, gathered into Arrow buffers.",
    .tp_methods = rows_methods,
    .tp_getset = rows_getset,
    .tp_new = PyType_GenericNew,
};

int
provider_rows_ready(PyObject *module)
{
    if (PyType_Ready(&RowsType) < 0) {
        return -1;
    }
    FILE_SOURCE = PyUnicode_InternFromString("file");
    if (FILE_SOURCE == NULL
        || PyModule_AddObjectRef(module, "ProviderRows", (PyObject *)&RowsType) < 0
        || PyModule_AddIntConstant(module, "NEED_MORE", NEED_MORE) < 0
        || PyModule_AddIntConstant(module, "FULL", FULL) < 0) {
        return -1;
    }
    return 0;
}
