/*
 * state.c: per-key state for user functions (rivulet/state.h) over a store.
 *
 * A stateful operator's handle names the store of the record's partition and the record's key
 * bytes (as consumed); value `name` of that key lives at store key
 * [key length, 2 bytes big-endian][key bytes][name], so one key's values sit together and no
 * key's values can be confused with another's. Values are stored as compact JSON. This file
 * never opens, commits or restores a store: the runtime does (stores.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rivulet/json.h"
#include "state/state_int.h"

#define NAME_MAX_LEN 255
#define KEY_MAX_LEN 65000

struct rv_state_s {
    rv__store_t *store;
    rv_ctx_t *ctx;
    const char *key; /* the record's key bytes */
    size_t key_len;
    rv_strbuf_t *scratch;
};

rv_err_t rv__state_begin(rv_ctx_t *ctx, const rv__store_decl_t *decl, rv_state_t **out,
                         bool *replay) {
    *out = NULL;
    *replay = false;
    const rv_record_t *rec = ctx->rec;
    if (!rec || !rec->key) {
        rv__ctx_failf(ctx, "a stateful operator needs records with a key (this one has none; "
                           "group_by can give records a key)");
        return RV_ERR_INVALID_ARG;
    }
    if (rec->key_len > KEY_MAX_LEN) {
        rv__ctx_failf(ctx, "the record's key is %zu bytes; state keys hold at most %d",
                      rec->key_len, KEY_MAX_LEN);
        return RV_ERR_LIMIT;
    }
    rv__store_t *s = rv__ctx_store(ctx, decl, replay);
    if (!s) {
        return rv__ctx_store_error(ctx);
    }
    if (*replay) {
        return RV_OK;
    }
    rv_state_t *st = rv_arena_alloc(ctx->arena, sizeof *st);
    if (!st) {
        rv__ctx_failf(ctx, "out of memory in the batch arena");
        return RV_ERR_NOMEM;
    }
    *st = (rv_state_t){
        .store = s, .ctx = ctx, .key = rec->key, .key_len = rec->key_len, .scratch = &ctx->text};
    *out = st;
    return RV_OK;
}

rv_state_t *rv_ctx_state(rv_ctx_t *ctx) {
    return ctx ? ctx->state : NULL;
}

/* The store key of value `name` in the arena; NULL with *e set on failure. */
static const char *skey(rv_state_t *st, const char *name, size_t *len, rv_err_t *e) {
    if (!st || !name || !*name) {
        *e = RV_ERR_INVALID_ARG;
        return NULL;
    }
    size_t nl = strlen(name);
    if (nl > NAME_MAX_LEN) {
        *e = RV_ERR_LIMIT;
        return NULL;
    }
    char *k = rv_arena_alloc(st->ctx->arena, 2 + st->key_len + nl);
    if (!k) {
        *e = RV_ERR_NOMEM;
        return NULL;
    }
    k[0] = (char)(st->key_len >> 8);
    k[1] = (char)(st->key_len & 0xff);
    memcpy(k + 2, st->key, st->key_len);
    memcpy(k + 2 + st->key_len, name, nl);
    *len = 2 + st->key_len + nl;
    return k;
}

rv_err_t rv_state_get(rv_state_t *st, const char *name, rv_value_t **out) {
    rv_err_t e = RV_OK;
    size_t kn;
    const char *k = skey(st, name, &kn, &e);
    if (!k || !out) {
        return k ? RV_ERR_INVALID_ARG : e;
    }
    rv_buf_t v;
    e = rv__store_get(st->store, k, kn, &v);
    if (e != RV_OK) {
        return e;
    }
    e = rv_json_parse(st->ctx->arena, v.data, v.len, NULL, out, NULL, NULL);
    return e == RV_OK ? RV_OK : RV_ERR_CORRUPT;
}

int64_t rv_state_get_int(rv_state_t *st, const char *name, int64_t dflt) {
    rv_value_t *v = NULL;
    if (rv_state_get(st, name, &v) != RV_OK) {
        return dflt;
    }
    switch (rv_value_type(v)) {
        case RV_TYPE_INT:
            return rv_value_int(v);
        case RV_TYPE_DOUBLE:
            return (int64_t)rv_value_double(v);
        default:
            return dflt;
    }
}

static rv_err_t set(rv_state_t *st, const char *name, const rv_value_t *value, int64_t expire) {
    rv_err_t e = RV_OK;
    size_t kn;
    const char *k = skey(st, name, &kn, &e);
    if (!k) {
        return e;
    }
    if (!value) {
        return RV_ERR_INVALID_ARG;
    }
    rv_strbuf_clear(st->scratch);
    e = rv_json_write(st->scratch, value, 0, NULL);
    if (e != RV_OK) {
        return e;
    }
    return rv__store_put(st->store, k, kn, st->scratch->data ? st->scratch->data : "",
                         st->scratch->len, expire);
}

rv_err_t rv_state_set(rv_state_t *st, const char *name, const rv_value_t *value) {
    return set(st, name, value, 0);
}

rv_err_t rv_state_set_int(rv_state_t *st, const char *name, int64_t v) {
    if (!st) {
        return RV_ERR_INVALID_ARG;
    }
    rv_value_t *x = rv_value_new_int(st->ctx->arena, v);
    return x ? set(st, name, x, 0) : RV_ERR_NOMEM;
}

rv_err_t rv_state_set_ttl(rv_state_t *st, const char *name, const rv_value_t *value,
                          int64_t ttl_ms) {
    if (!st || ttl_ms <= 0) {
        return RV_ERR_INVALID_ARG;
    }
    int64_t ts = rv_ctx_timestamp(st->ctx);
    int64_t at = ts > INT64_MAX - ttl_ms ? INT64_MAX : ts + ttl_ms;
    return set(st, name, value, at == 0 ? 1 : at);
}

rv_err_t rv_state_delete(rv_state_t *st, const char *name) {
    rv_err_t e = RV_OK;
    size_t kn;
    const char *k = skey(st, name, &kn, &e);
    return k ? rv__store_del(st->store, k, kn) : e;
}

bool rv_state_exists(rv_state_t *st, const char *name) {
    rv_err_t e = RV_OK;
    size_t kn;
    const char *k = skey(st, name, &kn, &e);
    return k && rv__store_exists(st->store, k, kn);
}
