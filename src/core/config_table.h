/*
 * config_table.h: the one table of rivulet's configuration properties.
 *
 * Each row: X(ID, name, type, default, min, max, accepted values, scope, description).
 * config.c expands it into the public rv_conf_property() table and into the RV_CONF_ID_*
 * enum that library code uses for typed, lookup-free access (rv__conf_int() and friends).
 * Add a property here only together with the code that reads it; docs/configuration.md is
 * generated from this table (`make docs`) and a test checks it is current.
 */
#ifndef RV_CONFIG_TABLE_H
#define RV_CONFIG_TABLE_H

#define RV_CONF_TABLE(X)                                                                       \
    X(LOG_LEVEL, "log.level", RV_CONF_ENUM, "notice", 0, 0, "error|warning|notice|info|debug",   \
      "client", "The most detailed log level delivered to the log callback.")                  \
    X(JSON_MAX_DEPTH, "json.max.depth", RV_CONF_INT, "512", 1, 100000, NULL, "codec",            \
      "The deepest nesting of arrays and objects the JSON parser accepts; deeper input is an "  \
      "error rather than a risk to the stack or memory.")

#endif
