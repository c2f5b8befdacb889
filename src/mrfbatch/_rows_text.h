/* mrfbatch._rows: a small reader of JSON text, for the usual shapes only: each caller gives up
 * (GIVE_UP) on anything else, which Python then decodes. What a reader of rate items
 * (_rows_rates.c) accepts is valid JSON, given that the scanner has checked the structure its
 * skim checks (strings closed, no raw control character in them, UTF-8): so extracting every
 * item needs no full scan of them first (Scanner._items). */

#ifndef MRFBATCH_ROWS_TEXT_H
#define MRFBATCH_ROWS_TEXT_H

#include "_rows.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

/* A string whose opening quote was consumed: its text, without escapes (else GIVE_UP). Most
 * are short: 16 bytes are looked at a time (SSE2, on every x86-64), not by two memchr calls. */
static inline int
string(Text *t, const char **start, Py_ssize_t *size)
{
    const char *s = t->b + t->p, *end = t->b + t->n, *p = s;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    for (; end - p >= 16; p += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote));
        unsigned b = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash));
        if (b && (q == 0 || __builtin_ctz(b) < __builtin_ctz(q))) {
            return GIVE_UP; /* an escape */
        }
        if (q) {
            p += __builtin_ctz(q);
            goto closed;
        }
    }
#endif
    for (; p < end && *p != '"'; p++) {
        if (*p == '\\') {
            return GIVE_UP;
        }
    }
    if (p == end) {
        return GIVE_UP;
    }
#if defined(__SSE2__)
closed:
#endif
    *start = s;
    *size = p - s;
    t->p += *size + 1;
    return DONE;
}

/* Whether s[0:n] is a number as JSON writes it, -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?:
 * the reader accepts no other (`01`, `1.`, `.5` are left to Python, which reports them). */
static inline int
json_number(const char *s, Py_ssize_t n)
{
#define DIGIT(i) ((i) < n && s[i] >= '0' && s[i] <= '9')
    Py_ssize_t i = s[0] == '-';
    if (!DIGIT(i)) {
        return 0;
    }
    if (s[i++] != '0') {
        while (DIGIT(i)) {
            i++;
        }
    }
    if (i < n && s[i] == '.') {
        i++;
        if (!DIGIT(i)) {
            return 0;
        }
        while (DIGIT(i)) {
            i++;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i += 1 + (i + 1 < n && (s[i + 1] == '+' || s[i + 1] == '-'));
        if (!DIGIT(i)) {
            return 0;
        }
        while (DIGIT(i)) {
            i++;
        }
    }
    return i == n;
#undef DIGIT
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
static inline int
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
static inline int
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

/* An object's members: calls member(t, key, size, arg) after each `"key":` (a key with an
 * escape gives up); the `{` is consumed. */
typedef int (*Member)(Text *t, const char *key, Py_ssize_t size, void *arg);

static inline int
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

static inline int
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

#endif
