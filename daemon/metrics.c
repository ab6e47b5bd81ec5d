/* metrics.c - counters and histograms for GET /metrics */
#include "aupd/metrics.h"

const int64_t metrics_latency_bounds[METRICS_LATENCY_BUCKETS] = {
	250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

static const char *const reject_names[REJECT_COUNT_] = {
	"invalid", "tenant", "parse", "too_large", "media_type", "busy", "storage", "unauthorized",
};

const char *
metrics_reject_name(enum reject_reason why)
{
	return reject_names[why];
}

void
metrics_observe(struct metrics *m, size_t route, int status, int64_t us)
{
	struct route_metrics *r;
	size_t b = 0;

	if (route >= METRICS_MAX_ROUTES)
		return;
	r = &m->routes[route];
	while (b < METRICS_LATENCY_BUCKETS && us > metrics_latency_bounds[b])
		b++;
	atomic_fetch_add(&r->buckets[b], 1);
	atomic_fetch_add(&r->sum_us, us);
	atomic_fetch_add(&r->count, 1);
	atomic_fetch_add(&r->status[status >= 100 && status < 600 ? status / 100 : 0], 1);
}

void
metrics_reject(struct metrics *m, enum reject_reason why, long long n)
{
	atomic_fetch_add(&m->rejected[why], n);
}
