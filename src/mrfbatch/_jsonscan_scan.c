/* mrfbatch._jsonscan's scanner: validates JSON and finds where values end, in one pass over the
 * bytes (what it accepts, and how the module calls it: _jsonscan.c). */

#include "_jsonscan.h"
#if defined(__SSE2__) && !defined(JSONSCAN_NO_SIMD)
#include <emmintrin.h>
#define JSONSCAN_SSE2 1
#endif

/* Byte classes. */
#define C_PLAIN 1 /* may stand unescaped in a string: not '"', '\\' or < 0x20 */
#define C_BLANK 2 /* JSON whitespace */
#define C_DIGIT 4
#define C_HEX 8
static unsigned char cls[256];

int
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
long
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
int
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
        if (s->skimming) {
            goto skim_more;
        }
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
        if (depth == s->skim_depth) {
            goto skim_container;
        }
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
        if (depth == s->skim_depth) {
            goto skim_container;
        }
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

skim_container: /* just after the opening bracket of a container only checked structurally */
    s->skim_carry = 0;
skim_more:
    s->skimming = 0;
    switch (skim(s, &p, &depth, eof)) {
    case SCAN_DONE:
        goto after_value;
    case SCAN_MORE:
        s->resume_at = p;
        s->depth = depth;
        s->wanted = wanted;
        s->skimming = 1;
        return SCAN_MORE;
    default:
        return SCAN_INVALID;
    }

more:
    s->resume_at = safe;
    s->depth = safe_depth;
    s->wanted = safe_wanted;
    return SCAN_MORE;
}

/* Ready `s` for a new value, freeing its spans if they had outgrown inline_spans. */
void
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
    s->skimming = 0;
    s->skim_carry = 0;
}

/* Scan the elements of an array from buf[pos] (after its `[` or a `,`) until the buffer ends,
 * an element is cut or not JSON, the array closes, or MAX_ELEMENTS are found. Returns the
 * elements found and where it stopped. A cut element's Partial is returned too, so that its
 * scan goes on from there. */
int
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

void
scan_init(void)
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
}
