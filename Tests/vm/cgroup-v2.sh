# plash-exec's resource limits on a pure cgroup v2 hierarchy, inside the VM of
# ../shared/tools/vm-run (run by Tests/ShimTests/CgroupV2Tests.swift).
# /test holds the static plash-exec and probe. Exit status: the number of failures.
fails=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1: $3"; fails=$((fails+1)); fi; }

root=/test/root
mkdir -p $root/bin $root/etc $root/proc $root/dev $root/sys $root/tmp
cp /bin/busybox /test/probe $root/bin/
for applet in $(busybox --list); do [ -e $root/bin/$applet ] || ln -s busybox $root/bin/$applet; done
run() { /test/plash-exec "$@"; }
cg=/sys/fs/cgroup/plash

# 1. A program over its memory limit is OOM-killed; the limit reads back.
run --cgroup mem --memory 64M --root $root -- dd if=/dev/zero of=/dev/null bs=200M count=1
rc=$?
check memory '[ $rc = 137 ] && [ "$(cat $cg/mem/memory.max)" = 67108864 ] && [ "$(cat $cg/mem/memory.swap.max)" = 0 ]' \
    "exit $rc, memory.max $(cat $cg/mem/memory.max), events: $(tr '\n' ' ' < $cg/mem/memory.events)"
check host-alive '[ "$(run --root $root -- echo alive)" = alive ]' "a container after the OOM kill did not run"

# 2. Fork fails after about --pids processes.
started=$(run --cgroup pids --pids 10 --root $root -- probe fork 50)
check pids '[ "$started" -ge 8 ] && [ "$started" -le 9 ]' "$started of 50 children started"

# 3. Half a CPU: the quota is written and a busy loop is throttled. (How much CPU time
#    it gets depends on what else runs: bench/cpu-limit measures that.)
run --cgroup cpu --cpus 0.5 --root $root -- timeout 2 sh -c 'while :; do :; done'
throttled=$(sed -n 's/^nr_throttled //p' $cg/cpu/cpu.stat)
check cpus '[ "$(cat $cg/cpu/cpu.max)" = "50000 100000" ] && [ "${throttled:-0}" -gt 0 ]' \
    "cpu.max $(cat $cg/cpu/cpu.max), cpu.stat: $(tr '\n' ' ' < $cg/cpu/cpu.stat)"

# 4. Restarting in the same cgroup kills what the earlier instance left running.
orphan=$(run --cgroup restart --root $root -- sh -c 'sleep 1000 >/dev/null 2>&1 & echo $!')
check orphan-runs '[ -d /proc/$orphan ]' "the orphan $orphan was not running"
run --cgroup restart --root $root -- true
for i in $(seq 100); do { ! [ -d /proc/$orphan ] || grep -q ") Z" /proc/$orphan/stat; } && break; sleep 0.05; done
check restart '! [ -d /proc/$orphan ] || grep -q ") Z" /proc/$orphan/stat' "$(cat /proc/$orphan/stat 2>&1)"
check only-plash '[ "$(ls -d /sys/fs/cgroup/*/ | wc -l)" = 1 ]' "cgroups outside plash/: $(ls -d /sys/fs/cgroup/*/)"

# 5. Started again in the same cgroup without the limits it had, a container runs
#    without them.
out=$(run --cgroup mem --root $root -- sh -c 'dd if=/dev/zero of=/dev/null bs=200M count=1 2>/dev/null && echo allocated')
check memory-lifted '[ "$out" = allocated ] && [ "$(cat $cg/mem/memory.max)" = max ]' \
    "$out, memory.max $(cat $cg/mem/memory.max)"
started=$(run --cgroup pids --root $root -- probe fork 50)
check pids-lifted '[ "$started" = 50 ] && [ "$(cat $cg/pids/pids.max)" = max ]' "$started of 50 children started"
run --cgroup cpu --root $root -- true
check cpus-lifted '[ "$(cat $cg/cpu/cpu.max)" = "max 100000" ]' "cpu.max $(cat $cg/cpu/cpu.max)"

# 6. An ordinary user with a cgroup subtree delegated to them (as systemd's
#    user@UID.service is) gets limits in plash/ below it.
user_root=/test/user-root
cp -a $root $user_root && chown -R 1000:1000 $user_root
delegated=/sys/fs/cgroup/user-1000
mkdir -p $delegated/session
echo "+memory +pids +cpu" > $delegated/cgroup.subtree_control
chown -R 1000:1000 $delegated
echo $$ > $delegated/session/cgroup.procs
out=$(su -s /bin/sh user -c "/test/plash-exec --cgroup mine --memory 64M --root $user_root -- sh -c \
    'id -u; cat /proc/self/cgroup; exec dd if=/dev/zero of=/dev/null bs=200M count=1'" 2>&1)
rc=$?
check delegated-user '[ $rc = 137 ] && [ "$(echo "$out" | head -2 | tr "\n" " ")" = "0 0::/user-1000/plash/mine " ] \
    && [ "$(cat $delegated/plash/mine/memory.max)" = 67108864 ]' "exit $rc: $out"

echo "summary: $fails failed"
exit $fails
