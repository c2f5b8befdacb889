/* mrfbatch._jsonscan's skim: structural validation of a container nobody will decode.
 *
 * The scanner (_jsonscan_scan.c) hands a container to skim() when it opens one at
 * Scan.skim_depth (an unwanted in_network item's negotiated_rates, say). The skim finds where
 * the container closes and checks, on the way, what structural validation promises (the
 * `validate: structural` mode, docs/engines.md):
 *
 *   - strings are closed, and every escape is one of \" \\ \/ \b \f \n \r \t or \u and four
 *     hex digits;
 *   - no control character (< 0x20) stands inside a string, and none but blanks outside one;
 *   - brackets balance and each closes the kind it opened; no backslash or byte >= 0x80 stands
 *     outside a string.
 *
 * UTF-8 is checked for every byte by the caller (engines/buffer.py). Literals, numbers, and the
 * commas and colons inside the container are not checked: `validate: full` scans them as the
 * rest of the file is scanned.
 *
 * It works 64 bytes at a time, as simdjson's first stage does: a block becomes bit masks of its
 * quotes, backslashes, brackets and control bytes; the escaped bytes follow from the runs of
 * backslashes, the bytes inside strings from a prefix XOR of the unescaped quotes, and only the
 * brackets outside strings (and the escapes) are then visited one by one. The masks come from
 * AVX2 where the CPU has it, else from SSE2 (every x86-64), else from plain C; all three give
 * the same masks (tests/test_skim.py runs each).
 */

#include "_jsonscan.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SKIM_X86 1
#endif

/* Bit i of each mask is about byte i of a block. loose: the control bytes other than tab, LF
 * and CR, which may not stand outside strings either. */
typedef struct {
    uint64_t quote, backslash, open, close, control, loose, high;
} Masks;

static const char *impl_name = "portable";
static void (*classify)(const unsigned char *block, Masks *m);

static void
classify_portable(const unsigned char *block, Masks *m)
{
    uint64_t quote = 0, backslash = 0, open = 0, close = 0, control = 0, loose = 0, high = 0;
    for (int i = 0; i < 64; i++) {
        unsigned char c = block[i];
        uint64_t bit = 1ull << i;
        quote |= c == '"' ? bit : 0;
        backslash |= c == '\\' ? bit : 0;
        open |= (c | 0x20) == '{' ? bit : 0; /* '[' is 0x5B, '{' 0x7B */
        close |= (c | 0x20) == '}' ? bit : 0;
        control |= c < 0x20 ? bit : 0;
        loose |= (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ? bit : 0;
        high |= c >= 0x80 ? bit : 0;
    }
    m->quote = quote;
    m->backslash = backslash;
    m->open = open;
    m->close = close;
    m->control = control;
    m->loose = loose;
    m->high = high;
}

/* Bit i set when bit i or an odd number of bits below it are set in x: which bytes lie after an
 * opening quote and before its closing one (the opening quote itself included). */
static inline uint64_t
prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}

#ifdef SKIM_X86
#define SSE_EQ(v, c) _mm_cmpeq_epi8((v), _mm_set1_epi8((char)(c)))
#define SSE_MASK(v) ((uint64_t)(unsigned)_mm_movemask_epi8(v) & 0xffffu)

static void
classify_sse2(const unsigned char *block, Masks *m)
{
    Masks r = {0};
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * k));
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        __m128i blank = _mm_or_si128(_mm_or_si128(SSE_EQ(v, '\t'), SSE_EQ(v, '\n')),
                                     SSE_EQ(v, '\r'));
        int shift = 16 * k;
        r.quote |= SSE_MASK(SSE_EQ(v, '"')) << shift;
        r.backslash |= SSE_MASK(SSE_EQ(v, '\\')) << shift;
        r.open |= SSE_MASK(SSE_EQ(folded, '{')) << shift;
        r.close |= SSE_MASK(SSE_EQ(folded, '}')) << shift;
        r.control |= SSE_MASK(control) << shift;
        r.loose |= SSE_MASK(_mm_andnot_si128(blank, control)) << shift;
        r.high |= SSE_MASK(v) << shift;
    }
    *m = r;
}

#define AVX_EQ(v, c) _mm256_cmpeq_epi8((v), _mm256_set1_epi8((char)(c)))
#define AVX_MASK(v) ((uint64_t)(uint32_t)_mm256_movemask_epi8(v))

__attribute__((target("avx2"))) static void
classify_avx2(const unsigned char *block, Masks *m)
{
    Masks r = {0};
    for (int k = 0; k < 2; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(block + 32 * k));
        __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        __m256i control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
        __m256i blank = _mm256_or_si256(_mm256_or_si256(AVX_EQ(v, '\t'), AVX_EQ(v, '\n')),
                                        AVX_EQ(v, '\r'));
        int shift = 32 * k;
        r.quote |= AVX_MASK(AVX_EQ(v, '"')) << shift;
        r.backslash |= AVX_MASK(AVX_EQ(v, '\\')) << shift;
        r.open |= AVX_MASK(AVX_EQ(folded, '{')) << shift;
        r.close |= AVX_MASK(AVX_EQ(folded, '}')) << shift;
        r.control |= AVX_MASK(control) << shift;
        r.loose |= AVX_MASK(_mm256_andnot_si256(blank, control)) << shift;
        r.high |= AVX_MASK(v) << shift;
    }
    *m = r;
}
#endif

/* The bytes of a block escaped by a backslash, from its backslash mask and whether the byte
 * before the block was an unescaped backslash (*carry, updated for the next block). Blocks
 * with backslashes are rare in these files, so the runs are walked bit by bit. */
static inline uint64_t
escaped_bytes(uint64_t backslash, int *carry)
{
    uint64_t escaped = 0;
    if (*carry) {
        escaped = 1;
        backslash &= ~1ull; /* an escaped backslash escapes nothing */
    }
    *carry = 0;
    while (backslash) {
        int i = __builtin_ctzll(backslash);
        if (i == 63) {
            *carry = 1;
            break;
        }
        escaped |= 1ull << (i + 1);
        backslash &= ~(3ull << i); /* this one, and the next if it is the one escaped */
    }
    return escaped;
}

static inline int
is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* Check the escape whose backslash is at b[q]: 0, -1 with the error set, or -2 when the
 * buffer ends inside it. */
static int
check_escape(Scan *s, Py_ssize_t q)
{
    const unsigned char *b = s->b;
    if (q + 1 >= s->n) {
        return -2;
    }
    switch (b[q + 1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return 0;
    case 'u':
        for (int i = 2; i < 6; i++) {
            if (q + i >= s->n) {
                return -2;
            }
            if (!is_hex(b[q + i])) {
                s->error_at = q + i;
                s->error = "invalid \\u escape";
                return -1;
            }
        }
        return 0;
    default:
        s->error_at = q + 1;
        s->error = "invalid escape";
        return -1;
    }
}

/* Skim the container whose opening bracket is just before b[*p] and brought the depth to
 * *depth (== s->skim_depth), or go on from where a skim stopped (*p, *depth, s->skim_carry).
 * SCAN_DONE: *p is just after its closing bracket, *depth one less than skim_depth.
 * SCAN_MORE: the buffer ended first; *p is where to go on (a block start: no block is taken
 * unless the buffer holds 6 bytes past it, for the escape that may straddle its end),
 * *depth, in_object[] and s->skim_carry say how. SCAN_INVALID: s->error, s->error_at set. */
int
skim(Scan *s, Py_ssize_t *pp, int *pdepth, int eof)
{
    const unsigned char *b = s->b;
    const Py_ssize_t n = s->n;
    unsigned char *in_object = s->in_object;
    const int base = s->skim_depth - 1;
    Py_ssize_t p = *pp;
    int depth = *pdepth;
    uint64_t in_string = (s->skim_carry & 1) ? ~0ull : 0;
    int backslash_carry = (s->skim_carry >> 1) & 1;
    unsigned char padded[64];
    Masks m;

    for (;;) {
        const unsigned char *block = b + p;
        Py_ssize_t len = n - p;
        if (len < 64 + 6 && !eof) {
            break; /* more data first: a block must not end in the last bytes of the buffer */
        }
        if (len < 64) {
            if (len <= 0) {
                break;
            }
            memset(padded, ' ', sizeof padded);
            memcpy(padded, block, (size_t)len);
            block = padded;
        }
        else {
            len = 64;
        }
        classify(block, &m);
        const uint64_t valid = len == 64 ? ~0ull : (1ull << len) - 1;
        int next_backslash_carry = backslash_carry;
        uint64_t escaped = 0;
        if (m.backslash || backslash_carry) {
            escaped = escaped_bytes(m.backslash & valid, &next_backslash_carry);
        }
        uint64_t inside = prefix_xor(m.quote & ~escaped & valid) ^ in_string;

        /* Brackets outside strings, in order, until the container closes. */
        uint64_t brackets = (m.open | m.close) & ~inside & valid;
        int limit = (int)len, bad = 64, closed = 0;
        const char *why = NULL;
        while (brackets) {
            int i = __builtin_ctzll(brackets);
            brackets &= brackets - 1;
            unsigned char c = block[i];
            if ((c | 0x20) == '{') {
                if (depth == MAX_DEPTH) {
                    bad = i;
                    why = "nested deeper than 5000 levels";
                    break;
                }
                in_object[depth++] = c == '{';
                continue;
            }
            if (in_object[depth - 1] != (c == '}')) {
                bad = i;
                why = in_object[depth - 1] ? "expected '}' to close the object"
                                           : "expected ']' to close the array";
                break;
            }
            if (--depth == base) {
                limit = i + 1;
                closed = 1;
                break;
            }
        }

        const uint64_t mine = limit == 64 ? ~0ull : (1ull << limit) - 1;
        uint64_t wrong = ((m.control & inside) | ((m.loose | m.backslash | m.high) & ~inside))
                         & valid & mine;
        if (wrong && __builtin_ctzll(wrong) < bad) {
            int i = __builtin_ctzll(wrong);
            uint64_t bit = 1ull << i;
            s->error_at = p + i;
            s->error = (m.control & inside & bit)  ? "control character in string"
                       : (m.backslash & bit)       ? "backslash outside a string"
                       : (m.high & bit)            ? "byte >= 0x80 outside a string"
                                                   : "control character outside a string";
            return SCAN_INVALID;
        }
        /* Escapes inside strings; one whose text runs past the buffer's end at eof is cut. */
        uint64_t starts = m.backslash & ~escaped & inside & valid & mine;
        while (starts) {
            int i = __builtin_ctzll(starts);
            starts &= starts - 1;
            if (i > bad) {
                break;
            }
            int rc = check_escape(s, p + i);
            if (rc == -1) {
                return SCAN_INVALID;
            }
            if (rc == -2) {
                /* Only at eof (a block has 6 bytes after it): the string is cut. Nothing is
                 * left to scan, should the caller try again. */
                *pp = n;
                *pdepth = depth;
                return SCAN_MORE;
            }
        }
        if (bad < 64) {
            s->error_at = p + bad;
            s->error = why;
            return SCAN_INVALID;
        }
        if (closed) {
            *pp = p + limit;
            *pdepth = depth;
            s->skim_carry = 0;
            return SCAN_DONE;
        }
        if (len < 64) {
            p = n; /* eof inside the container: all is scanned, should the caller try again */
            break;
        }
        p += 64;
        in_string = (inside >> 63) ? ~0ull : 0;
        backslash_carry = next_backslash_carry;
    }
    *pp = p;
    *pdepth = depth;
    s->skim_carry = (int)(in_string & 1) | (backslash_carry << 1);
    return SCAN_MORE;
}

void
skim_init(void)
{
    classify = classify_portable;
    impl_name = "portable";
#ifdef SKIM_X86
    classify = classify_sse2;
    impl_name = "sse2";
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        classify = classify_avx2;
        impl_name = "avx2";
    }
#endif
}

/* The names of the implementations this CPU can run, best last. */
const char *const *
skim_impls(int *count)
{
#ifdef SKIM_X86
    static const char *names[3] = {"portable", "sse2", "avx2"};
    __builtin_cpu_init();
    *count = __builtin_cpu_supports("avx2") ? 3 : 2;
#else
    static const char *names[1] = {"portable"};
    *count = 1;
#endif
    return names;
}

const char *
skim_impl(void)
{
    return impl_name;
}

int
skim_use(const char *name)
{
    if (strcmp(name, "portable") == 0) {
        classify = classify_portable;
        impl_name = "portable";
        return 0;
    }
#ifdef SKIM_X86
    if (strcmp(name, "sse2") == 0) {
        classify = classify_sse2;
        impl_name = "sse2";
        return 0;
    }
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        classify = classify_avx2;
        impl_name = "avx2";
        return 0;
    }
#endif
    return -1;
}
