/* walbuf.c - a VFS over the default one: a commit's WAL frames reach the kernel in one write */
#include "aupd/store.h"
#include "aupd/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * SQLite writes each WAL frame with two write() calls, its 24-byte header
 * and its page, so a commit of 20 pages is 40 system calls, each of which
 * also goes through the file system's per-write work.  This VFS keeps
 * contiguous writes to a WAL in a buffer and passes them on as one write.
 *
 * Nothing SQLite wrote may be missing from the file where it, or another
 * connection, could look for it.  So only appends are buffered (a write
 * below the end of what the handle wrote, such as a commit's frame headers
 * rewritten with new checksums, goes straight to the file), and the buffer
 * is written out:
 *  - right after the page of a commit frame (its header holds the database
 *    size after the commit), before SQLite can publish the commit;
 *  - before a sync, a read of what it holds, a size, a truncation, a file
 *    control or a mapping of the WAL, and before a write elsewhere in it;
 *  - when it is full;
 *  - before any change of the connection's shm locks, giving up the WAL
 *    write lock above all: frames of a transaction that spilled pages and
 *    was rolled back must not be written later over frames another
 *    connection committed at the same place;
 *  - at the barrier before a commit is published in the WAL index, where
 *    nothing should be left (a safety net).
 * The locks and the barrier are calls on the database file, not the WAL:
 * the main database file is wrapped too, and paired with its WAL when that
 * is opened.  A WAL left unpaired, or one whose syncs SQLite pads to a
 * sector (psow=0: the padding is written after the sync), is not buffered.
 * A failed write of the buffer is an I/O error for SQLite: earlier calls
 * were told their bytes were written, so the transaction must fail whole.
 * Every other file, and every other call, goes straight to the default VFS.
 */

/*
 * Under 128 KiB: the unix VFS writes at most 0x1ffff bytes per call (it
 * masks the length), and a write of exactly 128 KiB would write nothing
 * and fail as "disk full".
 */
#define WALBUF_CAP (96 * 1024)
_Static_assert(WALBUF_CAP < 0x20000, "the unix VFS masks write lengths with 0x1ffff");
#define WAL_FRAME_HEADER 24

/* What both wrappers start with: their own file, then the default VFS's. */
struct wrapped {
	sqlite3_file base;
	sqlite3_file *real; /* right after the wrapper's struct */
};

/* A WAL file. */
struct wbfile {
	struct wrapped w;
	char *buf;	   /* NULL until the first write */
	sqlite3_int64 off; /* where buf[0] goes in the file */
	size_t len;
	bool commit_page;  /* the last write was a commit frame's header */
	sqlite3_int64 end; /* the end of what this handle wrote since its last WAL header */
	struct wbdb *db;   /* the same connection's database file (NULL once that closed) */
};

/* A main database file: its calls forwarded, its WAL written out first where it matters. */
struct wbdb {
	struct wrapped w;
	sqlite3_filename name; /* the pager's copy: its WAL's sqlite3_filename_database() */
	struct wbfile *wal;    /* NULL until (or unless) the connection opens its WAL */
	struct wbdb *next;
};

/* The real file: a multiple of 16 bytes past our struct, which SQLite allocates 8-aligned. */
#define WB_REAL_OFFSET ((sizeof(struct wbfile) + 15) & ~(size_t)15)
#define WBDB_REAL_OFFSET ((sizeof(struct wbdb) + 15) & ~(size_t)15)
#define WB_MAX_OFFSET (WB_REAL_OFFSET > WBDB_REAL_OFFSET ? WB_REAL_OFFSET : WBDB_REAL_OFFSET)

/* Open database files, for a WAL to find its own (a connection stays on one thread). */
static pthread_mutex_t dbs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wbdb *dbs;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wb_vfs;
static sqlite3_io_methods wb_methods, db_methods;
static atomic_ulong n_writes, n_flushes;

/* ---- calls either wrapper passes straight on ---- */

#define REAL(file) (((struct wrapped *)(file))->real)

static int
fw_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 ofst)
{
	return REAL(file)->pMethods->xRead(REAL(file), out, amt, ofst);
}

static int
fw_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 ofst)
{
	return REAL(file)->pMethods->xWrite(REAL(file), data, amt, ofst);
}

static int
fw_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	return REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int
fw_sync(sqlite3_file *file, int flags)
{
	return REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int
fw_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int
fw_lock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int
fw_unlock(sqlite3_file *file, int lock)
{
	return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int
fw_check_reserved(sqlite3_file *file, int *out)
{
	return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int
fw_file_control(sqlite3_file *file, int op, void *arg)
{
	return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int
fw_sector_size(sqlite3_file *file)
{
	return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int
fw_device_characteristics(sqlite3_file *file)
{
	return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

static int
fw_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
	return REAL(file)->pMethods->xShmMap(REAL(file), region, size, extend, out);
}

static int
fw_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return REAL(file)->pMethods->xShmLock(REAL(file), offset, n, flags);
}

static void
fw_shm_barrier(sqlite3_file *file)
{
	REAL(file)->pMethods->xShmBarrier(REAL(file));
}

static int
fw_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int
fw_fetch(sqlite3_file *file, sqlite3_int64 ofst, int amt, void **out)
{
	return REAL(file)->pMethods->xFetch(REAL(file), ofst, amt, out);
}

static int
fw_unfetch(sqlite3_file *file, sqlite3_int64 ofst, void *p)
{
	return REAL(file)->pMethods->xUnfetch(REAL(file), ofst, p);
}

/* ---- a WAL file: appends gathered ---- */

static int
flush(struct wbfile *f)
{
	int rc;

	if (!f->len)
		return SQLITE_OK;
	rc = f->w.real->pMethods->xWrite(f->w.real, f->buf, (int)f->len, f->off);
	atomic_fetch_add_explicit(&n_flushes, 1, memory_order_relaxed);
	if (rc != SQLITE_OK)
		/* SQLite will say "disk I/O error": say what it was */
		log_err("cannot write %zu bytes to a WAL: %s", f->len, sqlite3_errstr(rc));
	f->len = 0;
	/* earlier calls were told their bytes were written: the whole transaction must go */
	return rc == SQLITE_OK ? SQLITE_OK : SQLITE_IOERR_WRITE;
}

static int
wb_close(sqlite3_file *file)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f), rc2 = f->w.real->pMethods->xClose(f->w.real);

	pthread_mutex_lock(&dbs_mu);
	if (f->db)
		f->db->wal = NULL;
	pthread_mutex_unlock(&dbs_mu);
	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
wb_read(sqlite3_file *file, void *out, int amt, sqlite3_int64 ofst)
{
	struct wbfile *f = (struct wbfile *)file;

	if (f->len && ofst < f->off + (sqlite3_int64)f->len && ofst + amt > f->off) {
		int rc = flush(f);

		if (rc != SQLITE_OK)
			return rc;
	}
	return f->w.real->pMethods->xRead(f->w.real, out, amt, ofst);
}

static int
wb_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 ofst)
{
	struct wbfile *f = (struct wbfile *)file;
	const unsigned char *p = data;
	bool commit_page = f->commit_page;
	int rc;

	atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
	f->commit_page = false;
	if (ofst == 0)
		f->end = 0; /* a new WAL header: the WAL starts over */
	if (ofst < f->end) {
		/*
		 * A rewrite: a page written again within a transaction, or a
		 * commit's frame headers with new checksums, written after its
		 * last page.  Straight to the file, so that a failure reaches
		 * SQLite and nothing of a commit waits for the barrier.
		 */
		if ((rc = flush(f)) != SQLITE_OK)
			return rc;
		rc = f->w.real->pMethods->xWrite(f->w.real, data, amt, ofst);
		if (rc == SQLITE_OK && ofst + amt > f->end)
			f->end = ofst + amt;
		return rc;
	}
	f->end = ofst + amt;
	/* the buffer comes with the first write: most connections only read */
	if (!f->buf && !(f->buf = malloc(WALBUF_CAP)))
		return f->w.real->pMethods->xWrite(f->w.real, data, amt, ofst);
	if (!(f->len && ofst == f->off + (sqlite3_int64)f->len &&
	      f->len + (size_t)amt <= WALBUF_CAP)) {
		if ((rc = flush(f)) != SQLITE_OK)
			return rc;
		if ((size_t)amt > WALBUF_CAP)
			return f->w.real->pMethods->xWrite(f->w.real, data, amt, ofst);
		f->off = ofst;
	}
	memcpy(f->buf + f->len, data, (size_t)amt);
	f->len += (size_t)amt;
	if (commit_page)
		return flush(f);
	/* a frame header: bytes 4-7 are the database's size after a commit, or 0 */
	f->commit_page = amt == WAL_FRAME_HEADER && (p[4] | p[5] | p[6] | p[7]);
	return SQLITE_OK;
}

static int
wb_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f);

	if (size < f->end)
		f->end = size;
	return rc != SQLITE_OK ? rc : f->w.real->pMethods->xTruncate(f->w.real, size);
}

static int
wb_sync(sqlite3_file *file, int flags)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->w.real->pMethods->xSync(f->w.real, flags);
}

static int
wb_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->w.real->pMethods->xFileSize(f->w.real, size);
}

static int
wb_file_control(sqlite3_file *file, int op, void *arg)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->w.real->pMethods->xFileControl(f->w.real, op, arg);
}

static int
wb_fetch(sqlite3_file *file, sqlite3_int64 ofst, int amt, void **out)
{
	struct wbfile *f = (struct wbfile *)file;
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->w.real->pMethods->xFetch(f->w.real, ofst, amt, out);
}

/* ---- the main database file: forwarded, but for the shm lock and barrier ---- */

static int
db_close(sqlite3_file *file)
{
	struct wbdb *d = (struct wbdb *)file;

	pthread_mutex_lock(&dbs_mu);
	for (struct wbdb **pp = &dbs; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	if (d->wal)
		d->wal->db = NULL;
	pthread_mutex_unlock(&dbs_mu);
	return d->w.real->pMethods->xClose(d->w.real);
}

static int
db_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	struct wbdb *d = (struct wbdb *)file;

	/*
	 * Any change of locks, and giving up the write lock above all: what the
	 * connection wrote goes to the file while its locks still hold, as it
	 * would without the buffer (leaving exclusive locking mode takes a read
	 * lock while the database file is still locked exclusively).  What can
	 * be buffered here is frames past the end of the WAL, of a transaction
	 * that failed or was rolled back: a failure to write them loses nothing.
	 */
	if (d->wal)
		(void)flush(d->wal);
	return d->w.real->pMethods->xShmLock(d->w.real, offset, n, flags);
}

static void
db_shm_barrier(sqlite3_file *file)
{
	struct wbdb *d = (struct wbdb *)file;

	/*
	 * walIndexWriteHdr() publishes a commit right after this barrier.  Its
	 * frames were written at its commit frame, and rewrites go straight to
	 * the file, so nothing of it should be left; if something is and cannot
	 * be written, the commit would be published without it, and SQLite
	 * cannot be told: stop, and let recovery find what is on disk.
	 */
	if (d->wal && flush(d->wal) != SQLITE_OK) {
		log_err("a WAL write failed while SQLite was publishing a commit: stopping");
		abort();
	}
	d->w.real->pMethods->xShmBarrier(d->w.real);
}

/* Closes the real file inside a wrapper and opens it in place instead: unwrapped. */
static int
open_plain(struct wrapped *w, sqlite3_filename name, int flags, int *out_flags)
{
	w->real->pMethods->xClose(w->real);
	return real_vfs->xOpen(real_vfs, name, &w->base, flags, out_flags);
}

/*
 * Opens the real file `offset` bytes into the wrapper `w` (zeroed first, its
 * `size` bytes).  A real file with older methods than ours (not the unix
 * VFS's) is opened in place instead, and *plain is set.
 */
static int
open_wrapped(struct wrapped *w, size_t size, size_t offset, sqlite3_filename name, int flags,
	     int *out_flags, bool *plain)
{
	int rc;

	memset(w, 0, size);
	w->real = (sqlite3_file *)((char *)w + offset);
	rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		if (w->real->pMethods)
			w->real->pMethods->xClose(w->real);
		return rc;
	}
	*plain = w->real->pMethods->iVersion < 3;
	return *plain ? open_plain(w, name, flags, out_flags) : SQLITE_OK;
}

static int
db_open(sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
	struct wbdb *d = (struct wbdb *)file;
	bool plain = false;
	int rc = open_wrapped(&d->w, sizeof(*d), WBDB_REAL_OFFSET, name, flags, out_flags, &plain);

	if (rc != SQLITE_OK || plain)
		return rc;
	d->name = name;
	pthread_mutex_lock(&dbs_mu);
	d->next = dbs;
	dbs = d;
	pthread_mutex_unlock(&dbs_mu);
	d->w.base.pMethods = &db_methods;
	return SQLITE_OK;
}

static int
wb_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
	struct wbfile *f = (struct wbfile *)file;
	bool plain = false;
	int rc;

	(void)vfs;
	if ((flags & SQLITE_OPEN_MAIN_DB) && name)
		return db_open(name, file, flags, out_flags);
	/* anything else but a WAL is the default VFS's own file, in place */
	if (!(flags & SQLITE_OPEN_WAL))
		return real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
	rc = open_wrapped(&f->w, sizeof(*f), WB_REAL_OFFSET, name, flags, out_flags, &plain);
	if (rc != SQLITE_OK || plain)
		return rc;
	/* its connection's database file: opened just before, under the same name */
	pthread_mutex_lock(&dbs_mu);
	for (struct wbdb *d = dbs; d; d = d->next)
		if (d->name == sqlite3_filename_database(name) && !d->wal) {
			d->wal = f;
			f->db = d;
			break;
		}
	/*
	 * Without its database file's lock and barrier calls, or when SQLite
	 * pads syncs to a sector and writes the padding after the sync (it
	 * decides that from the database file: psow=0), the plain file.
	 */
	if (f->db && !(f->db->w.real->pMethods->xDeviceCharacteristics(f->db->w.real) &
		       SQLITE_IOCAP_POWERSAFE_OVERWRITE)) {
		f->db->wal = NULL;
		f->db = NULL;
	}
	pthread_mutex_unlock(&dbs_mu);
	if (!f->db)
		return open_plain(&f->w, name, flags, out_flags);
	f->w.base.pMethods = &wb_methods;
	return SQLITE_OK;
}

static void
install(void)
{
	int rc;

	real_vfs = sqlite3_vfs_find(NULL);
	if (!real_vfs) {
		log_warn("no default SQLite VFS to wrap: WAL writes stay unbuffered");
		return;
	}
	wb_methods = (sqlite3_io_methods){
		.iVersion = 3,
		.xClose = wb_close,
		.xRead = wb_read,
		.xWrite = wb_write,
		.xTruncate = wb_truncate,
		.xSync = wb_sync,
		.xFileSize = wb_file_size,
		.xLock = fw_lock,
		.xUnlock = fw_unlock,
		.xCheckReservedLock = fw_check_reserved,
		.xFileControl = wb_file_control,
		.xSectorSize = fw_sector_size,
		.xDeviceCharacteristics = fw_device_characteristics,
		.xShmMap = fw_shm_map,
		.xShmLock = fw_shm_lock,
		.xShmBarrier = fw_shm_barrier,
		.xShmUnmap = fw_shm_unmap,
		.xFetch = wb_fetch,
		.xUnfetch = fw_unfetch,
	};
	db_methods = (sqlite3_io_methods){
		.iVersion = 3,
		.xClose = db_close,
		.xRead = fw_read,
		.xWrite = fw_write,
		.xTruncate = fw_truncate,
		.xSync = fw_sync,
		.xFileSize = fw_file_size,
		.xLock = fw_lock,
		.xUnlock = fw_unlock,
		.xCheckReservedLock = fw_check_reserved,
		.xFileControl = fw_file_control,
		.xSectorSize = fw_sector_size,
		.xDeviceCharacteristics = fw_device_characteristics,
		.xShmMap = fw_shm_map,
		.xShmLock = db_shm_lock,
		.xShmBarrier = db_shm_barrier,
		.xShmUnmap = fw_shm_unmap,
		.xFetch = fw_fetch,
		.xUnfetch = fw_unfetch,
	};
	wb_vfs = *real_vfs;
	wb_vfs.pNext = NULL;
	wb_vfs.zName = "aupd-walbuf";
	wb_vfs.szOsFile = (int)(WB_MAX_OFFSET + (size_t)real_vfs->szOsFile);
	wb_vfs.xOpen = wb_open;
	if ((rc = sqlite3_vfs_register(&wb_vfs, 1)) != SQLITE_OK)
		log_warn("cannot register the WAL-buffering VFS (%s): WAL writes stay unbuffered",
			 sqlite3_errstr(rc));
}

void
store_walbuf_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, install);
}

void
store_walbuf_counts(unsigned long *writes, unsigned long *flushes)
{
	*writes = atomic_load(&n_writes);
	*flushes = atomic_load(&n_flushes);
}
