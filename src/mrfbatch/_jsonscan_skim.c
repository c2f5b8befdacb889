/* mrfbatch._jsonscan's skim: structural validation of a container nobody will decode.
 *
 * The scanner (_jsonscan_scan.c) hands a container to skim() when it opens one at
 * Scan.skim_depth (an unwanted in_network item's negotiated_rates, say). The skim finds where
 * the container closes and checks, on the way, what structural validation promises (the
 * `validate: structural` mode, docs/guarantees.md#validation):
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
 * quotes, backslashes, brackets and special bytes (below 0x20 or from 0x80); the escaped bytes
 * follow from the runs of backslashes, the bytes inside strings from a prefix XOR of the
 * unescaped quotes, and only the brackets outside strings, the escapes and the special bytes
 * are then visited one by one. (A compact, ASCII file has no special byte; a pretty-printed one
 * has a newline or two per block.) The masks come from AVX2 where the CPU has it, else from
 * SSE2 (every x86-64), else from plain C (8 bytes at a time; what ARM and other CPUs run); all
 * three give the same masks (tests/test_skim.py runs each).
 */

#include "_jsonscan.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SKIM_X86 1
#endif

/* Bit i of each mask is about byte i of a block: bracket, one of []{}; special, a byte below
 * 0x20 or from 0x80. */
typedef struct {
    uint64_t quote, backslash, bracket, special;
} Masks;

typedef int (*SkimFunction)(Scan *s, Py_ssize_t *pp, int *pdepth, int eof);
static SkimFunction skim_with;
static const char *impl_name = "portable";

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Plain C, 8 bytes at a time (SWAR). Each test leaves a byte's high bit set where it holds,
 * exactly (no borrow runs from one byte into the next); `gather` turns the 8 high bits into 8
 * adjacent bits, byte 0 lowest. */
#define SWAR_ONES 0x0101010101010101ull
#define SWAR_LOW7 0x7f7f7f7f7f7f7f7full
#define SWAR_HIGH 0x8080808080808080ull

static ALWAYS_INLINE uint64_t
swar_eq(uint64_t w, unsigned char c)
{
    uint64_t t = w ^ (SWAR_ONES * c); /* zero where the byte is c */
    return ~(((t & SWAR_LOW7) + SWAR_LOW7) | t) & SWAR_HIGH;
}

static ALWAYS_INLINE uint64_t
gather(uint64_t high_bits)
{
    return ((high_bits >> 7) * 0x0102040810204080ull) >> 56;
}

static ALWAYS_INLINE void
classify_portable(const unsigned char *block, Masks *m)
{
    Masks r = {0};
    for (int k = 0; k < 8; k++) {
        uint64_t w;
        memcpy(&w, block + 8 * k, 8);
#if PY_BIG_ENDIAN
        w = __builtin_bswap64(w);
#endif
        uint64_t folded = w | (SWAR_ONES * 0x20); /* '[' 0x5B, '{' 0x7B */
        /* below 0x20 or from 0x80: the high bit set, or clear after adding 0x60 to the low 7 */
        uint64_t odd = (~((w & SWAR_LOW7) + SWAR_ONES * 0x60) | w) & SWAR_HIGH;
        int shift = 8 * k;
        r.quote |= gather(swar_eq(w, '"')) << shift;
        r.backslash |= gather(swar_eq(w, '\\')) << shift;
        r.bracket |= gather(swar_eq(folded, '{') | swar_eq(folded, '}')) << shift;
        r.special |= gather(odd) << shift;
    }
    *m = r;
}

/* Bit i set when bit i or an odd number of bits below it are set in x: which bytes lie after an
 * opening quote and before its closing one (the opening quote itself included). */
static ALWAYS_INLINE uint64_t
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

static ALWAYS_INLINE void
classify_sse2(const unsigned char *block, Masks *m)
{
    Masks r = {0};
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(block + 16 * k));
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i bracket = _mm_or_si128(SSE_EQ(folded, '{'), SSE_EQ(folded, '}'));
        __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        int shift = 16 * k;
        r.quote |= SSE_MASK(SSE_EQ(v, '"')) << shift;
        r.backslash |= SSE_MASK(SSE_EQ(v, '\\')) << shift;
        r.bracket |= SSE_MASK(bracket) << shift;
        /* bytes from 0x80 have their high bit set: the movemask of v itself */
        r.special |= SSE_MASK(_mm_or_si128(control, v)) << shift;
    }
    *m = r;
}

#define AVX_EQ(v, c) _mm256_cmpeq_epi8((v), _mm256_set1_epi8((char)(c)))
#define AVX_MASK(v) ((uint64_t)(uint32_t)_mm256_movemask_epi8(v))

__attribute__((target("avx2"))) static ALWAYS_INLINE void
classify_avx2(const unsigned char *block, Masks *m)
{
    Masks r = {0};
    for (int k = 0; k < 2; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(block + 32 * k));
        __m256i folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
        __m256i bracket = _mm256_or_si256(AVX_EQ(folded, '{'), AVX_EQ(folded, '}'));
        __m256i control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, _mm256_set1_epi8(0x1f)), v);
        int shift = 32 * k;
        r.quote |= AVX_MASK(AVX_EQ(v, '"')) << shift;
        r.backslash |= AVX_MASK(AVX_EQ(v, '\\')) << shift;
        r.bracket |= AVX_MASK(bracket) << shift;
        r.special |= AVX_MASK(_mm256_or_si256(control, v)) << shift;
    }
    *m = r;
}

/* prefix_xor with one carry-less multiply by all ones. */
__attribute__((target("pclmul"))) static ALWAYS_INLINE uint64_t
prefix_xor_clmul(uint64_t x)
{
    __m128i product = _mm_clmulepi64_si128(_mm_set_epi64x(0, (long long)x), _mm_set1_epi8(-1), 0);
    return (uint64_t)_mm_cvtsi128_si64(product);
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
    case 'u': {
        Py_ssize_t bad = 0;
        long unit = hex4(b, s->n, q + 2, &bad);
        if (unit == -1) {
            s->error_at = bad;
            s->error = "invalid \\u escape";
        }
        return unit < 0 ? (int)unit : 0;
    }
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
 * *depth, in_object[] and s->skim_carry say how. SCAN_INVALID: s->error, s->error_at set.
 *
 * Written once, inlined into one function per implementation with its own `classify` and
 * `pxor`, so that the masks stay in registers. */
static ALWAYS_INLINE int
skim_loop(Scan *s, Py_ssize_t *pp, int *pdepth, int eof,
          void (*classify)(const unsigned char *, Masks *), uint64_t (*pxor)(uint64_t))
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
        uint64_t inside = pxor(m.quote & ~escaped & valid) ^ in_string;

        /* Brackets outside strings, in order, until the container closes, with no branch on
         * whether each opens or closes. in_object[depth], above the open containers, is free
         * to write. (Unrolling the first steps branch-free was slower: 3.1 against 3.8 GB/s.) */
        uint64_t brackets = m.bracket & ~inside & valid;
        int limit = (int)len, bad = 64, closed = 0;
        const char *why = NULL;
        while (brackets) {
            int i = __builtin_ctzll(brackets);
            brackets &= brackets - 1;
            /* '[' 0x5B and '{' 0x7B have bit 1 set, ']' 0x5D and '}' 0x7D not; '{' and '}'
             * have bit 5 */
            unsigned char c = block[i];
            int opens = (c >> 1) & 1;
            unsigned char object = (c >> 5) & 1;
            int mismatch = !opens & (in_object[depth - 1] != object);
            in_object[depth] = object;
            depth += 2 * opens - 1;
            if (__builtin_expect(mismatch | (depth == base) | (depth > MAX_DEPTH), 0)) {
                if (mismatch) {
                    bad = i;
                    why = in_object[depth] ? "expected '}' to close the object"
                                           : "expected ']' to close the array";
                }
                else if (depth > MAX_DEPTH) {
                    bad = i;
                    why = "nested deeper than 5000 levels";
                }
                else {
                    limit = i + 1;
                    closed = 1;
                }
                break;
            }
        }

        const uint64_t mine = limit == 64 ? ~0ull : (1ull << limit) - 1;
        /* Wrong: a backslash outside a string; a control byte inside one, or outside one but
         * a blank (tab, LF, CR); a byte from 0x80 outside one. */
        uint64_t wrong = m.backslash & ~inside & valid & mine;
        for (uint64_t left = m.special & valid & mine; left; left &= left - 1) {
            int i = __builtin_ctzll(left);
            unsigned char c = block[i];
            uint64_t bit = 1ull << i;
            int in = (inside & bit) != 0;
            if (c < 0x20 ? in || (c != '\t' && c != '\n' && c != '\r') : !in) {
                wrong |= bit;
            }
        }
        if (wrong && __builtin_ctzll(wrong) < bad) {
            int i = __builtin_ctzll(wrong);
            uint64_t bit = 1ull << i;
            s->error_at = p + i;
            unsigned char c = block[i];
            s->error = (c < 0x20 && (inside & bit)) ? "control character in string"
                       : (m.backslash & bit)          ? "backslash outside a string"
                       : (c >= 0x80)                  ? "byte >= 0x80 outside a string"
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

static int
skim_portable(Scan *s, Py_ssize_t *pp, int *pdepth, int eof)
{
    return skim_loop(s, pp, pdepth, eof, classify_portable, prefix_xor);
}

#ifdef SKIM_X86
static int
skim_sse2(Scan *s, Py_ssize_t *pp, int *pdepth, int eof)
{
    return skim_loop(s, pp, pdepth, eof, classify_sse2, prefix_xor);
}

__attribute__((target("avx2,pclmul"))) static int
skim_avx2(Scan *s, Py_ssize_t *pp, int *pdepth, int eof)
{
    return skim_loop(s, pp, pdepth, eof, classify_avx2, prefix_xor_clmul);
}

static int
has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("pclmul");
}
#endif

int
skim(Scan *s, Py_ssize_t *pp, int *pdepth, int eof)
{
    return skim_with(s, pp, pdepth, eof);
}

void
skim_init(void)
{
    skim_with = skim_portable;
    impl_name = "portable";
#ifdef SKIM_X86
    skim_with = skim_sse2;
    impl_name = "sse2";
    if (has_avx2()) {
        skim_with = skim_avx2;
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
    *count = has_avx2() ? 3 : 2;
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
        skim_with = skim_portable;
        impl_name = "portable";
        return 0;
    }
#ifdef SKIM_X86
    if (strcmp(name, "sse2") == 0) {
        skim_with = skim_sse2;
        impl_name = "sse2";
        return 0;
    }
    if (strcmp(name, "avx2") == 0 && has_avx2()) {
        skim_with = skim_avx2;
        impl_name = "avx2";
        return 0;
    }
#endif
    return -1;
}
