/*
 * rivulet/rivulet.h: the one header applications include.
 *
 * It pulls in every public module header. What is not declared under include/rivulet/ is not
 * part of the API.
 */
#ifndef RIVULET_H
#define RIVULET_H

#include "app.h"
#include "arena.h"
#include "broker.h"
#include "clock.h"
#include "common.h"
#include "config.h"
#include "dataframe.h"
#include "error.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "state.h"
#include "strbuf.h"
#include "telemetry.h"
#include "timeseries.h"
#include "tstream.h"
#include "value.h"

#endif
