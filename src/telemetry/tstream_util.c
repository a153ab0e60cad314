/*
 * tstream_util.c: helpers of the telemetry stream layer (tstream_int.h): wire detection,
 * encoding and decoding in either wire, packet copies, data times, and the string map that
 * keeps per-stream state. It never sends or consumes anything itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/tstream_int.h"

static char tmap_gone_mark;
#define RV__TMAP_GONE (&tmap_gone_mark)

const char *rv_twire_name(rv_twire_t wire) {
    switch (wire) {
        case RV_TWIRE_AUTO:
            return "auto";
        case RV_TWIRE_TELEMETRY:
            return "telemetry";
        case RV_TWIRE_QUIX:
            return "quix";
    }
    return NULL;
}

int rv_twire_parse(const char *name) {
    if (!name) {
        return -1;
    }
    if (strcmp(name, "auto") == 0) {
        return RV_TWIRE_AUTO;
    }
    if (strcmp(name, "telemetry") == 0 || strcmp(name, "protobuf") == 0) {
        return RV_TWIRE_TELEMETRY;
    }
    if (strcmp(name, "quix") == 0) {
        return RV_TWIRE_QUIX;
    }
    return -1;
}

rv_twire_t rv__twire_of(rv_twire_t wire, const void *data, size_t len) {
    if (wire != RV_TWIRE_AUTO) {
        return wire;
    }
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
            continue;
        }
        return p[i] == '{' || p[i] == '[' ? RV_TWIRE_QUIX : RV_TWIRE_TELEMETRY;
    }
    return RV_TWIRE_TELEMETRY;
}

rv_err_t rv__tdecode(rv_arena_t *arena, rv_twire_t wire, const void *data, size_t len,
                     const char *key, rv_tpacket_t **out, rv_error_t **err) {
    rv_err_t e;
    if (rv__twire_of(wire, data, len) == RV_TWIRE_QUIX) {
        e = rv_tpacket_read_quix(arena, data ? data : "", len, out, err);
    } else {
        e = rv_tpacket_decode(arena, data ? data : "", len, out, err);
    }
    if (e == RV_OK && !(*out)->stream_id && key) {
        (*out)->stream_id = key;
    }
    return e;
}

rv_err_t rv__tencode(rv_twire_t wire, const rv_tpacket_t *p, rv_strbuf_t *out, rv_error_t **err) {
    return wire == RV_TWIRE_QUIX ? rv_tpacket_write_quix(p, out, err)
                                 : rv_tpacket_encode(p, out, err);
}

rv_err_t rv__tpacket_clone(rv_arena_t *arena, const rv_tpacket_t *p, rv_tpacket_t **out,
                           rv_error_t **err) {
    rv_strbuf_t sb = RV_STRBUF_INIT;
    rv_err_t e = rv_tpacket_encode(p, &sb, err);
    if (e == RV_OK) {
        e = rv_tpacket_decode(arena, sb.data, sb.len, out, err);
    }
    rv_strbuf_free(&sb);
    return e;
}

bool rv__tpacket_time(const rv_tpacket_t *p, int64_t *t) {
    bool any = false;
    int64_t best = 0;
#define TAKE(v)                                                                                    \
    do {                                                                                           \
        int64_t v_ = (v);                                                                          \
        if (!any || v_ < best) {                                                                   \
            best = v_;                                                                             \
            any = true;                                                                            \
        }                                                                                          \
    } while (0)
    switch (p->type) {
        case RV_TPACKET_FRAME:
            if (p->u.frame && p->u.frame->timestamps) {
                for (size_t i = 0; i < p->u.frame->rows; i++) {
                    TAKE(p->u.frame->timestamps[i]);
                }
            }
            break;
        case RV_TPACKET_PERIODIC_DATA:
            TAKE(p->u.periodic.start_time);
            break;
        case RV_TPACKET_EVENTS:
            for (size_t i = 0; i < p->u.events.count; i++) {
                TAKE(p->u.events.items[i].time);
            }
            break;
        case RV_TPACKET_MARKERS:
            for (size_t i = 0; i < p->u.markers.count; i++) {
                TAKE(p->u.markers.items[i].start_time);
            }
            break;
        case RV_TPACKET_COVERAGE:
            TAKE(p->u.coverage_until);
            break;
        default:
            break;
    }
#undef TAKE
    if (any) {
        *t = best;
    }
    return any;
}

void rv__trecord_where(const rv_record_t *r, char *out, size_t size) {
    int klen = r->key ? (int)(r->key_len > 80 ? 80 : r->key_len) : 0;
    snprintf(out, size, "topic '%s' partition %d offset %lld key %s%.*s%s",
             r->topic ? r->topic : "?", (int)r->partition, (long long)r->offset,
             r->key ? "'" : "(none)", klen, r->key ? (const char *)r->key : "",
             r->key ? (r->key_len > 80 ? "...'" : "'") : "");
}

/* ---- the map ------------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

static size_t slot_of(const rv__tmap_t *m, const char *key, bool *found) {
    size_t mask = m->cap - 1, i = (size_t)hash_str(key) & mask, first_gone = SIZE_MAX;
    for (;;) {
        char *k = m->keys[i];
        if (!k) {
            *found = false;
            return first_gone != SIZE_MAX ? first_gone : i;
        }
        if (k == RV__TMAP_GONE) {
            if (first_gone == SIZE_MAX) {
                first_gone = i;
            }
        } else if (strcmp(k, key) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & mask;
    }
}

bool rv__tmap_get(const rv__tmap_t *m, const char *key, size_t *val) {
    if (!m->cap) {
        return false;
    }
    bool found;
    size_t i = slot_of(m, key, &found);
    if (found && val) {
        *val = m->vals[i];
    }
    return found;
}

static rv_err_t grow(rv__tmap_t *m) {
    size_t cap = m->cap ? m->cap : 16;
    while ((m->count + 1) * 2 > cap) {
        cap *= 2;
    }
    char **keys = calloc(cap, sizeof *keys);
    size_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return RV_ERR_NOMEM;
    }
    rv__tmap_t n = {keys, vals, cap, 0, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] && m->keys[i] != RV__TMAP_GONE) {
            bool found;
            size_t s = slot_of(&n, m->keys[i], &found);
            n.keys[s] = m->keys[i];
            n.vals[s] = m->vals[i];
            n.used++;
            n.count++;
        }
    }
    free(m->keys);
    free(m->vals);
    *m = n;
    return RV_OK;
}

rv_err_t rv__tmap_put(rv__tmap_t *m, const char *key, size_t val) {
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != RV_OK) {
        return RV_ERR_NOMEM;
    }
    bool found;
    size_t i = slot_of(m, key, &found);
    if (found) {
        m->vals[i] = val;
        return RV_OK;
    }
    char *copy = strdup(key);
    if (!copy) {
        return RV_ERR_NOMEM;
    }
    if (!m->keys[i]) {
        m->used++;
    }
    m->keys[i] = copy;
    m->vals[i] = val;
    m->count++;
    return RV_OK;
}

void rv__tmap_del(rv__tmap_t *m, const char *key) {
    if (!m->cap) {
        return;
    }
    bool found;
    size_t i = slot_of(m, key, &found);
    if (found) {
        free(m->keys[i]);
        m->keys[i] = RV__TMAP_GONE;
        m->count--;
    }
}

void rv__tmap_free(rv__tmap_t *m) {
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] && m->keys[i] != RV__TMAP_GONE) {
            free(m->keys[i]);
        }
    }
    free(m->keys);
    free(m->vals);
    *m = (rv__tmap_t){0};
}

/* ---- a stream's data formats ---------------------------------------------------------------- */

rv_err_t rv__tkept_set(rv__tkept_t *k, const rv_tpacket_t *p, rv_error_t **err) {
    rv_arena_t *a = rv_arena_new(0);
    rv_tpacket_t *copy = NULL;
    if (!a) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry: out of memory for a packet copy");
    }
    rv_err_t e = rv__tpacket_clone(a, p, &copy, err);
    if (e != RV_OK) {
        rv_arena_destroy(a);
        return e;
    }
    rv__tkept_free(k);
    k->arena = a;
    k->p = copy;
    return RV_OK;
}

void rv__tkept_free(rv__tkept_t *k) {
    rv_arena_destroy(k->arena);
    *k = (rv__tkept_t){0};
}

rv_err_t rv__tformats_put(rv__tformats_t *fs, const rv_tpacket_t *p, rv_error_t **err) {
    for (size_t i = 0; i < fs->n; i++) {
        if (fs->v[i].p->u.format.format_id == p->u.format.format_id) {
            return rv_tpacket_equal(fs->v[i].p, p) ? RV_OK : rv__tkept_set(&fs->v[i], p, err);
        }
    }
    if (fs->n == RV__TFORMATS_MAX) {
        rv__tkept_free(&fs->v[0]);
        memmove(fs->v, fs->v + 1, (RV__TFORMATS_MAX - 1) * sizeof *fs->v);
        fs->n--;
    }
    rv__tkept_t *grown = realloc(fs->v, (fs->n + 1) * sizeof *grown);
    if (!grown) {
        return rv__error_set(err, RV_ERR_NOMEM, "telemetry: out of memory for a data format");
    }
    fs->v = grown;
    fs->v[fs->n] = (rv__tkept_t){0};
    rv_err_t e = rv__tkept_set(&fs->v[fs->n], p, err);
    fs->n += e == RV_OK;
    return e;
}

const rv_tpacket_t *rv__tformats_find(const rv__tformats_t *fs, uint32_t id) {
    for (size_t i = fs->n; i-- > 0;) {
        if (fs->v[i].p->u.format.format_id == id) {
            return fs->v[i].p;
        }
    }
    return NULL;
}

void rv__tformats_free(rv__tformats_t *fs) {
    for (size_t i = 0; i < fs->n; i++) {
        rv__tkept_free(&fs->v[i]);
    }
    free(fs->v);
    *fs = (rv__tformats_t){0};
}
