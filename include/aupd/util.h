/* util.h - errors, diagnostics, memory, string buffers, time and unit parsing */
#ifndef AUPD_UTIL_H
#define AUPD_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define AUPD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * One error, filled by a failing function for its caller.  `file`, `line`
 * and `col` (1-based) are set when the error has a position in an input file.
 */
struct aupd_error {
	char msg[512];
	char file[256];
	int line;
	int col;
	int temporary; /* the cause may pass by itself (a lock, a port in use) */
};

void aupd_error_clear(struct aupd_error *err);
void aupd_error_set(struct aupd_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void aupd_error_at(struct aupd_error *err, const char *file, int line, int col,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "FILE:LINE:COL: error: MSG" (1:1 for an error about a whole file), or "MSG" without a file. */
void aupd_error_format(const struct aupd_error *err, char *buf, size_t len);

/*
 * A list of positioned diagnostics; loaders report every error they find,
 * not only the first.  diag_list_free() frees the entries, not the list.
 */
struct diag_list {
	struct aupd_error *v;
	size_t n;
	size_t cap;
};

void diag_add(struct diag_list *dl, const char *file, int line, int col,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void diag_addv(struct diag_list *dl, const char *file, int line, int col,
	       const char *fmt, va_list ap);
void diag_list_free(struct diag_list *dl);

/* Allocation that aborts the process when memory is exhausted. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/*
 * Zeroed memory for a large table read at random (n * size bytes): from
 * HUGE_TABLE_MIN bytes on, mapped on its own and advised to use transparent
 * huge pages, so that a probe does not also miss the TLB.  Freed with
 * xfree_table() and the same byte count.
 */
#define HUGE_TABLE_MIN ((size_t)4 << 20)
void *xcalloc_table(size_t n, size_t size);
void xfree_table(void *p, size_t n, size_t size);
/*
 * Memory for many small objects that are made far more often than freed
 * (obligation nodes): malloc then rarely finds one in its
 * per-thread cache and takes its long path, about 190 instructions each.
 * A pool carves objects from chunks of SIZEPOOL_CHUNK bytes, rounded up to
 * SIZEPOOL_ALIGN, and keeps a freed one on its size's list for the next of
 * that size.  Objects over SIZEPOOL_MAX bytes are malloc's: sizepool_free()
 * frees them, sizepool_release() does not (its owner frees those it still
 * holds, then releases the chunks).  The caller knows each object's size;
 * the pool keeps no header.  Under ASan a freed object is poisoned.  A
 * zeroed struct sizepool is an empty pool; one thread at a time.
 */
#define SIZEPOOL_ALIGN 16
#define SIZEPOOL_CLASSES 24
#define SIZEPOOL_MAX (SIZEPOOL_ALIGN * (SIZEPOOL_CLASSES - 1))
#define SIZEPOOL_CHUNK ((size_t)64 << 10)
struct sizepool {
	void *free[SIZEPOOL_CLASSES]; /* by size class, linked through their first word */
	char *next, *end;	      /* the newest chunk's unused part */
	void *chunks;		      /* linked through their first word */
};

_Static_assert(SIZEPOOL_ALIGN >= sizeof(void *) && SIZEPOOL_ALIGN >= _Alignof(max_align_t),
	       "a free object holds its list's link, and every object is aligned for anything");
_Static_assert(SIZEPOOL_CHUNK >= SIZEPOOL_ALIGN + SIZEPOOL_MAX,
	       "a chunk holds its link and the largest pooled object");
void *sizepool_carve(struct sizepool *p, size_t size);
void sizepool_release(struct sizepool *p);

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SIZEPOOL_POISON(ptr, size) ASAN_POISON_MEMORY_REGION(ptr, size)
#define SIZEPOOL_UNPOISON(ptr, size) ASAN_UNPOISON_MEMORY_REGION(ptr, size)
#else
#define SIZEPOOL_POISON(ptr, size) ((void)(ptr), (void)(size))
#define SIZEPOOL_UNPOISON(ptr, size) ((void)(ptr), (void)(size))
#endif

static inline bool
sizepool_pooled(size_t size)
{
	return size <= SIZEPOOL_MAX;
}

/* The size class: objects of class c take c * SIZEPOOL_ALIGN bytes (0 bytes take 16). */
static inline size_t
sizepool_class(size_t size)
{
	return size ? (size + SIZEPOOL_ALIGN - 1) / SIZEPOOL_ALIGN : 1;
}

static inline void *
sizepool_alloc(struct sizepool *p, size_t size)
{
	size_t c = sizepool_class(size);
	void *o;

	if (!sizepool_pooled(size))
		return xmalloc(size);
	if ((o = p->free[c])) {
		SIZEPOOL_UNPOISON(o, c * SIZEPOOL_ALIGN);
		p->free[c] = *(void **)o;
		return o;
	}
	return sizepool_carve(p, c * SIZEPOOL_ALIGN);
}

static inline void
sizepool_free(struct sizepool *p, void *o, size_t size)
{
	size_t c = sizepool_class(size);

	if (!sizepool_pooled(size)) {
		free(o);
		return;
	}
	*(void **)o = p->free[c];
	p->free[c] = o;
	SIZEPOOL_POISON(o, c * SIZEPOOL_ALIGN);
}

char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer, always NUL-terminated; `len` excludes the NUL. */
struct strbuf {
	char *buf;
	size_t len;
	size_t cap;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb);
void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_adds(struct strbuf *sb, const char *s);
void sb_addc(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the buffer to the caller (free() it); the strbuf is left empty. */
char *sb_detach(struct strbuf *sb, size_t *len);

/*
 * Time: microseconds since 1970-01-01T00:00:00Z.  time_parse_rfc3339()
 * accepts RFC 3339 date-times with a mandatory offset ("Z" or "+hh:mm") and
 * up to 9 fractional digits (kept to the microsecond).  Returns 0, or -1 with
 * a reason in `why` (a static string).
 */
typedef int64_t aupd_time;
#define AUPD_USEC 1000000LL

int time_parse_rfc3339(const char *s, size_t len, aupd_time *out, const char **why);
/* Formats as "2026-01-15T10:00:00.412Z" (milliseconds) into buf[32]. */
void time_format_ms(aupd_time t, char *buf, size_t len);
/* Formats as "2026-01-15T10:00:00.412345Z" (microseconds) into buf[40]. */
void time_format_us(aupd_time t, char *buf, size_t len);
aupd_time time_now(void);
/* CLOCK_MONOTONIC in microseconds. */
int64_t time_mono_us(void);

/* Durations "30s 15m 24h 90d" (also "500ms", "2w") into microseconds. */
int duration_parse(const char *s, int64_t *out_us, const char **why);
/* Formats the shortest exact unit form ("24h", "90d", "90s") into buf. */
void duration_format(int64_t us, char *buf, size_t len);
/* Sizes "8MiB", "512KiB", "1GiB", "4096", "10MB" into bytes. */
int size_parse(const char *s, uint64_t *out, const char **why);

void hex_encode(const unsigned char *in, size_t len, char *out /* 2*len+1 */);

/*
 * SHA-256 of a followed by b (b may be NULL with blen 0).  The digest is
 * fetched once and each thread reuses one context: OpenSSL 3's one-shot
 * SHA256() fetches the algorithm and allocates a context on every call.
 */
void aupd_sha256(const void *a, size_t alen, const void *b, size_t blen,
		 unsigned char out[32]);
int hex_decode(const char *in, unsigned char *out, size_t outlen);

/* Constant-time comparison of two equally long byte strings. */
bool ct_equal(const void *a, const void *b, size_t len);

/* Levenshtein distance, capped at `cap` (returns cap when farther). */
size_t edit_distance(const char *a, const char *b, size_t cap);
/* The candidate closest to `word` within a small distance, or NULL. */
const char *suggest_word(const char *word, const char *const *candidates, size_t n);

/* Bounded, checked decimal parse of a whole string; -1 on junk or overflow. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Files: read a whole file (capped at `max` bytes); NULL with errno-style message. */
char *file_read_all(const char *path, size_t max, size_t *len, struct aupd_error *err);
/*
 * Writes `data` to `path` atomically (temp file, fsync, rename, fsync of the
 * directory) with the given mode.  0 or -1 with `err` set.
 */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		      struct aupd_error *err);
/* mkdir -p with `mode` for the directories it creates. */
int mkdir_p(const char *path, unsigned mode, struct aupd_error *err);
/* Joins a directory and a file name into a new string. */
char *path_join(const char *dir, const char *name);

#endif
