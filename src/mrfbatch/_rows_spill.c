/* mrfbatch._rows.spill_references: provider_references entries the C scanner found, written to
 * the provider spill file (providers.ProviderStore) without a Python object per entry. */

#include "_rows.h"

/* spill_references(text, found, at, only, out, limit): the provider spill-file records
 * (see add_records) of provider_references entries the C scanner found (mrfbatch._jsonscan
 * scan_elements: (start, end, key_start, key_end, flags) per entry), appended to bytearray `out`,
 * from found[at] on, in order. An entry whose key is not in `only` (a set, or None for every key)
 * is passed over. Stops at the first entry that is not plain (flags set, no provider_group_id,
 * not an object), at one whose id's text is not its key (see number_is_key; a string with
 * escapes), or once `out` holds `limit` bytes. Returns (where it
 * stopped, whether a record it wrote may name a location: its text holds `"location"` or a \u
 * escape). */
#define REFERENCE 0  /* providers._REFERENCE */
#define MAY_LOCATE 1 /* providers._MAY_LOCATE */

static int
size_arg(PyObject *o, Py_ssize_t *value)
{
    *value = PyLong_AsSsize_t(o);
    return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

/* Whether text[:size] contains `needle` (memmem is not in every C library). */
static int
contains(const char *text, Py_ssize_t size, const char *needle)
{
    const size_t n = strlen(needle);
    const char *end = text + size, *p = text;
    while ((size_t)(end - p) >= n && (p = memchr(p, needle[0], (size_t)(end - p) - n + 1))) {
        if (memcmp(p, needle, n) == 0) {
            return 1;
        }
        p++;
    }
    return 0;
}

/* Whether a number's JSON text is its key already (tables.group_key of the int or Decimal it
 * decodes to prints the same text): an integer other than -0, or a number with a fraction and
 * an integer part other than 0 (-12, 4207.13570). Python prints -0 as 0, 0.0000001 as 1E-7
 * and 1e3 as 1E+3. */
static int
number_is_key(const char *k, Py_ssize_t n)
{
    Py_ssize_t i = k[0] == '-', first = i;
    while (i < n && k[i] >= '0' && k[i] <= '9') {
        i++;
    }
    if (i == first || (k[first] == '0' && (i < n || first == 1))) {
        return 0; /* no digit, -0, or 0.<digits> */
    }
    if (i == n) {
        return 1;
    }
    if (k[i++] != '.' || i == n) {
        return 0;
    }
    while (i < n && k[i] >= '0' && k[i] <= '9') {
        i++;
    }
    return i == n;
}

/* The spans of one entry of `found`, checked against the text's length: 0, or -1 (error set). */
static int
entry_spans(PyObject *entry, Py_ssize_t len, Py_ssize_t span[4], long *flags)
{
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 5) {
        PyErr_SetString(PyExc_TypeError, "spill_references: an entry is not a 5-tuple");
        return -1;
    }
    for (int i = 0; i < 4; i++) {
        if (size_arg(PyTuple_GET_ITEM(entry, i), &span[i]) < 0) {
            return -1;
        }
    }
    *flags = PyLong_AsLong(PyTuple_GET_ITEM(entry, 4));
    if (*flags == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (span[0] < 0 || span[0] >= span[1] || span[1] > len || span[3] > len
        || span[2] > span[3]) {
        PyErr_SetString(PyExc_ValueError, "spill_references: an entry lies outside the text");
        return -1;
    }
    return 0;
}

INTERNAL PyObject *
spill_references(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_ssize_t at, limit;
    if (nargs != 6 || !PyList_Check(args[1]) || !(args[3] == Py_None || PySet_Check(args[3]))
        || !PyByteArray_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "spill_references(text, found: list, at, "
                                         "only: set | None, out: bytearray, limit)");
        return NULL;
    }
    if (size_arg(args[2], &at) < 0 || size_arg(args[5], &limit) < 0) {
        return NULL;
    }
    PyObject *found = args[1], *only = args[3], *out = args[4];
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const char *b = view.buf;
    int located = 0;
    for (; at >= 0 && at < PyList_GET_SIZE(found) && PyByteArray_GET_SIZE(out) < limit; at++) {
        Py_ssize_t span[4];
        long flags;
        if (entry_spans(PyList_GET_ITEM(found, at), view.len, span, &flags) < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        Py_ssize_t start = span[0], size = span[1] - span[0], key_size = span[3] - span[2];
        if (flags || span[2] < 0 || b[start] != '{' || key_size == 0) {
            break; /* not plain: Python reads it */
        }
        const char *key = b + span[2];
        if (key[0] == '"') {
            if (key_size < 2 || key[key_size - 1] != '"'
                || memchr(key, '\\', (size_t)key_size) != NULL) {
                break; /* a string with escapes: Python decodes it */
            }
            key++;
            key_size -= 2;
        }
        else if (!number_is_key(key, key_size)) {
            break; /* another number (0.5, 1e3, -0), true, null...: Python decodes it */
        }
        if (only != Py_None) {
            PyObject *k = PyUnicode_DecodeUTF8(key, key_size, "surrogatepass");
            int wanted = k == NULL ? -1 : PySet_Contains(only, k);
            Py_XDECREF(k);
            if (wanted < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
            if (!wanted) {
                continue;
            }
        }
        const char *text = b + start;
        int kind = contains(text, size, "\"location\"") || contains(text, size, "\\u")
                       ? MAY_LOCATE
                       : REFERENCE;
        located |= kind == MAY_LOCATE;
        Py_ssize_t old = PyByteArray_GET_SIZE(out);
        if (key_size > UINT32_MAX || size > UINT32_MAX
            || PyByteArray_Resize(out, old + 9 + key_size + size) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_OverflowError, "spill_references: an entry over 4 GB");
            }
            PyBuffer_Release(&view);
            return NULL;
        }
        char *record = PyByteArray_AS_STRING(out) + old;
        uint32_t sizes[2] = {(uint32_t)key_size, (uint32_t)size};
#if PY_BIG_ENDIAN
        sizes[0] = __builtin_bswap32(sizes[0]);
        sizes[1] = __builtin_bswap32(sizes[1]);
#endif
        record[0] = (char)kind;
        memcpy(record + 1, sizes, 8); /* struct "<BII", as providers._HEADER packs it */
        memcpy(record + 9, key, (size_t)key_size);
        memcpy(record + 9 + key_size, text, (size_t)size);
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(ni)", at, located);
}
