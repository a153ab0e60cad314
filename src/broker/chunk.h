/*
 * chunk.h: splitting large values into chunk records and reassembling them, the layer broker.c
 * puts in front of every broker implementation.
 *
 * A producer sends a record whose size (as counted below) exceeds message.split.bytes as
 * several chunk records that carry the record's key and timestamp, go to one partition, and
 * hold the headers named here; the user's delivery report fires once for the whole value. A
 * consumer holds chunk records back and returns one record with the whole value when the last
 * chunk arrives, and reports (never returns) a value whose chunks do not all arrive. Only
 * broker.c calls these functions; the implementations never see the layer, and the layer must
 * never reach into an implementation: it works through the ops and the public handle fields.
 */
#ifndef RV_BROKER_CHUNK_H
#define RV_BROKER_CHUNK_H

#include "broker/broker_int.h"

/* The headers of a chunk record. The id is 16 random bytes; index, count and size are decimal
 * text (ASCII digits, no sign, no leading zero). */
#define RV__CHUNK_H_ID "__rv.chunk.id"
#define RV__CHUNK_H_INDEX "__rv.chunk.index"
#define RV__CHUNK_H_COUNT "__rv.chunk.count"
#define RV__CHUNK_H_SIZE "__rv.chunk.size"
/* Every header whose name starts with this is the layer's; a split record may not carry one. */
#define RV__CHUNK_H_PREFIX "__rv.chunk."
#define RV__CHUNK_ID_LEN 16

/* How the layer counts a record against message.split.bytes: this allowance per record and per
 * header, plus the key, value, header names and header values. It is more generous than what
 * local:, memory: and Kafka's record format add, so a record within message.split.bytes by
 * this count is within a broker limit set to that many bytes. */
#define RV__CHUNK_RECORD_OVERHEAD 64
#define RV__CHUNK_HEADER_OVERHEAD 16

/* The layer's state of one producer (p->chunk) and of one consumer (c->chunk). */
typedef struct rv_chunk_producer_s rv_chunk_producer_t;
typedef struct rv_chunk_consumer_s rv_chunk_consumer_t;

/* Producer side. rv__chunk_producer_new() runs before the implementation's producer_new: it
 * reads the producer's configuration into p->chunk and, when the user gave a delivery
 * callback, puts the layer's own in its place (the user's is kept in p->chunk).
 * rv__chunk_producer_destroy() runs after the implementation's producer_destroy. */
RV__HIDDEN rv_err_t rv__chunk_producer_new(rv_producer_t *p, rv_error_t **err);
RV__HIDDEN void rv__chunk_producer_destroy(rv_producer_t *p);

/* Sends a validated record: as it is when it fits in message.split.bytes, else as chunks
 * (message.split=true) or not at all (RV_ERR_LIMIT, with a warning naming topic and size). */
RV__HIDDEN rv_err_t rv__chunk_send(rv_producer_t *p, const rv_record_t *rec, void *rec_opaque);

/* Consumer side. rv__chunk_consumer_new() runs before the implementation's consumer_new: it
 * puts the layer's rebalance callbacks in front of the user's (kept in c->chunk).
 * rv__chunk_consumer_destroy() runs after the implementation's consumer_destroy. */
RV__HIDDEN rv_err_t rv__chunk_consumer_new(rv_consumer_t *c, rv_error_t **err);
RV__HIDDEN void rv__chunk_consumer_destroy(rv_consumer_t *c);

/* Polls through the implementation, holding chunk records back and returning whole values. */
RV__HIDDEN rv_err_t rv__chunk_poll(rv_consumer_t *c, const rv_record_t **records, size_t max,
                                   size_t *count, int timeout_ms, rv_error_t **err);

/* Commits through the implementation, capping each partition's offset at the first offset of
 * its oldest value still being reassembled (`tps` NULL: the positions of every partition). */
RV__HIDDEN rv_err_t rv__chunk_commit(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                     size_t count, rv_error_t **err);

/* The offsets a commit of `tps` (NULL: the positions of every assigned partition) may store,
 * for any path that commits a consumer's offsets (transactions too): *out is a new array
 * (free it) of *out_count capped offsets, or NULL when no value is being reassembled and `tps`
 * (or NULL) may be used as given. Its topic names are borrowed from `tps` or from the
 * consumer's state, valid until the next call on the consumer. */
RV__HIDDEN rv_err_t rv__chunk_capped_offsets(rv_consumer_t *c, const rv_topic_partition_t *tps,
                                             size_t count, rv_topic_partition_t **out,
                                             size_t *out_count, rv_error_t **err);

/* Tells the layer the assignment was replaced by hand (rv_consumer_assign() succeeded) or a
 * partition was sought: values being reassembled there are discarded without a report. */
RV__HIDDEN void rv__chunk_assigned(rv_consumer_t *c, const rv_topic_partition_t *tps, size_t count);
RV__HIDDEN void rv__chunk_sought(rv_consumer_t *c, const char *topic, int32_t partition);

#endif
