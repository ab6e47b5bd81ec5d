/* util.c - errors, diagnostics, memory, string buffers, hex, files */
#include "aupd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void
aupd_error_clear(struct aupd_error *err)
{
	if (!err)
		return;
	err->msg[0] = '\0';
	err->file[0] = '\0';
	err->line = err->col = 0;
}

static void
error_setv(struct aupd_error *err, const char *file, int line, int col, const char *fmt,
	   va_list ap)
{
	if (!err)
		return;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
	err->line = line;
	err->col = col;
	err->temporary = 0;
}

void
aupd_error_set(struct aupd_error *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_setv(err, NULL, 0, 0, fmt, ap);
	va_end(ap);
}

void
aupd_error_at(struct aupd_error *err, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	error_setv(err, file, line, col, fmt, ap);
	va_end(ap);
}

void
aupd_error_format(const struct aupd_error *err, char *buf, size_t len)
{
	/* an error about a whole file (it cannot be opened, say) points at 1:1 */
	if (err->file[0])
		snprintf(buf, len, "%s:%d:%d: error: %s", err->file, err->line > 0 ? err->line : 1,
			 err->line > 0 && err->col > 0 ? err->col : 1, err->msg);
	else
		snprintf(buf, len, "%s", err->msg);
}

void
diag_addv(struct diag_list *dl, const char *file, int line, int col, const char *fmt,
	  va_list ap)
{
	if (dl->n == dl->cap) {
		dl->cap = dl->cap ? dl->cap * 2 : 8;
		dl->v = xrealloc(dl->v, dl->cap * sizeof(*dl->v));
	}
	error_setv(&dl->v[dl->n++], file, line, col, fmt, ap);
}

void
diag_add(struct diag_list *dl, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_addv(dl, file, line, col, fmt, ap);
	va_end(ap);
}

void
diag_list_free(struct diag_list *dl)
{
	free(dl->v);
	dl->v = NULL;
	dl->n = dl->cap = 0;
}

static void
oom(void)
{
	static const char msg[] = "aupd: out of memory\n";

	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more can be done */
	}
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t
table_len(size_t bytes)
{
	return (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

void *
xcalloc_table(size_t n, size_t size)
{
	size_t bytes, len;
	char *p, *a;

	/* the mapping is rounded up to whole huge pages, one more for the alignment */
	if (size && n > (SIZE_MAX - 2 * HUGE_PAGE) / size)
		oom();
	bytes = n * size;
	if (bytes < HUGE_TABLE_MIN)
		return xcalloc(n, size);
	/* a 2 MiB-aligned mapping: the surplus before and after is unmapped */
	len = table_len(bytes);
	p = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		oom();
	a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + len + HUGE_PAGE > a + len)
		munmap(a + len, (size_t)(p + len + HUGE_PAGE - (a + len)));
	/* only advice: with THP "never" the table simply keeps small pages */
	(void)madvise(a, len, MADV_HUGEPAGE);
	return a;
}

void
xfree_table(void *p, size_t n, size_t size)
{
	if (!p)
		return;
	if (n * size < HUGE_TABLE_MIN)
		free(p);
	else
		munmap(p, table_len(n * size));
}

void *
sizepool_carve(struct sizepool *p, size_t size)
{
	char *o;

	if ((size_t)(p->end - p->next) < size) {
		char *chunk = xmalloc(SIZEPOOL_CHUNK);

		*(void **)chunk = p->chunks;
		p->chunks = chunk;
		p->next = chunk + SIZEPOOL_ALIGN;
		p->end = chunk + SIZEPOOL_CHUNK;
	}
	o = p->next;
	p->next += size;
	return o;
}

void
sizepool_release(struct sizepool *p)
{
	for (void *c = p->chunks, *next; c; c = next) {
		next = *(void **)c;
		free(c);
	}
	memset(p, 0, sizeof(*p));
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
sb_init(struct strbuf *sb)
{
	sb->buf = NULL;
	sb->len = sb->cap = 0;
}

void
sb_free(struct strbuf *sb)
{
	free(sb->buf);
	sb_init(sb);
}

void
sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->buf)
		sb->buf[0] = '\0';
}

void
sb_grow(struct strbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;

	if (need <= sb->cap)
		return;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < need)
		cap *= 2;
	sb->buf = xrealloc(sb->buf, cap);
	sb->cap = cap;
	sb->buf[sb->len] = '\0';
}

void
sb_add(struct strbuf *sb, const void *data, size_t len)
{
	sb_grow(sb, len);
	if (len)
		memcpy(sb->buf + sb->len, data, len);
	sb->len += len;
	sb->buf[sb->len] = '\0';
}

void
sb_adds(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

void
sb_addc(struct strbuf *sb, char c)
{
	sb_grow(sb, 1);
	sb->buf[sb->len++] = c;
	sb->buf[sb->len] = '\0';
}

void
sb_addf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_grow(sb, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

char *
sb_detach(struct strbuf *sb, size_t *len)
{
	char *p;

	if (!sb->buf)
		sb_grow(sb, 0), sb->buf[0] = '\0';
	p = sb->buf;
	if (len)
		*len = sb->len;
	sb_init(sb);
	return p;
}

void
hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex_decode(const char *in, unsigned char *out, size_t outlen)
{
	if (strlen(in) != 2 * outlen)
		return -1;
	for (size_t i = 0; i < outlen; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

bool
ct_equal(const void *a, const void *b, size_t len)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < len; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

size_t
edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65];

	if (lb > 64 || la > 64)
		return cap;
	if ((la > lb ? la - lb : lb - la) >= cap)
		return cap;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0], best;

		row[0] = i;
		best = row[0];
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t v = diag + (a[i - 1] != b[j - 1]);

			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			if (up + 1 < v)
				v = up + 1;
			row[j] = v;
			diag = up;
			if (v < best)
				best = v;
		}
		if (best >= cap)
			return cap;
	}
	return row[lb] < cap ? row[lb] : cap;
}

const char *
suggest_word(const char *word, const char *const *candidates, size_t n)
{
	size_t len = strlen(word);
	size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
	const char *best = NULL;
	size_t best_d = limit + 1;

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, candidates[i], best_d);

		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}

int
parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

char *
file_read_all(const char *path, size_t max, size_t *len, struct aupd_error *err)
{
	struct strbuf sb;
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		aupd_error_set(err, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	sb_init(&sb);
	sb_grow(&sb, 0);
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			aupd_error_set(err, "cannot read %s: %s", path, strerror(errno));
			goto err_free;
		}
		if (sb.len + (size_t)n > max) {
			aupd_error_set(err, "%s is larger than %zu bytes", path, max);
			goto err_free;
		}
		sb_add(&sb, chunk, (size_t)n);
	}
	close(fd);
	return sb_detach(&sb, len);

err_free:
	sb_free(&sb);
	close(fd);
	return NULL;
}

static int
fsync_dir_of(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	int fd, rc;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

int
file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		  struct aupd_error *err)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	const char *p = data;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	if (fd < 0) {
		aupd_error_set(err, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto err_write;
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto err_write;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0)
		goto err_write;
	if (close(fd) < 0) {
		fd = -1;
		goto err_write;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto err_write;
	if (fsync_dir_of(path) < 0)
		goto err_write;
	free(tmp);
	return 0;

err_write:
	aupd_error_set(err, "cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return -1;
}

int
mkdir_p(const char *path, unsigned mode, struct aupd_error *err)
{
	char *p = xstrdup(path);

	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				aupd_error_set(err, "cannot create directory %s: %s", p,
					       strerror(errno));
				free(p);
				return -1;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return 0;
}

char *
path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n && dir[n - 1] == '/')
		return xasprintf("%s%s", dir, name);
	return xasprintf("%s/%s", dir, name);
}

/* ---- SHA-256 ---- */

static EVP_MD *sha256_md;
static pthread_key_t sha256_key;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
sha256_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

static void
sha256_setup(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!sha256_md || pthread_key_create(&sha256_key, sha256_ctx_free) != 0)
		abort();
}

void
aupd_sha256(const void *a, size_t alen, const void *b, size_t blen, unsigned char out[32])
{
	EVP_MD_CTX *ctx;

	pthread_once(&sha256_once, sha256_setup);
	if (!(ctx = pthread_getspecific(sha256_key))) {
		/* freed by sha256_ctx_free when the thread ends */
		if (!(ctx = EVP_MD_CTX_new()) || pthread_setspecific(sha256_key, ctx) != 0)
			abort();
	}
	/* only allocation failure makes these fail: abort, as xmalloc() does */
	if (EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1 || EVP_DigestUpdate(ctx, a, alen) != 1 ||
	    (blen && EVP_DigestUpdate(ctx, b, blen) != 1) || EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		abort();
}
