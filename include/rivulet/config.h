/*
 * rivulet/config.h: configuration as name=value properties.
 *
 * One static table (see rv_conf_property()) lists every property rivulet knows: its name, type,
 * default, range or accepted values, scope and description. The same table parses and validates
 * rv_conf_set(), drives `rivulet config list` and generates docs/configuration.md. Names with the
 * prefix "kafka." are handed unchanged (without the prefix) to librdkafka and names with
 * "rocksdb." to RocksDB; rivulet keeps them in order but does not interpret them.
 */
#ifndef RIVULET_CONFIG_H
#define RIVULET_CONFIG_H

#include "common.h"
#include "error.h"
#include "strbuf.h"

RV_BEGIN_DECLS

/** The type of a property's value, which decides how its text is parsed. */
typedef enum rv_conf_type_e {
    RV_CONF_BOOL,     /**< true/false, also 1/0, yes/no, on/off */
    RV_CONF_INT,      /**< a decimal integer within [min, max] */
    RV_CONF_DOUBLE,   /**< a decimal number within [min, max] */
    RV_CONF_STRING,   /**< any text */
    RV_CONF_ENUM,     /**< one of the accepted values */
    RV_CONF_BYTES,    /**< a size: an integer with an optional K, M, G, KiB, MiB, GiB suffix */
    RV_CONF_DURATION  /**< milliseconds: an integer with an optional ms, s, m, h, d suffix */
} rv_conf_type_t;

/** A read-only view of one row of the property table. */
typedef struct rv_conf_property_s {
    const char *name;          /**< e.g. "local.fsync.policy" */
    rv_conf_type_t type;
    const char *default_value; /**< the default, as text */
    int64_t min;               /**< smallest accepted value (numbers, sizes, durations) */
    int64_t max;               /**< largest accepted value */
    const char *values;        /**< accepted values of an enum, separated by '|'; else NULL */
    const char *scope;         /**< where it applies: "client", "topic", "app", ... */
    const char *description;   /**< one or two sentences */
} rv_conf_property_t;

/** The number of properties in the table. */
RV_API size_t rv_conf_property_count(void);

/** Row `index` of the table (static storage), or NULL when out of range. */
RV_API const rv_conf_property_t *rv_conf_property(size_t index);

/** The row for `name`, or NULL when rivulet has no such property. */
RV_API const rv_conf_property_t *rv_conf_property_find(const char *name);

/** The type's name ("bool", "int", ...). */
RV_API const char *rv_conf_type_name(rv_conf_type_t type);

/** A set of property values. Opaque. */
typedef struct rv_conf_s rv_conf_t;

/** Creates a configuration holding every default. Free with rv_conf_destroy(). NULL on NOMEM. */
RV_API rv_conf_t *rv_conf_new(void);

/** A deep copy of `conf`. Free with rv_conf_destroy(). NULL on NOMEM. */
RV_API rv_conf_t *rv_conf_dup(const rv_conf_t *conf);

/** Frees a configuration. Accepts NULL. */
RV_API void rv_conf_destroy(rv_conf_t *conf);

/**
 * Sets property `name` to `value` (both copied). Returns RV_ERR_CONFIG for an unknown name
 * (the message names it and suggests the nearest known one), RV_ERR_CONFIG for a value of the
 * wrong form (the message names the property, the value and the accepted values or form),
 * RV_ERR_RANGE for a number outside the property's range (the message gives the range),
 * RV_ERR_NOMEM. The configuration is unchanged on failure.
 */
RV_API rv_err_t rv_conf_set(rv_conf_t *conf, const char *name, const char *value, rv_error_t **err);

/**
 * Sets a property from "name=value" text, as the CLI's -X flag does. Errors as rv_conf_set(),
 * plus RV_ERR_CONFIG when there is no '='.
 */
RV_API rv_err_t rv_conf_set_pair(rv_conf_t *conf, const char *name_eq_value, rv_error_t **err);

/**
 * The value of `name` as text: what was set, or the default. Borrowed, valid until the property
 * is set again or the configuration is destroyed. NULL for an unknown name or an unset
 * pass-through property.
 */
RV_API const char *rv_conf_get(const rv_conf_t *conf, const char *name);

/** Whether `name` was set explicitly (rather than holding its default). */
RV_API bool rv_conf_is_set(const rv_conf_t *conf, const char *name);

/** The value of an int, bytes or duration property (bool: 0 or 1). 0 for other names. */
RV_API int64_t rv_conf_get_int(const rv_conf_t *conf, const char *name);

/** The value of a double property (an int property converted). 0.0 for other names. */
RV_API double rv_conf_get_double(const rv_conf_t *conf, const char *name);

/**
 * Calls `fn` for every pass-through property whose name starts with `prefix` (for example
 * "kafka."), in the order they were set, with the name stripped of the prefix and the value.
 * Stops early and returns what `fn` returned when it is not RV_OK.
 */
RV_API rv_err_t rv_conf_foreach_prefixed(const rv_conf_t *conf, const char *prefix,
                                         rv_err_t (*fn)(void *opaque, const char *name,
                                                        const char *value),
                                         void *opaque);

/** Appends the Markdown reference of every property (docs/configuration.md) to `out`. */
RV_API rv_err_t rv_conf_describe_markdown(rv_strbuf_t *out);

RV_END_DECLS

#endif
