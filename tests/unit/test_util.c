/* test_util.c - RFC 3339 times, durations and sizes (policy/timeutil.c); SHA-256 (util.c) */
#include "aupd/util.h"
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* Microseconds since the epoch of a UTC civil time, computed by the C library. */
static aupd_time
utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {
		.tm_year = y - 1900,
		.tm_mon = mo - 1,
		.tm_mday = d,
		.tm_hour = h,
		.tm_min = mi,
		.tm_sec = s,
	};

	return (aupd_time)timegm(&tm) * AUPD_USEC;
}

static aupd_time
parse_ok(const char *s)
{
	const char *why = "unset";
	aupd_time t = -42;
	int rc = time_parse_rfc3339(s, strlen(s), &t, &why);

	ck_assert_msg(rc == 0, "'%s' was rejected: %s", s, why ? why : "(no reason)");
	return t;
}

/* Rejected, with a reason that contains `part`. */
static void
parse_bad(const char *s, const char *part)
{
	const char *why = NULL;
	aupd_time t = -42;
	int rc = time_parse_rfc3339(s, strlen(s), &t, &why);

	ck_assert_msg(rc == -1, "'%s' was accepted as %lld", s, (long long)t);
	ck_assert_msg(why != NULL, "'%s' was rejected without a reason", s);
	ck_assert_msg(strstr(why, part) != NULL, "'%s': reason '%s' lacks '%s'", s, why, part);
}

START_TEST(time_basic_utc)
{
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00Z"), utc(2026, 1, 15, 10, 0, 0));
	ck_assert_int_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
	ck_assert_int_eq(parse_ok("1999-12-31T23:59:59Z"), utc(1999, 12, 31, 23, 59, 59));
	ck_assert_int_eq(parse_ok("2038-01-19T03:14:08Z"), utc(2038, 1, 19, 3, 14, 8));
	/* before the epoch */
	ck_assert_int_eq(parse_ok("1969-12-31T23:59:59Z"), -AUPD_USEC);
}
END_TEST

START_TEST(time_lowercase_t_and_z)
{
	aupd_time want = utc(2026, 1, 15, 10, 0, 0);

	ck_assert_int_eq(parse_ok("2026-01-15t10:00:00z"), want);
	ck_assert_int_eq(parse_ok("2026-01-15t10:00:00Z"), want);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00z"), want);
}
END_TEST

START_TEST(time_offsets)
{
	aupd_time want = utc(2026, 1, 15, 10, 0, 0);

	ck_assert_int_eq(parse_ok("2026-01-15T12:30:00+02:30"), want);
	ck_assert_int_eq(parse_ok("2026-01-15T05:00:00-05:00"), want);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00+00:00"), want);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00-00:00"), want);
	/* an offset that crosses a day, a month and a year */
	ck_assert_int_eq(parse_ok("2025-12-31T23:00:00-11:00"), utc(2026, 1, 1, 10, 0, 0));
	ck_assert_int_eq(parse_ok("2026-01-01T09:59:00+23:59"), utc(2025, 12, 31, 10, 0, 0));
}
END_TEST

START_TEST(time_bad_offsets)
{
	parse_bad("2026-01-15T10:00:00+24:00", "offset");
	parse_bad("2026-01-15T10:00:00+02:60", "offset");
	parse_bad("2026-01-15T10:00:00+0200", "RFC 3339");
	parse_bad("2026-01-15T10:00:00+02", "RFC 3339");
	parse_bad("2026-01-15T10:00:00+2:00", "RFC 3339");
	parse_bad("2026-01-15T10:00:00+02:00:00", "RFC 3339");
	parse_bad("2026-01-15T10:00:00 +02:00", "RFC 3339");
	parse_bad("2026-01-15T10:00:00UTC", "RFC 3339");
	parse_bad("2026-01-15T10:00:00Zjunk", "RFC 3339");
}
END_TEST

START_TEST(time_without_offset)
{
	parse_bad("2026-01-15T10:00:00.123", "no UTC offset");
	parse_bad("2026-01-15T10:00:00.123456789", "no UTC offset");
	parse_bad("2026-01-15", "RFC 3339");
	parse_bad("", "RFC 3339");
	parse_bad("2026-01-15 10:00:00Z", "RFC 3339");
	parse_bad("2026-1-15T10:00:00Z", "RFC 3339");
	parse_bad("20260115T100000Z", "RFC 3339");
}
END_TEST

START_TEST(time_without_offset_says_so)
{
	/* the commonest offset-less form gets the precise reason too, not only with a fraction */
	parse_bad("2026-01-15T10:00:00", "no UTC offset");
}
END_TEST

START_TEST(time_fractions)
{
	aupd_time base = utc(2026, 1, 15, 10, 0, 0);

	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.5Z"), base + 500000);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.412Z"), base + 412000);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.000001Z"), base + 1);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.123456Z"), base + 123456);
	/* up to 9 digits, kept to the microsecond */
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.123456789Z"), base + 123456);
	ck_assert_int_eq(parse_ok("2026-01-15T10:00:00.999999999+00:00"), base + 999999);
	parse_bad("2026-01-15T10:00:00.1234567891Z", "more than 9 fractional digits");
	parse_bad("2026-01-15T10:00:00.Z", "RFC 3339");
	parse_bad("2026-01-15T10:00:00,5Z", "RFC 3339");
}
END_TEST

START_TEST(time_leap_years)
{
	ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z"), utc(2024, 2, 29, 0, 0, 0));
	ck_assert_int_eq(parse_ok("2000-02-29T12:00:00Z"), utc(2000, 2, 29, 12, 0, 0));
	ck_assert_int_eq(parse_ok("2400-02-29T00:00:00Z"), utc(2400, 2, 29, 0, 0, 0));
	parse_bad("2023-02-29T00:00:00Z", "out-of-range");
	parse_bad("1900-02-29T00:00:00Z", "out-of-range");
	parse_bad("2100-02-29T00:00:00Z", "out-of-range");
	parse_bad("2024-02-30T00:00:00Z", "out-of-range");
	/* the day after 28 February of a common year is 1 March */
	ck_assert_int_eq(parse_ok("2023-03-01T00:00:00Z") - parse_ok("2023-02-28T00:00:00Z"),
			 86400 * AUPD_USEC);
	ck_assert_int_eq(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z"),
			 2 * 86400 * AUPD_USEC);
}
END_TEST

START_TEST(time_out_of_range_fields)
{
	parse_bad("2026-13-01T00:00:00Z", "out-of-range");
	parse_bad("2026-00-01T00:00:00Z", "out-of-range");
	parse_bad("2026-01-00T00:00:00Z", "out-of-range");
	parse_bad("2026-01-32T00:00:00Z", "out-of-range");
	parse_bad("2026-04-31T00:00:00Z", "out-of-range");
	parse_bad("2026-01-15T24:00:00Z", "out-of-range");
	parse_bad("2026-01-15T10:60:00Z", "out-of-range");
	parse_bad("2026-01-15T10:00:61Z", "out-of-range");
	/* the last day of each 30-day month is fine */
	parse_ok("2026-04-30T00:00:00Z");
	parse_ok("2026-11-30T23:59:59Z");
	parse_ok("2026-12-31T23:59:59Z");
}
END_TEST

START_TEST(time_leap_second)
{
	/* a leap second is accepted and ordered within its minute */
	aupd_time t = parse_ok("2016-12-31T23:59:60Z");

	ck_assert(t >= utc(2016, 12, 31, 23, 59, 59));
	ck_assert(t < utc(2017, 1, 1, 0, 0, 0));
}
END_TEST

START_TEST(time_respects_len)
{
	const char *s = "2026-01-15T10:00:00Zgarbage";
	const char *why;
	aupd_time t;

	ck_assert_int_eq(time_parse_rfc3339(s, 20, &t, &why), 0);
	ck_assert_int_eq(t, utc(2026, 1, 15, 10, 0, 0));
	ck_assert_int_eq(time_parse_rfc3339(s, 19, &t, &why), -1);
}
END_TEST

START_TEST(time_format_ms_values)
{
	char buf[40];

	time_format_ms(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	time_format_ms(utc(2026, 1, 15, 10, 0, 0) + 412345, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-01-15T10:00:00.412Z");
	time_format_ms(utc(2024, 2, 29, 23, 59, 59) + 999999, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2024-02-29T23:59:59.999Z");
	time_format_ms(utc(2000, 3, 1, 0, 0, 0), buf, sizeof(buf));
	ck_assert_str_eq(buf, "2000-03-01T00:00:00.000Z");
	/* before the epoch: the floor of the second, not a negative fraction */
	time_format_ms(-1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
	time_format_ms(-AUPD_USEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1969-12-31T23:59:59.000Z");
	time_format_us(utc(2026, 1, 15, 10, 0, 0) + 7, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-01-15T10:00:00.000007Z");
}
END_TEST

/* Against the C library's gmtime_r(), over years 1 to 9999 and a little beyond. */
START_TEST(time_format_matches_gmtime)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char buf[40], want[64], small[12];

	for (int i = 0; i < 5000; i++) {
		int64_t secs, us;
		struct tm tm;
		time_t tt;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* 0001-01-01 .. 10100-01-01 */
		secs = -62135596800LL + (int64_t)(x % (318909081600ULL + 62135596800ULL));
		us = (int64_t)((x >> 20) % AUPD_USEC);
		tt = (time_t)secs;
		ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
		snprintf(want, sizeof(want), "%04lld-%02d-%02dT%02d:%02d:%02d.%06lldZ",
			 (long long)tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, (long long)us);
		time_format_us(secs * AUPD_USEC + us, buf, sizeof(buf));
		ck_assert_str_eq(buf, want);
		/* milliseconds: the same, cut to three digits */
		memcpy(want + strlen(want) - 4, "Z", 2);
		time_format_ms(secs * AUPD_USEC + us, buf, sizeof(buf));
		ck_assert_str_eq(buf, want);
		/* a buffer too short gets a terminated prefix */
		time_format_ms(secs * AUPD_USEC + us, small, sizeof(small));
		ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
		ck_assert_int_eq(strncmp(small, want, sizeof(small) - 1), 0);
	}
}
END_TEST

START_TEST(time_round_trip)
{
	static const char *const in[] = {
		"2026-01-15T10:00:00.412Z", "2024-02-29T00:00:00.000Z", "1999-12-31T23:59:59.999Z",
		"2100-03-01T00:00:00.001Z", "1970-01-01T00:00:00.000Z", "1960-06-15T08:30:00.250Z",
	};
	char buf[40];

	for (size_t i = 0; i < AUPD_ARRAY_LEN(in); i++) {
		time_format_ms(parse_ok(in[i]), buf, sizeof(buf));
		ck_assert_str_eq(buf, in[i]);
	}
	/* an offset is normalised to Z */
	time_format_ms(parse_ok("2026-01-15T12:30:00.5+02:30"), buf, sizeof(buf));
	ck_assert_str_eq(buf, "2026-01-15T10:00:00.500Z");
}
END_TEST

static int64_t
dur_ok(const char *s)
{
	const char *why = "unset";
	int64_t us = -42;

	ck_assert_msg(duration_parse(s, &us, &why) == 0, "'%s' rejected: %s", s, why);
	return us;
}

static void
dur_bad(const char *s, const char *part)
{
	const char *why = NULL;
	int64_t us = -42;

	ck_assert_msg(duration_parse(s, &us, &why) == -1, "'%s' accepted as %lld", s,
		      (long long)us);
	ck_assert_msg(why && strstr(why, part), "'%s': reason '%s' lacks '%s'", s,
		      why ? why : "(none)", part);
}

START_TEST(durations)
{
	ck_assert_int_eq(dur_ok("30s"), 30 * AUPD_USEC);
	ck_assert_int_eq(dur_ok("15m"), 15 * 60 * AUPD_USEC);
	ck_assert_int_eq(dur_ok("24h"), 24 * 3600 * AUPD_USEC);
	ck_assert_int_eq(dur_ok("90d"), 90 * 86400 * AUPD_USEC);
	ck_assert_int_eq(dur_ok("500ms"), 500 * 1000);
	ck_assert_int_eq(dur_ok("2w"), 14 * 86400 * AUPD_USEC);
	ck_assert_int_eq(dur_ok("0s"), 0);
	ck_assert_int_eq(dur_ok("60s"), 60 * AUPD_USEC);
}
END_TEST

START_TEST(bad_durations)
{
	dur_bad("60", "no unit");
	dur_bad("5x", "not a duration");
	dur_bad("-1s", "not a duration");
	dur_bad("", "not a duration");
	dur_bad("s", "not a duration");
	dur_bad("1.5h", "not a duration");
	dur_bad(" 5s", "not a duration");
	dur_bad("5 s", "not a duration");
	dur_bad("5S", "not a duration");
	dur_bad("1h30m", "not a duration");
	dur_bad("99999999999999999999d", "too long");
	dur_bad("9999999999d", "too long");
}
END_TEST

START_TEST(duration_formats)
{
	char buf[32];

	duration_format(24 * 3600 * AUPD_USEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1d");
	duration_format(90 * AUPD_USEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "90s");
	duration_format(90 * 86400 * AUPD_USEC, buf, sizeof(buf));
	ck_assert_str_eq(buf, "90d");
	duration_format(1500 * 1000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1500ms");
	duration_format(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0s");
}
END_TEST

static uint64_t
size_ok(const char *s)
{
	const char *why = "unset";
	uint64_t n = 42;

	ck_assert_msg(size_parse(s, &n, &why) == 0, "'%s' rejected: %s", s, why);
	return n;
}

static void
size_bad(const char *s, const char *part)
{
	const char *why = NULL;
	uint64_t n = 42;

	ck_assert_msg(size_parse(s, &n, &why) == -1, "'%s' accepted as %llu", s,
		      (unsigned long long)n);
	ck_assert_msg(why && strstr(why, part), "'%s': reason '%s' lacks '%s'", s,
		      why ? why : "(none)", part);
}

START_TEST(sizes)
{
	ck_assert_uint_eq(size_ok("8MiB"), 8ULL << 20);
	ck_assert_uint_eq(size_ok("512KiB"), 512ULL << 10);
	ck_assert_uint_eq(size_ok("1GiB"), 1ULL << 30);
	ck_assert_uint_eq(size_ok("4096"), 4096);
	ck_assert_uint_eq(size_ok("4096B"), 4096);
	ck_assert_uint_eq(size_ok("10MB"), 10000000);
	ck_assert_uint_eq(size_ok("4KiB"), 4096);
	ck_assert_uint_eq(size_ok("2KB"), 2000);
	ck_assert_uint_eq(size_ok("0"), 0);
}
END_TEST

START_TEST(bad_sizes)
{
	size_bad("8XB", "not a size");
	size_bad("abc", "not a size");
	size_bad("", "not a size");
	size_bad("-1", "not a size");
	size_bad("1.5MiB", "not a size");
	size_bad("8 MiB", "not a size");
	size_bad("8mib", "not a size");
	size_bad("MiB", "not a size");
	size_bad("99999999999999999999", "too large");
	size_bad("99999999GiB", "too large");
}
END_TEST

/* FIPS 180-2 test vectors, the input split at every place, and from several threads */
static const struct {
	const char *in, *hex;
} sha_vectors[] = {
	{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	{"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
};

static void
check_vectors(void)
{
	unsigned char md[32];
	char hex[65];

	for (size_t v = 0; v < sizeof(sha_vectors) / sizeof(sha_vectors[0]); v++) {
		const char *in = sha_vectors[v].in;
		size_t n = strlen(in);

		for (size_t cut = 0; cut <= n; cut++) {
			aupd_sha256(in, cut, in + cut, n - cut, md);
			hex_encode(md, 32, hex);
			ck_assert_str_eq(hex, sha_vectors[v].hex);
		}
		aupd_sha256(in, n, NULL, 0, md);
		hex_encode(md, 32, hex);
		ck_assert_str_eq(hex, sha_vectors[v].hex);
	}
}

static void *
vectors_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 50; i++)
		check_vectors();
	return NULL;
}

START_TEST(sha256_vectors_split_and_threads)
{
	pthread_t t[3];

	check_vectors();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, vectors_thread, NULL), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
}
END_TEST

/*
 * A pool hands out aligned objects that do not overlap, takes a freed one
 * back for the next of its size class only, and leaves objects over
 * SIZEPOOL_MAX to malloc (valgrind and LSan: nothing leaks once they and the
 * chunks are freed).
 */
START_TEST(sizepool_objects_of_every_size)
{
	enum { N = SIZEPOOL_MAX + 64 };
	static unsigned char *obj[N + 1];
	struct sizepool p = {0};
	void *again;

	for (size_t size = 1; size <= N; size++) {
		obj[size] = sizepool_alloc(&p, size);
		ck_assert_uint_eq((uintptr_t)obj[size] % SIZEPOOL_ALIGN, 0);
		memset(obj[size], (int)(size & 0xff), size);
	}
	/* every byte still what its own object wrote: nothing overlaps */
	for (size_t size = 1; size <= N; size++)
		for (size_t i = 0; i < size; i++)
			ck_assert_uint_eq(obj[size][i], size & 0xff);
	/* a freed object comes back for a size of its class, not for another */
	sizepool_free(&p, obj[40], 40);
	again = sizepool_alloc(&p, 100);
	ck_assert_ptr_ne(again, obj[40]);
	sizepool_free(&p, again, 100);
	ck_assert_ptr_eq(sizepool_alloc(&p, 33), obj[40]);
	obj[40] = NULL;
	ck_assert_ptr_eq(sizepool_alloc(&p, 100), again);
	sizepool_free(&p, again, 100);
	/* its owner frees what malloc made, then the chunks go */
	for (size_t size = 1; size <= N; size++)
		if (!sizepool_pooled(size))
			sizepool_free(&p, obj[size], size);
	ck_assert(sizepool_pooled(SIZEPOOL_MAX) && !sizepool_pooled(SIZEPOOL_MAX + 1));
	sizepool_release(&p);
	ck_assert_ptr_null(p.chunks);
}
END_TEST

/*
 * Tables from HUGE_TABLE_MIN bytes on are mappings of their own, 2 MiB
 * aligned (the start of a huge page); smaller ones come from malloc.  Both
 * are zeroed and wholly writable, and go back with xfree_table().
 */
START_TEST(tables_zeroed_aligned_and_freed)
{
	static const size_t counts[] = {1, 1000, HUGE_TABLE_MIN / 16 - 1, HUGE_TABLE_MIN / 16,
					HUGE_TABLE_MIN / 16 * 3 + 5};

	for (int round = 0; round < 2; round++) {
		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			size_t n = counts[c], bytes = n * 16;
			unsigned char *p = xcalloc_table(n, 16);

			if (bytes >= HUGE_TABLE_MIN)
				ck_assert_uint_eq((uintptr_t)p % (2u << 20), 0);
			for (size_t i = 0; i < bytes; i += 4093)
				ck_assert_uint_eq(p[i], 0);
			ck_assert_uint_eq(p[bytes - 1], 0);
			memset(p, 0xa5, bytes); /* every byte is ours (ASan and valgrind check) */
			xfree_table(p, n, 16);
			if (bytes >= HUGE_TABLE_MIN) {
				/* the whole mapping went: its first and last page are unmapped */
				size_t len = (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
				unsigned char v;

				ck_assert_int_eq(mincore(p, 4096, &v), -1);
				ck_assert_int_eq(errno, ENOMEM);
				ck_assert_int_eq(mincore(p + len - 4096, 4096, &v), -1);
				ck_assert_int_eq(errno, ENOMEM);
			}
		}
	}
	xfree_table(NULL, 1 << 20, 16);
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("time");

	tcase_add_test(tc, sha256_vectors_split_and_threads);
	tcase_add_test(tc, time_basic_utc);
	tcase_add_test(tc, time_lowercase_t_and_z);
	tcase_add_test(tc, time_offsets);
	tcase_add_test(tc, time_bad_offsets);
	tcase_add_test(tc, time_without_offset);
	tcase_add_test(tc, time_without_offset_says_so);
	tcase_add_test(tc, time_fractions);
	tcase_add_test(tc, time_leap_years);
	tcase_add_test(tc, time_out_of_range_fields);
	tcase_add_test(tc, time_leap_second);
	tcase_add_test(tc, time_respects_len);
	tcase_add_test(tc, time_format_ms_values);
	tcase_add_test(tc, time_format_matches_gmtime);
	tcase_add_test(tc, time_round_trip);
	suite_add_tcase(s, tc);

	tc = tcase_create("units");
	tcase_add_test(tc, durations);
	tcase_add_test(tc, bad_durations);
	tcase_add_test(tc, duration_formats);
	tcase_add_test(tc, sizes);
	tcase_add_test(tc, bad_sizes);
	suite_add_tcase(s, tc);

	tc = tcase_create("memory");
	tcase_add_test(tc, tables_zeroed_aligned_and_freed);
	tcase_add_test(tc, sizepool_objects_of_every_size);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return tu_run(util_suite());
}
