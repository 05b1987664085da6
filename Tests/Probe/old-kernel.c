// old-kernel SYSCALL[,SYSCALL...] COMMAND [ARG...]
// Runs COMMAND where each named system call answers ENOSYS, as a kernel from before it
// answers: a seccomp filter around plash itself, inherited by everything it starts.
// Without CAP_SYS_ADMIN the filter needs no_new_privs, which it sets.
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: old-kernel SYSCALL[,SYSCALL...] COMMAND [ARG...]\n");
        return 125;
    }
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (!filter) return 125;
    for (char *name = strtok(argv[1], ","); name; name = strtok(NULL, ",")) {
        int number = seccomp_syscall_resolve_name(name);
        if (number == __NR_SCMP_ERROR) {
            fprintf(stderr, "old-kernel: unknown system call %s\n", name);
            return 125;
        }
        if (seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), number, 0) < 0) {
            fprintf(stderr, "old-kernel: cannot add %s\n", name);
            return 125;
        }
    }
    if (geteuid() != 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        perror("old-kernel: prctl no_new_privs");
        return 125;
    }
    int loaded = seccomp_load(filter);
    if (loaded < 0) {
        fprintf(stderr, "old-kernel: load filter: %s\n", strerror(-loaded));
        return 125;
    }
    seccomp_release(filter);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "old-kernel: %s: %s\n", argv[2], strerror(errno));
    return 127;
}
