/* mrfbatch._jsonscan: the scanner's state and entry points, shared by the validating scanner
 * (_jsonscan_scan.c) and the Python module around it (_jsonscan.c, which documents both). */

#ifndef MRFBATCH_JSONSCAN_H
#define MRFBATCH_JSONSCAN_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Shared between this module's files only: not exported from the shared library, so calls
 * bind directly. */
#if defined(__GNUC__)
#define INTERNAL __attribute__((visibility("hidden")))
#else
#define INTERNAL
#endif

#define MAX_DEPTH 5000
#define FLAG_KEY_ESCAPED 1
#define FLAG_LONE_SURROGATE 2
/* Scans longer than this let other threads (the gzip reader) run meanwhile. */
#ifndef RELEASE_GIL_BYTES
#define RELEASE_GIL_BYTES (256 * 1024)
#endif

enum { SCAN_DONE, SCAN_MORE, SCAN_INVALID, SCAN_NOMEM };

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
    /* Containers that bring the depth to skim_depth are skimmed (_jsonscan_skim.c); 0: none.
     * skimming: resume_at is inside such a container, skim_carry the skim's state there. */
    int skim_depth, skimming, skim_carry;
    unsigned char in_object[MAX_DEPTH + 1]; /* one spare: the skim may write past the top */
} Scan;

/* One element of an array, as scan_elements found it. */
typedef struct {
    Py_ssize_t start, end;           /* buf[start:end] is the element */
    Py_ssize_t key_start, key_end; /* the last span of `key`'s value in it; -1 when none */
    int flags;
} Element;

#define MAX_ELEMENTS 4096
enum { AT_ELEMENT, AFTER_ELEMENT, CLOSED };

/* Fill the byte-class table; once, before any scan. */
INTERNAL void scan_init(void);

/* Record the span of a value of a depth-1 member named `key`: 0, or -1 when out of memory. */
INTERNAL int add_span(Scan *s, Py_ssize_t start, Py_ssize_t end);

/* Ready `s` for a new value, freeing its spans if they had outgrown inline_spans. */
INTERNAL void scan_reset(Scan *s);

/* Scan one value from b[p], or go on from s->resume_at when it is set (see _jsonscan_scan.c):
 * SCAN_DONE, SCAN_MORE, SCAN_INVALID or SCAN_NOMEM. */
INTERNAL int scan(Scan *s, Py_ssize_t p, int eof, const char *key, Py_ssize_t key_len);

/* Scan the elements of an array, many at a time (see _jsonscan_scan.c). */
INTERNAL int scan_run(Scan *s, Py_ssize_t *pos, int eof, const char *key, Py_ssize_t key_len,
                      Element *out, Py_ssize_t *count, int *state);

/* Four hex digits at b[p..p+3] (_jsonscan_scan.c): their value; -1 when one is not hex
 * (*bad is where), -2 when b[:n] ends first. */
INTERNAL long hex4(const unsigned char *b, Py_ssize_t n, Py_ssize_t p, Py_ssize_t *bad);

/* Structural validation of a container (_jsonscan_skim.c): SCAN_DONE, SCAN_MORE or
 * SCAN_INVALID; *p and *depth say where it stopped. */
INTERNAL int skim(Scan *s, Py_ssize_t *p, int *depth, int eof);

/* Pick the skim's implementation for this CPU; once, before any scan. */
INTERNAL void skim_init(void);
/* The names of the implementations this CPU runs (count of them in *count), best last. */
INTERNAL const char *const *skim_impls(int *count);
/* The implementation in use. */
INTERNAL const char *skim_impl(void);
/* Use the implementation called `name`: 0, or -1 when this CPU has none of that name. */
INTERNAL int skim_use(const char *name);

/* The UTF-8 check (_jsonscan_utf8.c): UTF8_VALID, UTF8_CUT or UTF8_INVALID, and where. */
enum { UTF8_VALID, UTF8_CUT, UTF8_INVALID };
INTERNAL int utf8_check(const unsigned char *b, Py_ssize_t n, Py_ssize_t *end);

#endif
