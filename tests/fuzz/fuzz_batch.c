/*
 * fuzz_batch.c: libFuzzer target for the partition log's batch decoder and reader.
 *
 * The first input byte picks a mode, the rest is a segment file. In "as is" mode the bytes are
 * used unchanged, so almost every batch fails its CRC and none of its records may come out. In
 * "fixed" mode each plausible batch gets its true CRC first (and, with another bit, a codec),
 * so the record decoder and the decompressors see checksummed garbage and must reject it
 * cleanly. Each input is decoded twice: batch by batch with the decoding functions, and through
 * a real read-only log opened on a scratch directory, whose records must all come from batches
 * with a valid CRC. Any violation calls abort().
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/plog_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DCAP ((size_t)1 << 20)

static char dir[64];
static char seg_path[128];
static uint8_t *dbuf;
static void *zctx;

static void cleanup(void) {
    char p[128];
    unlink(seg_path);
    snprintf(p, sizeof p, "%s/state", dir);
    unlink(p);
    rmdir(dir);
}

static void setup(void) {
    atexit(cleanup);
    snprintf(dir, sizeof dir, "/tmp/rv-fuzz-batch-%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(seg_path, sizeof seg_path, "%s/00000000000000000000.log", dir);
    dbuf = malloc(DCAP);
    if (!dbuf) {
        abort();
    }
}

/* The offset ranges of batches whose CRC is right, following lengths from the start. */
typedef struct range_s {
    int64_t lo, hi;
} range_t;

static size_t valid_ranges(const uint8_t *p, size_t size, range_t *out, size_t max) {
    size_t n = 0, pos = 0;
    while (n < max && size - pos >= RV__BATCH_HEADER) {
        rv__batch_hdr_t h;
        if (rv__batch_peek(p + pos, size - pos, &h, NULL) != RV_OK || h.length > size - pos) {
            break;
        }
        if (rv__batch_crc(p + pos, h.length) == h.crc) {
            out[n++] = (range_t){h.base_offset, h.base_offset + (int64_t)h.last_delta};
        }
        pos += h.length;
    }
    return n;
}

/* Decodes every batch with the decoding functions. */
static void decode_direct(const uint8_t *p, size_t size) {
    size_t pos = 0;
    while (size - pos >= RV__BATCH_HEADER) {
        rv__batch_hdr_t h;
        const char *why = NULL;
        if (rv__batch_peek(p + pos, size - pos, &h, &why) != RV_OK) {
            if (!why) {
                abort(); /* a rejection always says why */
            }
            return;
        }
        if (h.length > size - pos) {
            return;
        }
        const uint8_t *b = p + pos;
        pos += h.length;
        if (rv__batch_crc(b, h.length) != h.crc || h.records_size > DCAP) {
            continue; /* the contract: no record of a batch whose CRC fails */
        }
        const uint8_t *rec;
        size_t rec_len;
        if (rv__batch_records(b, &h, dbuf, DCAP, &zctx, &rec, &rec_len, &why) != RV_OK) {
            continue;
        }
        rv__rec_cursor_t c;
        rv__rec_cursor_init(&c, &h, rec, rec_len);
        int64_t prev = -1;
        while (c.left > 0) {
            rv_record_t r;
            const uint8_t *hb;
            if (rv__rec_next(&c, &r, &hb, &why) != RV_OK) {
                break;
            }
            if (r.offset <= prev || r.offset < h.base_offset ||
                r.offset > h.base_offset + (int64_t)h.last_delta) {
                abort();
            }
            prev = r.offset;
            const uint8_t *end = rec + rec_len;
            if ((r.key &&
                 ((const uint8_t *)r.key < rec || (const uint8_t *)r.key + r.key_len > end)) ||
                (r.value && ((const uint8_t *)r.value < rec ||
                             (const uint8_t *)r.value + r.value_len > end))) {
                abort();
            }
            rv_header_t hdrs[64];
            if (r.header_count <= 64) {
                rv__rec_headers(hb, c.end, hdrs, r.header_count);
                for (size_t i = 0; i < r.header_count; i++) {
                    if (strlen(hdrs[i].name) > rec_len) {
                        abort();
                    }
                }
            }
        }
    }
}

/* Reads the bytes as a segment through a read-only log. */
static void decode_reader(const uint8_t *p, size_t size) {
    int fd = open(seg_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, p, size) != (ssize_t)size) {
        abort();
    }
    close(fd);
    static range_t ranges[4096];
    size_t nr = valid_ranges(p, size, ranges, 4096);
    rv_plog_opts_t o = {.name = "fuzz/0"};
    rv_plog_t *log = NULL;
    if (rv__plog_open(dir, &o, &log, NULL) != RV_OK) {
        return;
    }
    rv_plog_reader_t *r = NULL;
    if (rv__plog_reader_open(log, 0, &r, NULL) == RV_OK) {
        rv_record_t out[64];
        for (int rounds = 0; rounds < 10000; rounds++) {
            size_t n = 0;
            rv_error_t *err = NULL;
            rv_err_t rc = rv__plog_read(r, out, 64, &n, &err);
            if (rc != RV_OK) {
                if (!err || n != 0) {
                    abort();
                }
                rv_error_destroy(err);
                break;
            }
            if (n == 0) {
                break;
            }
            for (size_t i = 0; i < n; i++) {
                bool inside = false;
                for (size_t j = 0; j < nr && !inside; j++) {
                    inside = out[i].offset >= ranges[j].lo && out[i].offset <= ranges[j].hi;
                }
                if (!inside) {
                    abort(); /* a record that no checksummed batch holds */
                }
            }
        }
        int64_t t = 0;
        (void)rv__plog_offset_for_time(log, (int64_t)size * 1000, &t, NULL);
        rv__plog_reader_close(r);
    }
    rv__plog_close(log);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dbuf) {
        setup();
    }
    if (size < 1 || size > (1u << 20)) {
        return 0;
    }
    uint8_t mode = data[0];
    size--;
    uint8_t *p = malloc(size ? size : 1);
    if (!p) {
        abort();
    }
    memcpy(p, data + 1, size);
    if (mode & 1) { /* give plausible batches their true CRC */
        size_t pos = 0;
        while (size - pos >= RV__BATCH_HEADER) {
            uint8_t *b = p + pos;
            if (mode & 2) {
                b[9] = (uint8_t)((mode >> 2) % 3); /* try each codec */
            }
            if ((mode & 0x20) && b[9] == RV_CODEC_NONE) {
                uint32_t len = rv__le32(b);
                if (len > RV__BATCH_HEADER && len <= size - pos) {
                    rv__put32(b + 28, len - RV__BATCH_HEADER); /* records size agrees */
                }
            }
            uint32_t len = rv__le32(b);
            if (len < RV__BATCH_HEADER || len > size - pos) {
                break;
            }
            rv__put32(b + 4, rv__batch_crc(b, len));
            pos += len;
        }
    }
    decode_direct(p, size);
    rv__batch_hdr_t h;
    bool big = size >= RV__BATCH_HEADER && rv__batch_peek(p, size, &h, NULL) == RV_OK &&
               h.records_size > DCAP;
    if (!big) {
        decode_reader(p, size);
    }
    free(p);
    return 0;
}
