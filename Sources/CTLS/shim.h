// OpenSSL's TLS (libssl.a, libssl-dev), linked statically into plash for downloads
// (docs/http.md). Only PlashKit's HTTP client uses it; nothing on plash run's path
// calls into it, and it initialises itself on first use.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

// One client context: peers are verified against the system's CA certificates
// (OPENSSLDIR's certs, or what SSL_CERT_FILE / SSL_CERT_DIR name). A peer that closes
// without close_notify is not an error here: the HTTP client knows where a body ends
// from Content-Length or the chunked encoding, and calls a short one truncated.
static inline SSL_CTX *plash_tls_context(void) {
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (context == NULL) return NULL;
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (SSL_CTX_set_default_verify_paths(context) != 1) { SSL_CTX_free(context); return NULL; }
    return context;
}

// The name the certificate must carry: an IP address is matched against the
// certificate's IP entries, a host name against its DNS names (and sent as SNI).
static inline int plash_tls_expect_host(SSL *ssl, const char *host) {
    X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1) return 1;
    return SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1;
}
