/* verdict.c - verdict and retention-overdue documents (contract section 4), written straight into a buffer */
#include "policy_int.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * True when none of the 8 bytes at p needs escaping: all are printable
 * ASCII other than '"' and '\\' (tested a word at a time; most strings
 * quoted are ids and names that are).
 */
static inline bool
plain8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	uint64_t x, ctl, quote, bslash;

	memcpy(&x, p, sizeof(x));
	ctl = (x - ones * 0x20) & ~x;  /* a byte below 0x20 */
	quote = x ^ (ones * '"');
	quote = (quote - ones) & ~quote; /* a '"' */
	bslash = x ^ (ones * '\\');
	bslash = (bslash - ones) & ~bslash; /* a '\\' */
	return !((ctl | quote | bslash | x) & high); /* x: a byte of 0x80 or above */
}

void
json_quote(struct strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), run = 0;

	sb_grow(sb, n + 2);
	sb_addc(sb, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		char esc[8];
		size_t len;

		if (i + 8 <= n && plain8(p + i)) {
			run += 8;
			i += 8;
			continue;
		}
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			run++;
			i++;
			continue;
		}
		sb_add(sb, p + i - run, run);
		run = 0;
		if (c >= 0x80) {
			if ((len = utf8_len(p + i, n - i))) {
				sb_add(sb, p + i, len);
				i += len;
			} else {
				sb_adds(sb, "\\ufffd"); /* not UTF-8: never emit invalid JSON */
				i++;
			}
			continue;
		}
		switch (c) {
		case '"':
			sb_adds(sb, "\\\"");
			break;
		case '\\':
			sb_adds(sb, "\\\\");
			break;
		case '\n':
			sb_adds(sb, "\\n");
			break;
		case '\r':
			sb_adds(sb, "\\r");
			break;
		case '\t':
			sb_adds(sb, "\\t");
			break;
		case '\b':
			sb_adds(sb, "\\b");
			break;
		case '\f':
			sb_adds(sb, "\\f");
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			sb_add(sb, esc, 6);
			break;
		}
		i++;
	}
	sb_add(sb, p + n - run, run);
	sb_addc(sb, '"');
}

static void
add_i64(struct strbuf *sb, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	sb_add(sb, p, (size_t)(buf + sizeof(buf) - p));
}

/*
 * time_format_ms() without printf: documents are encoded once per record,
 * and consecutive records mostly share their second.
 */
static void
add_time_ms(struct strbuf *sb, aupd_time t)
{
	static _Thread_local int64_t cached_sec = INT64_MIN;
	static _Thread_local char cached[32];
	int64_t sec = t >= 0 ? t / AUPD_USEC : -((-t + AUPD_USEC - 1) / AUPD_USEC);
	int ms = (int)((t - sec * AUPD_USEC) / 1000);
	char tail[6] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
			(char)('0' + ms % 10), 'Z', 0};

	if (sec != cached_sec) {
		/* "2026-01-15T10:00:00" is the first 19 characters of the full form */
		time_format_ms(sec * AUPD_USEC, cached, sizeof(cached));
		cached[19] = '\0';
		cached_sec = sec;
	}
	sb_add(sb, cached, 19);
	sb_add(sb, tail, 5);
}

static void
matched_encode(struct strbuf *sb, const struct verdict *v)
{
	sb_adds(sb, "\"matched\":[");
	for (size_t i = 0; i < v->n_matched; i++) {
		const struct match *m = &v->matched[i];

		if (i)
			sb_addc(sb, ',');
		sb_adds(sb, "{\"rule\":");
		json_quote(sb, m->rule);
		sb_adds(sb, ",\"effect\":\"");
		sb_adds(sb, effect_name(m->effect));
		sb_adds(sb, "\",\"severity\":\"");
		sb_adds(sb, severity_name(m->severity));
		sb_adds(sb, m->shadow ? "\",\"shadow\":true,\"message\":"
				      : "\",\"shadow\":false,\"message\":");
		json_quote(sb, m->message ? m->message : "");
		if (m->exempted) {
			sb_adds(sb, ",\"exempted\":");
			json_quote(sb, m->exempted);
		}
		sb_addc(sb, '}');
	}
	sb_addc(sb, ']');
}

static void
tail_encode(struct strbuf *sb, const char *rules_version, aupd_time decided_at)
{
	sb_adds(sb, ",\"rules_version\":");
	json_quote(sb, rules_version);
	sb_adds(sb, ",\"decided_at\":\"");
	add_time_ms(sb, decided_at);
	sb_addc(sb, '"');
}

static void
seq_verdict_encode(struct strbuf *sb, int64_t seq, enum effect verdict)
{
	sb_adds(sb, ",\"seq\":");
	add_i64(sb, seq);
	sb_adds(sb, ",\"verdict\":\"");
	sb_adds(sb, effect_name(verdict));
	sb_adds(sb, "\",");
}

void
verdict_encode(struct strbuf *sb, const struct event *ev, const struct verdict *v,
	       int64_t seq, const char *rules_version, aupd_time decided_at, bool duplicate)
{
	sb_grow(sb, 256);
	sb_adds(sb, "{\"tenant\":");
	json_quote(sb, ev->tenant);
	sb_adds(sb, ",\"id\":");
	json_quote(sb, ev->id);
	seq_verdict_encode(sb, seq, v->verdict);
	matched_encode(sb, v);
	tail_encode(sb, rules_version, decided_at);
	sb_adds(sb, duplicate ? ",\"duplicate\":true}" : ",\"duplicate\":false}");
}

void
overdue_encode(struct strbuf *sb, const struct obligation *o, const struct verdict *v,
	       int64_t seq, const char *rules_version, aupd_time decided_at)
{
	char deadline[40];

	time_format_ms(o->deadline, deadline, sizeof(deadline));
	sb_grow(sb, 320);
	sb_adds(sb, "{\"kind\":\"retention-overdue\",\"tenant\":");
	json_quote(sb, o->tenant);
	sb_adds(sb, ",\"resource\":{\"id\":");
	json_quote(sb, o->resource_id);
	sb_adds(sb, "},\"rule\":");
	json_quote(sb, o->rule);
	sb_addf(sb, ",\"deadline\":\"%s\",\"opened_by\":", deadline);
	json_quote(sb, o->opened_by);
	seq_verdict_encode(sb, seq, v->verdict);
	matched_encode(sb, v);
	tail_encode(sb, rules_version, decided_at);
	sb_addc(sb, '}');
}

void
policy_overdue_verdict(const struct ruleset *rs, const struct obligation *o,
		       struct verdict *out)
{
	const struct rule *r = ruleset_rule(rs, o->rule);
	struct evctx c = {.rs = rs, .ob = o};
	char deadline[40];
	struct match *m;

	memset(out, 0, sizeof(*out));
	time_format_ms(o->deadline, deadline, sizeof(deadline));
	out->matched = xcalloc(1, sizeof(*out->matched));
	out->n_matched = 1;
	m = &out->matched[0];
	m->rule = r ? r->id : o->rule;
	m->effect = o->effect;
	m->severity = o->severity;
	m->shadow = o->shadow;
	m->tags = r ? r->tags : NULL;
	m->n_tags = r ? r->n_tags : 0;
	m->exempted = r ? rule_exempted(r, &c, o->deadline) : NULL;
	m->message = xasprintf("%s of tenant %s was not deleted by %s (rule %s)", o->resource_id,
			       o->tenant, deadline, o->rule);
	out->verdict = m->shadow || m->exempted ? EFFECT_ALLOW : o->effect;
}
