/* ratelimit.c - per-token request rate limits (token buckets) */
#include "aupd/ratelimit.h"
#include "aupd/util.h"

#include <pthread.h>
#include <stdlib.h>

/* An open-addressing table of buckets keyed by token id; it doubles when half full. */
struct bucket {
	int64_t token_id; /* 0: empty slot (token ids start at 1) */
	double tokens;
	int64_t last_us;
};

struct ratelimit {
	pthread_mutex_t mu;
	double rate;
	double burst;
	struct bucket *slots;
	size_t cap, used;
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
	rl->cap = 64;
	rl->slots = xcalloc(rl->cap, sizeof(*rl->slots));
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl->slots);
	free(rl);
}

static struct bucket *
find(struct bucket *slots, size_t cap, int64_t id)
{
	size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ULL >> 20) & (cap - 1);

	while (slots[i].token_id && slots[i].token_id != id)
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static void
grow(struct ratelimit *rl)
{
	size_t cap = rl->cap * 2;
	struct bucket *slots = xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i < rl->cap; i++)
		if (rl->slots[i].token_id)
			*find(slots, cap, rl->slots[i].token_id) = rl->slots[i];
	free(rl->slots);
	rl->slots = slots;
	rl->cap = cap;
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
	b = find(rl->slots, rl->cap, token_id);
	if (!b->token_id) {
		if (2 * (rl->used + 1) > rl->cap) {
			grow(rl);
			b = find(rl->slots, rl->cap, token_id);
		}
		b->token_id = token_id;
		b->tokens = rl->burst;
		b->last_us = now;
		rl->used++;
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
