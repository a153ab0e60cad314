/*
 * config.c: the configuration table and name=value property sets.
 *
 * Parses and validates every value once, at rv_conf_set() time, so readers get typed values
 * without parsing. Pass-through properties ("kafka.*", "rocksdb.*") are kept verbatim and in
 * order. Error messages always name the property, the offending value and what is accepted.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "core/config_int.h"
#include "rivulet/config.h"

static const rv_conf_property_t properties[] = {
#define RV__CONF_ROW(id, name, type, def, min, max, values, scope, desc)                         \
    {name, type, def, min, max, values, scope, desc},
    RV_CONF_TABLE(RV__CONF_ROW)
#undef RV__CONF_ROW
};

static const char *const passthrough_prefixes[] = {"kafka.", "rocksdb."};

typedef struct slot_s {
    bool set;
    int64_t i;
    double d;
    char *text; /* normalised text of an explicit value; NULL means the default */
} slot_t;

typedef struct passthrough_s {
    char *name;
    char *value;
} passthrough_t;

struct rv_conf_s {
    slot_t slots[RV_CONF_ID__COUNT];
    passthrough_t *extra;
    size_t extra_len;
    size_t extra_cap;
};

size_t rv_conf_property_count(void) {
    return RV_ARRAY_LEN(properties);
}

const rv_conf_property_t *rv_conf_property(size_t index) {
    return index < RV_ARRAY_LEN(properties) ? &properties[index] : NULL;
}

static int find_index(const char *name) {
    for (size_t i = 0; i < RV_ARRAY_LEN(properties); i++) {
        if (strcmp(properties[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

const rv_conf_property_t *rv_conf_property_find(const char *name) {
    int i = name ? find_index(name) : -1;
    return i < 0 ? NULL : &properties[i];
}

const char *rv_conf_type_name(rv_conf_type_t type) {
    switch (type) {
        case RV_CONF_BOOL:
            return "bool";
        case RV_CONF_INT:
            return "int";
        case RV_CONF_DOUBLE:
            return "double";
        case RV_CONF_STRING:
            return "string";
        case RV_CONF_ENUM:
            return "enum";
        case RV_CONF_BYTES:
            return "bytes";
        case RV_CONF_DURATION:
            return "duration";
    }
    return "unknown";
}

/* ---- value parsing -------------------------------------------------------------------------- */

/* The index of `value` among the '|'-separated `values`, or -1. */
static int enum_index(const char *values, const char *value) {
    size_t vlen = strlen(value);
    int idx = 0;
    for (const char *p = values; *p; idx++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == vlen && strncasecmp(p, value, len) == 0) {
            return idx;
        }
        if (!bar) {
            break;
        }
        p = bar + 1;
    }
    return -1;
}

static bool parse_bool(const char *s, int64_t *out) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < RV_ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return true;
        }
    }
    return false;
}

typedef struct unit_s {
    const char *suffix;
    int64_t factor;
} unit_t;

static const unit_t byte_units[] = {{"", 1},
                                    {"b", 1},
                                    {"k", 1000},
                                    {"kb", 1000},
                                    {"kib", 1024},
                                    {"m", 1000 * 1000},
                                    {"mb", 1000 * 1000},
                                    {"mib", 1024 * 1024},
                                    {"g", 1000 * 1000 * 1000},
                                    {"gb", 1000 * 1000 * 1000},
                                    {"gib", 1024 * 1024 * 1024},
                                    {"t", INT64_C(1000000000000)},
                                    {"tb", INT64_C(1000000000000)},
                                    {"tib", INT64_C(1099511627776)}};

static const unit_t time_units[] = {{"", 1},          {"ms", 1},          {"s", 1000},
                                    {"m", 60 * 1000}, {"min", 60 * 1000}, {"h", 3600 * 1000},
                                    {"d", 86400 * 1000}};

/* An integer with an optional unit suffix from `units`; false on bad form or overflow. */
static bool parse_scaled(const char *s, const unit_t *units, size_t n_units, int64_t *out) {
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno == ERANGE) {
        return false;
    }
    while (*end == ' ') {
        end++;
    }
    for (size_t i = 0; i < n_units; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            int64_t r;
            if (__builtin_mul_overflow((int64_t)v, units[i].factor, &r)) {
                return false;
            }
            *out = r;
            return true;
        }
    }
    return false;
}

static const char *form_of(const rv_conf_property_t *p) {
    switch (p->type) {
        case RV_CONF_BOOL:
            return "true or false";
        case RV_CONF_INT:
            return "an integer";
        case RV_CONF_DOUBLE:
            return "a number";
        case RV_CONF_BYTES:
            return "a size such as 1048576, 64KiB, 16MiB or 1GiB";
        case RV_CONF_DURATION:
            return "a duration in milliseconds, or with a unit: 500ms, 30s, 5m, 2h, 7d";
        default:
            return "text";
    }
}

rv_err_t rv__conf_parse(const rv_conf_property_t *p, const char *value, int64_t *out_i,
                        double *out_d, rv_error_t **err) {
    char q[96];
    rv__quote(q, sizeof q, value, strlen(value));
    int64_t i = 0;
    double d = 0;
    switch (p->type) {
        case RV_CONF_STRING:
            break;
        case RV_CONF_BOOL:
            if (!parse_bool(value, &i)) {
                return rv__error_set(err, RV_ERR_CONFIG,
                                     "configuration property '%s': invalid value %s: expected %s",
                                     p->name, q, form_of(p));
            }
            break;
        case RV_CONF_ENUM: {
            int idx = enum_index(p->values, value);
            if (idx < 0) {
                char accepted[256];
                snprintf(accepted, sizeof accepted, "%s", p->values);
                for (char *c = accepted; *c; c++) {
                    if (*c == '|') {
                        *c = ',';
                    }
                }
                return rv__error_set(err, RV_ERR_CONFIG,
                                     "configuration property '%s': invalid value %s: accepted "
                                     "values are %s",
                                     p->name, q, accepted);
            }
            i = idx;
            break;
        }
        case RV_CONF_DOUBLE: {
            errno = 0;
            char *end;
            d = strtod(value, &end);
            if (end == value || *end || errno == ERANGE || !isfinite(d)) {
                return rv__error_set(err, RV_ERR_CONFIG,
                                     "configuration property '%s': invalid value %s: expected %s",
                                     p->name, q, form_of(p));
            }
            if (d < (double)p->min || d > (double)p->max) {
                return rv__error_set(err, RV_ERR_RANGE,
                                     "configuration property '%s': value %s is outside the "
                                     "range %" PRId64 "..%" PRId64,
                                     p->name, q, p->min, p->max);
            }
            i = (int64_t)d;
            break;
        }
        case RV_CONF_INT:
        case RV_CONF_BYTES:
        case RV_CONF_DURATION: {
            bool ok;
            if (p->type == RV_CONF_INT) {
                ok = parse_scaled(value, byte_units, 1, &i);
            } else if (p->type == RV_CONF_BYTES) {
                ok = parse_scaled(value, byte_units, RV_ARRAY_LEN(byte_units), &i);
            } else {
                ok = parse_scaled(value, time_units, RV_ARRAY_LEN(time_units), &i);
            }
            if (!ok) {
                return rv__error_set(err, RV_ERR_CONFIG,
                                     "configuration property '%s': invalid value %s: expected %s",
                                     p->name, q, form_of(p));
            }
            if (i < p->min || i > p->max) {
                return rv__error_set(err, RV_ERR_RANGE,
                                     "configuration property '%s': value %s is outside the "
                                     "range %" PRId64 "..%" PRId64,
                                     p->name, q, p->min, p->max);
            }
            d = (double)i;
            break;
        }
    }
    *out_i = i;
    *out_d = d;
    return RV_OK;
}

/* Parses `value` for property `p` into `slot`; fills *err on failure. */
static rv_err_t parse_value(const rv_conf_property_t *p, const char *value, slot_t *slot,
                            rv_error_t **err) {
    return rv__conf_parse(p, value, &slot->i, &slot->d, err);
}

/* Edit distance between two short names, for "did you mean" suggestions. */
static size_t distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) {
        return SIZE_MAX;
    }
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best) {
                best = row[j] + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static rv_err_t unknown_property(const char *name, rv_error_t **err) {
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < RV_ARRAY_LEN(properties); i++) {
        size_t d = distance(name, properties[i].name);
        if (d < best_d) {
            best_d = d;
            best = properties[i].name;
        }
    }
    char q[96];
    rv__quote(q, sizeof q, name, strlen(name));
    if (best && best_d <= 3) {
        return rv__error_set(err, RV_ERR_CONFIG,
                             "unknown configuration property %s (did you mean '%s'?); "
                             "`rivulet config list` shows every property, and kafka.* and "
                             "rocksdb.* are passed through",
                             q, best);
    }
    return rv__error_set(err, RV_ERR_CONFIG,
                         "unknown configuration property %s; `rivulet config list` shows every "
                         "property, and kafka.* and rocksdb.* are passed through",
                         q);
}

/* ---- property sets -------------------------------------------------------------------------- */

rv_conf_t *rv_conf_new(void) {
    rv_conf_t *c = calloc(1, sizeof *c);
    if (!c) {
        return NULL;
    }
    for (size_t i = 0; i < RV_ARRAY_LEN(properties); i++) {
        rv_error_t *e = NULL;
        /* Defaults are validated by the table test; a failure here would be a table bug. */
        if (parse_value(&properties[i], properties[i].default_value, &c->slots[i], &e)) {
            rv_error_destroy(e);
        }
    }
    return c;
}

void rv_conf_destroy(rv_conf_t *c) {
    if (!c) {
        return;
    }
    for (size_t i = 0; i < RV_ARRAY_LEN(properties); i++) {
        free(c->slots[i].text);
    }
    for (size_t i = 0; i < c->extra_len; i++) {
        free(c->extra[i].name);
        free(c->extra[i].value);
    }
    free(c->extra);
    free(c);
}

rv_conf_t *rv_conf_dup(const rv_conf_t *src) {
    rv_conf_t *c = rv_conf_new();
    if (!c) {
        return NULL;
    }
    for (size_t i = 0; i < RV_ARRAY_LEN(properties); i++) {
        if (src->slots[i].set && rv_conf_set(c, properties[i].name, src->slots[i].text, NULL)) {
            rv_conf_destroy(c);
            return NULL;
        }
    }
    for (size_t i = 0; i < src->extra_len; i++) {
        if (rv_conf_set(c, src->extra[i].name, src->extra[i].value, NULL)) {
            rv_conf_destroy(c);
            return NULL;
        }
    }
    return c;
}

static bool is_passthrough(const char *name) {
    for (size_t i = 0; i < RV_ARRAY_LEN(passthrough_prefixes); i++) {
        size_t n = strlen(passthrough_prefixes[i]);
        if (strncmp(name, passthrough_prefixes[i], n) == 0 && name[n]) {
            return true;
        }
    }
    return false;
}

static rv_err_t set_passthrough(rv_conf_t *c, const char *name, const char *value) {
    for (size_t i = 0; i < c->extra_len; i++) {
        if (strcmp(c->extra[i].name, name) == 0) {
            char *v = strdup(value);
            if (!v) {
                return RV_ERR_NOMEM;
            }
            free(c->extra[i].value);
            c->extra[i].value = v;
            return RV_OK;
        }
    }
    if (c->extra_len == c->extra_cap) {
        size_t cap = c->extra_cap ? c->extra_cap * 2 : 8;
        passthrough_t *p = realloc(c->extra, cap * sizeof *p);
        if (!p) {
            return RV_ERR_NOMEM;
        }
        c->extra = p;
        c->extra_cap = cap;
    }
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return RV_ERR_NOMEM;
    }
    c->extra[c->extra_len++] = (passthrough_t){n, v};
    return RV_OK;
}

rv_err_t rv_conf_set(rv_conf_t *c, const char *name, const char *value, rv_error_t **err) {
    if (!c || !name || !value) {
        return rv__error_set(err, RV_ERR_INVALID_ARG, "rv_conf_set: NULL argument");
    }
    if (is_passthrough(name)) {
        rv_err_t e = set_passthrough(c, name, value);
        return e ? rv__error_set(err, e, "out of memory setting '%s'", name) : RV_OK;
    }
    int idx = find_index(name);
    if (idx < 0) {
        return unknown_property(name, err);
    }
    slot_t s = {0};
    rv_err_t e = parse_value(&properties[idx], value, &s, err);
    if (e) {
        return e;
    }
    s.text = strdup(value);
    if (!s.text) {
        return rv__error_set(err, RV_ERR_NOMEM, "out of memory setting '%s'", name);
    }
    s.set = true;
    free(c->slots[idx].text);
    c->slots[idx] = s;
    return RV_OK;
}

rv_err_t rv_conf_set_pair(rv_conf_t *c, const char *pair, rv_error_t **err) {
    const char *eq = pair ? strchr(pair, '=') : NULL;
    if (!eq || eq == pair) {
        char q[96];
        rv__quote(q, sizeof q, pair ? pair : "", pair ? strlen(pair) : 0);
        return rv__error_set(err, RV_ERR_CONFIG,
                             "configuration %s is not of the form name=value", q);
    }
    size_t n = (size_t)(eq - pair);
    char name[256];
    if (n >= sizeof name) {
        return rv__error_set(err, RV_ERR_CONFIG, "configuration property name is too long");
    }
    memcpy(name, pair, n);
    name[n] = 0;
    return rv_conf_set(c, name, eq + 1, err);
}

const char *rv_conf_get(const rv_conf_t *c, const char *name) {
    if (is_passthrough(name)) {
        for (size_t i = 0; i < c->extra_len; i++) {
            if (strcmp(c->extra[i].name, name) == 0) {
                return c->extra[i].value;
            }
        }
        return NULL;
    }
    int idx = find_index(name);
    if (idx < 0) {
        return NULL;
    }
    return c->slots[idx].set ? c->slots[idx].text : properties[idx].default_value;
}

bool rv_conf_is_set(const rv_conf_t *c, const char *name) {
    if (is_passthrough(name)) {
        return rv_conf_get(c, name) != NULL;
    }
    int idx = find_index(name);
    return idx >= 0 && c->slots[idx].set;
}

int64_t rv_conf_get_int(const rv_conf_t *c, const char *name) {
    int idx = find_index(name);
    return idx < 0 ? 0 : c->slots[idx].i;
}

double rv_conf_get_double(const rv_conf_t *c, const char *name) {
    int idx = find_index(name);
    return idx < 0 ? 0.0 : c->slots[idx].d;
}

int64_t rv__conf_int(const rv_conf_t *c, rv_conf_id_t id) {
    return c->slots[id].i;
}

double rv__conf_double(const rv_conf_t *c, rv_conf_id_t id) {
    return c->slots[id].d;
}

const char *rv__conf_str(const rv_conf_t *c, rv_conf_id_t id) {
    return c->slots[id].set ? c->slots[id].text : properties[id].default_value;
}

rv_err_t rv_conf_foreach_prefixed(const rv_conf_t *c, const char *prefix,
                                  rv_err_t (*fn)(void *, const char *, const char *),
                                  void *opaque) {
    size_t n = strlen(prefix);
    for (size_t i = 0; i < c->extra_len; i++) {
        if (strncmp(c->extra[i].name, prefix, n) == 0) {
            rv_err_t e = fn(opaque, c->extra[i].name + n, c->extra[i].value);
            if (e) {
                return e;
            }
        }
    }
    return RV_OK;
}

/* ---- the generated reference ---------------------------------------------------------------- */

static rv_err_t describe_range(rv_strbuf_t *out, const rv_conf_property_t *p) {
    switch (p->type) {
        case RV_CONF_ENUM: {
            rv_err_t e = RV_OK;
            const char *s = p->values;
            while (!e && *s) {
                const char *bar = strchr(s, '|');
                size_t len = bar ? (size_t)(bar - s) : strlen(s);
                e = rv_strbuf_appendf(out, "%s`%.*s`", s == p->values ? "" : ", ", (int)len, s);
                s = bar ? bar + 1 : s + len;
            }
            return e;
        }
        case RV_CONF_INT:
        case RV_CONF_DOUBLE:
        case RV_CONF_BYTES:
        case RV_CONF_DURATION:
            return rv_strbuf_appendf(out, "%" PRId64 " .. %" PRId64, p->min, p->max);
        default:
            return rv_strbuf_appendf(out, "any");
    }
}

rv_err_t rv_conf_describe_markdown(rv_strbuf_t *out) {
    rv_err_t e = rv_strbuf_appendf(
        out,
        "# Configuration reference\n\n"
        "Generated from the property table in `src/core/config_table.h` by\n"
        "`rivulet config list --markdown` (`make docs`); a test keeps this file current.\n\n"
        "Set properties with `-X name=value` on the command line or `rv_conf_set()` in C.\n"
        "Sizes take the suffixes K, M, G (powers of 1000) and KiB, MiB, GiB (powers of 1024);\n"
        "durations are milliseconds, or take the suffixes ms, s, m, h, d.\n"
        "Names starting with `kafka.` are passed to librdkafka without the prefix, and names\n"
        "starting with `rocksdb.` to RocksDB; rivulet does not interpret them.\n\n"
        "| property | type | default | accepted | scope | description |\n"
        "| --- | --- | --- | --- | --- | --- |\n");
    for (size_t i = 0; !e && i < RV_ARRAY_LEN(properties); i++) {
        const rv_conf_property_t *p = &properties[i];
        e = rv_strbuf_appendf(out, "| `%s` | %s | `%s` | ", p->name, rv_conf_type_name(p->type),
                              p->default_value);
        if (!e) {
            e = describe_range(out, p);
        }
        if (!e) {
            e = rv_strbuf_appendf(out, " | %s | %s |\n", p->scope, p->description);
        }
    }
    return e;
}
