// A probe that runs inside test containers and reports what the kernel said.
//   probe tiocsti        ioctl(TIOCSTI) on /dev/null, plain and with bit 32 set
//   probe tioclinux      ioctl(TIOCLINUX) on /dev/null
//   probe clone          clone() with each namespace flag, one line per flag
//   probe clone3         clone3() without flags
//   probe pid            its own PID
//   probe fork N         start N children that wait; print how many started
//   probe ids            its real and effective uid
//   probe as UID CMD...  become UID (and gid UID), then exec CMD
//   probe read PATH      open PATH and read a byte
//   probe setns PATH     open a namespace file and enter it
//   probe ptrace PID     attach to PID (and detach)
//   probe keyctl         join a new session keyring
//   probe mount          mount a tmpfs on /mnt
//   probe mknod PATH     make the character device 1:3 (null: harmless if it opens) at PATH,
//                        then open it
//   probe setid DIR      make set-id files in DIR each way a mode is set, one line per way:
//                        open, chmod, fchmod (setgid), fchmodat2, mknod, openat2
//   probe setcap PATH    give the file PATH the capability CAP_SETUID (security.capability)
//   probe uring          io_uring_setup
//   probe open-write PATH...  open each PATH for writing (and write nothing), one line each
//   probe unprotect PATH...   try to make each PATH writable or uncover what is below it:
//                        remount it read-write, unmount it, mount a tmpfs over it; one
//                        line each: the three results
//   probe syscall ABI,NR[,ARG...]...  make each system call (ABI 64, or 32 through int 0x80)
//                        as a filter would see it, one line each: "passed" when no filter
//                        before the probe's own answered it, else the errno. It never
//                        reaches the kernel: the probe's own filter stops it (seccomp's
//                        user notification) and answers in its place, and a filter loaded
//                        before (plash's) takes precedence with ERRNO or KILL.
//   probe syscall x32,NR[,ARG...]  make the x32 call NR, for real: "ok" or the errno.
//   probe thread CALL    as probe syscall CALL, from a second thread; the main thread waits
//                        for it to end, then prints "joined": a filter that kills only the
//                        calling thread lets the program go on.
//   probe notify TEXT [CMD...]  send TEXT as one datagram to $NOTIFY_SOCKET (a path, or
//                        @ABSTRACT), as sd_notify(3); then exec CMD, if given
//   probe listen TEXT    as sd_listen_fds(3): when $LISTEN_PID is its PID, accept one connection
//                        on fd 3 and answer TEXT, its PID, $LISTEN_FDS and $LISTEN_FDNAMES
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <stdlib.h>
#include <sched.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <linux/keyctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

static const char *result(long r) { return r >= 0 ? "ok" : strerrorname_np(errno); }

// A child made by a raw clone()/clone3() (no stack: it goes on as a fork would)
// exits at once; "ok" once it is reaped, else the errno of the call.
static const char *forked(long pid) {
    if (pid == 0) _exit(0);
    if (pid < 0) return strerrorname_np(errno);
    waitpid(pid, NULL, 0);
    return "ok";
}

// What the probe's own filter answers: an errno that no filter of a test uses.
#define PASSED EDOM

// The probe's two system call instructions (the addresses right after them, where the
// kernel's instruction_pointer points): its own filter stops the calls made there only.
extern const char after_syscall64[], after_syscall32[];

__attribute__((noinline, noclone)) static long syscall64(unsigned long nr, const unsigned long *a) {
    long result = nr;
    register unsigned long r10 __asm__("r10") = a[3], r8 __asm__("r8") = a[4], r9 __asm__("r9") = a[5];
    __asm__ volatile("syscall\nafter_syscall64:"
                     : "+a"(result) : "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

// Through the 32-bit entry (int 0x80): number in eax, arguments in ebx, ecx, edx, esi,
// edi and ebp. rbp is kept in r12 rather than on the stack, which holds the red zone.
__attribute__((noinline, noclone)) static long syscall32(unsigned long nr, const unsigned long *a) {
    long result = nr;
    __asm__ volatile("mov %%rbp, %%r12\n\tmov %k[sixth], %%ebp\n\tint $0x80\nafter_syscall32:\n\tmov %%r12, %%rbp"
                     : "+a"(result) : "b"(a[0]), "c"(a[1]), "d"(a[2]), "S"(a[3]), "D"(a[4]), [sixth] "r"(a[5])
                     : "r8", "r9", "r10", "r11", "r12", "memory", "cc");
    return (int)result;
}

static int listener_pipe[2];

// Answers every call that the probe's own filter stops, without running it.
static void *answer_stopped_calls(void *unused) {
    int listener;
    if (read(listener_pipe[0], &listener, sizeof listener) != sizeof listener) return NULL;
    for (;;) {
        struct seccomp_notif request;
        memset(&request, 0, sizeof request);
        // ENOENT: no thread is left under the filter (a filter killed the probing one).
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &request) != 0) {
            if (errno == EINTR) continue;
            return NULL;
        }
        struct seccomp_notif_resp response = {.id = request.id, .error = -PASSED};
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &response);
    }
}

// Loads a filter that stops the calls made at the two probing instructions.
static void stop_probed_calls(void) {
    pthread_t thread;
    if (pipe(listener_pipe) != 0 || pthread_create(&thread, NULL, answer_stopped_calls, NULL) != 0) {
        perror("probe syscall");
        exit(1);
    }
    uint64_t at64 = (uintptr_t)after_syscall64, at32 = (uintptr_t)after_syscall32;
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, at64 >> 32, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)at64, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)at32, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    _Static_assert(sizeof(uintptr_t) == 8, "the two instructions share their upper 32 bits");
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    // Loaded by this thread only (no TSYNC): the answering thread stays unfiltered.
    int listener = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ? -1
        : syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &program);
    if (listener < 0 || write(listener_pipe[1], &listener, sizeof listener) != sizeof listener) {
        perror("probe syscall: load the probe's filter");
        exit(1);
    }
}

static void probe_syscall(char *call) {
    char *abi = strsep(&call, ",");
    unsigned long nr = strtoul(strsep(&call, ",") ?: "0", NULL, 0), a[6] = {0};
    for (int i = 0; i < 6 && call; i++) a[i] = strtoul(strsep(&call, ","), NULL, 0);
    if (strcmp(abi, "x32") == 0) {
        // Reaches the kernel, with no answering thread beside it that would outlive a
        // kill of the calling thread.
        printf("%s\n", result(syscall(nr | 0x40000000 /* __X32_SYSCALL_BIT */, a[0], a[1], a[2], a[3], a[4], a[5])));
    } else {
        long answer = strcmp(abi, "32") == 0 ? syscall32(nr, a) : syscall64(nr, a);
        printf("%s\n", answer == -PASSED ? "passed" : answer < 0 && answer > -4096 ? strerrorname_np(-answer) : "ok");
    }
    fflush(stdout);
}

static void *probe_in_thread(void *call) {
    if (strncmp(call, "x32,", 4) != 0) stop_probed_calls();
    probe_syscall(call);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "thread") == 0) {
        pthread_t thread;
        if (pthread_create(&thread, NULL, probe_in_thread, argv[2]) != 0 || pthread_join(thread, NULL) != 0) {
            perror("probe thread");
            return 1;
        }
        printf("joined\n");
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "syscall") == 0) {
        for (int i = 2; i < argc; i++) {
            if (i == 2 && strncmp(argv[i], "x32,", 4) != 0) stop_probed_calls();
            probe_syscall(argv[i]);
        }
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "tiocsti") == 0) {
        int fd = open("/dev/null", O_RDONLY);
        char c = 'x';
        printf("%s\n", result(ioctl(fd, TIOCSTI, &c)));
        printf("%s\n", result(ioctl(fd, TIOCSTI | (1UL << 32), &c)));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "tioclinux") == 0) {
        int fd = open("/dev/null", O_RDONLY);
        char subcode = 0;
        printf("%s\n", result(ioctl(fd, TIOCLINUX, &subcode)));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "clone") == 0) {
        static const struct { const char *name; long flag; } flags[] = {
            {"CLONE_NEWNS", CLONE_NEWNS}, {"CLONE_NEWUTS", CLONE_NEWUTS}, {"CLONE_NEWIPC", CLONE_NEWIPC},
            {"CLONE_NEWUSER", CLONE_NEWUSER}, {"CLONE_NEWPID", CLONE_NEWPID}, {"CLONE_NEWNET", CLONE_NEWNET},
            {"CLONE_NEWCGROUP", CLONE_NEWCGROUP},
        };
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
            const char *r = forked(syscall(SYS_clone, flags[i].flag | SIGCHLD, 0, 0, 0, 0));
            printf("%s %s\n", flags[i].name, r);
        }
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "clone3") == 0) {
        uint64_t args[11] = {0};   // struct clone_args of Linux 5.7; [4] is exit_signal
        args[4] = SIGCHLD;
        printf("%s\n", forked(syscall(SYS_clone3, args, sizeof args)));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "pid") == 0) {
        printf("%d\n", getpid());
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "fork") == 0) {
        int wanted = atoi(argv[2]), started = 0;
        pid_t children[4096];
        for (int i = 0; i < wanted && i < 4096; i++) {
            pid_t child = fork();
            if (child == 0) { pause(); _exit(0); }
            if (child > 0) children[started++] = child;
        }
        printf("%d\n", started);
        for (int i = 0; i < started; i++) kill(children[i], SIGKILL);
        while (wait(NULL) > 0) {}
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "ids") == 0) {
        printf("uid=%d euid=%d\n", getuid(), geteuid());
        return 0;
    }
    if (argc > 3 && strcmp(argv[1], "as") == 0) {
        int id = atoi(argv[2]);
        if (setgid(id) != 0 || setuid(id) != 0) { perror("probe as"); return 1; }
        execv(argv[3], argv + 3);
        perror("probe as");
        return 127;
    }
    if (argc > 2 && strcmp(argv[1], "read") == 0) {
        char byte;
        int fd = open(argv[2], O_RDONLY);
        printf("%s\n", result(fd < 0 ? -1 : read(fd, &byte, 1)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "setns") == 0) {
        int fd = open(argv[2], O_RDONLY);
        printf("%s\n", result(fd < 0 ? -1 : setns(fd, 0)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "ptrace") == 0) {
        /* SEIZE, unlike ATTACH, does not stop the target: a wrong success leaves it running. */
        pid_t pid = atoi(argv[2]);
        long attached = ptrace(PTRACE_SEIZE, pid, 0, 0);
        printf("%s\n", result(attached));
        if (attached == 0) ptrace(PTRACE_DETACH, pid, 0, 0);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "keyctl") == 0) {
        printf("%s\n", result(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0)));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "mount") == 0) {
        printf("%s\n", result(mount("none", "/mnt", "tmpfs", 0, NULL)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "mknod") == 0) {
        printf("%s\n", result(mknod(argv[2], S_IFCHR | 0600, makedev(1, 3))));
        printf("%s\n", result(open(argv[2], O_RDONLY)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "setid") == 0) {
        char a[4096], b[4096], c[4096], d[4096];
        snprintf(a, sizeof a, "%s/open", argv[2]);
        snprintf(b, sizeof b, "%s/chmod", argv[2]);
        snprintf(c, sizeof c, "%s/mknod", argv[2]);
        snprintf(d, sizeof d, "%s/openat2", argv[2]);
        printf("open %s\n", result(open(a, O_CREAT | O_WRONLY, 04755)));
        int fd = open(b, O_CREAT | O_WRONLY, 0755);
        printf("chmod %s\n", result(chmod(b, 04755)));
        printf("fchmod %s\n", result(fchmod(fd, 02755)));
        printf("fchmodat2 %s\n", result(syscall(452, AT_FDCWD, b, 04755, 0)));
        printf("mknod %s\n", result(mknod(c, S_IFREG | 04755, 0)));
        struct open_how how = {.flags = O_CREAT | O_WRONLY, .mode = 04755};
        printf("openat2 %s\n", result(syscall(SYS_openat2, AT_FDCWD, d, &how, sizeof how)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "setcap") == 0) {
        struct vfs_cap_data cap = {.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE};
        cap.data[0].permitted = 1u << CAP_SETUID;
        printf("%s\n", result(setxattr(argv[2], "security.capability", &cap, sizeof cap, 0)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "open-write") == 0) {
        for (int i = 2; i < argc; i++) printf("%s\n", result(open(argv[i], O_WRONLY | O_CLOEXEC)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "unprotect") == 0) {
        for (int i = 2; i < argc; i++) {
            printf("%s", result(mount(NULL, argv[i], NULL, MS_REMOUNT | MS_BIND, NULL)));
            printf(" %s", result(umount2(argv[i], MNT_DETACH)));
            printf(" %s\n", result(mount("none", argv[i], "tmpfs", 0, NULL)));
        }
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "uring") == 0) {
        struct io_uring_params params;
        memset(&params, 0, sizeof params);
        printf("%s\n", result(syscall(SYS_io_uring_setup, 1, &params)));
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "notify") == 0) {
        const char *path = getenv("NOTIFY_SOCKET");
        struct sockaddr_un address = { .sun_family = AF_UNIX };
        if (!path || strlen(path) >= sizeof address.sun_path) { printf("no NOTIFY_SOCKET\n"); return 1; }
        memcpy(address.sun_path, path, strlen(path));
        if (path[0] == '@') address.sun_path[0] = 0;
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        long sent = sendto(fd, argv[2], strlen(argv[2]), 0, (struct sockaddr *)&address,
                           offsetof(struct sockaddr_un, sun_path) + strlen(path));
        printf("%s\n", result(sent));
        if (sent < 0) return 1;
        if (argc > 3) {
            fflush(stdout);
            execvp(argv[3], argv + 3);
            return 127;
        }
        return 0;
    }
    if (argc > 2 && strcmp(argv[1], "listen") == 0) {
        const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS"), *names = getenv("LISTEN_FDNAMES");
        if (!pid || !fds || atoi(pid) != getpid()) {
            printf("not mine: LISTEN_PID %s, PID %d\n", pid ? pid : "unset", getpid());
            return 1;
        }
        int connection = accept(3, NULL, NULL);
        if (connection < 0) { printf("accept: %s\n", strerrorname_np(errno)); return 1; }
        dprintf(connection, "%s pid %d fds %s names %s\n", argv[2], getpid(), fds, names ? names : "unset");
        close(connection);
        return 0;
    }
    fprintf(stderr, "usage: probe tiocsti|tioclinux|clone|clone3|pid|fork N|ids|as UID CMD...|read PATH"
                    "|setns PATH|ptrace PID|keyctl|mount|mknod PATH|setid DIR|setcap PATH|uring|open-write PATH...|unprotect PATH...|syscall ABI,NR[,ARG...]...|thread CALL"
                    "|notify TEXT [CMD...]|listen TEXT\n");
    return 2;
}
