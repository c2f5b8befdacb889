/* mrfbatch._rows.RateRows: rate rows of matched in_network items, gathered straight into Arrow
 * buffers.
 *
 * RateRows gathers the rows of matched items of the usual shape: what items.TypedItem decodes,
 * with provider_references null or a list of integers (no sign, fraction or exponent) and
 * strings, no provider_groups, no escape in a string, no member repeated. item_head(text)
 * reads (and checks) a whole item: the item's own values, or None when it is not of that
 * shape, which the caller then decodes in Python. add_rates(text, at, limit, referenced, item)
 * then gathers the rows of its rates from `at` on, at least `limit` rows unless the rates end
 * first, adding their provider group ids to `referenced`: (where the next rate starts, whether
 * the rates ended). add_items(text, found, ...) does both for a run of items the scanner found
 * (spans of `text`), many per call: the fast engine's way when every item is extracted, where
 * per-item Python calls cost more than the rows. It reads each item's rates once, making rows
 * as it goes, and undoes them (restore) when a rate is not of the usual shape; only the rates
 * after a full batch are checked first. Every row also gets its item's own texts (code, name,
 * ...), copied from the item's text, so no Python object is made per item; only an item's
 * bundled_codes and covered_services, rare, are handed over as Python lists. take() hands the
 * buffers over, as ProviderRows.take does. */

#include "_rows.h"
#include "_rows_arrow.h"
#include "_rows_text.h"

enum { P_TYPE, P_DATE, P_CLASS, P_SETTING, P_INFO, PRICE_TEXTS };
enum { ITEM_TEXTS = 7 }; /* the item's own texts each row repeats (item_rows) */
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
    Strings item[ITEM_TEXTS]; /* per row: its item's own texts (item_rows) */
    /* The group ids already added to `known_set` (a strong reference), as bytes: an id met
     * again (most are, rate after rate) costs a hash lookup instead of a str and a set add. */
    PyObject *known_set;
    Py_ssize_t *known_slots; /* 1 + index into known_at, 0: empty; known_cap of them */
    Py_ssize_t known_cap, known_count;
    Buf known_at;   /* per id: (offset in known_text, size, hash) as 3 Py_ssize_t */
    Buf known_text; /* the ids' bytes */
} RateRows;

enum { KEEP_BYTES = 4 << 20 }; /* a buffer up to this size is kept from one batch to the next */
enum { KNOWN_MAX = 1 << 20 }; /* ids remembered at most (~40 MB); the rest go to the set */

static void
known_free(RateRows *r)
{
    Py_CLEAR(r->known_set);
    PyMem_Free(r->known_slots);
    r->known_slots = NULL;
    r->known_cap = r->known_count = 0;
    buf_free(&r->known_at);
    buf_free(&r->known_text);
}

static Py_ssize_t
known_hash(const char *s, Py_ssize_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    }
    return (Py_ssize_t)(h & (uint64_t)PY_SSIZE_T_MAX);
}

/* The slot of id s[0:n] (hash h): where it is, or the empty one where it would go. */
static Py_ssize_t
known_slot(RateRows *r, const char *s, Py_ssize_t n, Py_ssize_t h)
{
    const Py_ssize_t *at = (const Py_ssize_t *)r->known_at.data;
    Py_ssize_t i = h & (r->known_cap - 1);
    for (;; i = (i + 1) & (r->known_cap - 1)) {
        Py_ssize_t e = r->known_slots[i] - 1;
        if (e < 0 || (at[3 * e + 2] == h && at[3 * e + 1] == n
                      && (n == 0 || memcmp(r->known_text.data + at[3 * e], s, (size_t)n) == 0))) {
            return i;
        }
    }
}

static int
known_grow(RateRows *r)
{
    Py_ssize_t cap = r->known_cap ? 2 * r->known_cap : 1024;
    Py_ssize_t *slots = PyMem_Calloc((size_t)cap, sizeof(Py_ssize_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyMem_Free(r->known_slots);
    r->known_slots = slots;
    r->known_cap = cap;
    const Py_ssize_t *at = (const Py_ssize_t *)r->known_at.data;
    for (Py_ssize_t e = 0; e < r->known_count; e++) {
        Py_ssize_t i = at[3 * e + 2] & (cap - 1);
        while (slots[i]) {
            i = (i + 1) & (cap - 1);
        }
        slots[i] = e + 1;
    }
    return 0;
}

/* Add group id s[0:n] to `referenced` (a set) unless it was added before. */
static int
referenced_add(RateRows *r, PyObject *referenced, const char *s, Py_ssize_t n)
{
    if (r->known_set != referenced) { /* another set: start afresh */
        known_free(r);
        r->known_set = Py_NewRef(referenced);
    }
    Py_ssize_t h = known_hash(s, n), i = -1;
    if (r->known_cap) {
        i = known_slot(r, s, n, h);
        if (r->known_slots[i]) {
            return 0;
        }
    }
    PyObject *key = PyUnicode_DecodeUTF8(s, n, "surrogatepass");
    if (key == NULL || PySet_Add(referenced, key) < 0) {
        Py_XDECREF(key);
        return -1;
    }
    Py_DECREF(key);
    if (r->known_count >= KNOWN_MAX) {
        return 0;
    }
    if (2 * (r->known_count + 1) > r->known_cap) {
        if (known_grow(r) < 0) {
            return -1;
        }
        i = known_slot(r, s, n, h);
    }
    Py_ssize_t entry[3] = {r->known_text.len, n, h};
    if (buf_add(&r->known_at, entry, sizeof(entry)) < 0 || buf_add(&r->known_text, s, n) < 0) {
        return -1;
    }
    r->known_slots[i] = ++r->known_count;
    return 0;
}

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

static inline int
number_byte(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
}

/* A number's text, from its first byte at t->p - 1 (valid JSON: it ends where a byte that
 * cannot be part of a number comes). */
static void
number_span(Text *t, const char **start, Py_ssize_t *size)
{
    Py_ssize_t p = t->p - 1;
    *start = t->b + p;
    while (t->p < t->n && number_byte(t->b[t->p])) {
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
        if (n >= (Py_ssize_t)sizeof(copy) || !json_number(s, n)) {
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
 * tables.group_key); with rows, added to them and to `referenced`. */
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
        rc = plain_number(s, n) && json_number(s, n) ? DONE : GIVE_UP;
    }
    if (rc == DONE && rate->r != NULL) {
        /* Without `referenced` (add_items) the keys are added once the item is read whole. */
        if ((rate->referenced && referenced_add(rate->r, rate->referenced, s, n) < 0)
            || lists_item(&rate->r->ids, s, n) < 0) {
            rc = FAILED;
        }
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
    H_ARRANGEMENT, H_NAME, H_CODE_TYPE, H_CODE_VERSION, H_DESCRIPTION, H_SEVERITY, H_CODE,
    HEAD_TEXTS, H_BUNDLED = HEAD_TEXTS, H_COVERED, H_RATES, HEAD_FIELDS
};

/* An item's own values, read in place: spans of the item's text, and its code lists. */
typedef struct {
    int seen;
    const char *text[HEAD_TEXTS]; /* NULL: null or absent */
    Py_ssize_t size[HEAD_TEXTS];
    int code_is_int;    /* billing_code is an integer: its digits are text[H_CODE] */
    PyObject *codes[2]; /* bundled_codes, covered_services: lists of dicts; NULL: null, absent */
    Py_ssize_t rates_at; /* just after negotiated_rates' `[`, or -1 */
    /* add_items: the rates' rows are gathered into `rows` as the head is read, up to `limit`
     * rows; `resume` is where they stopped when that came inside the rates (else -1). Without
     * `rows` (item_head), the rates are checked only. */
    RateRows *rows;
    Py_ssize_t limit, resume;
} Head;

static PyObject *
text_object(const char *text, Py_ssize_t size)
{
    return PyUnicode_DecodeUTF8(text, size, "strict");
}

/* One bundled_codes or covered_services object's members, in tables.CODE_FIELDS order. */
typedef struct {
    const char *text[4]; /* billing_code_type, _version, billing_code, description */
    Py_ssize_t size[4];
    int seen;
} Code;

static int
code_field(Text *t, const char *name, Py_ssize_t size, void *arg)
{
    Code *code = arg;
    int f = KEY_IS("billing_code_type") ? 0
            : KEY_IS("billing_code_type_version") ? 1
            : KEY_IS("billing_code") ? 2
            : KEY_IS("description") ? 3
            : -1;
    if (f < 0 || (code->seen & (1 << f))) {
        return GIVE_UP;
    }
    code->seen |= 1 << f;
    return text_or_null(t, &code->text[f], &code->size[f]);
}

/* One code object, appended to the list `arg` as a dict of its four members, in this order
 * (tables.Code: None where null or absent). */
static int
code(Text *t, char c, void *arg)
{
    static const char *const names[4] = {
        "billing_code_type", "billing_code_type_version", "billing_code", "description"};
    static PyObject *keys[4]; /* made once, kept for the process: no string per code */
    Code code = {.seen = 0};
    int rc = c == '{' ? members(t, code_field, &code) : GIVE_UP;
    if (rc != DONE) {
        return rc;
    }
    for (int f = 0; f < 4; f++) {
        if (keys[f] == NULL && (keys[f] = PyUnicode_InternFromString(names[f])) == NULL) {
            return FAILED;
        }
    }
    PyObject *entry = PyDict_New();
    if (entry == NULL) {
        return FAILED;
    }
    rc = DONE;
    for (int f = 0; rc == DONE && f < 4; f++) {
        PyObject *v = code.text[f] ? text_object(code.text[f], code.size[f]) : Py_NewRef(Py_None);
        if (v == NULL || PyDict_SetItem(entry, keys[f], v) < 0) {
            rc = FAILED;
        }
        Py_XDECREF(v);
    }
    if (rc == DONE && PyList_Append(arg, entry) < 0) {
        rc = FAILED;
    }
    Py_DECREF(entry);
    return rc;
}

/* A bundled_codes or covered_services list: its codes' dicts, `[` consumed. */
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
    switch (f) {
    case H_CODE:
        if (c == '"') {
            return string(t, &h->text[f], &h->size[f]);
        }
        if (c >= '0' && c <= '9') { /* an int, as msgspec gives it: its digits are its text */
            number_span(t, &h->text[f], &h->size[f]);
            for (Py_ssize_t i = 0; i < h->size[f]; i++) {
                if (h->text[f][i] < '0' || h->text[f][i] > '9') {
                    return GIVE_UP;
                }
            }
            h->code_is_int = 1;
            return h->size[f] < 32 && json_number(h->text[f], h->size[f]) ? DONE : GIVE_UP;
        }
        return GIVE_UP;
    case H_BUNDLED:
    case H_COVERED:
        return c == '[' ? code_list(t, &h->codes[f - H_BUNDLED]) : GIVE_UP;
    case H_RATES: {
        if (c != '[') {
            return GIVE_UP;
        }
        h->rates_at = t->p;
        int ended, rc = rates(t, h->rows, NULL, h->limit, &ended);
        if (rc == DONE && !ended) { /* `limit` rows: the rates after them are checked only */
            h->resume = t->p;
            rc = rates(t, NULL, NULL, 0, &ended);
        }
        return rc;
    }
    default:
        return c == '"' ? string(t, &h->text[f], &h->size[f]) : GIVE_UP;
    }
}

#undef KEY_IS

/* Read the item text[0:n] (every rate checked) into `h`: DONE, GIVE_UP (not of the usual shape)
 * or FAILED. The caller releases h->values in every case. */
static int
read_head(const char *text, Py_ssize_t n, Head *h)
{
    Text t = {.b = text, .p = 0, .n = n};
    int rc = next(&t) == '{' ? members(&t, head_field, h) : GIVE_UP;
    return rc == DONE && next(&t) != 0 ? GIVE_UP : rc;
}

static void
head_release(Head *h)
{
    Py_CLEAR(h->codes[0]);
    Py_CLEAR(h->codes[1]);
}

/* Value f of a head as Python gives it: str, int (billing_code) or None. */
static PyObject *
head_text(const Head *h, int f)
{
    if (h->text[f] == NULL) {
        return Py_NewRef(Py_None);
    }
    if (f == H_CODE && h->code_is_int) {
        char digits[32]; /* head_field checked the size */
        memcpy(digits, h->text[f], (size_t)h->size[f]);
        digits[h->size[f]] = 0;
        return PyLong_FromString(digits, NULL, 10);
    }
    return text_object(h->text[f], h->size[f]);
}

/* A head as item_head gives it (see rates_methods). */
static PyObject *
head_tuple(const Head *h)
{
    PyObject *result = PyTuple_New(HEAD_FIELDS);
    for (int f = 0; result != NULL && f < HEAD_FIELDS; f++) {
        PyObject *v = f < HEAD_TEXTS ? head_text(h, f)
                      : f == H_RATES ? PyLong_FromSsize_t(h->rates_at)
                      : Py_NewRef(h->codes[f - H_BUNDLED] ? h->codes[f - H_BUNDLED] : Py_None);
        if (v == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, f, v);
    }
    return result;
}

static PyObject *
rates_item_head(RateRows *r, PyObject *arg)
{
    (void)r;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Head h = {.rates_at = -1, .resume = -1};
    int rc = read_head(view.buf, view.len, &h);
    /* the texts are spans of the view: read before it is released */
    PyObject *result = rc == DONE ? head_tuple(&h) : NULL;
    PyBuffer_Release(&view);
    head_release(&h);
    if (rc == GIVE_UP) {
        Py_RETURN_NONE;
    }
    return result;
}

/* The item's own texts for rows `from` to r->rows (each row repeats them), in RATE_COLUMNS
 * order: billing_code_type, its version, billing_code, negotiation_arrangement, name,
 * description, severity_of_illness. */
static int
item_rows(RateRows *r, const char *const text[ITEM_TEXTS], const Py_ssize_t size[ITEM_TEXTS],
          Py_ssize_t from)
{
    for (int f = 0; f < ITEM_TEXTS; f++) {
        if (strings_repeat(&r->item[f], from, text[f], size[f], r->rows - from) < 0) {
            return -1;
        }
    }
    return 0;
}

/* item_rows of a head read by add_items. */
static int
head_rows(RateRows *r, const Head *h, Py_ssize_t from)
{
    static const int order[ITEM_TEXTS] = {H_CODE_TYPE, H_CODE_VERSION, H_CODE, H_ARRANGEMENT,
                                          H_NAME, H_DESCRIPTION, H_SEVERITY};
    const char *text[ITEM_TEXTS];
    Py_ssize_t size[ITEM_TEXTS];
    for (int f = 0; f < ITEM_TEXTS; f++) {
        text[f] = h->text[order[f]];
        size[f] = h->size[order[f]];
    }
    return item_rows(r, text, size, from);
}

/* found[i]'s start and end in a buffer of `len` bytes (an Element tuple). */
static int
element_span(PyObject *found, Py_ssize_t i, Py_ssize_t len, Py_ssize_t *start, Py_ssize_t *end)
{
    PyObject *e = PyList_GET_ITEM(found, i);
    if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) < 2) {
        PyErr_SetString(PyExc_TypeError, "add_items: each element is a tuple (start, end, ...)");
        return -1;
    }
    *start = PyLong_AsSsize_t(PyTuple_GET_ITEM(e, 0));
    *end = PyLong_AsSsize_t(PyTuple_GET_ITEM(e, 1));
    if ((*start == -1 || *end == -1) && PyErr_Occurred()) {
        return -1;
    }
    if (*start < 0 || *start > *end || *end > len) {
        PyErr_Format(PyExc_ValueError, "add_items: element %zd (%zd, %zd) is not within the "
                     "%zd bytes given", i, *start, *end, len);
        return -1;
    }
    return 0;
}

/* What RateRows holds at one moment, to undo the rows of an item read in part (add_items). */
enum { MARKED_BUFS = 5 * 3 + 2 + 2 * 5 + 1 + 5 };

typedef struct {
    Py_ssize_t rows, rates, list_count[PRICE_LISTS], ids_count;
    Py_ssize_t len[MARKED_BUFS];
} Mark;

static void
marked_bufs(RateRows *r, Buf *bufs[MARKED_BUFS])
{
    int i = 0;
    for (int f = 0; f < PRICE_TEXTS; f++) {
        bufs[i++] = &r->text[f].valid;
        bufs[i++] = &r->text[f].offsets;
        bufs[i++] = &r->text[f].data;
    }
    bufs[i++] = &r->rate;
    bufs[i++] = &r->rate_valid;
    Lists *lists[PRICE_LISTS + 1] = {&r->list[0], &r->list[1], &r->ids};
    for (int l = 0; l < PRICE_LISTS + 1; l++) {
        bufs[i++] = &lists[l]->valid;
        bufs[i++] = &lists[l]->offsets;
        bufs[i++] = &lists[l]->items.valid;
        bufs[i++] = &lists[l]->items.offsets;
        bufs[i++] = &lists[l]->items.data;
    }
    bufs[i++] = &r->rate_of_row;
}

static void
mark(RateRows *r, Mark *m)
{
    Buf *bufs[MARKED_BUFS];
    marked_bufs(r, bufs);
    for (int i = 0; i < MARKED_BUFS; i++) {
        m->len[i] = bufs[i]->len;
    }
    m->rows = r->rows;
    m->rates = r->rates;
    m->list_count[0] = r->list[0].count;
    m->list_count[1] = r->list[1].count;
    m->ids_count = r->ids.count;
}

/* Bits from `index` on cleared: bit_add only sets bits, in bytes it appends as zero. */
static void
bits_clear_from(Buf *bitmap, Py_ssize_t index)
{
    if (index % 8) {
        bitmap->data[index / 8] &= (char)((1u << (index % 8)) - 1);
    }
}

/* Back to what `m` marked: the rows gathered since are gone. */
static void
restore(RateRows *r, const Mark *m)
{
    Buf *bufs[MARKED_BUFS];
    marked_bufs(r, bufs);
    for (int i = 0; i < MARKED_BUFS; i++) {
        bufs[i]->len = m->len[i];
    }
    r->rows = m->rows;
    r->rates = m->rates;
    r->list[0].count = m->list_count[0];
    r->list[1].count = m->list_count[1];
    r->ids.count = m->ids_count;
    for (int f = 0; f < PRICE_TEXTS; f++) {
        bits_clear_from(&r->text[f].valid, r->rows);
    }
    bits_clear_from(&r->rate_valid, r->rows);
    for (int l = 0; l < PRICE_LISTS; l++) {
        bits_clear_from(&r->list[l].valid, r->rows);
        bits_clear_from(&r->list[l].items.valid, r->list[l].count);
    }
    bits_clear_from(&r->ids.valid, r->rates);
    bits_clear_from(&r->ids.items.valid, r->ids.count);
}

/* The provider group ids gathered since `m`, added to `referenced`. */
static int
add_referenced(RateRows *r, const Mark *m, PyObject *referenced)
{
    const int32_t *offsets = (const int32_t *)r->ids.items.offsets.data;
    for (Py_ssize_t j = m->ids_count; j < r->ids.count; j++) {
        const char *text = r->ids.items.data.data; /* NULL when every id is "" */
        if (referenced_add(r, referenced, text ? text + offsets[j] : "",
                           offsets[j + 1] - offsets[j]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* add_items(text, found, at, limit, referenced, network_id, gathered): see rates_methods. */
/* Note the rows `from` to r->rows of an item with bundled_codes or covered_services in
 * `codes`: (from, to, bundled_codes, covered_services). */
static int
note_codes(RateRows *r, const Head *h, Py_ssize_t from, PyObject *codes)
{
    if (r->rows == from || (h->codes[0] == NULL && h->codes[1] == NULL)) {
        return 0;
    }
    PyObject *entry = Py_BuildValue("(nnOO)", from, r->rows, h->codes[0] ? h->codes[0] : Py_None,
                                    h->codes[1] ? h->codes[1] : Py_None);
    int rc = entry == NULL ? -1 : PyList_Append(codes, entry);
    Py_XDECREF(entry);
    return rc;
}

/* add_items(text, found, at, limit, referenced, codes): see rates_methods. */
static PyObject *
rates_add_items(RateRows *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t at, limit;
    if (nargs != 6 || !PyList_Check(args[1]) || !PySet_Check(args[4])
        || !PyList_Check(args[5])) {
        PyErr_SetString(PyExc_TypeError, "add_items(text, found: list, at, limit, referenced: "
                        "set, codes: list)");
        return NULL;
    }
    if ((at = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[3])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *found = args[1], *referenced = args[4], *codes = args[5], *head = NULL;
    Py_ssize_t resume = -1, i = at < 0 ? 0 : at;
    int rc = DONE;
    for (; i < PyList_GET_SIZE(found) && r->rows < limit; i++) {
        Py_ssize_t start, end;
        if (element_span(found, i, view.len, &start, &end) < 0) {
            rc = FAILED;
            break;
        }
        /* One pass over the item: the rows are gathered as its rates are read, and undone
         * when anything in the item is not of the usual shape. */
        Mark m;
        mark(r, &m);
        Head h = {.rates_at = -1, .rows = r, .limit = limit, .resume = -1};
        if ((rc = read_head((const char *)view.buf + start, end - start, &h)) == GIVE_UP) {
            restore(r, &m);
        }
        if (rc != DONE) {
            head_release(&h);
            break; /* GIVE_UP: Python reads item i */
        }
        if (rc == DONE
            && (add_referenced(r, &m, referenced) < 0 || head_rows(r, &h, m.rows) < 0
                || note_codes(r, &h, m.rows, codes) < 0)) {
            rc = FAILED;
        }
        if (rc == DONE && h.resume >= 0) {
            /* limit rows gathered inside item i: Python goes on from `resume`, with its head
             * (rates_at is that of the item's text, as item_head gives it) */
            resume = start + h.resume;
            if ((head = head_tuple(&h)) == NULL) {
                rc = FAILED;
            }
        }
        head_release(&h);
        if (rc != DONE || resume >= 0) {
            break;
        }
    }
    PyBuffer_Release(&view);
    if (rc == FAILED) {
        Py_XDECREF(head);
        return NULL;
    }
    return Py_BuildValue("(nnN)", i, resume, head ? head : Py_NewRef(Py_None));
}

static PyObject *
rates_add_rates(RateRows *r, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t at, limit;
    if (nargs != 5 || !PySet_Check(args[3]) || !PyTuple_Check(args[4])
        || PyTuple_GET_SIZE(args[4]) != ITEM_TEXTS) {
        PyErr_Format(PyExc_TypeError, "add_rates(text, at, limit, referenced: set, item: a "
                     "tuple of %d texts)", ITEM_TEXTS);
        return NULL;
    }
    if ((at = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if ((limit = PyLong_AsSsize_t(args[2])) == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const char *text[ITEM_TEXTS];
    Py_ssize_t size[ITEM_TEXTS];
    for (int f = 0; f < ITEM_TEXTS; f++) {
        PyObject *v = PyTuple_GET_ITEM(args[4], f);
        text[f] = NULL;
        size[f] = 0;
        if (v != Py_None && (text[f] = PyUnicode_AsUTF8AndSize(v, &size[f])) == NULL) {
            return NULL; /* not a str */
        }
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Text t = {.b = view.buf, .p = at, .n = view.len};
    int ended = 0;
    Py_ssize_t from = r->rows;
    int rc = at >= 0 && at <= view.len ? rates(&t, r, args[3], limit, &ended) : GIVE_UP;
    PyBuffer_Release(&view);
    if (rc == DONE && item_rows(r, text, size, from) < 0) {
        rc = FAILED;
    }
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

/* Empty the rows gathered: every buffer freed, or with `keep`, those up to KEEP_BYTES kept for
 * the next batch (growing them again, in new pages, cost more than the rows' own copies). */
static void
rates_clear(RateRows *r, int keep)
{
    Buf *bufs[MARKED_BUFS + 3 * ITEM_TEXTS];
    marked_bufs(r, bufs);
    for (int f = 0; f < ITEM_TEXTS; f++) {
        bufs[MARKED_BUFS + 3 * f] = &r->item[f].valid;
        bufs[MARKED_BUFS + 3 * f + 1] = &r->item[f].offsets;
        bufs[MARKED_BUFS + 3 * f + 2] = &r->item[f].data;
    }
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        if (!keep || bufs[i]->cap > KEEP_BYTES) {
            buf_free(bufs[i]);
        }
        bufs[i]->len = 0;
    }
    r->list[0].count = r->list[1].count = r->ids.count = 0;
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
        &r->item[0].valid, &r->item[0].offsets, &r->item[0].data,
        &r->item[1].valid, &r->item[1].offsets, &r->item[1].data,
        &r->item[2].valid, &r->item[2].offsets, &r->item[2].data,
        &r->item[3].valid, &r->item[3].offsets, &r->item[3].data,
        &r->item[4].valid, &r->item[4].offsets, &r->item[4].data,
        &r->item[5].valid, &r->item[5].offsets, &r->item[5].data,
        &r->item[6].valid, &r->item[6].offsets, &r->item[6].data,
    };
    const Buf *offsets[] = {
        &r->text[0].offsets, &r->text[1].offsets, &r->text[2].offsets, &r->text[3].offsets,
        &r->text[4].offsets, &r->list[0].offsets, &r->list[1].offsets,
        &r->list[0].items.offsets, &r->list[1].items.offsets, &r->ids.offsets,
        &r->ids.items.offsets, &r->item[0].offsets, &r->item[1].offsets, &r->item[2].offsets,
        &r->item[3].offsets, &r->item[4].offsets, &r->item[5].offsets, &r->item[6].offsets,
    };
    PyObject *buffers = buffers_tuple(bufs, sizeof(bufs) / sizeof(bufs[0]), offsets,
                                      sizeof(offsets) / sizeof(offsets[0]));
    if (buffers == NULL) {
        return NULL;
    }
    PyObject *result = Py_BuildValue("((nnnnn)N)", r->rows, r->rates, r->list[0].count,
                                     r->list[1].count, r->ids.count, buffers);
    if (result != NULL) {
        rates_clear(r, 1);
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
    rates_clear(r, 0);
    known_free(r);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyMethodDef rates_methods[] = {
    {"item_head", (PyCFunction)rates_item_head, METH_O,
     "item_head(text, /)\n--\n\nAn item's own values, every rate checked: (negotiation_"
     "arrangement, name, billing_code_type, billing_code_type_version, description, "
     "severity_of_illness, billing_code, bundled_codes, covered_services, where its rates "
     "start or -1); None when it is not of the usual shape."},
    {"add_items", (PyCFunction)(void (*)(void))rates_add_items, METH_FASTCALL,
     "add_items(text, found, at, limit, referenced, codes, /)\n--\n\nThe rows of the items "
     "text[start:end] of found[at:] of the usual shape, until `limit` rows are gathered: (i, "
     "resume, head). Appends (first row, end row, bundled_codes, covered_services) to `codes` "
     "for each item with rows and either list. resume -1: items before i were read, and item "
     "i, if any, is not of the usual shape unless `limit` rows are gathered; else item i's "
     "rates go on at `resume`, and head is its item_head."},
    {"add_rates", (PyCFunction)(void (*)(void))rates_add_rates, METH_FASTCALL,
     "add_rates(text, at, limit, referenced, item, /)\n--\n\nThe rows of the rates from "
     "`at`, at least `limit` unless they end first, each with the item's own texts `item` "
     "(billing_code_type, its version, billing_code, negotiation_arrangement, name, "
     "description, severity_of_illness: str or None): (where the next rate starts, whether "
     "they ended)."},
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

int
rate_rows_ready(PyObject *module)
{
    if (PyType_Ready(&RateRowsType) < 0
        || PyModule_AddObjectRef(module, "RateRows", (PyObject *)&RateRowsType) < 0) {
        return -1;
    }
    return 0;
}
