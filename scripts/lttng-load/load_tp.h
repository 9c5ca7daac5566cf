/* The tracepoint of scripts/load-compare's LTTng-UST side: the same
 * 3-field event as scripts/load (int32, int64, string). */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER load

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./load_tp.h"

#if !defined(LOAD_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define LOAD_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

LTTNG_UST_TRACEPOINT_EVENT(
    load,
    event,
    LTTNG_UST_TP_ARGS(int32_t, i, int64_t, v, const char *, s),
    LTTNG_UST_TP_FIELDS(
        lttng_ust_field_integer(int32_t, i, i)
        lttng_ust_field_integer(int64_t, v, v)
        lttng_ust_field_string(s, s)
    )
)

#endif /* LOAD_TP_H */

#include <lttng/tracepoint-event.h>
