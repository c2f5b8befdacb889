/* mrfbatch._jsonscan's UTF-8 check of decoded bytes (the fast engine's buffer calls it on each
 * piece that is not all ASCII; Python's own decoder, which it spares, stays the judge of
 * anything this does not find valid).
 *
 * utf8_check(data) returns (status, end):
 *   UTF8_VALID, len:  every byte is part of a whole, valid character;
 *   UTF8_CUT, end:    data[:end] is valid and data[end:] (1 to 3 bytes) starts a character that
 *                     may go on in the next piece;
 *   UTF8_INVALID, at: data[at] is where a byte sequence stops being UTF-8.
 * Valid is what RFC 3629 and Python's strict decoder accept: no overlong forms, no surrogates
 * (U+D800-DFFF), nothing above U+10FFFF. ASCII runs go 8 bytes at a time.
 */

#include "_jsonscan.h"

/* The status of the sequence starting at b[i] (b[i] >= 0x80) and its length. */
static int
sequence(const unsigned char *b, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *length)
{
    unsigned char c = b[i];
    int need;
    unsigned char low = 0x80, high = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0) {
            low = 0xA0; /* overlong below */
        }
        else if (c == 0xED) {
            high = 0x9F; /* surrogates above */
        }
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0) {
            low = 0x90;
        }
        else if (c == 0xF4) {
            high = 0x8F; /* above U+10FFFF */
        }
    }
    else {
        return UTF8_INVALID;
    }
    for (int k = 1; k <= need; k++) {
        if (i + k >= n) {
            return UTF8_CUT;
        }
        unsigned char d = b[i + k];
        if (k == 1 ? (d < low || d > high) : (d < 0x80 || d > 0xBF)) {
            return UTF8_INVALID;
        }
    }
    *length = need + 1;
    return UTF8_VALID;
}

int
utf8_check(const unsigned char *b, Py_ssize_t n, Py_ssize_t *end)
{
    Py_ssize_t i = 0;
    while (i < n) {
        while (i + 8 <= n) { /* ASCII, 8 bytes at a time */
            uint64_t w;
            memcpy(&w, b + i, 8);
            if (w & 0x8080808080808080ull) {
                break;
            }
            i += 8;
        }
        while (i < n && b[i] < 0x80) {
            i++;
        }
        if (i >= n) {
            break;
        }
        Py_ssize_t length = 0;
        int status = sequence(b, i, n, &length);
        if (status != UTF8_VALID) {
            *end = i;
            return status;
        }
        i += length;
    }
    *end = n;
    return UTF8_VALID;
}
