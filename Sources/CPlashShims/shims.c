#define _GNU_SOURCE
#include "CPlashShims.h"

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

const int plash_O_PATH = O_PATH;

int plash_unshare(int flags) {
    return unshare(flags);
}

int plash_open_in_root(int root, const char *path, int flags, mode_t mode) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

int plash_open_without_symlinks(const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    how.resolve = RESOLVE_NO_SYMLINKS;
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

int plash_open_in_mount(int root, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)flags;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    return (int)syscall(SYS_openat2, root, path, &how, sizeof how);
}

int plash_mount_scratch(int target) {
    int fs = (int)syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
    if (fs < 0) return -1;
    int mnt = -1;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) == 0
        && syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
        mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
    int saved = errno;
    close(fs);
    if (mnt >= 0 && (target >= 0 ? syscall(SYS_move_mount, mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
                                 : syscall(SYS_move_mount, mnt, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH)) < 0) {
        saved = errno;
        close(mnt);
        mnt = -1;
    }
    errno = saved;
    return mnt;
}

// Before Linux 5.12 (no mount_setattr): `flags` added to the mount at `fd` alone, by a
// bind remount. The remount must repeat the flags it has (a user namespace locks
// nosuid, nodev, noexec and the atime flags: dropping one is EPERM), so they are read first.
static int remount_adding(int fd, unsigned long flags) {
    struct statvfs info;
    if (fstatvfs(fd, &info) < 0) return -1;
    const unsigned long pairs[][2] = {
        { ST_RDONLY, MS_RDONLY }, { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV }, { ST_NOEXEC, MS_NOEXEC },
        { ST_NOATIME, MS_NOATIME }, { ST_NODIRATIME, MS_NODIRATIME }, { ST_RELATIME, MS_RELATIME },
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (info.f_flag & pairs[i][0]) flags |= pairs[i][1];
    char path[32];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return (int)syscall(SYS_mount, NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL);
}

int plash_mount_set_unbindable(int fd) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.propagation = MS_UNBINDABLE;
    int result = (int)syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr);
    if (result < 0 && errno == ENOSYS) {
        // Before Linux 5.12: mount(2) changes the propagation of the mount at a path.
        char path[32];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        result = (int)syscall(SYS_mount, NULL, path, NULL, MS_UNBINDABLE, NULL);
    }
    return result;
}

// OpenSSL's libcrypto probes the CPU (cpuid) from an .init section, before main, in
// every binary that links it, and in a virtual machine each cpuid traps to the
// hypervisor (4 to 60 us each here). plash and plash-exec are linked with
// `--wrap=OPENSSL_cpuid_setup` (Package.swift): the first call, from .init, does
// nothing, and the probe runs when libcrypto is first used: plash_crypto_setup before a
// hash, OPENSSL_init_crypto before TLS. `plash run` and plash-exec without a seccomp
// profile never probe. Without the flag (the test bundles) the wrapper is never called.
extern void __real_OPENSSL_cpuid_setup(void) __attribute__((weak));
static int cpuid_deferred;

void __wrap_OPENSSL_cpuid_setup(void) {
    if (!cpuid_deferred) {
        cpuid_deferred = 1;
        return;
    }
    __real_OPENSSL_cpuid_setup();
}

void plash_crypto_setup(void) {
    if (cpuid_deferred && __real_OPENSSL_cpuid_setup) __real_OPENSSL_cpuid_setup();
}

int plash_mount_overlay(const char *source, const int *lowers, const char *names, int count, const char *upper,
                        const char *work, int userxattr, unsigned long flags, int target, int *failed) {
    *failed = -1;
    int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
    if (fs < 0) return errno == ENOSYS ? -2 : -1;
    int result = -1;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "source", source, 0) < 0) goto out;
    const char *name = names;
    for (int i = 0; i < count; i++) {
        long added = names ? syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir+", name, 0)
                           : syscall(SYS_fsconfig, fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lowers[i]);
        if (added < 0) {
            // Before 6.8 no lowerdir+, before 6.13 not by descriptor: both EINVAL; before
            // 6.5 overlayfs takes no parameter through fsconfig but strings (EOPNOTSUPP).
            if (i == 0 && (errno == EINVAL || errno == EOPNOTSUPP)) result = -2;
            else *failed = i;
            goto out;
        }
        if (names) name += strlen(name) + 1;
    }
    if (upper && (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0
                  || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0)) goto out;
    if (userxattr && syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0) goto out;
    if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        // Before 6.5 overlayfs reads fsconfig's strings as mount(2)'s option text: a
        // lowerdir+ name passes fsconfig, and only here is it refused.
        if (names && errno == EINVAL) result = -2;
        goto out;
    }
    unsigned int attributes = (flags & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0) | (flags & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0)
                              | (flags & MS_NODEV ? MOUNT_ATTR_NODEV : 0);
    int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, attributes);
    if (mnt < 0) goto out;
    if (syscall(SYS_move_mount, mnt, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) == 0) result = 0;
    int moved = errno;
    close(mnt);
    errno = moved;
out:;
    int saved = errno;
    // A kernel before 5.2 (no fsopen, fsconfig, fsmount or move_mount) has mount(2).
    if (result == -1 && saved == ENOSYS) result = -2;
    close(fs);
    errno = saved;
    return result;
}

int plash_mount_set_readonly(int fd, int recursive) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_RDONLY;
    unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    int result = (int)syscall(SYS_mount_setattr, fd, "", flags, &attr, sizeof attr);
    // Recursive has no older way: mount(2) changes one mount at a time.
    if (result < 0 && errno == ENOSYS && !recursive) result = remount_adding(fd, MS_RDONLY);
    return result;
}

int plash_mount_set_nodev_nosuid(int fd, int recursive) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID;
    unsigned int flags = AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0);
    int result = (int)syscall(SYS_mount_setattr, fd, "", flags, &attr, sizeof attr);
    if (result < 0 && errno == ENOSYS && !recursive) result = remount_adding(fd, MS_NODEV | MS_NOSUID);
    return result;
}

int plash_drop_bounding_capabilities(unsigned long long keep) {
    int held;
    for (int cap = 0; cap < 64 && (held = prctl(PR_CAPBSET_READ, cap, 0, 0, 0)) >= 0; cap++) {
        // Only what is still held: a drop needs CAP_SETPCAP, which --user has lost.
        if (held && !(keep & (1ULL << cap)) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) return -1;
    }
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
}

int plash_keep_only_capabilities(unsigned long long keep) {
    if (plash_drop_bounding_capabilities(keep) < 0) return -1;
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) < 0) return -1;
    for (int i = 0; i < 2; i++) {
        __u32 kept = (__u32)(keep >> (32 * i));
        data[i].effective &= kept;
        data[i].permitted &= kept;
        data[i].inheritable = 0;
    }
    return (int)syscall(SYS_capset, &header, data);
}

int plash_is_overlay(int fd) {
    struct statfs fs;
    return fstatfs(fd, &fs) == 0 && fs.f_type == 0x794c7630;   // OVERLAYFS_SUPER_MAGIC
}

int plash_has_effective_capability(int cap) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) < 0) return 0;
    return (data[cap / 32].effective >> (cap % 32)) & 1;
}

int plash_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int plash_loopback_up(void) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strcpy(req.ifr_name, "lo");
    int result = ioctl(sock, SIOCGIFFLAGS, &req);
    if (result == 0) {
        req.ifr_flags |= IFF_UP | IFF_RUNNING;
        result = ioctl(sock, SIOCSIFFLAGS, &req);
    }
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}

int plash_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int plash_load_seccomp_bpf(const void *program, unsigned short count) {
    struct sock_fprog prog = { .len = count, .filter = (struct sock_filter *)program };
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

static int run_and_wait(char *const argv[]) {
    pid_t child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) { dup2(null, 1); dup2(null, 2); }
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int plash_unshare_with_id_maps(int flags, char *const uidmap[], char *const gidmap[], int *mapped) {
    *mapped = 0;
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) return -1;
    pid_t helper = fork();
    if (helper < 0) {
        close(go[0]);
        close(go[1]);
        return -1;
    }
    if (helper == 0) {
        close(go[1]);
        char byte;
        if (read(go[0], &byte, 1) != 1) _exit(0);   /* the parent's unshare failed */
        int uid_ok = run_and_wait(uidmap) == 0;
        int gid_ok = run_and_wait(gidmap) == 0;
        _exit((uid_ok ? 1 : 0) | (gid_ok ? 2 : 0));
    }
    close(go[0]);
    int result = unshare(flags);
    int saved = errno;
    if (result == 0) (void)!write(go[1], "x", 1);
    close(go[1]);
    int status;
    while (waitpid(helper, &status, 0) < 0 && errno == EINTR) {}
    if (result == 0 && WIFEXITED(status)) *mapped = WEXITSTATUS(status) & 3;
    errno = saved;
    return result;
}

pid_t plash_spawn_tied(char *const argv[], const int *keep, int count) {
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) < 0) return -1;
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) {
        close(ready[0]);
        close(ready[1]);
        return -1;
    }
    if (child == 0) {
        close(ready[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(1);
        if (unshare(CLONE_NEWNS) < 0) _exit(1);
        for (int i = 0; i < count; i++) fcntl(keep[i], F_SETFD, 0);
        (void)!write(ready[1], "x", 1);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0) { dup2(null, 1); dup2(null, 2); }
        execv(argv[0], argv);
        _exit(127);
    }
    close(ready[1]);
    char byte;
    ssize_t got = read(ready[0], &byte, 1);
    close(ready[0]);
    if (got != 1) {
        waitpid(child, NULL, 0);
        errno = ECHILD;
        return -1;
    }
    return child;
}

/* Exit as a process with wait status `status` did: same code, or same signal. */
static void exit_like(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        sigset_t one;
        signal(sig, SIG_DFL);
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigprocmask(SIG_UNBLOCK, &one, NULL);
        kill(getpid(), sig);
        _exit(128 + sig);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 125);
}

/* Stop as a process stopped by `sig` does, so that the shell reports the job as
   it would the program ("Stopped", not "Stopped (signal)"): let that one signal,
   blocked here, through with its default action, then block it again. */
static void stop_like(int sig) {
    if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) sig = SIGSTOP;
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    kill(getpid(), sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    sigprocmask(SIG_BLOCK, &one, NULL);
}

/* The state letter of /proc/PID/stat read through an open descriptor (0: gone). */
static char process_state(int stat_fd) {
    char buffer[512];
    ssize_t count = pread(stat_fd, buffer, sizeof buffer - 1, 0);
    if (count <= 0) return 0;
    buffer[count] = 0;
    char *end = strrchr(buffer, ')');
    return end && end[1] == ' ' ? end[2] : 0;
}

static void quiet_standard_streams(void) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return;
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
}

/* The init: forwards signals to the program, reaps orphans, and tells the outer
   process through `status_out` how the program changed: a wait status when it stopped
   on its own (Ctrl-Z, SIGTTIN, SIGTTOU: the outer stops too, so that the caller's shell
   sees its job stopped), and when it exited. When the outer process was stopped (by
   SIGSTOP, which it cannot catch), the init stops the program and continues it with
   the outer; those stops are not reported back. */
static void init_loop(pid_t program, int status_out, int outer_stat, sigset_t *all) {
    int following_outer = 0;
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    for (;;) {
        siginfo_t info;
        int sig = sigtimedwait(all, &info, &tick);
        if (sig > 0 && sig != SIGCHLD) kill(program, sig);
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG | WUNTRACED)) > 0) {
            if (pid != program) continue;
            if (WIFSTOPPED(status) && following_outer) continue;
            (void)!write(status_out, &status, sizeof status);
            if (!WIFSTOPPED(status)) _exit(0);
        }
        char state = process_state(outer_stat);
        if (state == 0) _exit(0);
        if (state == 'T' && !following_outer) { following_outer = 1; kill(program, SIGSTOP); }
        if (state != 'T' && following_outer) { following_outer = 0; kill(program, SIGCONT); }
    }
}

/* The `oom_kill N` count of a memory cgroup's memory.events (v1: memory.oom_control),
   -1 when it cannot be read. */
static long oom_kills(const char *counter) {
    if (!counter) return -1;
    int fd = open(counter, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char text[1024];
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    if (n <= 0) return -1;
    text[n] = 0;
    for (char *line = text; line; ) {
        if (strncmp(line, "oom_kill ", 9) == 0) return strtol(line + 9, NULL, 10);
        char *end = strchr(line, '\n');
        line = end ? end + 1 : NULL;
    }
    return -1;
}

int plash_split_for_pid_namespace(const char *oom_counter, const char *oom_line) {
    long oom_before = oom_kills(oom_counter);
    /* Kept out of the program (close-on-exec) and of the init (closed there). */
    int report = oom_before >= 0 && oom_line ? fcntl(2, F_DUPFD_CLOEXEC, 3) : -1;
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);   /* no signal may slip between fork and loops */
    int status_pipe[2];
    if (pipe2(status_pipe, O_CLOEXEC) < 0) goto fail;
    int outer_stat = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (outer_stat < 0) goto fail;
    /* This process takes signals and the init's reports as they come, from here. */
    int signals = signalfd(-1, &all, SFD_CLOEXEC);
    if (signals < 0) goto fail;
    pid_t init = fork();
    if (init < 0) goto fail;
    if (init == 0) {
        close(signals);
        if (report >= 0) close(report);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (process_state(outer_stat) == 0) _exit(125);   /* the outer process is already gone */
        close(status_pipe[0]);
        pid_t program = fork();
        if (program < 0) _exit(125);
        if (program == 0) {
            close(status_pipe[1]);
            close(outer_stat);
            sigprocmask(SIG_SETMASK, &old, NULL);
            return 0;
        }
        /* The init keeps the host's root and working directory: only a process with
           CAP_SYS_PTRACE may follow /proc/1/root, /proc/1/cwd or /proc/1/ns of a
           process that is not dumpable. */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        quiet_standard_streams();
        init_loop(program, status_pipe[1], outer_stat, &all);
    }
    close(status_pipe[1]);
    close(outer_stat);
    quiet_standard_streams();
    for (;;) {
        struct pollfd ready[2] = { { signals, POLLIN, 0 }, { status_pipe[0], POLLIN, 0 } };
        if (poll(ready, 2, -1) < 0) continue;
        struct signalfd_siginfo info;
        if (ready[0].revents && read(signals, &info, sizeof info) == sizeof info
            && info.ssi_signo != SIGCHLD) {
            kill(init, (int)info.ssi_signo);
        }
        if (!ready[1].revents) continue;
        int program_status;
        if (read(status_pipe[0], &program_status, sizeof program_status) == sizeof program_status) {
            /* The program stopped by itself: so does this process, which its caller
               waits for; the caller's SIGCONT (fg, bg) then continues both. */
            if (WIFSTOPPED(program_status)) { stop_like(WSTOPSIG(program_status)); continue; }
            /* The init exits next, and its exit ends only once the kernel has killed and
               reaped every process of the namespace: wait for it, so that when this
               process ends, nothing of the container runs or holds a file (the --persist
               lock) that the caller's next container needs. */
            int status;
            while (waitpid(init, &status, 0) < 0 && errno == EINTR) {}
            if (report >= 0 && WIFSIGNALED(program_status) && WTERMSIG(program_status) == SIGKILL
                && oom_kills(oom_counter) > oom_before) {
                (void)!write(report, oom_line, strlen(oom_line));
            }
            exit_like(program_status);
        }
        int status;
        while (waitpid(init, &status, 0) < 0 && errno == EINTR) {}
        exit_like(status);   /* the init died before the program: report how */
    }
fail:
    if (report >= 0) close(report);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return -1;
}

int plash_die_with_parent(void) {
    return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

int plash_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int plash_mount_of(int dirfd, const char *name, unsigned long long *mount_id, unsigned long long *device) {
    struct statx info;
    int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (name[0] == 0 ? AT_EMPTY_PATH : 0);
    if (statx(dirfd, name, flags, STATX_MNT_ID, &info) == -1) return -1;
    *mount_id = (info.stx_mask & STATX_MNT_ID) ? info.stx_mnt_id : 0;
    *device = ((unsigned long long)info.stx_dev_major << 32) | info.stx_dev_minor;
    return 0;
}
