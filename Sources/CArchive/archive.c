#define _GNU_SOURCE
#include "CArchive.h"

#include <linux/openat2.h>
#include <sys/syscall.h>
#include <bzlib.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

enum format { PLAIN, GZIP, XZ, ZSTD, BZIP2 };

struct plash_decoder {
    int fd;
    enum format format;
    const char *error;
    int eof;                  // the input is at its end
    int between_members;      // gzip and bzip2: a member ended, another may follow
    _Atomic unsigned long long input_size;   // read by the caller while the thread decodes
    const unsigned char *next;   // undecoded input in `in`
    size_t avail;
    z_stream gzip;
    lzma_stream xz;
    ZSTD_DStream *zstd;
    size_t zstd_last;         // ZSTD_decompressStream's last hint: 0 at a frame's end
    bz_stream bzip2;
    // Compressed input is decoded by a thread of its own that writes into a pipe, so
    // decompression and extraction use two cores, as GNU tar with a gzip or xz child does.
    int threaded;
    int pipe_read;
    pthread_t thread;
    atomic_int finished;      // the thread is done with this struct
    int failed, failed_errno;
    unsigned char in[1 << 17];
    unsigned char out[1 << 17];
};

static ssize_t decode(plash_decoder *d, void *buffer, size_t size);
static int start_thread(plash_decoder *d);

// More input into `in` once it is used up: 1 when some came, 0 at the end, -1 on error.
static int refill(plash_decoder *d) {
    if (d->avail > 0) return 1;
    if (d->eof) return 0;
    for (;;) {
        ssize_t n = read(d->fd, d->in, sizeof d->in);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        if (n == 0) { d->eof = 1; return 0; }
        d->next = d->in;
        d->avail = (size_t)n;
        d->input_size += (unsigned long long)n;
        return 1;
    }
}

static int starts_with(const plash_decoder *d, const char *magic, size_t length) {
    return d->avail >= length && memcmp(d->next, magic, length) == 0;
}

static ssize_t fail(plash_decoder *d, const char *reason) {
    d->error = reason;
    return -1;
}

plash_decoder *plash_decoder_new(int fd) {
    plash_decoder *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->fd = fd;
    // Enough bytes for the longest magic (xz: 6), however the pipe delivers them.
    size_t have = 0;
    while (have < 6) {
        ssize_t n = read(fd, d->in + have, sizeof d->in - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { free(d); return NULL; }
        if (n == 0) { d->eof = 1; break; }
        have += (size_t)n;
    }
    d->next = d->in;
    d->avail = have;
    d->input_size = have;
    if (starts_with(d, "\x1f\x8b", 2)) {
        d->format = GZIP;
        if (inflateInit2(&d->gzip, 15 + 16) != Z_OK) { free(d); errno = ENOMEM; return NULL; }
    } else if (starts_with(d, "\xfd" "7zXZ\0", 6)) {
        d->format = XZ;
        if (lzma_stream_decoder(&d->xz, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK) { free(d); errno = ENOMEM; return NULL; }
    } else if (starts_with(d, "\x28\xb5\x2f\xfd", 4)) {
        d->format = ZSTD;
        d->zstd = ZSTD_createDStream();
        if (!d->zstd) { free(d); errno = ENOMEM; return NULL; }
        d->zstd_last = 1;
    } else if (starts_with(d, "BZh", 3)) {
        d->format = BZIP2;
        if (BZ2_bzDecompressInit(&d->bzip2, 0, 0) != BZ_OK) { free(d); errno = ENOMEM; return NULL; }
    } else {
        d->format = PLAIN;
    }
    if (d->format != PLAIN) start_thread(d);
    return d;
}

// After a gzip or bzip2 member: zero bytes (tape padding) are skipped, the end of input
// ends the data, the format's magic starts another member; anything else is garbage.
// 1: another member follows, 0: the end, -1: failure.
static int next_member(plash_decoder *d, const char *magic, size_t length) {
    for (;;) {
        int more = refill(d);
        if (more <= 0) return more;
        while (d->avail > 0 && d->next[0] == 0) { d->next++; d->avail--; }
        if (d->avail == 0) continue;
        if (d->avail < length && !d->eof) {
            // A magic split across reads: keep what we have at the start and read on.
            memmove(d->in, d->next, d->avail);
            d->next = d->in;
            ssize_t n;
            do n = read(d->fd, d->in + d->avail, sizeof d->in - d->avail); while (n < 0 && errno == EINTR);
            if (n < 0) return -1;
            if (n == 0) d->eof = 1;
            d->avail += (size_t)n;
            d->input_size += (unsigned long long)n;
            continue;
        }
        if (starts_with(d, magic, length)) return 1;
        d->error = "trailing garbage after the compressed data";
        return -1;
    }
}

static ssize_t read_gzip(plash_decoder *d, void *buffer, size_t size) {
    d->gzip.next_out = buffer;
    d->gzip.avail_out = (uInt)(size > (1u << 30) ? (1u << 30) : size);
    uInt start = d->gzip.avail_out;
    while (d->gzip.avail_out == start) {
        if (d->between_members) {
            int more = next_member(d, "\x1f\x8b", 2);
            if (more <= 0) return more;
            inflateReset(&d->gzip);
            d->between_members = 0;
        }
        int more = refill(d);
        if (more < 0) return -1;
        if (more == 0) return fail(d, "the gzip data is truncated");
        d->gzip.next_in = (unsigned char *)d->next;
        d->gzip.avail_in = (uInt)d->avail;
        int result = inflate(&d->gzip, Z_NO_FLUSH);
        d->next = d->gzip.next_in;
        d->avail = d->gzip.avail_in;
        if (result == Z_STREAM_END) { d->between_members = 1; continue; }
        if (result == Z_MEM_ERROR) { errno = ENOMEM; return -1; }
        if (result != Z_OK && result != Z_BUF_ERROR) return fail(d, "corrupt gzip data");
    }
    return (ssize_t)(start - d->gzip.avail_out);
}

static ssize_t read_xz(plash_decoder *d, void *buffer, size_t size) {
    d->xz.next_out = buffer;
    d->xz.avail_out = size;
    for (;;) {
        int more = refill(d);
        if (more < 0) return -1;
        d->xz.next_in = d->next;
        d->xz.avail_in = d->avail;
        lzma_ret result = lzma_code(&d->xz, more == 0 ? LZMA_FINISH : LZMA_RUN);
        d->next = d->xz.next_in;
        d->avail = d->xz.avail_in;
        size_t produced = size - d->xz.avail_out;
        if (result == LZMA_STREAM_END) return (ssize_t)produced;
        if (result == LZMA_MEM_ERROR) { errno = ENOMEM; return -1; }
        if (result != LZMA_OK && result != LZMA_BUF_ERROR) {
            return fail(d, result == LZMA_DATA_ERROR || result == LZMA_FORMAT_ERROR ? "corrupt xz data" : "xz decoding failed");
        }
        if (produced > 0) return (ssize_t)produced;
        if (more == 0) return fail(d, "the xz data is truncated");
    }
}

static ssize_t read_zstd(plash_decoder *d, void *buffer, size_t size) {
    ZSTD_outBuffer out = { buffer, size, 0 };
    for (;;) {
        int more = refill(d);
        if (more < 0) return -1;
        if (more == 0) {
            if (d->zstd_last == 0) return 0;
            // Output still held inside the decoder comes out without input.
            ZSTD_inBuffer none = { d->in, 0, 0 };
            size_t result = ZSTD_decompressStream(d->zstd, &out, &none);
            if (ZSTD_isError(result)) return fail(d, "corrupt zstd data");
            d->zstd_last = result;
            if (out.pos > 0) return (ssize_t)out.pos;
            return fail(d, "the zstd data is truncated");
        }
        ZSTD_inBuffer in = { d->next, d->avail, 0 };
        size_t result = ZSTD_decompressStream(d->zstd, &out, &in);
        d->next += in.pos;
        d->avail -= in.pos;
        if (ZSTD_isError(result)) return fail(d, "corrupt zstd data");
        d->zstd_last = result;
        if (out.pos > 0) return (ssize_t)out.pos;
    }
}

static ssize_t read_bzip2(plash_decoder *d, void *buffer, size_t size) {
    d->bzip2.next_out = buffer;
    d->bzip2.avail_out = (unsigned)(size > (1u << 30) ? (1u << 30) : size);
    unsigned start = d->bzip2.avail_out;
    while (d->bzip2.avail_out == start) {
        if (d->between_members) {
            int more = next_member(d, "BZh", 3);
            if (more <= 0) return more;
            BZ2_bzDecompressEnd(&d->bzip2);
            memset(&d->bzip2, 0, sizeof d->bzip2);
            if (BZ2_bzDecompressInit(&d->bzip2, 0, 0) != BZ_OK) { errno = ENOMEM; return -1; }
            d->bzip2.next_out = buffer;
            d->bzip2.avail_out = start;
            d->between_members = 0;
        }
        int more = refill(d);
        if (more < 0) return -1;
        if (more == 0) return fail(d, "the bzip2 data is truncated");
        d->bzip2.next_in = (char *)d->next;
        d->bzip2.avail_in = (unsigned)(d->avail > (1u << 30) ? (1u << 30) : d->avail);
        size_t offered = d->bzip2.avail_in;
        int result = BZ2_bzDecompress(&d->bzip2);
        d->next += offered - d->bzip2.avail_in;
        d->avail -= offered - d->bzip2.avail_in;
        if (result == BZ_STREAM_END) { d->between_members = 1; continue; }
        if (result == BZ_MEM_ERROR) { errno = ENOMEM; return -1; }
        if (result != BZ_OK) return fail(d, "corrupt bzip2 data");
    }
    return (ssize_t)(start - d->bzip2.avail_out);
}

static ssize_t decode(plash_decoder *d, void *buffer, size_t size) {
    switch (d->format) {
    case GZIP: return read_gzip(d, buffer, size);
    case XZ: return read_xz(d, buffer, size);
    case ZSTD: return read_zstd(d, buffer, size);
    case BZIP2: return read_bzip2(d, buffer, size);
    case PLAIN:
        if (d->avail > 0) {
            size_t n = d->avail < size ? d->avail : size;
            memcpy(buffer, d->next, n);
            d->next += n;
            d->avail -= n;
            return (ssize_t)n;
        }
        if (d->eof) return 0;
        for (;;) {
            ssize_t n = read(d->fd, buffer, size);
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) d->eof = 1;
            if (n > 0) d->input_size += (unsigned long long)n;
            return n;
        }
    }
    return 0;
}

struct thread_start {
    plash_decoder *decoder;
    int pipe_write;
};

static void *decode_thread(void *argument) {
    struct thread_start start = *(struct thread_start *)argument;
    free(argument);
    plash_decoder *d = start.decoder;
    // A reader that stopped early closes the pipe: then write fails with EPIPE.
    sigset_t pipe_signal;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);
    for (;;) {
        ssize_t n = decode(d, d->out, sizeof d->out);
        if (n < 0) { d->failed = 1; d->failed_errno = errno; }
        if (n <= 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t written = write(start.pipe_write, d->out + done, (size_t)(n - done));
            if (written < 0 && errno == EINTR) continue;
            if (written < 0) goto stop;
            done += written;
        }
    }
stop:
    close(start.pipe_write);
    close(d->fd);
    atomic_store(&d->finished, 1);
    return NULL;
}

// Decoding moves to a thread that writes into a pipe; 0, or -1 when none could start
// (then the caller decodes in line).
static int start_thread(plash_decoder *d) {
    // The thread reads a descriptor of its own: one the caller closes could be reused
    // by the next open while the thread still reads (it may outlive the reader, below).
    int input = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
    if (input < 0) return -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) { close(input); return -1; }
    fcntl(fds[0], F_SETPIPE_SZ, 1 << 20);   // fewer switches; a refusal only costs speed
    struct thread_start *start = malloc(sizeof *start);
    if (!start) { close(fds[0]); close(fds[1]); close(input); return -1; }
    start->decoder = d;
    start->pipe_write = fds[1];
    int own = d->fd;
    d->fd = input;
    if (pthread_create(&d->thread, NULL, decode_thread, start) != 0) {
        d->fd = own;
        free(start);
        close(fds[0]);
        close(fds[1]);
        close(input);
        return -1;
    }
    d->threaded = 1;
    d->pipe_read = fds[0];
    return 0;
}

ssize_t plash_decoder_read(plash_decoder *d, void *buffer, size_t size) {
    if (!d->threaded) {
        d->error = NULL;
        return decode(d, buffer, size);
    }
    for (;;) {
        ssize_t n = read(d->pipe_read, buffer, size);
        if (n < 0 && errno == EINTR) continue;
        if (n != 0) return n;
        // The end of the pipe: the thread is done; did it fail?
        pthread_join(d->thread, NULL);
        d->threaded = 0;
        close(d->pipe_read);
        if (!d->failed) return 0;
        d->eof = 1;
        d->between_members = 0;
        errno = d->failed_errno;
        return -1;
    }
}

const char *plash_decoder_error(const plash_decoder *d) { return d->error; }

const char *plash_decoder_format(const plash_decoder *d) {
    static const char *names[] = { "plain", "gzip", "xz", "zstd", "bzip2" };
    return names[d->format];
}

unsigned long long plash_decoder_input_size(const plash_decoder *d) { return d->input_size; }

void plash_decoder_free(plash_decoder *d) {
    if (!d) return;
    if (d->threaded) {
        close(d->pipe_read);
        // A thread still waiting for input (a slow pipe on stdin) is left to the
        // process's exit, with the memory it uses.
        if (!atomic_load(&d->finished)) { pthread_detach(d->thread); return; }
        pthread_join(d->thread, NULL);
    }
    switch (d->format) {
    case GZIP: inflateEnd(&d->gzip); break;
    case XZ: lzma_end(&d->xz); break;
    case ZSTD: ZSTD_freeDStream(d->zstd); break;
    case BZIP2: BZ2_bzDecompressEnd(&d->bzip2); break;
    case PLAIN: break;
    }
    free(d);
}

int plash_open_beneath(int dir, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, dir, path, &how, sizeof how);
}

// Parallel gzip, pigz's way: the input is cut into blocks of a fixed size (never
// depending on the number of cores), each compressed as raw deflate on its own with the
// 32 KiB before it as its dictionary, and ended by a sync flush (byte-aligned, not
// final), the last by Z_FINISH. Written in order after one gzip header, then the
// CRC-32 (the blocks' combined) and the length, they are one gzip member: the same
// bytes for the same input on any number of cores, read by every gzip reader.
#define BLOCK_SIZE (1u << 18)
#define DICTIONARY_SIZE 32768u

enum slot_state { SLOT_FREE, SLOT_READY, SLOT_BUSY, SLOT_DONE };

struct slot {
    enum slot_state state;
    int last;
    unsigned char *in;
    size_t in_size;
    unsigned char dictionary[DICTIONARY_SIZE];
    size_t dictionary_size;
    unsigned char *out;
    size_t out_size, out_capacity;
    unsigned long crc;
};

struct plash_encoder {
    int fd, level;
    int worker_count, slot_count;
    pthread_t *workers;
    struct slot *slots;
    unsigned long long filling;    // the block being filled, counted from 0
    unsigned long long written;    // blocks written out
    unsigned long long taken;      // blocks a worker has taken
    unsigned long long submitted;  // blocks ready or taken
    int stopping, failed;
    unsigned long crc;
    unsigned long long length;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static int write_all(int fd, const unsigned char *data, size_t size) {
    for (size_t done = 0; done < size;) {
        ssize_t n = write(fd, data + done, size - done);
        if (n < 0) { if (errno == EINTR) continue; return -1; }
        done += (size_t)n;
    }
    return 0;
}

static int compress_block(z_stream *stream, struct slot *slot) {
    if (deflateReset(stream) != Z_OK) return -1;
    if (slot->dictionary_size > 0 && deflateSetDictionary(stream, slot->dictionary, (uInt)slot->dictionary_size) != Z_OK) return -1;
    stream->next_in = slot->in;
    stream->avail_in = (uInt)slot->in_size;
    stream->next_out = slot->out;
    stream->avail_out = (uInt)slot->out_capacity;
    // deflateBound plus room for the flush marker: one call always finishes.
    int result = deflate(stream, slot->last ? Z_FINISH : Z_SYNC_FLUSH);
    if (result == Z_STREAM_ERROR || stream->avail_in != 0 || stream->avail_out == 0 || (slot->last && result != Z_STREAM_END)) return -1;
    slot->out_size = slot->out_capacity - stream->avail_out;
    slot->crc = crc32(0L, slot->in, (uInt)slot->in_size);
    return 0;
}

static void *compress_thread(void *argument) {
    plash_encoder *e = argument;
    // Signals are the main thread's.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    int ready = deflateInit2(&stream, e->level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    pthread_mutex_lock(&e->lock);
    for (;;) {
        while (!e->stopping && e->taken == e->submitted) pthread_cond_wait(&e->changed, &e->lock);
        if (e->taken == e->submitted) break;
        struct slot *slot = &e->slots[e->taken % (unsigned long long)e->slot_count];
        e->taken++;
        slot->state = SLOT_BUSY;
        pthread_mutex_unlock(&e->lock);
        int failed = !ready || compress_block(&stream, slot) != 0;
        pthread_mutex_lock(&e->lock);
        if (failed) e->failed = 1;
        slot->state = SLOT_DONE;
        pthread_cond_broadcast(&e->changed);
    }
    pthread_mutex_unlock(&e->lock);
    if (ready) deflateEnd(&stream);
    return NULL;
}

static int usable_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}

plash_encoder *plash_gzip_encoder_new(int fd, int level) {
    plash_encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->fd = fd;
    e->level = level;
    int wanted = usable_cores() < 32 ? usable_cores() : 32;
    e->slot_count = 2 * wanted + 1;
    e->crc = crc32(0L, Z_NULL, 0);
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->changed, NULL);
    e->slots = calloc((size_t)e->slot_count, sizeof *e->slots);
    e->workers = calloc((size_t)wanted, sizeof *e->workers);
    if (!e->slots || !e->workers) goto fail;
    // Raw deflate's bound for a block, plus the sync flush's empty stored block.
    z_stream probe;
    memset(&probe, 0, sizeof probe);
    if (deflateInit2(&probe, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) goto fail;
    size_t capacity = deflateBound(&probe, BLOCK_SIZE) + 64;
    deflateEnd(&probe);
    for (int i = 0; i < e->slot_count; i++) {
        e->slots[i].in = malloc(BLOCK_SIZE);
        e->slots[i].out = malloc(capacity);
        e->slots[i].out_capacity = capacity;
        if (!e->slots[i].in || !e->slots[i].out) goto fail;
    }
    // mtime 0, no name, OS Unix: the header says nothing about when or where.
    static const unsigned char header[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };
    if (write_all(fd, header, sizeof header) != 0) {
        int saved = errno;
        plash_gzip_encoder_free(e);
        errno = saved;
        return NULL;
    }
    // Fewer threads than cores (a limit on processes) give the same bytes, later.
    while (e->worker_count < wanted && pthread_create(&e->workers[e->worker_count], NULL, compress_thread, e) == 0) {
        e->worker_count++;
    }
    if (e->worker_count == 0) goto fail;
    return e;
fail:
    plash_gzip_encoder_free(e);
    errno = ENOMEM;
    return NULL;
}

// Writes the blocks that are done, in order; with `all`, waits for every block
// submitted. Called with the lock held.
static int write_done(plash_encoder *e, int all) {
    while (e->written < e->submitted) {
        struct slot *slot = &e->slots[e->written % (unsigned long long)e->slot_count];
        if (slot->state != SLOT_DONE) {
            if (!all && e->filling - e->written < (unsigned long long)e->slot_count) return 0;
            pthread_cond_wait(&e->changed, &e->lock);
            continue;
        }
        if (e->failed) { errno = ENOMEM; return -1; }
        pthread_mutex_unlock(&e->lock);
        int result = write_all(e->fd, slot->out, slot->out_size);
        pthread_mutex_lock(&e->lock);
        if (result != 0) return -1;
        e->crc = crc32_combine(e->crc, slot->crc, (z_off_t)slot->in_size);
        e->length += slot->in_size;
        slot->state = SLOT_FREE;
        e->written++;
    }
    return e->failed ? (errno = ENOMEM, -1) : 0;
}

// Hands the block being filled to the workers, with the end of the one before as its
// dictionary, and moves on to the next slot once its earlier block is written.
static int submit(plash_encoder *e, int last) {
    struct slot *slot = &e->slots[e->filling % (unsigned long long)e->slot_count];
    slot->dictionary_size = 0;
    if (e->filling > 0) {
        struct slot *before = &e->slots[(e->filling - 1) % (unsigned long long)e->slot_count];
        size_t size = before->in_size < DICTIONARY_SIZE ? before->in_size : DICTIONARY_SIZE;
        memcpy(slot->dictionary, before->in + before->in_size - size, size);
        slot->dictionary_size = size;
    }
    slot->last = last;
    pthread_mutex_lock(&e->lock);
    slot->state = SLOT_READY;
    e->submitted++;
    e->filling++;
    pthread_cond_broadcast(&e->changed);
    int result = write_done(e, last);
    pthread_mutex_unlock(&e->lock);
    if (result != 0) return -1;
    e->slots[e->filling % (unsigned long long)e->slot_count].in_size = 0;
    return 0;
}

int plash_gzip_encoder_write(plash_encoder *e, const void *data, size_t size, int finish) {
    const unsigned char *next = data;
    while (size > 0) {
        struct slot *slot = &e->slots[e->filling % (unsigned long long)e->slot_count];
        size_t piece = BLOCK_SIZE - slot->in_size < size ? BLOCK_SIZE - slot->in_size : size;
        memcpy(slot->in + slot->in_size, next, piece);
        slot->in_size += piece;
        next += piece;
        size -= piece;
        if (slot->in_size == BLOCK_SIZE && submit(e, 0) != 0) return -1;
    }
    if (!finish) return 0;
    if (submit(e, 1) != 0) return -1;
    unsigned char trailer[8];
    for (int i = 0; i < 4; i++) {
        trailer[i] = (unsigned char)(e->crc >> (8 * i));
        trailer[4 + i] = (unsigned char)(e->length >> (8 * i));
    }
    return write_all(e->fd, trailer, sizeof trailer);
}

void plash_gzip_encoder_free(plash_encoder *e) {
    if (!e) return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    // Blocks still queued (an export that failed) are not compressed.
    e->submitted = e->taken;
    pthread_cond_broadcast(&e->changed);
    pthread_mutex_unlock(&e->lock);
    for (int i = 0; i < e->worker_count; i++) pthread_join(e->workers[i], NULL);
    for (int i = 0; e->slots && i < e->slot_count; i++) {
        free(e->slots[i].in);
        free(e->slots[i].out);
    }
    free(e->slots);
    free(e->workers);
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->changed);
    free(e);
}

ssize_t plash_copy_file_range(int in, long long *offset, int out, size_t size) {
    off_t at = (off_t)*offset;
    ssize_t n = copy_file_range(in, &at, out, NULL, size, 0);
    *offset = (long long)at;
    return n;
}
