/* ratelimit.h - per-token request rate limits (token buckets) */
#ifndef AUPD_RATELIMIT_H
#define AUPD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* `rate` requests per second with bursts of `burst`; rate 0 disables limiting (NULL). */
struct ratelimit *ratelimit_new(uint32_t rate, uint32_t burst);
void ratelimit_free(struct ratelimit *rl);
/*
 * Takes one request from the token's bucket.  False when it is empty;
 * *retry_after_s then says when the next request would pass.  Thread-safe.
 */
bool ratelimit_take(struct ratelimit *rl, int64_t token_id, int *retry_after_s);

#endif
