// The few kernel interfaces Swift cannot call directly: variadic prctl and syscall,
// and structs (ifreq, open_how, mount_attr) that are easier to fill in C.
#ifndef PLASH_SHIMS_H
#define PLASH_SHIMS_H

#include <sys/types.h>
#include <linux/sched.h>   // CLONE_NEW*, which <sched.h> hides without _GNU_SOURCE

// GNU flags that Swift's Glibc module does not see (it is built without _GNU_SOURCE).
extern const int plash_O_PATH;

int plash_unshare(int flags);

// memfd_create(name, MFD_CLOEXEC): a file in memory, for output that must not touch disk.
int plash_memfd(const char *name);

// unshare(flags), which includes CLONE_NEWUSER, with a helper process forked before it
// that waits until this process is in its new user namespace and then runs the
// setuid helpers `uidmap[0] uidmap[1..]` and `gidmap[0] gidmap[1..]` (newuidmap,
// newgidmap) on it. Setuid programs lose their power inside a new user namespace, so
// the helper must come from outside. Returns unshare's result; *mapped gets bit 1 when
// the uid map was written and bit 2 when the gid map was.
int plash_unshare_with_id_maps(int flags, char *const uidmap[], char *const gidmap[], int *mapped);

// openat2(2) with RESOLVE_IN_ROOT: `path` is resolved as if `root` were "/", so a
// symlink in an image can never lead outside of it.
int plash_open_in_root(int root, const char *path, int flags, mode_t mode);

// openat2(2) with RESOLVE_NO_SYMLINKS: ELOOP when any component of `path` is a symlink.
int plash_open_without_symlinks(const char *path, int flags);

// The same as plash_open_in_root, but the walk may not cross a mount (RESOLVE_NO_XDEV): EXDEV when `path`
// lies in, or a symlink leads into, something mounted inside the tree at `root`.
int plash_open_in_mount(int root, const char *path, int flags);

// A new tmpfs (fsopen, fsmount) mounted on the directory `target` (an open handle), or
// with -1 stacked on top of "/" of this mount namespace, and an O_PATH handle of its
// root. A path walk never enters a mount stacked on the point it starts from (the root,
// `target`'s handle), so the tmpfs is reachable only through the handle; and it is
// gone with the mount namespace. Returns the handle or -1 (ENOSYS before Linux 5.2).
int plash_mount_scratch(int target);

// mount_setattr(2): the mount at `fd` is left out of every bind (a recursive bind of
// what it is mounted on skips it and what is mounted below it). mount(2) before 5.12.
int plash_mount_set_unbindable(int fd);

// Probes the CPU for libcrypto, once (see shims.c): call before its first use.
void plash_crypto_setup(void);

// An overlay through fsopen/fsconfig/fsmount, moved onto the directory `target` (open): the
// `count` layers passed one by one (`lowerdir+`), top first, so each costs the same
// however deep the image: when `names` is NULL, `lowers` are open directories, each
// passed by its descriptor (FSCONFIG_SET_FD, Linux 6.13); else `names` holds `count`
// NUL-terminated names one after the other, each found by the kernel from the working
// directory (Linux 6.8). `upper` and `work` are paths, or NULL for a read-only overlay.
// `flags`: MS_RDONLY, MS_NOSUID, MS_NODEV. Returns 0, -1 with errno (and the layer that
// failed in `*failed`, else -1 there), or -2 when this kernel takes no layer that way
// or has no new mount API (mount(2) with `lowerdir=` does the same there, and says
// EINVAL again where the layers themselves were refused).
int plash_mount_overlay(const char *source, const int *lowers, const char *names, int count, const char *upper,
                        const char *work, int userxattr, unsigned long flags, int target, int *failed);

// mount_setattr(2): make the mount at `fd` (and, if `recursive`, every mount below it)
// read-only. Before Linux 5.12 a remount does it for the mount alone; recursive is ENOSYS.
int plash_mount_set_readonly(int fd, int recursive);

// mount_setattr(2): device nodes on the mount at `fd` (and, if `recursive`, every mount
// below it) do not open, and set-id bits and file capabilities there give nothing.
// Before Linux 5.12 as plash_mount_set_readonly.
int plash_mount_set_nodev_nosuid(int fd, int recursive);

// Keep only the capabilities whose bits are set in `keep`: drop the others from the
// bounding set, then clear the ambient set, the inheritable set, and the others from
// the effective and permitted sets.
int plash_keep_only_capabilities(unsigned long long keep);

// Whether the open file `fd` lies on an overlay file system.
int plash_is_overlay(int fd);

// Whether this process holds capability `cap` (CAP_SYS_ADMIN: 21) in its effective set.
int plash_has_effective_capability(int cap);

// The first half of that: drop the others from the bounding set (those still in it)
// and clear the ambient set, leaving the effective and permitted sets as they are.
int plash_drop_bounding_capabilities(unsigned long long keep);

int plash_pivot_root(const char *new_root, const char *put_old);

// statx(2) of `name` in `dirfd` (AT_EMPTY_PATH when `name` is ""), never following a
// symlink: the mount it lies on (STATX_MNT_ID, Linux 5.8; 0 when the kernel does not
// say) and its device. A bind mount of a directory of the same file system has the
// same device but another mount id.
int plash_mount_of(int dirfd, const char *name, unsigned long long *mount_id, unsigned long long *device);

// Bring the loopback interface of the current network namespace up.
int plash_loopback_up(void);

int plash_set_no_new_privs(void);

// PR_SET_PDEATHSIG with SIGKILL.
int plash_die_with_parent(void);

// Start `argv[0]` as a child that gets SIGTERM when this process (after exec: its
// program) dies, with stdout and stderr on /dev/null. The child first leaves for a
// copy of this mount namespace, taken before it returns, so a later pivot_root here
// does not move its root. The `count` descriptors in `keep` stay open in it (close-on-exec
// is cleared in the child only). Returns its pid, or -1.
pid_t plash_spawn_tied(char *const argv[], const int *keep, int count);

// After unshare(CLONE_NEWPID): split this process in three. This process stays the
// PID its caller started and forwards the signals it gets to an init, PID 1 of the new
// namespace, which forwards them to the program's process, follows this process's
// stops (SIGSTOP cannot be caught), reaps orphans, and exits when the program does,
// which makes the kernel kill everything left in the namespace. When the program
// stops by itself (^Z), this process stops too, so a shell's job control sees it; the
// init is not dumpable (it keeps the host's root directory). If this process is
// killed, the init is killed too (PR_SET_PDEATHSIG). Returns 0 in the program's
// process, -1 on failure; in the other two it never returns: they exit as the
// program did.
// `oom_counter` (or NULL): the memory cgroup's file with an `oom_kill N` line
// (memory.events, v1's memory.oom_control). When the program dies by SIGKILL and that
// count rose since the split, this process writes `oom_line` to the caller's stderr,
// which it keeps for that alone: the kernel's OOM killer leaves no other word.
int plash_split_for_pid_namespace(const char *oom_counter, const char *oom_line);

// Load a classic BPF seccomp program of `count` instructions (struct sock_filter).
int plash_load_seccomp_bpf(const void *program, unsigned short count);

// The commit plash was built from, when scripts/stamp-commit recorded it before the
// build; NULL for a build that it did not.
const char *plash_commit(void);

#endif
