#!/bin/bash
# CTest label e2e (a VM; minutes under TCG). Runs tests/integration/netem_netns_test.cc inside a
# small QEMU VM, for machines whose kernel has
# no sch_netem (this lab's kernel has htb and u32 but not netem). The VM boots Debian's cloud
# kernel (linux-image-cloud-amd64, fetched with apt-get download into the build directory, never
# installed on the host) with a tiny busybox initrd, mounts the host's root file system READ-ONLY
# over virtiofs, and runs the test binary in it. The test makes its own network namespaces inside
# the VM; the VM has no network device at all, so no packet leaves it.
# Passes only if every netem test really ran and passed in the VM (a skip is a failure here).
set -euo pipefail

BUILD=${CONTINUUM_BUILD_DIR:?CONTINUUM_BUILD_DIR not set}
TEST_BIN="$BUILD/tests/integration_netem_netns_test"
[ -x "$TEST_BIN" ] || { echo "missing $TEST_BIN (build it first)"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (virtiofsd exports /)"; exit 1; }
for p in qemu-system-x86_64 busybox cpio dpkg-deb apt-get; do
  command -v "$p" >/dev/null || { echo "missing program $p"; exit 1; }
done
VIRTIOFSD=/usr/lib/qemu/virtiofsd
[ -x "$VIRTIOFSD" ] || { echo "missing $VIRTIOFSD"; exit 1; }

CACHE="$BUILD/netem-vm"
mkdir -p "$CACHE"
KROOT="$CACHE/kernel"
if ! ls "$KROOT"/boot/vmlinuz-* >/dev/null 2>&1; then
  # The versioned package the metapackage depends on (e.g. linux-image-6.1.0-57-cloud-amd64).
  PKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$PKG" ] || { echo "apt-cache knows no linux-image-cloud-amd64 (apt-get update?)"; exit 1; }
  (cd "$CACHE" && apt-get download "$PKG" >/dev/null 2>&1) || { echo "apt-get download $PKG failed"; exit 1; }
  rm -rf "$KROOT.tmp" && dpkg-deb -x "$CACHE/$PKG"_*.deb "$KROOT.tmp" && rm -f "$CACHE/$PKG"_*.deb
  mv "$KROOT.tmp" "$KROOT"
fi
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -n1)
MODDIR=$(ls -d "$KROOT"/lib/modules/* | head -n1)

WORK=$(mktemp -d /tmp/netem-vm.XXXXXX)
VFSD_PID=""
QEMU_PID=""
cleanup() {
  [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null || true
  [ -n "$VFSD_PID" ] && kill "$VFSD_PID" 2>/dev/null || true
  if [ -n "${NETEM_VM_KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# initrd: busybox, the modules (in dependency order) and an init that runs the test.
IR="$WORK/initrd"
mkdir -p "$IR"/{bin,dev,proc,sys,newroot,modules}
cp "$(command -v busybox)" "$IR/bin/busybox"
MODS="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs sch_htb cls_u32 sch_netem veth llc stp bridge"
for m in $MODS; do
  f=$(find "$MODDIR/kernel" -name "$m.ko" | head -n1)
  [ -n "$f" ] || { echo "module $m not in $MODDIR"; exit 1; }
  cp "$f" "$IR/modules/"
done
cat > "$IR/init" <<EOF
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in $MODS; do /bin/busybox insmod /modules/\$m.ko || echo "insmod \$m failed"; done
/bin/busybox mount -t virtiofs -o ro hostroot /newroot || { echo "NETEM_VM_RC=97"; /bin/busybox poweroff -f; }
for d in proc sys dev; do /bin/busybox mount --bind /\$d /newroot/\$d; done
# The only writable place: a tmpfs on /run (ip netns needs /run/netns); /tmp stays the host's,
# read-only, in case the build directory is there.
/bin/busybox mount -t tmpfs run /newroot/run
/bin/busybox mkdir -p /newroot/run/netem-tmp
/bin/busybox chroot /newroot /bin/sh -c 'export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/run/netem-tmp TMPDIR=/run/netem-tmp; cd /run/netem-tmp; "$TEST_BIN" --gtest_color=no --gtest_filter=NetemNetnsTest.Preset4gRttsWithinTolerance:NetemNetnsTest.LatencyIsRttPairOverrideAndLoss; echo "NETEM_VM_RC=\$?"'
/bin/busybox poweroff -f
EOF
chmod +x "$IR/init"
(cd "$IR" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$WORK/initrd.gz")

SOCK="$WORK/vfs.sock"
"$VIRTIOFSD" --socket-path="$SOCK" -o source=/ -o cache=none -o sandbox=chroot >"$WORK/virtiofsd.log" 2>&1 &
VFSD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "virtiofsd did not start"; cat "$WORK/virtiofsd.log"; exit 1; }

LOG="$WORK/console.log"
MEM=1024
timeout 600 qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m "$MEM" \
  -object memory-backend-memfd,id=mem,size=${MEM}M,share=on -numa node,memdev=mem \
  -chardev socket,id=vfs,path="$SOCK" -device vhost-user-fs-pci,chardev=vfs,tag=hostroot \
  -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" -append "console=ttyS0 quiet panic=-1 no_timer_check" \
  -nic none -display none -no-reboot -serial file:"$LOG" -monitor none &
QEMU_PID=$!
wait "$QEMU_PID" || true
QEMU_PID=""

tr -d '\r' < "$LOG" | sed -n '/\[==========\]/,$p'
RC=$(tr -d '\r' < "$LOG" | sed -n 's/.*NETEM_VM_RC=\([0-9]*\).*/\1/p' | tail -n1)
if [ "$RC" != 0 ]; then
  echo "netem test in the VM failed (rc '${RC:-none}'); console:"; tr -d '\r' < "$LOG" | tail -n 60
  exit 1
fi
if tr -d '\r' < "$LOG" | grep -q '\[  SKIPPED \]'; then
  echo "a netem test was skipped inside the VM: it must run there"; exit 1
fi
PASSED=$(tr -d '\r' < "$LOG" | grep -c '^\[       OK \] NetemNetnsTest\.' || true)
# Only the two RTT tests run in the VM: they need sch_netem. The failure-message test needs no
# netem and runs on the host with the integration tests (in the VM it hung once under TCG).
[ "$PASSED" -ge 2 ] || { echo "expected 2 passing NetemNetnsTest RTT tests, saw $PASSED"; exit 1; }
echo "netem VM test: $PASSED tests passed inside the VM"
