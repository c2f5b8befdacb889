/* mrfbatch._rows: provider and rate rows gathered straight into Arrow buffers.
 *
 * Written in C for speed: after scanning, making the rows of matched items and of the provider
 * groups their rates reference is the largest part of the fast engine's work (see
 * mrfbatch/providers.py and mrfbatch/rates.py), and a Python object per value costs more than
 * reading the JSON itself. Each builder takes only the usual shape and gives up on anything
 * else, which Python then decodes, converts and counts as before: the rows are the same.
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
 *                    remote), which the caller decodes in Python (providers._decoded_text
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
 * providers.NativeProviderRows makes Arrow arrays of them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int
buf_reserve(Buf *b, Py_ssize_t more)
{
    if (b->len + more <= b->cap) {
        return 0;
    }
    Py_ssize_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more) {
        cap *= 2;
    }
    char *grown = PyMem_Realloc(b->data, (size_t)cap);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

static inline int
buf_add(Buf *b, const void *data, Py_ssize_t size)
{
    if (buf_reserve(b, size) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, data, (size_t)size);
    b->len += size;
    return 0;
}

static inline int
buf_int32(Buf *b, Py_ssize_t value)
{
    int32_t v = (int32_t)value;
    return buf_add(b, &v, sizeof(v));
}

/* Nullable strings: a validity bitmap, int32 offsets (count + 1 of them) and UTF-8 data. */
typedef struct {
    Buf valid, offsets, data;
} Strings;

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

/* Append a bit for item `index` (0-based) to a bitmap. */
static inline int
bit_add(Buf *bitmap, Py_ssize_t index, int set)
{
    if (index % 8 == 0) {
        char zero = 0;
        if (buf_add(bitmap, &zero, 1) < 0) {
            return -1;
        }
    }
    if (set) {
        bitmap->data[index / 8] |= (char)(1u << (index % 8));
    }
    return 0;
}

/* Append item `index` to strings `s`: text[0:size], or null when text is NULL. */
static int
strings_add(Strings *s, Py_ssize_t index, const char *text, Py_ssize_t size)
{
    if (index == 0 && buf_int32(&s->offsets, 0) < 0) {
        return -1;
    }
    if (bit_add(&s->valid, index, text != NULL) < 0) {
        return -1;
    }
    if (text != NULL && buf_add(&s->data, text, size) < 0) {
        return -1;
    }
    if (s->data.len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "provider rows: over 2 GB of text in one batch");
        return -1;
    }
    return buf_int32(&s->offsets, s->data.len);
}

/* ---- add_text: a small parser for the usual shape only (the text is valid JSON). ---- */

typedef struct {
    const char *b;
    Py_ssize_t p, n;
} Text;

enum { GIVE_UP = 0, DONE = 1, FAILED = -1 }; /* FAILED: a Python error is set */

static inline void
blanks(Text *t)
{
    while (t->p < t->n && (t->b[t->p] == ' ' || t->b[t->p] == '\n' || t->b[t->p] == '\r'
                           || t->b[t->p] == '\t')) {
        t->p++;
    }
}

/* The byte after blanks (consumed), or 0 at the end. */
static inline char
next(Text *t)
{
    blanks(t);
    return t->p < t->n ? t->b[t->p++] : 0;
}

/* A string whose opening quote was consumed: its text, without escapes (else GIVE_UP). */
static int
string(Text *t, const char **start, Py_ssize_t *size)
{
    const char *s = t->b + t->p;
    const char *end = memchr(s, '"', (size_t)(t->n - t->p));
    if (end == NULL || memchr(s, '\\', (size_t)(end - s)) != NULL) {
        return GIVE_UP;
    }
    *start = s;
    *size = end - s;
    t->p += *size + 1;
    return DONE;
}

/* `null` (its `n` consumed). */
static inline int
null(Text *t)
{
    if (t->n - t->p >= 3 && memcmp(t->b + t->p, "ull", 3) == 0) {
        t->p += 3;
        return DONE;
    }
    return GIVE_UP;
}

/* An integer within int64 whose first byte is at t->p - 1 (a fraction or exponent gives up). */
static int
integer(Text *t, int64_t *value)
{
    Py_ssize_t p = t->p - 1;
    int negative = t->b[p] == '-';
    p += negative;
    uint64_t v = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    Py_ssize_t first = p;
    while (p < t->n && t->b[p] >= '0' && t->b[p] <= '9') {
        unsigned d = (unsigned)(t->b[p] - '0');
        if (v > (limit - d) / 10) {
            return GIVE_UP;
        }
        v = v * 10 + d;
        p++;
    }
    if (p == first || (p < t->n && (t->b[p] == '.' || t->b[p] == 'e' || t->b[p] == 'E'))) {
        return GIVE_UP;
    }
    *value = negative ? (int64_t)(0 - v) : (int64_t)v;
    t->p = p;
    return DONE;
}

/* Skip any valid JSON value whose first byte is at t->p - 1 (provider_group_id). */
static int
skip(Text *t, char c)
{
    if (c != '{' && c != '[' && c != '"') { /* a number or literal: up to a delimiter */
        while (t->p < t->n && strchr(",}] \t\r\n", t->b[t->p]) == NULL) {
            t->p++;
        }
        return DONE;
    }
    int depth = 0;
    for (;;) {
        if (c == '"') {
            while (t->p < t->n && t->b[t->p] != '"') {
                t->p += t->b[t->p] == '\\' ? 2 : 1;
            }
            if (t->p >= t->n) {
                return GIVE_UP;
            }
            t->p++;
        }
        else if (c == '{' || c == '[') {
            depth++;
        }
        else if (c == '}' || c == ']') {
            depth--;
        }
        if (depth == 0) {
            return DONE;
        }
        if (t->p >= t->n) {
            return GIVE_UP;
        }
        c = t->b[t->p++];
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

/* An object's members: calls member(t, key, size, arg) after each `"key":` (a key with an
 * escape gives up); the `{` is consumed. */
typedef int (*Member)(Text *t, const char *key, Py_ssize_t size, void *arg);

static int
members(Text *t, Member member, void *arg)
{
    char c = next(t);
    if (c == '}') {
        return DONE;
    }
    for (;;) {
        const char *k;
        Py_ssize_t size;
        int rc;
        if (c != '"' || (rc = string(t, &k, &size)) != DONE || next(t) != ':') {
            return GIVE_UP;
        }
        if ((rc = member(t, k, size, arg)) != DONE) {
            return rc;
        }
        c = next(t);
        if (c == '}') {
            return DONE;
        }
        if (c != ',') {
            return GIVE_UP;
        }
        c = next(t);
    }
}

/* An array's elements, `[` consumed: calls element(t, c, arg) with the first byte of each one
 * (consumed), then reads the `,` or `]` after it. */
typedef int (*Element)(Text *t, char c, void *arg);

static int
elements(Text *t, Element element, void *arg)
{
    char c = next(t);
    if (c == ']') {
        return DONE;
    }
    for (;;) {
        int rc = element(t, c, arg);
        if (rc != DONE) {
            return rc;
        }
        c = next(t);
        if (c == ']') {
            return DONE;
        }
        if (c != ',') {
            return GIVE_UP;
        }
        c = next(t);
    }
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
buf_free(Buf *b)
{
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
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

/* The buffers as a tuple of bytes, for take(); one of `offsets` that is empty (no item was
 * gathered) becomes the single offset 0 that Arrow expects. */
static PyObject *
buffers_tuple(const Buf *const *bufs, size_t count, const Buf *const *offsets, size_t n_offsets)
{
    static const char zero_offset[4] = {0, 0, 0, 0};
    PyObject *tuple = PyTuple_New((Py_ssize_t)count);
    for (size_t i = 0; tuple != NULL && i < count; i++) {
        const Buf *b = bufs[i];
        int is_offsets = 0;
        for (size_t j = 0; j < n_offsets; j++) {
            is_offsets |= b == offsets[j];
        }
        PyObject *bytes = b->len || !is_offsets
                              ? PyBytes_FromStringAndSize(b->data, b->len)
                              : PyBytes_FromStringAndSize(zero_offset, sizeof(zero_offset));
        if (bytes == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, (Py_ssize_t)i, bytes);
    }
    return tuple;
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

/* ---- Rate rows of matched in_network items ----
 *
 * RateRows gathers the rows of matched items of the usual shape: what rates.TypedItem decodes,
 * with provider_references null or a list of integers (no sign, fraction or exponent) and
 * strings, no provider_groups, no escape in a string, no member repeated. item_head(text)
 * reads (and checks) a whole item: the item's own values, or None when it is not of that
 * shape, which the caller then decodes in Python. add_rates(text, at, limit, referenced) then
 * gathers the rows of its rates from `at` on, at least `limit` rows unless the rates end
 * first, adding their provider group ids to `referenced`: (where the next rate starts, whether
 * the rates ended). take_rates() hands the buffers over, as ProviderRows.take does. */

enum { P_TYPE, P_DATE, P_CLASS, P_SETTING, P_INFO, PRICE_TEXTS };
enum { L_SERVICE, L_MODIFIER, PRICE_LISTS };

/* Nullable lists of strings: validity bitmap and int32 offsets per list, then their items. */
typedef struct {
    Buf valid, offsets;
    Strings items; /* all valid */
    Py_ssize_t count;
} Lists;

typedef struct {
    PyObject_HEAD
    Py_ssize_t rows, rates;
    Strings text[PRICE_TEXTS];
    Buf rate, rate_valid; /* negotiated_rate: float64 and validity */
    Lists list[PRICE_LISTS];
    Buf rate_of_row; /* int32: the rate (in this batch) of each row */
    Lists ids;       /* per rate: its provider group ids */
} RateRows;

/* Close list `index` of `l` (its items added since the last one): valid or null. */
static int
lists_end(Lists *l, Py_ssize_t index, int valid)
{
    if (index == 0 && buf_int32(&l->offsets, 0) < 0) {
        return -1;
    }
    if (bit_add(&l->valid, index, valid) < 0) {
        return -1;
    }
    return buf_int32(&l->offsets, l->count);
}

static int
lists_item(Lists *l, const char *text, Py_ssize_t size)
{
    return strings_add(&l->items, l->count++, text, size);
}

static void
lists_free(Lists *l)
{
    buf_free(&l->valid);
    buf_free(&l->offsets);
    buf_free(&l->items.valid);
    buf_free(&l->items.offsets);
    buf_free(&l->items.data);
    l->count = 0;
}

/* A number's text, from its first byte at t->p - 1 (valid JSON: it ends where a byte that
 * cannot be part of a number comes). */
static void
number_span(Text *t, const char **start, Py_ssize_t *size)
{
    Py_ssize_t p = t->p - 1;
    *start = t->b + p;
    while (t->p < t->n && strchr("0123456789+-.eE", t->b[t->p]) != NULL && t->b[t->p]) {
        t->p++;
    }
    *size = t->p - p;
}

/* Whether a JSON number is its own key: an integer (str(int) gives its text back, as for
 * any integer without a sign), or a fraction without exponent whose integer part is not 0
 * (str(Decimal) gives its text back; `0.0000001` would come back as `1E-7`). */
static int
plain_number(const char *s, Py_ssize_t n)
{
    Py_ssize_t digits = 0, dots = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            dots++;
        }
        else if (s[i] >= '0' && s[i] <= '9') {
            digits++;
        }
    }
    return digits + dots == n && (dots == 0 || (dots == 1 && s[0] != '0'));
}

/* `null`, or a string without escapes: its text (NULL for null). */
static int
text_or_null(Text *t, const char **text, Py_ssize_t *size)
{
    char c = next(t);
    if (c == 'n') {
        *text = NULL;
        *size = 0;
        return null(t);
    }
    return c == '"' ? string(t, text, size) : GIVE_UP;
}

#define KEY_IS(text) (size == (Py_ssize_t)sizeof(text) - 1 && memcmp(name, text, size) == 0)

/* One negotiated_prices entry: the texts, the rate, and where each list starts (its `[`). */
typedef struct {
    int seen;
    const char *text[PRICE_TEXTS];
    Py_ssize_t size[PRICE_TEXTS];
    double rate;
    int has_rate;
    Py_ssize_t list_at[PRICE_LISTS]; /* -1: null or absent */
} Price;

/* One item of a list of strings; added to the Lists `arg` unless it is NULL. */
static int
list_item(Text *t, char c, void *arg)
{
    Lists *l = arg;
    const char *s;
    Py_ssize_t size;
    if (c != '"' || string(t, &s, &size) != DONE) {
        return GIVE_UP;
    }
    return l != NULL && lists_item(l, s, size) < 0 ? FAILED : DONE;
}

/* A list of strings, `[` consumed; with `l`, its items are added. */
static int
string_list(Text *t, Lists *l)
{
    return elements(t, list_item, l);
}

static int
price_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Price *pr = arg;
    int f = KEY_IS("negotiated_type") ? 0
            : KEY_IS("expiration_date") ? 1
            : KEY_IS("billing_class") ? 2
            : KEY_IS("setting") ? 3
            : KEY_IS("additional_information") ? 4
            : KEY_IS("negotiated_rate") ? 5
            : KEY_IS("service_code") ? 6
            : KEY_IS("billing_code_modifier") ? 7
            : -1;
    if (f < 0 || (pr->seen & (1 << f))) {
        return GIVE_UP;
    }
    pr->seen |= 1 << f;
    if (f < PRICE_TEXTS) {
        return text_or_null(t, &pr->text[f], &pr->size[f]);
    }
    char c = next(t);
    if (c == 'n') {
        return null(t);
    }
    if (f == 5) {
        if (c != '-' && (c < '0' || c > '9')) {
            return GIVE_UP;
        }
        const char *s;
        Py_ssize_t n;
        char copy[64];
        number_span(t, &s, &n);
        if (n >= (Py_ssize_t)sizeof(copy)) {
            return GIVE_UP;
        }
        memcpy(copy, s, (size_t)n);
        copy[n] = 0;
        char *end;
        pr->rate = PyOS_string_to_double(copy, &end, NULL);
        if (pr->rate == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return GIVE_UP;
        }
        if (end != copy + n || isinf(pr->rate)) {
            return GIVE_UP; /* out of range: Python says what msgspec does */
        }
        pr->has_rate = 1;
        return DONE;
    }
    if (c != '[') {
        return GIVE_UP;
    }
    pr->list_at[f - 6] = t->p;
    return string_list(t, NULL);
}

/* One price object, `{` consumed; with `r`, its row is added for rate `rate`. */
static int
price(Text *t, RateRows *r)
{
    Price pr = {.list_at = {-1, -1}};
    int rc = members(t, price_field, &pr);
    if (rc != DONE || r == NULL) {
        return rc;
    }
    for (int f = 0; f < PRICE_TEXTS; f++) {
        if (strings_add(&r->text[f], r->rows, pr.text[f], pr.size[f]) < 0) {
            return FAILED;
        }
    }
    double value = pr.has_rate ? pr.rate : 0.0;
    if (buf_add(&r->rate, &value, sizeof(value)) < 0
        || bit_add(&r->rate_valid, r->rows, pr.has_rate) < 0) {
        return FAILED;
    }
    for (int l = 0; l < PRICE_LISTS; l++) {
        if (pr.list_at[l] >= 0) {
            Text again = {.b = t->b, .p = pr.list_at[l], .n = t->n};
            if ((rc = string_list(&again, &r->list[l])) != DONE) {
                return rc == GIVE_UP ? FAILED : rc; /* read once already */
            }
        }
        if (lists_end(&r->list[l], r->rows, pr.list_at[l] >= 0) < 0) {
            return FAILED;
        }
    }
    if (buf_int32(&r->rate_of_row, r->rates) < 0) {
        return FAILED;
    }
    r->rows++;
    return DONE;
}

typedef struct {
    RateRows *r;
    PyObject *referenced;
    int seen;
} Rate;

static int
price_element(Text *t, char c, void *arg)
{
    return c == '{' ? price(t, ((Rate *)arg)->r) : GIVE_UP;
}

/* One provider group id of a rate: a string, or a number whose key is its text (see
 * rows.group_key); with rows, added to them and to `referenced`. */
static int
group_id(Text *t, char c, void *arg)
{
    Rate *rate = arg;
    const char *s;
    Py_ssize_t n;
    int rc = GIVE_UP;
    if (c == '"') {
        rc = string(t, &s, &n);
    }
    else if (c >= '0' && c <= '9') {
        number_span(t, &s, &n);
        rc = plain_number(s, n) ? DONE : GIVE_UP;
    }
    if (rc == DONE && rate->r != NULL) {
        PyObject *key = PyUnicode_DecodeUTF8(s, n, "surrogatepass");
        if (key == NULL || PySet_Add(rate->referenced, key) < 0
            || lists_item(&rate->r->ids, s, n) < 0) {
            rc = FAILED;
        }
        Py_XDECREF(key);
    }
    return rc;
}

static int
rate_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Rate *rate = arg;
    int f = KEY_IS("negotiated_prices") ? 1 : KEY_IS("provider_references") ? 2 : 0;
    if (f == 0 || (rate->seen & f)) {
        return GIVE_UP; /* provider_groups too: inline groups are read in Python */
    }
    rate->seen |= f;
    char c = next(t);
    if (c == 'n') {
        return null(t);
    }
    if (c != '[') {
        return GIVE_UP;
    }
    return elements(t, f == 1 ? price_element : group_id, rate);
}

/* The rates of an item from t->p (just after its `[` or a `,`): up to `limit` rows (with `r`),
 * else all of them (checked only). Sets *ended once the `]` is read. */
static int
rates(Text *t, RateRows *r, PyObject *referenced, Py_ssize_t limit, int *ended)
{
    char c = next(t);
    *ended = 0;
    if (c == ']') {
        *ended = 1;
        return DONE;
    }
    for (;;) {
        Rate rate = {.r = r, .referenced = referenced};
        int rc = c == '{' ? members(t, rate_field, &rate) : GIVE_UP;
        if (rc != DONE) {
            return rc;
        }
        if (r != NULL) {
            if (lists_end(&r->ids, r->rates, 1) < 0) {
                return FAILED;
            }
            r->rates++;
        }
        c = next(t);
        if (c == ']') {
            *ended = 1;
            return DONE;
        }
        if (c != ',') {
            return GIVE_UP;
        }
        if (r != NULL && r->rows >= limit) {
            return DONE;
        }
        c = next(t);
    }
}

enum {
    H_ARRANGEMENT, H_NAME, H_CODE_TYPE, H_CODE_VERSION, H_DESCRIPTION, H_SEVERITY,
    HEAD_TEXTS, H_CODE = HEAD_TEXTS, H_BUNDLED, H_COVERED, H_RATES, HEAD_FIELDS
};

typedef struct {
    int seen;
    PyObject *values[HEAD_FIELDS]; /* NULL: null or absent */
    Py_ssize_t rates_at;           /* just after negotiated_rates' `[`, or -1 */
} Head;

static PyObject *
text_object(const char *text, Py_ssize_t size)
{
    return PyUnicode_DecodeUTF8(text, size, "strict");
}

/* One bundled_codes or covered_services object's members (rows._Code). */
typedef struct {
    const char *text[4]; /* billing_code_type, billing_code, and two that are only checked */
    Py_ssize_t size[4];
    int seen;
} Code;

static int
code_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Code *code = arg;
    int f = KEY_IS("billing_code_type") ? 0
            : KEY_IS("billing_code") ? 1
            : KEY_IS("billing_code_type_version") ? 2
            : KEY_IS("description") ? 3
            : -1;
    if (f < 0 || (code->seen & (1 << f))) {
        return GIVE_UP;
    }
    code->seen |= 1 << f;
    return text_or_null(t, &code->text[f], &code->size[f]);
}

/* One code object, appended to the list `arg` as "type:code" (rows._code_pair). */
static int
code(Text *t, char c, void *arg)
{
    Code code = {.seen = 0};
    int rc = c == '{' ? members(t, code_field, &code) : GIVE_UP;
    if (rc != DONE) {
        return rc;
    }
    Py_ssize_t size = code.size[0] + 1 + code.size[1];
    char *joined = PyMem_Malloc((size_t)size);
    if (joined == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    memcpy(joined, code.text[0] ? code.text[0] : "", (size_t)code.size[0]);
    joined[code.size[0]] = ':';
    memcpy(joined + code.size[0] + 1, code.text[1] ? code.text[1] : "", (size_t)code.size[1]);
    PyObject *pair = text_object(joined, size);
    PyMem_Free(joined);
    rc = pair == NULL || PyList_Append(arg, pair) < 0 ? FAILED : DONE;
    Py_XDECREF(pair);
    return rc;
}

/* A bundled_codes or covered_services list: its "type:code" texts, `[` consumed. */
static int
code_list(Text *t, PyObject **out)
{
    *out = PyList_New(0);
    return *out == NULL ? FAILED : elements(t, code, *out);
}

static int
head_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Head *h = arg;
    int f = KEY_IS("negotiation_arrangement") ? H_ARRANGEMENT
            : KEY_IS("name") ? H_NAME
            : KEY_IS("billing_code_type") ? H_CODE_TYPE
            : KEY_IS("billing_code_type_version") ? H_CODE_VERSION
            : KEY_IS("description") ? H_DESCRIPTION
            : KEY_IS("severity_of_illness") ? H_SEVERITY
            : KEY_IS("billing_code") ? H_CODE
            : KEY_IS("bundled_codes") ? H_BUNDLED
            : KEY_IS("covered_services") ? H_COVERED
            : KEY_IS("negotiated_rates") ? H_RATES
            : -1;
    if (f < 0 || (h->seen & (1 << f))) {
        return GIVE_UP;
    }
    h->seen |= 1 << f;
    char c = next(t);
    if (c == 'n') {
        return null(t);
    }
    const char *s;
    Py_ssize_t n;
    int rc;
    switch (f) {
    case H_CODE:
        if (c == '"') {
            if ((rc = string(t, &s, &n)) != DONE) {
                return rc;
            }
            h->values[f] = text_object(s, n);
        }
        else if (c >= '0' && c <= '9') { /* an int, as msgspec gives it */
            char copy[32];
            number_span(t, &s, &n);
            if (n >= (Py_ssize_t)sizeof(copy)) {
                return GIVE_UP;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9') {
                    return GIVE_UP;
                }
            }
            memcpy(copy, s, (size_t)n);
            copy[n] = 0;
            h->values[f] = PyLong_FromString(copy, NULL, 10);
        }
        else {
            return GIVE_UP;
        }
        return h->values[f] == NULL ? FAILED : DONE;
    case H_BUNDLED:
    case H_COVERED:
        return c == '[' ? code_list(t, &h->values[f]) : GIVE_UP;
    case H_RATES: {
        if (c != '[') {
            return GIVE_UP;
        }
        h->rates_at = t->p;
        int ended;
        return rates(t, NULL, NULL, 0, &ended); /* every rate checked before any row */
    }
    default:
        if (c != '"' || (rc = string(t, &s, &n)) != DONE) {
            return c == '"' ? rc : GIVE_UP;
        }
        h->values[f] = text_object(s, n);
        return h->values[f] == NULL ? FAILED : DONE;
    }
}

#undef KEY_IS

static PyObject *
rates_item_head(RateRows *r, PyObject *arg)
{
    (void)r;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Text t = {.b = view.buf, .p = 0, .n = view.len};
    Head h = {.rates_at = -1};
    int rc = next(&t) == '{' ? members(&t, head_field, &h) : GIVE_UP;
    if (rc == DONE && next(&t) != 0) {
        rc = GIVE_UP;
    }
    PyBuffer_Release(&view);
    PyObject *result = NULL;
    if (rc == DONE) {
        result = PyTuple_New(HEAD_FIELDS);
        for (int f = 0; result != NULL && f < HEAD_FIELDS; f++) {
            PyObject *v = f == H_RATES ? PyLong_FromSsize_t(h.rates_at)
                                       : Py_NewRef(h.values[f] ? h.values[f] : Py_None);
            if (v == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyTuple_SET_ITEM(result, f, v);
        }
    }
    for (int f = 0; f < HEAD_FIELDS; f++) {
        Py_XDECREF(h.values[f]);
    }
    if (rc == GIVE_UP) {
        Py_RETURN_NONE;
    }
    return result;
}

static PyObject *
rates_add_rates(RateRows *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t at, limit;
    if (nargs != 4 || !PySet_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "add_rates(text, at, limit, referenced: set)");
        return NULL;
    }
    if ((at = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Text t = {.b = view.buf, .p = at, .n = view.len};
    int ended = 0;
    int rc = at >= 0 && at <= view.len ? rates(&t, r, args[3], limit, &ended) : GIVE_UP;
    PyBuffer_Release(&view);
    if (rc == FAILED) {
        return NULL;
    }
    if (rc != DONE) {
        PyErr_Format(PyExc_RuntimeError, "add_rates: the rates at %zd are not as item_head read "
                     "them", at);
        return NULL;
    }
    return Py_BuildValue("(nO)", t.p, ended ? Py_True : Py_False);
}

static void
rates_clear(RateRows *r)
{
    for (int f = 0; f < PRICE_TEXTS; f++) {
        buf_free(&r->text[f].valid);
        buf_free(&r->text[f].offsets);
        buf_free(&r->text[f].data);
    }
    buf_free(&r->rate);
    buf_free(&r->rate_valid);
    for (int l = 0; l < PRICE_LISTS; l++) {
        lists_free(&r->list[l]);
    }
    buf_free(&r->rate_of_row);
    lists_free(&r->ids);
    r->rows = r->rates = 0;
}

static PyObject *
rates_take(RateRows *r, PyObject *unused)
{
    (void)unused;
    const Buf *bufs[] = {
        &r->text[0].valid, &r->text[0].offsets, &r->text[0].data,
        &r->text[1].valid, &r->text[1].offsets, &r->text[1].data,
        &r->text[2].valid, &r->text[2].offsets, &r->text[2].data,
        &r->text[3].valid, &r->text[3].offsets, &r->text[3].data,
        &r->text[4].valid, &r->text[4].offsets, &r->text[4].data,
        &r->rate_valid, &r->rate,
        &r->list[0].valid, &r->list[0].offsets, &r->list[0].items.offsets, &r->list[0].items.data,
        &r->list[1].valid, &r->list[1].offsets, &r->list[1].items.offsets, &r->list[1].items.data,
        &r->rate_of_row,
        &r->ids.offsets, &r->ids.items.offsets, &r->ids.items.data,
    };
    const Buf *offsets[] = {
        &r->text[0].offsets, &r->text[1].offsets, &r->text[2].offsets, &r->text[3].offsets,
        &r->text[4].offsets, &r->list[0].offsets, &r->list[1].offsets,
        &r->list[0].items.offsets, &r->list[1].items.offsets, &r->ids.offsets,
        &r->ids.items.offsets,
    };
    PyObject *buffers = buffers_tuple(bufs, sizeof(bufs) / sizeof(bufs[0]), offsets,
                                      sizeof(offsets) / sizeof(offsets[0]));
    if (buffers == NULL) {
        return NULL;
    }
    PyObject *result = Py_BuildValue("((nnnnn)N)", r->rows, r->rates, r->list[0].count,
                                     r->list[1].count, r->ids.count, buffers);
    if (result != NULL) {
        rates_clear(r);
    }
    return result;
}

static PyObject *
rates_get_count(RateRows *r, void *closure)
{
    (void)closure;
    return PyLong_FromSsize_t(r->rows);
}

static void
rates_dealloc(RateRows *r)
{
    rates_clear(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef rates_methods[] = {
    {"item_head", (PyCFunction)rates_item_head, METH_O,
     "item_head(text, /)\n--\n\nAn item's own values, every rate checked: (negotiation_"
     "arrangement, name, billing_code_type, billing_code_type_version, description, "
     "severity_of_illness, billing_code, bundled_codes, covered_services, where its rates "
     "start or -1); None when it is not of the usual shape."},
    {"add_rates", (PyCFunction)(void (*)(void))rates_add_rates, METH_FASTCALL,
     "add_rates(text, at, limit, referenced, /)\n--\n\nThe rows of the rates from `at`, at "
     "least `limit` unless they end first: (where the next rate starts, whether they ended)."},
    {"take", (PyCFunction)rates_take, METH_NOARGS,
     "take()\n--\n\nThe counts and buffers gathered so far (see the module's source); starts "
     "afresh."},
    {NULL},
};

static PyGetSetDef rates_getset[] = {
    {"count", (getter)rates_get_count, NULL, "rows gathered so far", NULL},
    {NULL},
};

static PyTypeObject RateRowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "mrfbatch._rows.RateRows",
    .tp_basicsize = sizeof(RateRows),
    .tp_dealloc = (destructor)rates_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Rate rows of matched items, gathered into Arrow buffers.",
    .tp_methods = rates_methods,
    .tp_getset = rates_getset,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "mrfbatch._rows",
    "Provider and rate rows gathered straight into Arrow buffers (see the module's source).",
    -1,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__rows(void)
{
    if (PyType_Ready(&RowsType) < 0 || PyType_Ready(&RateRowsType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    FILE_SOURCE = PyUnicode_InternFromString("file");
    if (FILE_SOURCE == NULL
        || PyModule_AddObjectRef(module, "ProviderRows", (PyObject *)&RowsType) < 0
        || PyModule_AddObjectRef(module, "RateRows", (PyObject *)&RateRowsType) < 0
        || PyModule_AddIntConstant(module, "NEED_MORE", NEED_MORE) < 0
        || PyModule_AddIntConstant(module, "FULL", FULL) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
