# plash doctor on a pure cgroup v2 hierarchy, inside the VM of ../shared/tools/vm-run
# (run by Tests/PlashTests/DoctorTests.swift): the cgroup line for root, an ordinary
# user without a delegated subtree and one with it; then user namespaces switched off,
# for doctor and for a run. /test holds the static
# plash, plash-builder and plash-exec. Exit status: the number of failures.
fails=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1: $3"; fails=$((fails+1)); fi; }
has() { echo "$out" | grep -q "$1"; }
chmod 1777 /tmp   # the VM's /tmp is root's alone

out=$(PLASH_DATA=/tmp/root-store /test/plash doctor 2>&1); rc=$?
check root '[ $rc = 0 ] && has "^ok    cgroups: v2: --memory, --pids, --cpus work"' "exit $rc: $out"

# The user's shell stays in the root cgroup, which root owns: nothing is delegated; the
# VM has no systemd, so the fix names no systemctl.
out=$(su -s /bin/sh user -c "PLASH_DATA=/tmp/user-store /test/plash doctor" 2>&1); rc=$?
check undelegated '[ $rc = 0 ] && has "^warn  cgroups: no cgroup subtree is delegated to user: --memory, --pids, --cpus and --cgroup fail" \
    && has "fix: as root: mkdir /sys/fs/cgroup/user && chown -R user /sys/fs/cgroup/user, then move user.s shell into it" \
    && ! has "systemctl" \
    && has "^plash works for user; "' "exit $rc: $out"

# As systemd's user@1000.service does: a subtree the user owns, controllers handed down.
delegated=/sys/fs/cgroup/user-1000
mkdir -p $delegated/session
echo "+memory +pids +cpu" > $delegated/cgroup.subtree_control
chown -R 1000:1000 $delegated
echo $$ > $delegated/session/cgroup.procs
out=$(su -s /bin/sh user -c "PLASH_DATA=/tmp/user-store /test/plash doctor" 2>&1); rc=$?
check delegated '[ $rc = 0 ] && has "^ok    cgroups: v2: --memory, --pids, --cpus work"' "exit $rc: $out"

# User namespaces switched off (the VM's own sysctl): plash cannot run containers for
# the user, and doctor says which switch to turn.
echo 0 > /proc/sys/user/max_user_namespaces
out=$(su -s /bin/sh user -c "PLASH_DATA=/tmp/user-store /test/plash doctor" 2>&1); rc=$?
check userns-off '[ $rc = 1 ] && has "^FAIL  user namespaces: disabled: user.max_user_namespaces is 0" \
    && has "fix: as root: sysctl -w user.max_user_namespaces=15000" && has "^FAIL  overlay in a mount namespace: unshare: " \
    && has "^plash cannot run containers for user: 2 problems above"' "exit $rc: $out"

# And the user's run says the same in one line: the switch, and the fix.
out=$(su -s /bin/sh user -c "PLASH_DATA=/tmp/user-store /test/plash run --from busybox -- true" 2>&1); rc=$?
check userns-off-run '[ $rc = 125 ] && [ "$(echo "$out" | tail -n 1)" = "plash: unshare: No space left on device (user namespaces disabled: user.max_user_namespaces is 0; as root: sysctl -w user.max_user_namespaces=15000, and the same in /etc/sysctl.d/plash.conf)" ]' "exit $rc: $out"

# Debian's own switch off instead: the run names that one.
echo 15000 > /proc/sys/user/max_user_namespaces
if [ -e /proc/sys/kernel/unprivileged_userns_clone ]; then
    echo 0 > /proc/sys/kernel/unprivileged_userns_clone
    out=$(su -s /bin/sh user -c "PLASH_DATA=/tmp/user-store /test/plash run --from busybox -- true" 2>&1); rc=$?
    check userns-clone-off-run '[ $rc = 125 ] && [ "$(echo "$out" | tail -n 1)" = "plash: unshare: Operation not permitted (user namespaces disabled: kernel.unprivileged_userns_clone is 0; as root: sysctl -w kernel.unprivileged_userns_clone=1, and the same in /etc/sysctl.d/plash.conf)" ]' "exit $rc: $out"
    echo 1 > /proc/sys/kernel/unprivileged_userns_clone
else
    echo "FAIL userns-clone-off-run: Debian's kernel has kernel.unprivileged_userns_clone"; fails=$((fails+1))
fi

echo "summary: $fails failed"
exit $fails
