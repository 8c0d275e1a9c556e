/*
 * gan/json_text.c — exact numbers and valid UTF-8 in JSON text (json_text.h).
 *
 * Number literals are found again in the text cJSON has just parsed: outside
 * strings, a token that starts with '-' or a digit and runs over [0-9+-.eE]
 * is a number (exactly what cJSON's parse_number takes), and the numbers of
 * the parsed tree, visited in document order (each item, then its children,
 * then its next sibling), are those tokens in order. When the counts differ,
 * no literal is attached and integer checks fall back to the double.
 */
#include "gan/json_text.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ------------------------------------------------------------------------------ */

void gan_format_double(char *buf, size_t size, double d)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

cJSON *gan_json_double(double d)
{
    if (!isfinite(d))
        return cJSON_CreateNull();
    char num[40];
    gan_format_double(num, sizeof num, d);
    return cJSON_CreateRaw(num);
}

cJSON *gan_json_u64(uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(num);
}

static cJSON *add_item(cJSON *o, const char *name, cJSON *item)
{
    if (!item)
        return NULL;
    if (!cJSON_AddItemToObject(o, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

cJSON *gan_json_add_double(cJSON *o, const char *name, double d)
{
    return add_item(o, name, gan_json_double(d));
}

cJSON *gan_json_add_u64(cJSON *o, const char *name, uint64_t v)
{
    return add_item(o, name, gan_json_u64(v));
}

typedef struct literal {
    const char *start;
    size_t len;
} literal;

static bool is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
}

/* The number tokens of text[0..len), in order; *n of them (malloc'd array, NULL when none). */
static literal *scan_literals(const char *text, size_t len, size_t *n)
{
    literal *lits = NULL;
    size_t count = 0, cap = 0;
    for (size_t i = 0; i < len;) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = i;
            while (i < len && is_number_char(text[i]))
                i++;
            if (count == cap) {
                size_t ncap = cap ? 2 * cap : 16;
                literal *nl = realloc(lits, ncap * sizeof *nl);
                if (!nl) {
                    free(lits);
                    *n = 0;
                    return NULL;
                }
                lits = nl;
                cap = ncap;
            }
            lits[count++] = (literal){text + start, i - start};
        } else {
            i++;
        }
    }
    *n = count;
    return lits;
}

static size_t count_numbers(const cJSON *item)
{
    size_t n = 0;
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item))
            n++;
        if (cJSON_IsArray(item) || cJSON_IsObject(item))
            n += count_numbers(item->child);
    }
    return n;
}

static bool attach(cJSON *item, const literal *lits, size_t *k)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            const literal *l = &lits[(*k)++];
            char *s = cJSON_malloc(l->len + 1);
            if (!s)
                return false;
            memcpy(s, l->start, l->len);
            s[l->len] = '\0';
            item->valuestring = s;
        }
        if ((cJSON_IsArray(item) || cJSON_IsObject(item)) && !attach(item->child, lits, k))
            return false;
    }
    return true;
}

cJSON *gan_json_parse(const char *text, size_t len, const char **end, bool require_null_terminated)
{
    const char *stop = NULL;
    /* as cJSON_ParseWithOpts does: with the NUL, which must then end the text */
    cJSON *root = cJSON_ParseWithLengthOpts(text, require_null_terminated ? len + 1 : len, &stop,
                                            require_null_terminated);
    if (end)
        *end = stop;
    if (!root)
        return NULL;
    size_t scanned = stop && stop >= text && stop <= text + len ? (size_t)(stop - text) : len;
    size_t n = 0;
    literal *lits = scan_literals(text, scanned, &n);
    size_t k = 0;
    if (n > 0 && count_numbers(root) == n && !attach(root, lits, &k)) {
        cJSON_Delete(root); /* out of memory */
        root = NULL;
    }
    free(lits);
    return root;
}

const char *gan_json_literal(const cJSON *v)
{
    return cJSON_IsNumber(v) ? v->valuestring : NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * The value of a JSON number literal, when it is exactly an integer of at most
 * 18 digits: *mag its magnitude, *neg its sign. False for a fraction, a larger
 * magnitude or a malformed literal.
 */
static bool literal_integer(const char *s, uint64_t *mag, bool *neg)
{
    *neg = *s == '-';
    if (*s == '-' || *s == '+')
        s++;
    /* the value is 0.D × 10^point, D the significant digits (no leading zeros) */
    const char *first = NULL; /* first significant digit */
    size_t nd = 0, trailing_zeros = 0;
    long point = 0;
    bool seen_point = false, any = false;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s == '.') {
            if (seen_point)
                return false;
            seen_point = true;
            continue;
        }
        if (!is_digit(*s))
            return false;
        any = true;
        if (nd == 0 && *s == '0') {
            if (seen_point)
                point--;
            continue;
        }
        if (nd == 0)
            first = s;
        nd++;
        trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
        if (!seen_point)
            point++;
    }
    if (!any)
        return false;
    if (*s == 'e' || *s == 'E') {
        s++;
        bool eneg = *s == '-';
        if (*s == '-' || *s == '+')
            s++;
        if (!is_digit(*s))
            return false;
        long e = 0;
        for (; is_digit(*s); s++)
            if (e < 100000)
                e = e * 10 + (*s - '0');
        if (*s)
            return false;
        point += eneg ? -e : e;
    }
    nd -= trailing_zeros;
    if (nd == 0) { /* zero, whatever its exponent */
        *mag = 0;
        return true;
    }
    if ((long)nd > point || point > 18) /* a fraction, or 10^18 and more */
        return false;
    uint64_t v = 0;
    size_t used = 0;
    for (const char *p = first; used < nd; p++) {
        if (*p == '.')
            continue;
        v = v * 10 + (uint64_t)(*p - '0');
        used++;
    }
    for (long i = (long)nd; i < point; i++)
        v *= 10;
    *mag = v;
    return true;
}

bool gan_json_integer(const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    const char *lit = gan_json_literal(v);
    if (lit) {
        uint64_t mag;
        bool neg;
        if (!literal_integer(lit, &mag, &neg) || mag > ((uint64_t)1 << 62))
            return false;
        int64_t i = neg ? -(int64_t)mag : (int64_t)mag;
        if (i < min || i > max)
            return false;
        *out = i;
        return true;
    }
    double d = v->valuedouble;
    if (!isfinite(d) || d != trunc(d) || d < (double)min || d > (double)max)
        return false;
    *out = (int64_t)d;
    return true;
}

void gan_json_got(const cJSON *v, char *buf, size_t size, size_t max)
{
    const char *lit = gan_json_literal(v);
    if (lit) {
        gan_utf8_clip(buf, size, lit, max);
        return;
    }
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) { /* cJSON would print null */
        gan_utf8_clip(buf, size, "a number too large to represent", max);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    gan_utf8_clip(buf, size, s ? s : "an unprintable value", max);
    cJSON_free(s);
}

/* ---- UTF-8 -------------------------------------------------------------------------------- */

/* The length (1..4) of the valid UTF-8 sequence at s, or 0. s is NUL-terminated or long enough. */
static size_t seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* the allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool gan_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = seq_len(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */

bool gan_utf8_clip(char *dst, size_t size, const char *src, size_t max)
{
    if (size == 0)
        return false;
    if (max > size - 1)
        max = size - 1;
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t o = 0;
    while (*p) {
        size_t n = seq_len(p, 4);
        const char *piece = n ? (const char *)p : replacement;
        size_t plen = n ? n : 3;
        if (o + plen > max) {
            while (o > 0 && o + 3 > max) { /* room for "...", on a character boundary */
                o--;
                while (o > 0 && ((unsigned char)dst[o] & 0xC0) == 0x80)
                    o--;
            }
            if (o + 3 <= max) {
                memcpy(dst + o, "...", 3);
                o += 3;
            }
            dst[o] = '\0';
            return false;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        p += n ? n : 1;
    }
    dst[o] = '\0';
    return true;
}

char *gan_utf8_dup(const char *src)
{
    const unsigned char *p = (const unsigned char *)(src ? src : "");
    size_t need = 1;
    for (size_t i = 0; p[i];) {
        size_t n = seq_len(p + i, 4);
        need += n ? n : 3;
        i += n ? n : 1;
    }
    char *out = malloc(need);
    if (out)
        gan_utf8_clip(out, need, (const char *)p, need - 1);
    return out;
}

void gan_utf8_trim(char *s)
{
    size_t len = strlen(s);
    if (len == 0)
        return;
    size_t lead = len - 1;
    while (lead > 0 && len - lead < 4 && ((unsigned char)s[lead] & 0xC0) == 0x80)
        lead--;
    /* a lead byte whose sequence is not whole: what a cut left (stray bytes are the sanitizer's) */
    if ((unsigned char)s[lead] >= 0xC0 &&
        seq_len((const unsigned char *)s + lead, len - lead) != len - lead)
        s[lead] = '\0';
}
