#!/bin/bash
# boot-systemd.sh DIR TEST_SCRIPT -- boot Debian bookworm with systemd as PID 1 in a
# throw-away qemu VM (../shared/tools/vm-run's kernel and settings), DIR copied to
# /test, and run `sh TEST_SCRIPT` as root from a oneshot unit once the system is up;
# the console is streamed to stdout and the exit status is the test's (125: the VM
# gave no result, 124: timeout). Run by Tests/ShimTests/SystemdTests.swift.
#
# The root comes from mmdebstrap (systemd-sysv, dbus, libpam-systemd) and is kept in
# $PLASH_TEST_CACHE (default /var/cache/plash-tests) between runs: 14 s and Debian's
# mirror the first time, nothing after. It becomes the initramfs; its /init moves it
# into a tmpfs first (pivot_root fails with EINVAL on the initramfs itself) and then
# hands over to systemd. A user `user` (uid 1000) is added for --user units.
# Env: VM_KERNEL, VM_MEM (2G), VM_TIMEOUT (600 s), VM_KEEP=1.
set -euo pipefail
[ $# -eq 2 ] && [ -d "$1" ] && [ -f "$2" ] || { sed -n '2,6p' "$0" >&2; exit 2; }
DIR=$1 TEST=$2
KERNEL=${VM_KERNEL:-$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n1)}
[ -r "$KERNEL" ] || { echo "boot-systemd: no readable kernel (apt-get install linux-image-cloud-amd64)" >&2; exit 2; }
KVER=${KERNEL##*/vmlinuz-}
BB=$(command -v busybox) && file -L "$BB" | grep -q 'statically linked' \
  || { echo "boot-systemd: need a static busybox (apt-get install busybox-static)" >&2; exit 2; }

CACHE=${PLASH_TEST_CACHE:-/var/cache/plash-tests}
ROOT_TAR=$CACHE/systemd-bookworm.tar
if [ ! -f "$ROOT_TAR" ] || [ ! -s "$ROOT_TAR" ]; then
  mkdir -p "$CACHE"
  # A directory there is what an earlier version left (mmdebstrap took its .tmp name
  # for a directory's): the cache's own, made again.
  [ -d "$ROOT_TAR" ] && rm -rf --one-file-system "$ROOT_TAR"
  # Made beside the cache and renamed: a killed run never leaves half a root there. A
  # tar whatever the name ends in: mmdebstrap guesses the format from it.
  mmdebstrap --quiet --format=tar --variant=minbase --include=systemd-sysv,dbus,libpam-systemd bookworm "$ROOT_TAR.$$.tmp" >&2
  mv "$ROOT_TAR.$$.tmp" "$ROOT_TAR"
fi

WORK=$(mktemp -d /var/tmp/boot-systemd.XXXXXX)
[ "${VM_KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT
R=$WORK/root
mkdir -p "$R" && tar -C "$R" -xf "$ROOT_TAR"
mkdir -p "$R/test" "$R/newroot" && cp -a "$DIR"/. "$R/test/" && cp "$TEST" "$R/test/.vmtest-run"
cp "$BB" "$R/busybox"
# overlayfs is a module of Debian's kernel; the root has no /lib/modules of its own.
modprobe -S "$KVER" --show-depends overlay | awk '$1 == "insmod" { print $2 }' >"$WORK/modules"
while read -r module; do cp "$module" "$R/$(basename "$module")"; echo "/$(basename "$module")"; done <"$WORK/modules" >"$R/modules"

echo 'user:x:1000:1000::/home/user:/bin/sh' >>"$R/etc/passwd"
echo 'user:x:1000:' >>"$R/etc/group"
echo 'user:*:19000:0:99999:7:::' >>"$R/etc/shadow"
mkdir -p "$R/home/user" && chown 1000:1000 "$R/home/user"
echo vmtest >"$R/etc/hostname"

cat >"$R/init" <<'EOF'
#!/busybox sh
/busybox mount -t tmpfs -o mode=755 root /newroot
for entry in /*; do
  case $entry in /newroot|/busybox|/init|/proc|/sys|/dev) ;; *) /busybox mv "$entry" /newroot/ ;; esac
done
/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev
/busybox mount -t proc proc /proc
while read -r module; do /busybox insmod "/newroot$module"; done </newroot/modules
/busybox umount /proc
exec /busybox switch_root /newroot /lib/systemd/systemd
EOF
chmod +x "$R/init"

cat >"$R/etc/systemd/system/vmtest.service" <<'EOF'
[Unit]
Description=the test script, then power off
After=basic.target dbus.service systemd-logind.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'cd /test && sh ./.vmtest-run </dev/null >/dev/console 2>&1; echo "VMTEST-EXIT=$?" >/dev/console'
ExecStartPost=/bin/systemctl poweroff --no-block
[Install]
WantedBy=multi-user.target
EOF
ln -s ../vmtest.service "$R/etc/systemd/system/multi-user.target.wants/vmtest.service"

(cd "$R" && find . | cpio -o -H newc --quiet) >"$WORK/initrd.cpio"
rm -rf "$R"
set +e
timeout --foreground "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -m "${VM_MEM:-2G}" -smp 2 \
  -nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
  -kernel "$KERNEL" -initrd "$WORK/initrd.cpio" \
  -append "console=ttyS0 quiet panic=-1 systemd.mask=serial-getty@ttyS0.service systemd.mask=getty@tty1.service" \
  </dev/null | tr -d '\r' | tee "$WORK/console.log"
qrc=${PIPESTATUS[0]}
rc=$(grep -ao 'VMTEST-EXIT=[0-9]*' "$WORK/console.log" | tail -n1 | cut -d= -f2)
[ -n "$rc" ] && exit "$rc"
echo "boot-systemd: no VMTEST-EXIT marker (qemu exit $qrc)" >&2
[ "$qrc" = 124 ] && exit 124 || exit 125
