/*
 * plog_batch.c: the byte format of a record batch: encoding, header checks, the CRC,
 * compression and decoding of records in place.
 *
 * This is the only file that knows where a field sits in a batch. Decoding must treat every
 * byte as hostile: each length and count is checked against the bytes that are there before it
 * is used, so no input can make it read outside the batch, and no caller may hand out a record
 * of a batch whose CRC it has not checked. It never allocates per record.
 */
#include <lz4.h>
#include <stdlib.h>
#include <zstd.h>

#include "broker/plog_int.h"
#include "rivulet/hash.h"

#define ZSTD_LEVEL 1 /* fast; the codec's gain over lz4 is its ratio, not its speed */

/* ---- varints ----------------------------------------------------------------------------- */

static inline uint8_t *put_uvarint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static inline uint64_t zigzag(int64_t v) {
    return ((uint64_t)v << 1) ^ ((uint64_t)0 - ((uint64_t)v >> 63));
}

static inline int64_t unzigzag(uint64_t z) {
    return (int64_t)((z >> 1) ^ ((uint64_t)0 - (z & 1)));
}

static inline uint8_t *put_svarint(uint8_t *p, int64_t v) {
    return put_uvarint(p, zigzag(v));
}

/* Reads an unsigned varint of at most 10 bytes; false when it runs past `end` or overflows. */
static inline bool get_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    if (RV_LIKELY(p < end && *p < 0x80)) {
        *out = *p;
        *pp = p + 1;
        return true;
    }
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t b = *p++;
        if (shift == 63 && b > 1) {
            return false;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            *pp = p;
            return true;
        }
    }
    return false;
}

/* Reads a length that may be -1 (null): false when malformed or longer than what is left. */
static inline bool get_len(const uint8_t **pp, const uint8_t *end, int64_t *len) {
    uint64_t z;
    if (!get_uvarint(pp, end, &z)) {
        return false;
    }
    int64_t v = unzigzag(z);
    if (v < -1 || (v > 0 && (uint64_t)v > (uint64_t)(end - *pp))) {
        return false;
    }
    *len = v;
    return true;
}

/* ---- encoding ---------------------------------------------------------------------------- */

void rv__batch_enc_free(rv__batch_enc_t *enc) {
    if (!enc) {
        return;
    }
    free(enc->buf);
    free(enc->tmp);
    free(enc->lz4_state);
    ZSTD_freeCCtx(enc->zstd_cctx);
    memset(enc, 0, sizeof *enc);
}

/* The most bytes one record can take encoded. */
static size_t record_bound(const rv_record_t *r) {
    size_t b = 10 + 10 + 10 + 10 + 10; /* offset delta, ts delta, key, value, header count */
    b += r->key ? r->key_len : 0;
    b += r->value ? r->value_len : 0;
    for (size_t i = 0; i < r->header_count; i++) {
        const rv_header_t *h = &r->headers[i];
        b += 10 + (h->name ? strlen(h->name) : 0) + 1 + 10 + (h->value ? h->value_len : 0);
    }
    return b;
}

size_t rv__batch_fit(const rv_record_t *recs, size_t n, size_t max_bytes, size_t *bound) {
    size_t total = 0, k = 0;
    while (k < n) {
        size_t b = record_bound(&recs[k]);
        if (k > 0 && total + b > max_bytes) {
            break;
        }
        total += b;
        k++;
    }
    *bound = total;
    return k;
}

static bool grow(uint8_t **buf, size_t *cap, size_t need) {
    if (*cap >= need) {
        return true;
    }
    size_t c = *cap ? *cap : 65536;
    while (c < need) {
        c *= 2;
    }
    uint8_t *p = realloc(*buf, c);
    if (!p) {
        return false;
    }
    *buf = p;
    *cap = c;
    return true;
}

/* Encodes the records section at `out`; returns its end. The caller sized `out` by the bound. */
static uint8_t *encode_records(uint8_t *out, const rv_record_t *recs, size_t n, int64_t base,
                               bool keep_offsets, int64_t now_ms, int64_t *first_ts,
                               int64_t *max_ts, uint32_t *last_delta) {
    uint8_t *p = out;
    int64_t first = 0, max = INT64_MIN;
    uint64_t delta = 0;
    for (size_t i = 0; i < n; i++) {
        const rv_record_t *r = &recs[i];
        int64_t ts = r->timestamp_ms;
        if (ts <= 0 && now_ms > 0) {
            ts = now_ms;
        }
        if (i == 0) {
            first = ts;
        }
        if (ts > max) {
            max = ts;
        }
        delta = keep_offsets ? (uint64_t)(r->offset - base) : (uint64_t)i;
        p = put_uvarint(p, delta);
        p = put_svarint(p, (int64_t)((uint64_t)ts - (uint64_t)first));
        if (r->key) {
            p = put_svarint(p, (int64_t)r->key_len);
            memcpy(p, r->key, r->key_len);
            p += r->key_len;
        } else {
            *p++ = 1; /* zigzag(-1): no key */
        }
        if (r->value) {
            p = put_svarint(p, (int64_t)r->value_len);
            memcpy(p, r->value, r->value_len);
            p += r->value_len;
        } else {
            *p++ = 1; /* a tombstone */
        }
        p = put_uvarint(p, r->header_count);
        for (size_t j = 0; j < r->header_count; j++) {
            const rv_header_t *h = &r->headers[j];
            size_t nl = h->name ? strlen(h->name) : 0;
            p = put_uvarint(p, nl);
            if (nl) {
                memcpy(p, h->name, nl);
                p += nl;
            }
            *p++ = 0; /* names end with NUL so readers can hand them out in place */
            if (h->value) {
                p = put_svarint(p, (int64_t)h->value_len);
                memcpy(p, h->value, h->value_len);
                p += h->value_len;
            } else {
                *p++ = 1;
            }
        }
    }
    *first_ts = first;
    *max_ts = max;
    *last_delta = (uint32_t)delta;
    return p;
}

uint32_t rv__batch_crc(const uint8_t *p, uint32_t length) {
    uint32_t crc = rv_crc32c(0, p, 4);
    return rv_crc32c(crc, p + 8, length - 8);
}

rv_err_t rv__batch_encode(rv__batch_enc_t *enc, const rv_record_t *recs, size_t n,
                          int64_t base_offset, bool keep_offsets, int64_t now_ms, rv_codec_t codec,
                          const rv__batch_meta_t *meta, size_t *len) {
    size_t bound = 0;
    for (size_t i = 0; i < n; i++) {
        bound += record_bound(&recs[i]);
    }
    if (n == 0) {
        return RV_ERR_INVALID_ARG;
    }
    if (bound > 2 * (size_t)RV__BATCH_MAX) {
        return RV_ERR_LIMIT; /* surely too big; the exact check follows the encoding */
    }
    if (keep_offsets) {
        base_offset = recs[0].offset;
    }
    uint8_t *rec;
    if (codec == RV_CODEC_NONE) {
        if (!grow(&enc->buf, &enc->cap, RV__BATCH_HEADER + bound)) {
            return RV_ERR_NOMEM;
        }
        rec = enc->buf + RV__BATCH_HEADER;
    } else {
        if (!grow(&enc->tmp, &enc->tmp_cap, bound)) {
            return RV_ERR_NOMEM;
        }
        rec = enc->tmp;
    }
    int64_t first_ts, max_ts;
    uint32_t last_delta;
    uint8_t *end = encode_records(rec, recs, n, base_offset, keep_offsets, now_ms, &first_ts,
                                  &max_ts, &last_delta);
    size_t rsize = (size_t)(end - rec);
    if (rsize > RV__BATCH_MAX) {
        return RV_ERR_LIMIT;
    }
    size_t stored = rsize;
    uint8_t stored_codec = RV_CODEC_NONE;
    if (codec == RV_CODEC_LZ4) {
        size_t cb = (size_t)LZ4_compressBound((int)rsize);
        if (!grow(&enc->buf, &enc->cap, RV__BATCH_HEADER + (cb > rsize ? cb : rsize))) {
            return RV_ERR_NOMEM;
        }
        if (!enc->lz4_state && !(enc->lz4_state = malloc((size_t)LZ4_sizeofState()))) {
            return RV_ERR_NOMEM;
        }
        int c =
            LZ4_compress_fast_extState(enc->lz4_state, (const char *)rec,
                                       (char *)enc->buf + RV__BATCH_HEADER, (int)rsize, (int)cb, 1);
        if (c > 0 && (size_t)c < rsize) {
            stored = (size_t)c;
            stored_codec = RV_CODEC_LZ4;
        }
    } else if (codec == RV_CODEC_ZSTD) {
        size_t cb = ZSTD_compressBound(rsize);
        if (!grow(&enc->buf, &enc->cap, RV__BATCH_HEADER + (cb > rsize ? cb : rsize))) {
            return RV_ERR_NOMEM;
        }
        if (!enc->zstd_cctx && !(enc->zstd_cctx = ZSTD_createCCtx())) {
            return RV_ERR_NOMEM;
        }
        size_t c = ZSTD_compressCCtx(enc->zstd_cctx, enc->buf + RV__BATCH_HEADER, cb, rec, rsize,
                                     ZSTD_LEVEL);
        if (!ZSTD_isError(c) && c < rsize) {
            stored = c;
            stored_codec = RV_CODEC_ZSTD;
        }
    }
    if (codec != RV_CODEC_NONE && stored_codec == RV_CODEC_NONE) {
        memcpy(enc->buf + RV__BATCH_HEADER, rec, rsize); /* the codec did not help */
    }

    uint8_t *h = enc->buf;
    uint32_t length = (uint32_t)(RV__BATCH_HEADER + stored);
    rv__put32(h + 0, length);
    h[8] = RV__BATCH_MAGIC;
    h[9] = stored_codec;
    uint16_t attrs = meta ? meta->attributes : 0;
    h[10] = (uint8_t)attrs;
    h[11] = (uint8_t)(attrs >> 8);
    rv__put32(h + 12, (uint32_t)n);
    rv__put64(h + 16, (uint64_t)base_offset);
    rv__put32(h + 24, last_delta);
    rv__put32(h + 28, (uint32_t)rsize);
    rv__put64(h + 32, (uint64_t)first_ts);
    rv__put64(h + 40, (uint64_t)max_ts);
    rv__put64(h + 48, (uint64_t)(meta ? meta->producer_id : -1));
    uint16_t epoch = (uint16_t)(meta ? meta->producer_epoch : -1);
    h[56] = (uint8_t)epoch;
    h[57] = (uint8_t)(epoch >> 8);
    h[58] = 0;
    h[59] = 0;
    rv__put32(h + 60, (uint32_t)(meta ? meta->base_sequence : -1));
    rv__put32(h + 4, rv__batch_crc(h, length));
    *len = length;
    return RV_OK;
}

/* ---- checking and decoding --------------------------------------------------------------- */

rv_err_t rv__batch_peek(const uint8_t *p, size_t avail, rv__batch_hdr_t *h, const char **why) {
    const char *reason = NULL;
    if (avail < RV__BATCH_HEADER) {
        reason = "partial batch header";
        goto bad;
    }
    h->length = rv__le32(p);
    h->crc = rv__le32(p + 4);
    h->magic = p[8];
    h->codec = p[9];
    h->attributes = (uint16_t)(p[10] | p[11] << 8);
    h->count = rv__le32(p + 12);
    h->base_offset = (int64_t)rv__le64(p + 16);
    h->last_delta = rv__le32(p + 24);
    h->records_size = rv__le32(p + 28);
    h->first_ts = (int64_t)rv__le64(p + 32);
    h->max_ts = (int64_t)rv__le64(p + 40);
    h->producer_id = (int64_t)rv__le64(p + 48);
    h->producer_epoch = (int16_t)(uint16_t)(p[56] | p[57] << 8);
    h->base_sequence = (int32_t)rv__le32(p + 60);
    if (h->magic != RV__BATCH_MAGIC) {
        reason = "unknown magic byte (not a batch, or a newer format)";
    } else if (h->length < RV__BATCH_HEADER + 1 || h->length - RV__BATCH_HEADER > RV__BATCH_MAX) {
        reason = "implausible batch length";
    } else if (h->codec > RV_CODEC_ZSTD) {
        reason = "unknown compression codec";
    } else if (h->attributes & ~RV__ATTR_KNOWN) {
        reason = "unknown attribute bits";
    } else if (p[58] != 0 || p[59] != 0) {
        reason = "reserved header bytes are not zero";
    } else if (h->count == 0 || h->last_delta < h->count - 1) {
        reason = "implausible record count";
    } else if (h->base_offset < 0 || h->base_offset > INT64_MAX - (int64_t)h->last_delta) {
        reason = "implausible base offset";
    } else if (h->records_size > RV__BATCH_MAX || h->records_size < (uint64_t)h->count * 5u) {
        reason = "implausible records size";
    } else if (h->codec == RV_CODEC_NONE && h->records_size != h->length - RV__BATCH_HEADER) {
        reason = "records size does not match the batch length";
    } else if (h->max_ts < h->first_ts) {
        reason = "largest timestamp below the first";
    } else {
        return RV_OK;
    }
bad:
    if (why) {
        *why = reason;
    }
    return RV_ERR_CORRUPT;
}

void rv__batch_dctx_free(void *zstd_dctx) {
    ZSTD_freeDCtx(zstd_dctx);
}

rv_err_t rv__batch_records(const uint8_t *batch, const rv__batch_hdr_t *h, uint8_t *dbuf,
                           size_t dcap, void **zstd_dctx, const uint8_t **rec, size_t *rec_len,
                           const char **why) {
    const uint8_t *src = batch + RV__BATCH_HEADER;
    size_t slen = h->length - RV__BATCH_HEADER;
    if (h->codec == RV_CODEC_NONE) {
        *rec = src;
        *rec_len = slen;
        return RV_OK;
    }
    if (dcap < h->records_size) {
        *why = "decompression buffer too small";
        return RV_ERR_LIMIT;
    }
    if (h->codec == RV_CODEC_LZ4) {
        int got =
            LZ4_decompress_safe((const char *)src, (char *)dbuf, (int)slen, (int)h->records_size);
        if (got < 0 || (uint32_t)got != h->records_size) {
            *why = "lz4 records do not decompress to the recorded size";
            return RV_ERR_CORRUPT;
        }
    } else {
        if (!*zstd_dctx && !(*zstd_dctx = ZSTD_createDCtx())) {
            *why = "out of memory";
            return RV_ERR_NOMEM;
        }
        size_t got = ZSTD_decompressDCtx(*zstd_dctx, dbuf, h->records_size, src, slen);
        if (ZSTD_isError(got) || got != h->records_size) {
            *why = "zstd records do not decompress to the recorded size";
            return RV_ERR_CORRUPT;
        }
    }
    *rec = dbuf;
    *rec_len = h->records_size;
    return RV_OK;
}

void rv__rec_cursor_init(rv__rec_cursor_t *c, const rv__batch_hdr_t *h, const uint8_t *rec,
                         size_t rec_len) {
    c->p = rec;
    c->end = rec + rec_len;
    c->left = h->count;
    c->last_delta = h->last_delta;
    c->prev_delta = -1;
    c->base_offset = h->base_offset;
    c->first_ts = h->first_ts;
}

rv_err_t rv__rec_next(rv__rec_cursor_t *c, rv_record_t *out, const uint8_t **hdr_bytes,
                      const char **why) {
    const uint8_t *p = c->p, *end = c->end;
    uint64_t delta, tsz, hc;
    int64_t klen, vlen;
    if (c->left == 0) {
        *why = "more records than the batch's count";
        return RV_ERR_CORRUPT;
    }
    if (!get_uvarint(&p, end, &delta) || (int64_t)delta <= c->prev_delta || delta > c->last_delta) {
        *why = "record offset delta out of order or range";
        return RV_ERR_CORRUPT;
    }
    if (!get_uvarint(&p, end, &tsz)) {
        *why = "malformed timestamp delta";
        return RV_ERR_CORRUPT;
    }
    if (!get_len(&p, end, &klen)) {
        *why = "malformed key length";
        return RV_ERR_CORRUPT;
    }
    const uint8_t *key = klen >= 0 ? p : NULL;
    p += klen > 0 ? klen : 0;
    if (!get_len(&p, end, &vlen)) {
        *why = "malformed value length";
        return RV_ERR_CORRUPT;
    }
    const uint8_t *value = vlen >= 0 ? p : NULL;
    p += vlen > 0 ? vlen : 0;
    if (!get_uvarint(&p, end, &hc) || hc > (uint64_t)(end - p) / 3) {
        *why = "malformed header count";
        return RV_ERR_CORRUPT;
    }
    *hdr_bytes = p;
    for (uint64_t i = 0; i < hc; i++) {
        uint64_t nl;
        int64_t hl;
        if (!get_uvarint(&p, end, &nl) || nl >= (uint64_t)(end - p) || p[nl] != 0) {
            *why = "malformed header name";
            return RV_ERR_CORRUPT;
        }
        p += nl + 1;
        if (!get_len(&p, end, &hl)) {
            *why = "malformed header value";
            return RV_ERR_CORRUPT;
        }
        p += hl > 0 ? hl : 0;
    }
    c->left--;
    c->prev_delta = (int64_t)delta;
    if (c->left == 0 && (p != end || delta != c->last_delta)) {
        *why = "the batch's last record does not end its records section";
        return RV_ERR_CORRUPT;
    }
    c->p = p;
    out->topic = NULL;
    out->partition = -1;
    out->offset = c->base_offset + (int64_t)delta;
    out->timestamp_ms = (int64_t)((uint64_t)c->first_ts + (uint64_t)unzigzag(tsz));
    out->key = key;
    out->key_len = klen > 0 ? (size_t)klen : 0;
    out->value = value;
    out->value_len = vlen > 0 ? (size_t)vlen : 0;
    out->headers = NULL;
    out->header_count = (size_t)hc;
    return RV_OK;
}

void rv__rec_headers(const uint8_t *p, const uint8_t *end, rv_header_t *out, size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint64_t nl = 0;
        int64_t hl = 0;
        get_uvarint(&p, end, &nl);
        out[i].name = (const char *)p;
        p += nl + 1;
        get_len(&p, end, &hl);
        out[i].value = hl >= 0 ? p : NULL;
        out[i].value_len = hl > 0 ? (size_t)hl : 0;
        p += hl > 0 ? hl : 0;
    }
}
