/*
 * config_int.h: typed, lookup-free access to configuration values for library code.
 *
 * Components read their settings by RV_CONF_ID_* (generated from config_table.h) instead of by
 * name, so a misspelt property is a compile error rather than a silent default.
 */
#ifndef RV_CONFIG_INT_H
#define RV_CONFIG_INT_H

#include "core/config_table.h"
#include "core/core_int.h"
#include "rivulet/config.h"

typedef enum rv_conf_id_e {
#define RV__CONF_ID(id, name, type, def, min, max, values, scope, desc) RV_CONF_ID_##id,
    RV_CONF_TABLE(RV__CONF_ID)
#undef RV__CONF_ID
        RV_CONF_ID__COUNT
} rv_conf_id_t;

/* The value of an int, bool (0/1), enum (index among its values), bytes or duration property. */
RV__HIDDEN int64_t rv__conf_int(const rv_conf_t *conf, rv_conf_id_t id);
/* The value of a double property. */
RV__HIDDEN double rv__conf_double(const rv_conf_t *conf, rv_conf_id_t id);
/* The text of any property (set or default). Borrowed from `conf`. */
RV__HIDDEN const char *rv__conf_str(const rv_conf_t *conf, rv_conf_id_t id);

/* Parses `value` as property `p` would: integer forms into *i, doubles into *d (and *i). */
RV__HIDDEN rv_err_t rv__conf_parse(const rv_conf_property_t *p, const char *value, int64_t *i,
                                   double *d, rv_error_t **err);

#endif
