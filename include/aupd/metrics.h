/* metrics.h - counters and histograms for GET /metrics (Prometheus text format) */
#ifndef AUPD_METRICS_H
#define AUPD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aupd/util.h"

#define METRICS_LATENCY_BUCKETS 12
#define METRICS_MAX_ROUTES 32

enum reject_reason {
	REJECT_INVALID,   /* an item failed validation */
	REJECT_TENANT,    /* an item for a tenant the token lacks */
	REJECT_PARSE,     /* the body did not parse */
	REJECT_TOO_LARGE, /* body or batch over a limit */
	REJECT_MEDIA,     /* unsupported content type */
	REJECT_BUSY,      /* the write queue was full */
	REJECT_STORAGE,   /* storage failed or refused writes */
	REJECT_AUTH,      /* no valid token */
	REJECT_COUNT_
};

struct route_metrics {
	atomic_llong buckets[METRICS_LATENCY_BUCKETS + 1]; /* last: +Inf */
	atomic_llong sum_us;
	atomic_llong count;
	atomic_llong status[6]; /* by class: 1xx..5xx, [0] other */
};

struct metrics {
	struct route_metrics routes[METRICS_MAX_ROUTES];
	atomic_llong rejected[REJECT_COUNT_];
	atomic_llong access_records;
};

/* Upper bounds of the latency buckets, in microseconds. */
extern const int64_t metrics_latency_bounds[METRICS_LATENCY_BUCKETS];

void metrics_observe(struct metrics *m, size_t route, int status, int64_t us);
void metrics_reject(struct metrics *m, enum reject_reason why, long long n);
const char *metrics_reject_name(enum reject_reason why);

#endif
