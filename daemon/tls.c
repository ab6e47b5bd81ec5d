/* tls.c - the server's certificate: configured, or a generated self-signed pair */
#include "aupd/tls.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char tls_priorities[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
	"+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE";

#define TLS_MAX_PEM (1u << 20)

int
tls_fingerprint(const char *cert_pem, char *out, size_t outlen)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int rc = -1;

	if (x && X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && outlen >= mdlen * 3) {
		static const char digits[] = "0123456789ABCDEF";

		for (unsigned i = 0; i < mdlen; i++) {
			out[3 * i] = digits[md[i] >> 4];
			out[3 * i + 1] = digits[md[i] & 15];
			out[3 * i + 2] = i + 1 < mdlen ? ':' : '\0';
		}
		rc = 0;
	}
	X509_free(x);
	BIO_free(bio);
	return rc;
}

static char *
bio_to_string(BIO *bio)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);

	return xstrndup(data, (size_t)n);
}

static int
add_ext(X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ex;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
	ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -1;
	X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return 0;
}

/* A self-signed EC P-256 certificate for the listen address, valid ten years. */
static int
generate_pair(const struct config *cfg, char **cert_pem, char **key_pem, struct aupd_error *err)
{
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	BIO *cb = BIO_new(BIO_s_mem()), *kb = BIO_new(BIO_s_mem());
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name;
	char *san = NULL;
	int rc = -1;

	if (!pkey || !x || !cb || !kb || RAND_bytes(serial, sizeof(serial)) != 1) {
		aupd_error_set(err, "cannot generate a TLS key with OpenSSL");
		goto out;
	}
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	X509_set_version(x, 2);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 366 * 86400);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"aupd", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"aupd self-signed", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (strcmp(cfg->listen_host, "127.0.0.1") && strcmp(cfg->listen_host, "::1") &&
	    strcmp(cfg->listen_host, "0.0.0.0") && strcmp(cfg->listen_host, "::"))
		san = xasprintf("DNS:localhost,IP:127.0.0.1,IP:::1,IP:%s", cfg->listen_host);
	else
		san = xasprintf("DNS:localhost,IP:127.0.0.1,IP:::1");
	if (add_ext(x, NID_subject_alt_name, san) < 0 ||
	    add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0 || PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		aupd_error_set(err, "cannot create a self-signed certificate with OpenSSL");
		goto out;
	}
	*cert_pem = bio_to_string(cb);
	*key_pem = bio_to_string(kb);
	rc = 0;
out:
	free(san);
	BN_free(bn);
	BIO_free(cb);
	if (kb) {
		char *data;
		long n = BIO_get_mem_data(kb, &data);

		if (n > 0)
			OPENSSL_cleanse(data, (size_t)n);
		BIO_free(kb);
	}
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

int
tls_load_or_generate(const struct config *cfg, struct tls_material *tm, struct aupd_error *err)
{
	char *dir = NULL, *key_path = NULL;
	size_t len;

	memset(tm, 0, sizeof(*tm));
	if (cfg->tls_cert) {
		tm->cert_path = xstrdup(cfg->tls_cert);
		key_path = xstrdup(cfg->tls_key);
	} else {
		dir = path_join(cfg->state_dir, "tls");
		tm->cert_path = path_join(dir, "cert.pem");
		key_path = path_join(dir, "key.pem");
		if (access(tm->cert_path, F_OK) < 0 && access(key_path, F_OK) < 0) {
			if (mkdir_p(dir, 0700, err) < 0 ||
			    generate_pair(cfg, &tm->cert_pem, &tm->key_pem, err) < 0 ||
			    file_write_atomic(key_path, tm->key_pem, strlen(tm->key_pem), 0600,
					      err) < 0 ||
			    file_write_atomic(tm->cert_path, tm->cert_pem, strlen(tm->cert_pem),
					      0644, err) < 0)
				goto err_free;
			tm->generated = true;
		}
	}
	if (!tm->cert_pem &&
	    !(tm->cert_pem = file_read_all(tm->cert_path, TLS_MAX_PEM, &len, err)))
		goto err_free;
	if (!tm->key_pem && !(tm->key_pem = file_read_all(key_path, TLS_MAX_PEM, &len, err)))
		goto err_free;
	if (tls_fingerprint(tm->cert_pem, tm->fingerprint, sizeof(tm->fingerprint)) < 0) {
		aupd_error_set(err, "%s holds no PEM certificate", tm->cert_path);
		goto err_free;
	}
	if (!strstr(tm->key_pem, "PRIVATE KEY-----")) {
		aupd_error_set(err, "%s holds no PEM private key", key_path);
		goto err_free;
	}
	free(dir);
	free(key_path);
	return 0;

err_free:
	free(dir);
	free(key_path);
	tls_material_free(tm);
	return -1;
}

void
tls_material_free(struct tls_material *tm)
{
	if (tm->key_pem) {
		OPENSSL_cleanse(tm->key_pem, strlen(tm->key_pem));
		free(tm->key_pem);
	}
	free(tm->cert_pem);
	free(tm->cert_path);
	memset(tm, 0, sizeof(*tm));
}
