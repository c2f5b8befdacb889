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

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h> /* T_PYSSIZET, READONLY: also in 3.11 */
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && !defined(JSONSCAN_NO_SIMD)
#include <emmintrin.h>
#define JSONSCAN_SSE2 1
#endif

#define MAX_DEPTH 5000
#define FLAG_KEY_ESCAPED 1
#define FLAG_LONE_SURROGATE 2
/* Scans longer than this let other threads (the gzip reader) run meanwhile. */
#ifndef RELEASE_GIL_BYTES
#define RELEASE_GIL_BYTES (256 * 1024)
#endif

enum { SCAN_DONE, SCAN_MORE, SCAN_INVALID, SCAN_NOMEM };

/* Byte classes. */
#define C_PLAIN 1 /* may stand unescaped in a string: not '"', '\\' or < 0x20 */
#define C_BLANK 2 /* JSON whitespace */
#define C_DIGIT 4
#define C_HEX 8
static unsigned char cls[256];

typedef struct {
    Py_ssize_t start, end;
} Span;

typedef struct {
    const unsigned char *b;
    Py_ssize_t n;
    Py_ssize_t end;      /* SCAN_DONE: where the value ends */
    Py_ssize_t error_at; /* SCAN_INVALID: the offending byte */
    const char *error;   /* SCAN_INVALID: why */
    int flags;
    Span *spans;
    Py_ssize_t nspans, capacity;
    Span inline_spans[4];
    /* Where a scan can go on (SCAN_MORE), or starts again: just after a value inside the
     * value scanned, with `depth` containers open, in_object[] telling which are objects. */
    Py_ssize_t resume_at; /* -1: from the start */
    int depth;
    Py_ssize_t wanted; /* start of the value of a depth-1 member named `key`, or -1 */
    unsigned char in_object[MAX_DEPTH];
} Scan;

static int
add_span(Scan *s, Py_ssize_t start, Py_ssize_t end)
{
    if (s->nspans == s->capacity) {
        Py_ssize_t capacity = s->capacity * 2;
        Span *grown = s->spans == s->inline_spans ? NULL : s->spans;
        grown = realloc(grown, (size_t)capacity * sizeof(Span));
        if (grown == NULL) {
            return -1;
        }
        if (s->spans == s->inline_spans) {
            memcpy(grown, s->inline_spans, sizeof(s->inline_spans));
        }
        s->spans = grown;
        s->capacity = capacity;
    }
    s->spans[s->nspans].start = start;
    s->spans[s->nspans].end = end;
    s->nspans++;
    return 0;
}

/* Four hex digits at b[p..p+3]: their value, -1 if one is not hex, -2 if cut by the end. */
static inline long
hex4(const unsigned char *b, Py_ssize_t n, Py_ssize_t p, Py_ssize_t *bad)
{
    long value = 0;
    for (int i = 0; i < 4; i++) {
        if (p + i >= n) {
            return -2;
        }
        unsigned char c = b[p + i];
        if (!(cls[c] & C_HEX)) {
            *bad = p + i;
            return -1;
        }
        value = value * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return value;
}

/* The first offset from p on (or n) whose byte is '"', '\\' or a control character. */
static inline Py_ssize_t
plain_run(const unsigned char *b, Py_ssize_t p, Py_ssize_t n)
{
#ifdef JSONSCAN_SSE2
    /* 16 bytes at a time: a short string ends in the first block, one predictable branch. */
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i control = _mm_set1_epi8(0x1f);
    while (p + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(b + p));
        __m128i stop = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            _mm_cmpeq_epi8(_mm_min_epu8(v, control), v)); /* v <= 0x1f */
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask) {
            return p + __builtin_ctz(mask);
        }
        p += 16;
    }
#else
    /* 8 bytes at a time (SWAR): the lowest flagged byte of each test is exact. */
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (p + 8 <= n) {
        uint64_t x;
        memcpy(&x, b + p, 8);
        uint64_t q = x ^ (ones * '"'), e = x ^ (ones * '\\');
        uint64_t stop = ((q - ones) & ~q) | ((e - ones) & ~e) | ((x - ones * 0x20) & ~x);
        stop &= highs;
        if (stop) {
#if PY_LITTLE_ENDIAN
            return p + (__builtin_ctzll(stop) >> 3);
#else
            return p + (__builtin_clzll(stop) >> 3);
#endif
        }
        p += 8;
    }
#endif
    while (p < n && (cls[b[p]] & C_PLAIN)) {
        p++;
    }
    return p;
}

/* The rest of a string whose opening quote is at b[p - 1]. Returns the offset after the closing
 * quote, or -1 (cut by the end of buf) or -2 (invalid, s->error set). `*escaped` is set when
 * the string holds an escape. */
static inline Py_ssize_t
scan_string(Scan *s, Py_ssize_t p, int *escaped)
{
    const unsigned char *b = s->b;
    const Py_ssize_t n = s->n;
    for (;;) {
        p = plain_run(b, p, n); /* the hot loop: most bytes are in short strings */
        if (p >= n) {
            return -1;
        }
        unsigned char c = b[p];
        if (c == '"') {
            return p + 1;
        }
        if (c != '\\') {
            s->error_at = p;
            s->error = "control character in string";
            return -2;
        }
        *escaped = 1;
        if (p + 1 >= n) {
            return -1;
        }
        switch (b[p + 1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        case 'u':
            break;
        default:
            s->error_at = p + 1;
            s->error = "invalid escape";
            return -2;
        }
        Py_ssize_t bad = 0;
        long unit = hex4(b, n, p + 2, &bad);
        if (unit < 0) {
            if (unit == -2) {
                return -1;
            }
            s->error_at = bad;
            s->error = "invalid \\u escape";
            return -2;
        }
        if (unit >= 0xDC00 && unit <= 0xDFFF) {
            /* yajl writes it as UTF-8 that ijson cannot decode; msgspec rejects it too. */
            s->error_at = p;
            s->error = "unpaired low surrogate escape";
            return -2;
        }
        p += 6;
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            /* A high surrogate: paired when a low one follows right away. */
            if (p >= n || (b[p] == '\\' && p + 1 >= n)) {
                return -1;
            }
            if (b[p] == '\\' && b[p + 1] == 'u') {
                long low = hex4(b, n, p + 2, &bad);
                if (low == -2) {
                    return -1;
                }
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    p += 6;
                    continue;
                }
                /* Not a low half (or not hex: reported when that escape is scanned). */
            }
            s->flags |= FLAG_LONE_SURROGATE;
        }
    }
}

/* The first offset from p on (or n) whose byte is not a digit. */
static inline Py_ssize_t
digit_run(const unsigned char *b, Py_ssize_t p, Py_ssize_t n)
{
#ifdef JSONSCAN_SSE2
    const __m128i zero = _mm_set1_epi8('0'), nine = _mm_set1_epi8(9);
    while (p + 16 <= n) {
        __m128i v = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(b + p)), zero);
        __m128i digit = _mm_cmpeq_epi8(_mm_min_epu8(v, nine), v); /* v - '0' <= 9 */
        unsigned mask = ~(unsigned)_mm_movemask_epi8(digit) & 0xffffu;
        if (mask) {
            return p + __builtin_ctz(mask);
        }
        p += 16;
    }
#endif
    while (p < n && (cls[b[p]] & C_DIGIT)) {
        p++;
    }
    return p;
}

/* The rest of a number whose first byte is at b[p]. Returns the offset after it (n when it
 * touches the end of buf, where it may go on), -1 when cut where it cannot end (after `-`, `.`,
 * `e`), -2 when invalid. */
static inline Py_ssize_t
scan_number(Scan *s, Py_ssize_t p)
{
    const unsigned char *b = s->b;
    const Py_ssize_t n = s->n;
    if (b[p] == '-') {
        p++;
        if (p >= n) {
            return -1;
        }
        if (!(cls[b[p]] & C_DIGIT)) {
            s->error_at = p;
            s->error = "invalid number: expected a digit after '-'";
            return -2;
        }
    }
    if (b[p] == '0') {
        p++;
        if (p < n && (cls[b[p]] & C_DIGIT)) {
            s->error_at = p;
            s->error = "invalid number: leading zero";
            return -2;
        }
    }
    else {
        p = digit_run(b, p, n);
    }
    if (p < n && b[p] == '.') {
        p++;
        if (p >= n) {
            return -1;
        }
        if (!(cls[b[p]] & C_DIGIT)) {
            s->error_at = p;
            s->error = "invalid number: expected a digit after '.'";
            return -2;
        }
        p = digit_run(b, p, n);
    }
    if (p < n && (b[p] == 'e' || b[p] == 'E')) {
        p++;
        if (p < n && (b[p] == '+' || b[p] == '-')) {
            p++;
        }
        if (p >= n) {
            return -1;
        }
        if (!(cls[b[p]] & C_DIGIT)) {
            s->error_at = p;
            s->error = "invalid number: expected a digit in the exponent";
            return -2;
        }
        while (p < n && (cls[b[p]] & C_DIGIT)) {
            p++;
        }
    }
    return p;
}

#define INVALID(at, why)      \
    do {                      \
        s->error_at = (at);   \
        s->error = (why);     \
        return SCAN_INVALID;  \
    } while (0)

#define SKIP_BLANKS()                                                        \
    do {                                                                     \
        if (__builtin_expect(p >= n || (cls[b[p]] & C_BLANK), 0)) {          \
            while (p < n && (cls[b[p]] & C_BLANK)) {                         \
                p++;                                                         \
            }                                                                \
            if (p >= n) {                                                    \
                goto more;                                                   \
            }                                                                \
        }                                                                    \
    } while (0)

/* Whether the string text b[p:q] (between its quotes, valid, with escapes) spells `key`. */
static int
unescaped_equals(const unsigned char *b, Py_ssize_t p, Py_ssize_t q, const char *key,
                 Py_ssize_t key_len)
{
    Py_ssize_t j = 0, bad;
    unsigned char out[4];
    while (p < q) {
        int len = 1;
        if (b[p] != '\\') {
            out[0] = b[p++];
        }
        else if (b[p + 1] != 'u') {
            const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
            out[0] = (unsigned char)to[strchr(from, b[p + 1]) - from];
            p += 2;
        }
        else {
            long cp = hex4(b, q, p + 2, &bad);
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && p + 6 <= q && b[p] == '\\' && b[p + 1] == 'u') {
                long low = hex4(b, q, p + 2, &bad);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
            }
            if (cp < 0x80) {
                out[0] = (unsigned char)cp;
            }
            else if (cp < 0x800) {
                out[0] = (unsigned char)(0xC0 | (cp >> 6));
                out[1] = (unsigned char)(0x80 | (cp & 0x3F));
                len = 2;
            }
            else if (cp < 0x10000) {
                out[0] = (unsigned char)(0xE0 | (cp >> 12));
                out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (unsigned char)(0x80 | (cp & 0x3F));
                len = 3;
            }
            else {
                out[0] = (unsigned char)(0xF0 | (cp >> 18));
                out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                out[3] = (unsigned char)(0x80 | (cp & 0x3F));
                len = 4;
            }
        }
        if (j + len > key_len || memcmp(out, key + j, (size_t)len) != 0) {
            return 0;
        }
        j += len;
    }
    return j == key_len;
}

/* Scan from p, or from s->resume_at when it is set; on SCAN_MORE, s->resume_at and the rest
 * of the resume state say where to go on once buf holds more. */
static int
scan(Scan *s, Py_ssize_t p, int eof, const char *key, Py_ssize_t key_len)
{
    const unsigned char *b = s->b;
    const Py_ssize_t n = s->n;
    unsigned char *in_object = s->in_object; /* per open container: object (1) or array (0) */
    int depth = 0;
    Py_ssize_t wanted = -1;
    Py_ssize_t q;
    int escaped, match;
    const char *literal;
    /* The last point just after a value, where a scan can resume: depth only grows after it,
     * so in_object[] below its depth stays as it was there. */
    Py_ssize_t safe = -1;
    int safe_depth = 0;
    Py_ssize_t safe_wanted = -1;

    if (s->resume_at >= 0) {
        p = s->resume_at;
        depth = s->depth;
        wanted = s->wanted;
        goto after_value;
    }

value:
    SKIP_BLANKS();
    switch (b[p]) {
    case '"':
        escaped = 0;
        q = scan_string(s, p + 1, &escaped);
        if (q < 0) {
            if (q == -1) {
                goto more;
            }
            return SCAN_INVALID;
        }
        p = q;
        goto after_value;
    case '{':
        if (depth == MAX_DEPTH) {
            INVALID(p, "nested deeper than 5000 levels");
        }
        in_object[depth++] = 1;
        p++;
        SKIP_BLANKS();
        if (b[p] == '}') {
            p++;
            depth--;
            goto after_value;
        }
        goto member;
    case '[':
        if (depth == MAX_DEPTH) {
            INVALID(p, "nested deeper than 5000 levels");
        }
        in_object[depth++] = 0;
        p++;
        SKIP_BLANKS();
        if (b[p] == ']') {
            p++;
            depth--;
            goto after_value;
        }
        goto value;
    case 't':
        literal = "true";
        goto rest_of_literal;
    case 'f':
        literal = "false";
        goto rest_of_literal;
    case 'n':
        literal = "null";
        goto rest_of_literal;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        q = scan_number(s, p);
        if (q == -2) {
            return SCAN_INVALID;
        }
        if (q == -1 || (q == n && !eof)) {
            goto more; /* the next chunk may hold more of the number */
        }
        p = q;
        goto after_value;
    default:
        INVALID(p, "expected a value");
    }

rest_of_literal:
    for (const char *c = literal + 1; *c; c++) {
        p++;
        if (p >= n) {
            goto more;
        }
        if (b[p] != (unsigned char)*c) {
            INVALID(p, "invalid literal");
        }
    }
    p++;
    goto after_value;

member: /* at the first byte of a key */
    if (b[p] != '"') {
        INVALID(p, "expected a key (a string)");
    }
    escaped = 0;
    q = scan_string(s, p + 1, &escaped);
    if (q < 0) {
        if (q == -1) {
            goto more;
        }
        return SCAN_INVALID;
    }
    match = 0;
    if (depth == 1) {
        if (escaped) {
            s->flags |= FLAG_KEY_ESCAPED;
            match = key != NULL && unescaped_equals(b, p + 1, q - 1, key, key_len);
        }
        else if (key != NULL && q - p - 2 == key_len && memcmp(b + p + 1, key, key_len) == 0) {
            match = 1;
        }
    }
    p = q;
    SKIP_BLANKS();
    if (b[p] != ':') {
        INVALID(p, "expected ':'");
    }
    p++;
    SKIP_BLANKS();
    if (match) {
        wanted = p;
    }
    goto value;

after_value:
    if (depth == 0) {
        s->end = p;
        return SCAN_DONE;
    }
    if (wanted >= 0 && depth == 1) {
        if (add_span(s, wanted, p) < 0) {
            return SCAN_NOMEM;
        }
        wanted = -1;
    }
    safe = p;
    safe_depth = depth;
    safe_wanted = wanted;
    SKIP_BLANKS();
    if (in_object[depth - 1]) {
        if (b[p] == ',') {
            p++;
            SKIP_BLANKS();
            goto member;
        }
        if (b[p] == '}') {
            p++;
            depth--;
            goto after_value;
        }
        INVALID(p, "expected ',' or '}'");
    }
    if (b[p] == ',') {
        p++;
        goto value;
    }
    if (b[p] == ']') {
        p++;
        depth--;
        goto after_value;
    }
    INVALID(p, "expected ',' or ']'");

more:
    s->resume_at = safe;
    s->depth = safe_depth;
    s->wanted = safe_wanted;
    return SCAN_MORE;
}

static PyObject *ScanError;

/* What a scan that ran out of data has found so far, to go on from there with more data. The
 * offsets are relative to the start of the value, which stays put while buf grows. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t resume_at, wanted, scanned;
    int depth, flags;
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

/* Ready `s` for a new value, freeing its spans if they had outgrown inline_spans. */
static void
scan_reset(Scan *s)
{
    if (s->spans != s->inline_spans) {
        free(s->spans);
    }
    s->spans = s->inline_spans;
    s->capacity = sizeof(s->inline_spans) / sizeof(Span);
    s->nspans = 0;
    s->end = -1;
    s->error_at = -1;
    s->error = NULL;
    s->flags = 0;
    s->resume_at = -1;
    s->depth = 0;
    s->wanted = -1;
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

static PyObject *
scan_value(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 && nargs != 5) {
        PyErr_Format(PyExc_TypeError, "scan_value() takes 4 or 5 arguments (%zd given)", nargs);
        return NULL;
    }
    const Partial *partial = NULL;
    if (nargs == 5 && args[4] != Py_None) {
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
    int rc = SCAN_DONE;
    Py_ssize_t from = pos;
    if (partial != NULL) {
        s->resume_at = from = pos + partial->resume_at;
        s->depth = partial->depth;
        s->wanted = partial->wanted < 0 ? -1 : pos + partial->wanted;
        s->flags = partial->flags;
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

/* One element of an array, as scan_elements found it. */
typedef struct {
    Py_ssize_t start, end;           /* buf[start:end] is the element */
    Py_ssize_t key_start, key_end; /* the last span of `key`'s value in it; -1 when none */
    int flags;
} Element;

#define MAX_ELEMENTS 4096
enum { AT_ELEMENT, AFTER_ELEMENT, CLOSED };

/* Scan the elements of an array from buf[pos] (after its `[` or a `,`) until the buffer ends,
 * an element is cut or not JSON, the array closes, or MAX_ELEMENTS are found. Returns the
 * elements found and where it stopped. A cut element's Partial is returned too, so that its
 * scan goes on from there. */
static int
scan_run(Scan *s, Py_ssize_t *pos, int eof, const char *key, Py_ssize_t key_len, Element *out,
         Py_ssize_t *count, int *state)
{
    const unsigned char *b = s->b;
    const Py_ssize_t n = s->n;
    Py_ssize_t p = *pos;
    int rc = SCAN_DONE;
    *count = 0;
    *state = AT_ELEMENT;
    while (*count < MAX_ELEMENTS) {
        while (p < n && (cls[b[p]] & C_BLANK)) {
            p++;
        }
        if (p >= n) {
            break;
        }
        scan_reset(s);
        rc = scan(s, p, eof, key, key_len);
        if (rc != SCAN_DONE) {
            break;
        }
        Element *e = &out[(*count)++];
        e->start = p;
        e->end = s->end;
        e->key_start = s->nspans ? s->spans[s->nspans - 1].start : -1;
        e->key_end = s->nspans ? s->spans[s->nspans - 1].end : -1;
        e->flags = s->flags;
        p = s->end;
        while (p < n && (cls[b[p]] & C_BLANK)) {
            p++;
        }
        if (p >= n || (b[p] != ',' && b[p] != ']')) {
            *state = AFTER_ELEMENT; /* the caller reads (or rejects) the separator */
            break;
        }
        p++;
        if (b[p - 1] == ']') {
            *state = CLOSED;
            break;
        }
    }
    *pos = p;
    return rc;
}

static PyObject *
scan_elements(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "scan_elements() takes 4 arguments (%zd given)", nargs);
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
    {"scan_value", (PyCFunction)(void (*)(void))scan_value, METH_FASTCALL,
     "scan_value(buf, pos, eof, key, partial=None, /)\n--\n\n"
     "Validate the JSON value at buf[pos]: (end, spans, flags); None or a Partial when it\n"
     "needs more data (pass the Partial back with more); or ScanError((offset, reason)).\n"
     "See the module's C source for the details."},
    {"scan_elements", (PyCFunction)(void (*)(void))scan_elements, METH_FASTCALL,
     "scan_elements(buf, pos, eof, key, /)\n--\n\n"
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
    for (int c = 0; c < 256; c++) {
        cls[c] = 0;
        if (c >= 0x20 && c != '"' && c != '\\') {
            cls[c] |= C_PLAIN;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            cls[c] |= C_BLANK;
        }
        if (c >= '0' && c <= '9') {
            cls[c] |= C_DIGIT | C_HEX;
        }
        if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) {
            cls[c] |= C_HEX;
        }
    }
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
        || PyModule_AddIntConstant(module, "CLOSED", CLOSED) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
