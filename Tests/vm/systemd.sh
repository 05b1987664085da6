# The shipped systemd units (systemd/) under a real systemd as PID 1, in the VM of
# Tests/vm/boot-systemd.sh (run by Tests/ShimTests/SystemdTests.swift). /test holds
# the static plash, plash-builder, plash-exec and busybox, the units, and demo.tar: a
# busybox root with the probe, whose /bin/notify-server reports READY=1 as the main PID and
# then serves HTTP, and whose /bin/socket-server answers on the socket systemd opened.
# Exit status: the number of failures.
fails=0
check() { if eval "$2"; then echo "PASS $1"; else echo "FAIL $1: $3"; fails=$((fails+1)); fi; }
wait_for() { for _ in $(seq 100); do eval "$1" && return 0; sleep 0.2; done; return 1; }
# The body of an HTTP GET that answered 200, through busybox nc (Debian's static
# busybox wget crashes in its resolver).
get() {
    response=$(printf 'GET /%s HTTP/1.0\r\n\r\n' "${2:-}" | busybox nc -w 5 127.0.0.1 "$1" 2>/dev/null | tr -d '\r')
    case $response in "HTTP/1."?" 200 "*) printf '%s\n' "$response" | sed '1,/^$/d' ;; *) return 1 ;; esac
}
main_pid() { systemctl show -p MainPID --value "$@"; }

cp /test/plash /test/plash-builder /test/plash-exec /usr/local/bin/
cp /test/busybox /bin/busybox     # `plash build --from busybox` imports the host's static busybox
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# (not is-system-running --wait: the boot ends only once this unit has run)
echo "systemd $(systemctl --version | head -1), cgroup: $(stat -fc %T /sys/fs/cgroup)"

mkdir -p /srv/www && echo "hello from plash" >/srv/www/index.html
demo=$(plash import-tar /test/demo.tar) && plash map notify-demo "$demo" && plash map socket-demo "$demo" && plash map web "$demo"
plash build --from busybox >/dev/null    # so that the first start is a cache hit, as in use
cp /test/systemd/*.service /test/systemd/*.socket /etc/systemd/system/
mkdir -p /etc/systemd/system/notify-demo.service.d /etc/systemd/system/socket-demo.service.d
printf '[Service]\nEnvironment=COMMAND=/bin/notify-server\n' >/etc/systemd/system/notify-demo.service.d/test.conf
printf '[Service]\nEnvironment=COMMAND=/bin/socket-server\n' >/etc/systemd/system/socket-demo.service.d/test.conf
systemctl daemon-reload

# 1. A plain service: the main PID is httpd in the container; its limit sits in the
#    unit's own delegated cgroup; the request log reaches the journal; stop leaves nothing.
systemctl start httpd-demo
pid=$(main_pid httpd-demo)
check plain-main-pid 'wait_for "get 8080 index.html | grep -q hello" && [ "$(readlink /proc/$pid/exe)" = /bin/busybox ]' \
    "main PID $pid ($(readlink /proc/$pid/exe)), status: $(systemctl status httpd-demo 2>&1 | head -20)"
cg=/sys/fs/cgroup/system.slice/httpd-demo.service
check plain-delegated '[ "$(cat /proc/$pid/cgroup)" = "0::/system.slice/httpd-demo.service/plash/httpd-demo" ] \
    && [ "$(cat $cg/plash/httpd-demo/memory.max)" = $((256 << 20)) ] && ! [ -e /sys/fs/cgroup/plash ]' \
    "$(cat /proc/$pid/cgroup), $(cat $cg/plash/httpd-demo/memory.max 2>&1), $(ls /sys/fs/cgroup)"
check plain-status 'systemctl status httpd-demo | grep -q "─$pid httpd -f"' "$(systemctl status httpd-demo 2>&1)"
check plain-journal 'wait_for "journalctl -u httpd-demo --no-pager | grep -q response:200"' \
    "$(journalctl -u httpd-demo --no-pager | tail -5)"
systemctl stop httpd-demo
check plain-stop '! [ -d /proc/$pid ] && ! get 8080 >/dev/null && [ "$(systemctl show -p Result --value httpd-demo)" = success ]' \
    "$(systemctl status httpd-demo 2>&1 | head -5)"

# 2. Type=notify: `systemctl start` returns once the server in the container sent
#    READY=1, as the main PID (NotifyAccess=main, systemd's default).
systemctl start notify-demo
check notify 'systemctl is-active -q notify-demo && get 8082 index.html | grep -q hello \
    && [ "$(systemctl show -p NotifyAccess --value notify-demo)" = main ]' \
    "$(systemctl status notify-demo 2>&1 | head -20)"
systemctl stop notify-demo

# 3. A .socket unit: the first connection starts the service, whose server in the
#    container accepts on systemd's socket, as the PID that LISTEN_PID names.
systemctl start socket-demo.socket
answer=$(busybox nc 127.0.0.1 8081 </dev/null)
check socket 'echo "$answer" | grep -q "^socket-server pid [0-9]* fds 1 names socket-demo.socket$"' \
    "answer '$answer', $(systemctl status socket-demo.service 2>&1 | head -20)"
systemctl stop socket-demo.socket socket-demo.service

# 4. Delegate=yes limits: a program over its memory limit is OOM-killed inside the
#    unit's cgroup, and systemd sees the OOM kill in its unit.
systemd-run --unit=oom-demo -p Delegate=yes --wait /usr/local/bin/plash-exec --cgroup big --memory 32M web \
    -- dd if=/dev/zero of=/dev/null bs=100M count=1 >/dev/null 2>&1
# systemd saw the kernel's OOM kill in the unit's cgroup (its Result stays `signal`
# when the main process itself was the one killed).
check oom 'journalctl -u oom-demo --no-pager | grep -q "A process of this unit has been killed by the OOM killer" \
    && [ "$(systemctl show -p ExecMainStatus --value oom-demo)" = 9 ]' \
    "Result $(systemctl show -p Result --value oom-demo); $(journalctl -u oom-demo --no-pager | tail -5)"
systemctl reset-failed oom-demo 2>/dev/null

# 4b. KillMode=control-group: `systemctl stop` also ends what the program forked, which
#     stays in the unit's cgroup (plash/NAME below it).
systemd-run --unit=forker -p Delegate=yes /usr/local/bin/plash-exec --cgroup forker web \
    -- sh -c 'sleep 1000 & exec sleep 999' >/dev/null 2>&1
procs=/sys/fs/cgroup/system.slice/forker.service/plash/forker/cgroup.procs
wait_for '[ "$(wc -l <$procs 2>/dev/null)" = 2 ]'
forked=$(cat $procs)
systemctl stop forker
none_alive() { for p in "$@"; do [ -d /proc/$p ] && return 1; done; return 0; }
check killmode '[ "$(echo $forked | wc -w)" = 2 ] && none_alive $forked' "processes '$forked': $(ps -ef 2>/dev/null | grep sleep)"

# 5. Without Delegate=yes, limits refuse to start, and the journal says what to add.
systemd-run --unit=undelegated --wait /usr/local/bin/plash-exec --memory 32M web -- true >/dev/null 2>&1
check undelegated 'journalctl -u undelegated --no-pager | grep -q "plash-exec: cgroup /system.slice/undelegated.service: .*(add Delegate=yes" \
    && [ "$(systemctl show -p ExecMainStatus --value undelegated)" = 125 ] && ! [ -e /sys/fs/cgroup/plash ]' \
    "$(journalctl -u undelegated --no-pager | tail -3)"
systemctl reset-failed undelegated 2>/dev/null

# 6. A templated unit: plash@web runs the image named web with /etc/plash/web.conf.
mkdir -p /etc/plash
printf 'COMMAND=httpd -f -p 127.0.0.1:8083 -h /srv/www\nPLASH_OPTIONS=--pids 50 --ro-bind /srv/www\n' >/etc/plash/web.conf
systemctl start plash@web
check template 'wait_for "get 8083 index.html | grep -q hello" \
    && [ "$(cat /sys/fs/cgroup/system.slice/system-plash.slice/plash@web.service/plash/web/pids.max)" = 50 ]' \
    "$(systemctl status plash@web 2>&1 | head -20)"
systemctl stop plash@web

# 7. An ordinary user's --user unit, with a memory limit in its own delegated cgroup.
loginctl enable-linger user
check user-manager 'wait_for "systemctl is-active -q user@1000.service"' "$(systemctl status user@1000.service 2>&1 | head)"
as_user() { runuser -u user -- env XDG_RUNTIME_DIR=/run/user/1000 HOME=/home/user PATH=$PATH "$@"; }
as_user mkdir -p /home/user/.config/systemd/user /home/user/www
echo "hello from user" >/home/user/www/index.html
as_user sh -c 'sed s/8080/8084/ /test/systemd/user/httpd-demo.service >~/.config/systemd/user/httpd-demo.service'
as_user systemctl --user daemon-reload
as_user systemctl --user start httpd-demo
upid=$(as_user systemctl --user show -p MainPID --value httpd-demo)
ucg=/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/httpd-demo.service
check user-unit 'wait_for "get 8084 index.html | grep -q \"hello from user\"" && [ "$(stat -c %u /proc/$upid)" = 1000 ] \
    && [ "$(cat $ucg/plash/httpd-demo/memory.max)" = $((256 << 20)) ]' \
    "main PID $upid, $(cat /proc/$upid/cgroup 2>&1), $(journalctl _UID=1000 --no-pager | grep -v systemd | tail -5)"
as_user systemctl --user stop httpd-demo
check user-stop '! [ -d /proc/$upid ]' "$(ps -ef 2>/dev/null | grep httpd)"

echo "summary: $fails failed"
exit $fails
