/* mrfbatch._rows: growing buffers in Arrow's layout (validity bitmaps, int32 offsets, data). */

#ifndef MRFBATCH_ROWS_ARROW_H
#define MRFBATCH_ROWS_ARROW_H

#include "_rows.h"

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static inline int
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
    /* memcpy to NULL is undefined even for 0 bytes, and an empty Buf has no data yet (an
       empty first string); UBSan in .ci/sanitizers stops on it. */
    if (size == 0) {
        return 0;
    }
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
static inline int
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
        PyErr_SetString(PyExc_OverflowError, "rows: over 2 GB of text in one batch");
        return -1;
    }
    return buf_int32(&s->offsets, s->data.len);
}

/* Append bits `index` to `index + count - 1` to a bitmap, all set or all clear. */
static inline int
bits_add(Buf *bitmap, Py_ssize_t index, Py_ssize_t count, int set)
{
    Py_ssize_t more = (index + count + 7) / 8 - bitmap->len;
    if (more > 0) {
        if (buf_reserve(bitmap, more) < 0) {
            return -1;
        }
        memset(bitmap->data + bitmap->len, 0, (size_t)more);
        bitmap->len += more;
    }
    if (set) {
        unsigned char *bits = (unsigned char *)bitmap->data;
        Py_ssize_t i = index, end = index + count;
        for (; i < end && i % 8; i++) {
            bits[i / 8] |= (unsigned char)(1u << (i % 8));
        }
        if (end - i >= 8) {
            memset(bits + i / 8, 0xff, (size_t)((end - i) / 8));
            i += (end - i) / 8 * 8;
        }
        for (; i < end; i++) {
            bits[i / 8] |= (unsigned char)(1u << (i % 8));
        }
    }
    return 0;
}

/* Append items `index` to `index + count - 1` to strings `s`, each text[0:size] (null when text
 * is NULL): what strings_add `count` times gives, in a few copies however large `count`. */
static inline int
strings_repeat(Strings *s, Py_ssize_t index, const char *text, Py_ssize_t size, Py_ssize_t count)
{
    if (count <= 0) {
        return 0;
    }
    if (index == 0 && buf_int32(&s->offsets, 0) < 0) {
        return -1;
    }
    Py_ssize_t bytes = text != NULL ? size * count : 0;
    if (s->data.len + bytes > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "rows: over 2 GB of text in one batch");
        return -1;
    }
    if (bits_add(&s->valid, index, count, text != NULL) < 0 || buf_reserve(&s->data, bytes) < 0
        || buf_reserve(&s->offsets, count * (Py_ssize_t)sizeof(int32_t)) < 0) {
        return -1;
    }
    int32_t *offsets = (int32_t *)(s->offsets.data + s->offsets.len);
    const int32_t first = (int32_t)s->data.len, step = (int32_t)(bytes ? size : 0);
    for (Py_ssize_t i = 0; i < count; i++) {
        offsets[i] = first + (int32_t)(i + 1) * step;
    }
    s->offsets.len += count * (Py_ssize_t)sizeof(int32_t);
    if (bytes) { /* the text once, then what is written so far copied after itself */
        char *out = s->data.data + s->data.len;
        memcpy(out, text, (size_t)size);
        for (Py_ssize_t done = size; done < bytes;) {
            Py_ssize_t n = done < bytes - done ? done : bytes - done;
            memcpy(out + done, out, (size_t)n);
            done += n;
        }
        s->data.len += bytes;
    }
    return 0;
}

static inline void
buf_free(Buf *b)
{
    PyMem_Free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The buffers as a tuple of bytes, for take(); one of `offsets` that is empty (no item was
 * gathered) becomes the single offset 0 that Arrow expects. */
static inline PyObject *
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

#endif
