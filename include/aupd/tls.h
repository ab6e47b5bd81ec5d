/* tls.h - the server's certificate: configured, or a generated self-signed pair */
#ifndef AUPD_TLS_H
#define AUPD_TLS_H

#include "aupd/config.h"
#include "aupd/util.h"

struct tls_material {
	char *cert_pem;
	char *key_pem; /* wiped by tls_material_free() */
	char *cert_path;
	char fingerprint[3 * 32]; /* "AB:CD:..." SHA-256 of the DER certificate */
	bool generated;           /* created by this call */
};

/*
 * Reads tls.cert/tls.key, or, when neither is configured, the pair in
 * state_dir/tls/ — generating it first (EC P-256, self-signed, key 0600)
 * when absent.  0, or -1 with `err` naming the file at fault.
 */
int tls_load_or_generate(const struct config *cfg, struct tls_material *out,
			 struct aupd_error *err);
void tls_material_free(struct tls_material *tm);

/* SHA-256 fingerprint of the first certificate in a PEM string, "AB:CD:...". */
int tls_fingerprint(const char *cert_pem, char *out, size_t outlen);

/* GnuTLS priority string: TLS 1.2 and 1.3 only, AEAD ciphers, forward secrecy. */
extern const char tls_priorities[];

#endif
