/* pcache.c - SQLite's page cache, less a commit-time scan that finds nothing */
#include "aupd/store.h"
#include "aupd/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/*
 * When a B-tree page splits, SQLite puts the new sibling pages in ascending
 * order by swapping page numbers through a temporary one, the page that
 * holds the pending byte (page 262145 with 4 KiB pages).  The default page
 * cache remembers the largest page number it ever held, and at every commit
 * SQLite asks it to drop the pages past the end of the database; when that
 * largest number is the temporary one, far past the end, it walks its whole
 * hash table to find nothing.  With index entries placed at random that is
 * one commit in five, and about 6% of the writer's time (bench/README.md,
 * "SQLite's page cache at commit").
 *
 * This wraps the default cache and passes every call on, except a truncation
 * that provably drops nothing.  Per cache it keeps an upper bound of the
 * page numbers that can be in it: every number a page was created under or
 * renamed to, except the temporary one, for which it counts the pages
 * renamed to it and away.  The bound only shrinks when a truncation is
 * passed on, which drops every page at or past its limit; a page that leaves
 * in any other way (evicted, discarded) leaves the bound too high, which
 * only means a truncation passed on that could have been skipped.
 */

/* SQLite's PENDING_BYTE: the page holding it is never a database page */
#define SQLITE_PENDING_BYTE 0x40000000u

struct wcache {
	sqlite3_pcache *inner;
	unsigned max_key;  /* no page has a greater number, but the temporary one */
	unsigned temp_key; /* the pending-byte page of this page size */
	int temp_n;	   /* pages renamed to temp_key and not yet away */
};

static sqlite3_pcache_methods2 base; /* the default cache's */
static atomic_ulong n_skipped, n_passed, n_temp;

static sqlite3_pcache *
w_create(int page_size, int extra, int purgeable)
{
	struct wcache *w = malloc(sizeof(*w));

	if (!w)
		return NULL;
	w->inner = base.xCreate(page_size, extra, purgeable);
	if (!w->inner) {
		free(w);
		return NULL;
	}
	w->max_key = 0;
	w->temp_key = SQLITE_PENDING_BYTE / (unsigned)page_size + 1;
	w->temp_n = 0;
	return (sqlite3_pcache *)w;
}

static void
w_cachesize(sqlite3_pcache *p, int n)
{
	base.xCachesize(((struct wcache *)p)->inner, n);
}

static int
w_pagecount(sqlite3_pcache *p)
{
	return base.xPagecount(((struct wcache *)p)->inner);
}

static sqlite3_pcache_page *
w_fetch(sqlite3_pcache *p, unsigned key, int create)
{
	struct wcache *w = (struct wcache *)p;

	if (create && key > w->max_key)
		w->max_key = key; /* it may be created now */
	return base.xFetch(w->inner, key, create);
}

static void
w_unpin(sqlite3_pcache *p, sqlite3_pcache_page *pg, int discard)
{
	base.xUnpin(((struct wcache *)p)->inner, pg, discard);
}

static void
w_rekey(sqlite3_pcache *p, sqlite3_pcache_page *pg, unsigned old_key, unsigned new_key)
{
	struct wcache *w = (struct wcache *)p;

	if (old_key == w->temp_key && w->temp_n > 0)
		w->temp_n--;
	if (new_key == w->temp_key) {
		w->temp_n++;
		atomic_fetch_add_explicit(&n_temp, 1, memory_order_relaxed);
	} else if (new_key > w->max_key)
		w->max_key = new_key;
	base.xRekey(w->inner, pg, old_key, new_key);
}

static void
w_truncate(sqlite3_pcache *p, unsigned limit)
{
	struct wcache *w = (struct wcache *)p;

	if (w->max_key < limit && (w->temp_n == 0 || w->temp_key < limit)) {
		atomic_fetch_add_explicit(&n_skipped, 1, memory_order_relaxed);
		return; /* nothing at or past `limit` */
	}
	atomic_fetch_add_explicit(&n_passed, 1, memory_order_relaxed);
	base.xTruncate(w->inner, limit);
	if (limit <= w->max_key)
		w->max_key = limit ? limit - 1 : 0;
	if (limit <= w->temp_key)
		w->temp_n = 0;
}

static void
w_destroy(sqlite3_pcache *p)
{
	struct wcache *w = (struct wcache *)p;

	base.xDestroy(w->inner);
	free(w);
}

static void
w_shrink(sqlite3_pcache *p)
{
	base.xShrink(((struct wcache *)p)->inner);
}

static void
install(void)
{
	sqlite3_pcache_methods2 m;

	/* before SQLite is initialised only; otherwise the default stays */
	if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &base) != SQLITE_OK || !base.xCreate) {
		log_warn("SQLite was in use before its page cache could be wrapped: "
			 "commits may scan the cache for nothing (slower, not wrong)");
		return;
	}
	m = base; /* xInit, xShutdown and pArg are the default cache's own */
	m.xCreate = w_create;
	m.xCachesize = w_cachesize;
	m.xPagecount = w_pagecount;
	m.xFetch = w_fetch;
	m.xUnpin = w_unpin;
	m.xRekey = w_rekey;
	m.xTruncate = w_truncate;
	m.xDestroy = w_destroy;
	m.xShrink = w_shrink;
	if (sqlite3_config(SQLITE_CONFIG_PCACHE2, &m) != SQLITE_OK)
		log_warn("cannot wrap SQLite's page cache: commits may scan it for nothing");
}

void
store_pcache_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
}

void
store_pcache_counts(struct store_pcache_counts *out)
{
	out->skipped = atomic_load_explicit(&n_skipped, memory_order_relaxed);
	out->passed = atomic_load_explicit(&n_passed, memory_order_relaxed);
	out->temp_renames = atomic_load_explicit(&n_temp, memory_order_relaxed);
}
