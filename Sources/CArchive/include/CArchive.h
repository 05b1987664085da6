// Streaming decompression for plash import-tar: gzip (several members too), xz, zstd
// and bzip2, told by their magic bytes, or plain bytes passed through. Written in C
// because the libraries' stream structs hold pointers that Swift would have to pin.
#ifndef PLASH_ARCHIVE_H
#define PLASH_ARCHIVE_H

#include <sys/types.h>
#include <sys/xattr.h>   // fsetxattr and friends, which Swift's Glibc module lacks

typedef struct plash_decoder plash_decoder;

// Reads the first bytes of `fd` to tell its format and starts decoding it. NULL when
// out of memory or the first read failed (errno tells).
plash_decoder *plash_decoder_new(int fd);

// Up to `size` decoded bytes into `buffer`: their count, 0 at the end of the data, -1
// on failure: then plash_decoder_error() says why, or is NULL when errno does.
ssize_t plash_decoder_read(plash_decoder *decoder, void *buffer, size_t size);

const char *plash_decoder_error(const plash_decoder *decoder);

// "gzip", "xz", "zstd", "bzip2" or "plain".
const char *plash_decoder_format(const plash_decoder *decoder);

// Decoded bytes so far: none means the input was empty.
unsigned long long plash_decoder_input_size(const plash_decoder *decoder);

void plash_decoder_free(plash_decoder *decoder);

// openat2(2) with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS: `path` must lie beneath the
// directory `dir` and may not pass through a symlink (ELOOP), so no entry of an archive
// can reach outside the tree it is extracted into.
int plash_open_beneath(int dir, const char *path, int flags, mode_t mode);

// Streaming gzip compression into `fd`, for export-oci's layers, on every core this
// process may use (see archive.c: independent blocks, one gzip member). The header holds
// no name and no time, and the level and block size are fixed: the same bytes in give
// the same bytes out, on any number of cores.
typedef struct plash_encoder plash_encoder;

plash_encoder *plash_gzip_encoder_new(int fd, int level);

// Compresses `size` bytes and writes what is ready; `finish` ends the stream. -1 with
// errno on failure.
int plash_gzip_encoder_write(plash_encoder *encoder, const void *data, size_t size, int finish);

void plash_gzip_encoder_free(plash_encoder *encoder);

// copy_file_range(2) from `*offset` of `in` to the current offset of `out` (glibc
// declares it only under _GNU_SOURCE, which Swift's Glibc module does not set).
ssize_t plash_copy_file_range(int in, long long *offset, int out, size_t size);

#endif
