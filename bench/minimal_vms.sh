#!/bin/bash
# The least a shell script must do to get N VMs of continuum's offline image SSH-ready with
# virsh, qemu-img, genisoimage and ssh: the yardstick bench_ssh_ready compares continuum with
# (issue 15). No ledger, no rollback, no validation, no parallelism beyond starting every domain
# before waiting: what a careful user would type, not what continuum guarantees.
#   minimal_vms.sh IMAGE_DIR N WORK_DIR
# IMAGE_DIR is a cached image (disk.qcow2, vmlinuz, initrd.img: `continuum image list`). Run it
# inside the network namespace that holds the libvirtd to use (the bench does). Prints
# `ssh_ready_seconds=S` (script start to every VM accepting an SSH login with its pinned host
# key), then removes everything it made.
set -euo pipefail
img=$1 n=$2 work=$3
t0=$(date +%s.%N)
virsh=(virsh -q -c qemu:///system)
net=minimal-bench
mkdir -p "$work"
cleanup() {
  for i in $(seq 0 $((n - 1))); do
    "${virsh[@]}" destroy "minimal$i" >/dev/null 2>&1 || true
    "${virsh[@]}" undefine "minimal$i" >/dev/null 2>&1 || true
  done
  "${virsh[@]}" net-destroy "$net" >/dev/null 2>&1 || true
  "${virsh[@]}" net-undefine "$net" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N "" -f "$work/id" -C bench
cat > "$work/net.xml" <<EOF
<network><name>$net</name><bridge name='cntm-bench' stp='off' delay='0'/>
<ip address='10.77.0.1' prefix='24'/></network>
EOF
"${virsh[@]}" net-define "$work/net.xml" >/dev/null
"${virsh[@]}" net-start "$net" >/dev/null

: > "$work/known_hosts"
for i in $(seq 0 $((n - 1))); do
  ip=10.77.0.$((i + 2)) mac=52:54:00:4d:00:$(printf %02x $((i + 2))) s=$work/seed$i/continuum
  qemu-img create -q -f qcow2 -F qcow2 -b "$img/disk.qcow2" "$work/disk$i.qcow2"
  mkdir -p "$s"
  echo "minimal$i" > "$s/hostname"
  echo bench > "$s/user"
  cp "$work/id.pub" "$s/authorized_keys"
  ssh-keygen -q -t ed25519 -N "" -f "$s/ssh_host_ed25519_key" -C "minimal$i"
  echo "$ip $(cut -d' ' -f1,2 "$s/ssh_host_ed25519_key.pub")" >> "$work/known_hosts"
  printf '[Match]\nMACAddress=%s\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\n' \
    "$mac" "$ip" > "$s/10-continuum.network"
  genisoimage -quiet -V cidata -r -J -o "$work/seed$i.iso" "$work/seed$i"
  cat > "$work/dom$i.xml" <<EOF
<domain type='qemu'><name>minimal$i</name><memory unit='MiB'>1024</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>$img/vmlinuz</kernel>
<initrd>$img/initrd.img</initrd><cmdline>root=/dev/vda rw console=ttyS0,115200 net.ifnames=1</cmdline></os>
<features><acpi/></features><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='unsafe'/>
<source file='$work/disk$i.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='$work/seed$i.iso'/>
<target dev='vdb' bus='virtio'/><readonly/></disk>
<interface type='network'><mac address='$mac'/><source network='$net'/><model type='virtio'/></interface>
<serial type='pty'/><rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
<memballoon model='none'/></devices></domain>
EOF
  "${virsh[@]}" define "$work/dom$i.xml" >/dev/null
  "${virsh[@]}" start "minimal$i" >/dev/null
done

for i in $(seq 0 $((n - 1))); do
  ip=10.77.0.$((i + 2))
  until ssh -q -i "$work/id" -o BatchMode=yes -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$work/known_hosts" -o ConnectTimeout=2 "bench@$ip" true 2>/dev/null; do
    sleep 0.5
  done
  echo "minimal$i ssh_ready_at=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")"
done
echo "ssh_ready_seconds=$(awk "BEGIN { printf \"%.2f\", $(date +%s.%N) - $t0 }")"
