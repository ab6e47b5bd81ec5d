/* ratelimit.c - per-token request rate limits (token buckets) */
#include "aupd/ratelimit.h"
#include "aupd/util.h"

#include <pthread.h>
#include <stdlib.h>

#define SLOTS 1024 /* buckets are found by token id; collisions share a bucket */

struct bucket {
	int64_t token_id;
	double tokens;
	int64_t last_us;
};

struct ratelimit {
	pthread_mutex_t mu;
	double rate;
	double burst;
	struct bucket slots[SLOTS];
};

struct ratelimit *
ratelimit_new(uint32_t rate, uint32_t burst)
{
	struct ratelimit *rl;

	if (rate == 0)
		return NULL;
	rl = xcalloc(1, sizeof(*rl));
	pthread_mutex_init(&rl->mu, NULL);
	rl->rate = rate;
	rl->burst = burst ? burst : rate;
	for (size_t i = 0; i < SLOTS; i++)
		rl->slots[i].token_id = -1;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

bool
ratelimit_take(struct ratelimit *rl, int64_t token_id, int *retry_after_s)
{
	struct bucket *b;
	int64_t now = time_mono_us();
	bool ok;

	if (!rl)
		return true;
	pthread_mutex_lock(&rl->mu);
	b = &rl->slots[(uint64_t)token_id % SLOTS];
	if (b->token_id != token_id) {
		b->token_id = token_id;
		b->tokens = rl->burst;
		b->last_us = now;
	}
	b->tokens += (double)(now - b->last_us) / 1e6 * rl->rate;
	if (b->tokens > rl->burst)
		b->tokens = rl->burst;
	b->last_us = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*retry_after_s = (int)((1.0 - b->tokens) / rl->rate) + 1;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
