// OpenSSL's SHA-256 from libcrypto (libssl-dev), linked statically: assembly for the
// SHA extensions, AVX2 and SSSE3, picked at start by CPU. The SHA256_* calls are
// deprecated in OpenSSL 3 in favour of EVP, which would load a provider at first use;
// they stay for the 3.x series, and are all plash needs.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
