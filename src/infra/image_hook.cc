// The offline image's mmdebstrap customize hook, kept as one shell script in a raw string so the
// binary carries its own recipe (no file to find at run time) and the recipe hash covers it.
namespace continuum::infra {
extern const char* const kImageHook;
const char* const kImageHook = R"HOOK(#!/bin/sh
# mmdebstrap --customize-hook for continuum's offline guest image.
#   $1 = root directory of the new system, $2 = variant (default | cloudinit | docker | energy)
# Compiled into the continuum binary (src/infra/image_hook.cc); its
# text is part of the image recipe hash, so editing it rebuilds the cached image.
set -eu
R=$1
V=$2

echo '/dev/vda / ext4 defaults,noatime,errors=remount-ro 0 0' > "$R/etc/fstab"
echo continuum > "$R/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
# An empty machine-id gives every VM its own at first boot; systemd-firstboot would then prompt
# on the console, so it is masked.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"

chroot "$R" systemctl enable -q systemd-networkd
chroot "$R" systemctl mask -q systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer dpkg-db-backup.timer getty@tty1.service \
  systemd-networkd-wait-online.service
# Units a test VM does not need and that cost CPU under TCG (about 1 s per boot).
chroot "$R" systemctl mask -q systemd-logind.service modprobe@drm.service \
  modprobe@efi_pstore.service modprobe@dm_mod.service modprobe@loop.service \
  modprobe@configfs.service systemd-pstore.service sys-kernel-debug.mount \
  sys-kernel-tracing.mount sys-kernel-config.mount dev-hugepages.mount \
  sys-fs-fuse-connections.mount systemd-binfmt.service proc-sys-fs-binfmt_misc.automount \
  systemd-update-utmp.service systemd-update-utmp-runlevel.service \
  systemd-journal-flush.service systemd-machine-id-commit.service systemd-repart.service
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$R/etc/systemd/journald.conf.d/continuum.conf"

# SSH: only an ed25519 host key. It comes from the seed (pinned by the host before boot); the
# fallback unit below makes one only when a VM boots without a seed.
rm -f "$R"/etc/ssh/ssh_host_*
cat > "$R/etc/ssh/sshd_config.d/continuum.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
cat > "$R/etc/systemd/system/continuum-ssh-hostkey.service" <<'EOF'
[Unit]
Description=Generate an SSH host key when no seed provided one
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
DefaultDependencies=no
After=systemd-remount-fs.service continuum-seed.service
Before=ssh.service cloud-init.service
[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
[Install]
WantedBy=multi-user.target ssh.service
EOF
chroot "$R" systemctl enable -q continuum-ssh-hostkey.service

# mosquitto 2.0 listens on localhost only by default; the benchmark's clients are other VMs.
# This file and the sysctls below have the bytes that playbooks/mosquitto/mosquitto.yml and
# playbooks/base/base.yml write (a unit test compares them), so on this image those playbooks find
# nothing to change and skip their module runs.
mkdir -p "$R/etc/mosquitto/conf.d"
cat > "$R/etc/mosquitto/conf.d/continuum.conf" <<'EOF'
# Written by continuum (playbooks/mosquitto/mosquitto.yml)
listener 1883
allow_anonymous true
max_queued_messages 100000
EOF
cat > "$R/etc/sysctl.d/60-continuum.conf" <<'EOF'
# Written by continuum (playbooks/base/base.yml)
net.ipv4.ip_forward = 1
net.core.somaxconn = 4096
EOF
# Unprivileged ping (ICMP datagram sockets) for the login user, whose pings measure the network:
# Debian 13's ping has neither setuid nor file capabilities when the image is built without
# libcap2-bin, and then failed with "socktype: SOCK_RAW".
printf 'net.ipv4.ping_group_range = 0 2147483647\n' > "$R/etc/sysctl.d/50-continuum-ping.conf"

# continuum-seed: applies the continuum/ files of the NoCloud seed (label cidata). The seed disk
# is found by probing the virtio disks after the root disk: their nodes exist as soon as the
# initrd loaded virtio_blk, whereas /dev/disk/by-label needs udev's coldplug (~5 s under TCG).
cat > "$R/usr/local/sbin/continuum-seed" <<'EOF'
#!/bin/sh
set -u
M=/run/continuum-seed
mkdir -p "$M"
found=""
cand=$(sed -n 's/.*continuum\.seed=\([^ ]*\).*/\1/p' /proc/cmdline)
for i in $(seq 30); do
  for d in $cand /dev/vd[b-z] /dev/sr0; do
    [ -b "$d" ] || continue
    if mount -t iso9660 -o ro "$d" "$M" 2>/dev/null; then
      if [ -d "$M/continuum" ]; then found=$d; break 2; fi
      umount "$M"
    fi
  done
  sleep 0.1
done
if [ -z "$found" ]; then echo "continuum-seed: no seed disk found" >&2; exit 0; fi
S=$M/continuum
h=$(cat "$S/hostname")
echo "$h" > /etc/hostname
hostname "$h"
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n' "$h" > /etc/hosts
u=$(cat "$S/user")
id "$u" >/dev/null 2>&1 || useradd -m -s /bin/bash -G users,sudo -c continuum "$u"
install -d -m 700 -o "$u" -g "$u" "/home/$u/.ssh"
install -m 600 -o "$u" -g "$u" "$S/authorized_keys" "/home/$u/.ssh/authorized_keys"
echo "$u ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/90-continuum
chmod 440 /etc/sudoers.d/90-continuum
rm -f /etc/ssh/ssh_host_*
install -m 600 "$S/ssh_host_ed25519_key" /etc/ssh/ssh_host_ed25519_key
install -m 644 "$S/ssh_host_ed25519_key.pub" /etc/ssh/ssh_host_ed25519_key.pub
for f in "$S"/*.network; do [ -f "$f" ] && install -m 644 "$f" /etc/systemd/network/; done
if [ -f "$S/fstab" ]; then
  cat "$S/fstab" >> /etc/fstab
  # systemd read fstab before this ran: mount now as well (later boots use fstab).
  while read -r tag dir type rest; do
    mkdir -p "$dir"
    mount -t "$type" "$tag" "$dir" || echo "continuum-seed: cannot mount $tag on $dir" >&2
  done < "$S/fstab"
fi
umount "$M"
touch /var/lib/continuum-seed.done
echo "continuum-seed: applied seed from $found ($h, user $u)"
EOF
chmod 755 "$R/usr/local/sbin/continuum-seed"
cat > "$R/etc/systemd/system/continuum-seed.service" <<'EOF'
[Unit]
Description=Apply the continuum NoCloud seed (hostname, user, key, host key, network, shares)
DefaultDependencies=no
After=systemd-remount-fs.service
Before=systemd-networkd.service ssh.service network-pre.target sysinit.target
Wants=network-pre.target
ConditionPathExists=!/var/lib/continuum-seed.done
[Service]
Type=oneshot
StandardOutput=journal+console
ExecStart=/usr/local/sbin/continuum-seed
[Install]
WantedBy=sysinit.target
EOF

if [ "$V" = cloudinit ]; then
  # cloud-init applies the same seed (user-data, network-config) instead.
  mkdir -p "$R/etc/cloud/cloud.cfg.d"
  cat > "$R/etc/cloud/cloud.cfg.d/90-continuum.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
system_info:
  network:
    renderers: [ networkd ]
cloud_init_modules: [ bootcmd, write_files, set_hostname, update_hostname, update_etc_hosts, users_groups, ssh, mounts ]
cloud_config_modules: [ runcmd ]
cloud_final_modules: [ scripts_per_once, scripts_per_boot, scripts_per_instance, scripts_user, final_message ]
EOF
else
  chroot "$R" systemctl enable -q continuum-seed.service
fi

if [ "$V" = docker ]; then
  # Docker from Debian. Not started at boot: the software phase writes daemon.json (the run's
  # registry) and starts it on the nodes that run containers, so the others pay nothing under TCG.
  # Containers use the host's network (as the original's), so no bridge and no iptables rules.
  chroot "$R" systemctl disable -q docker.service docker.socket containerd.service
  mkdir -p "$R/etc/docker"
  printf '{"bridge": "none", "iptables": false, "ip6tables": false}\n' > "$R/etc/docker/daemon.json"
fi

if [ "$V" = energy ]; then
  # PostgreSQL for the query-only energy example: Debian's postinst made cluster main, but it is
  # not started at boot (a database costs seconds of boot and memory under TCG on every VM);
  # the example's setup step runs `systemctl start postgresql`, which the cluster's generator
  # unit follows. Disabled, not masked, so that start works.
  chroot "$R" systemctl disable -q postgresql.service
fi

# Minimal initrd for direct kernel boot: busybox-static and the virtio modules, no udev; it
# mounts /dev/vda and switches root (3 s instead of 5-6 s with initramfs-tools under TCG).
KV=$(ls "$R/lib/modules" | head -1)
T="$R/tmp/initrd-continuum"
rm -rf "$T"
mkdir -p "$T/bin" "$T/dev" "$T/proc" "$T/newroot" "$T/mods"
cp "$R/bin/busybox" "$T/bin/busybox"
MODS="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk"
# Debian 13's kernel ships its modules xz-compressed (bookworm's are plain .ko) and has some of
# these built in (then none is found, and none is needed). They are unpacked here so that the
# initrd's insmod does not depend on busybox's decompression support; busybox-static and zstd
# are the image's own tools.
for m in $MODS; do
  f=$(find "$R/lib/modules/$KV" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
  case "$f" in
    "") ;;
    *.xz) "$R/bin/busybox" xzcat "$f" > "$T/mods/$m.ko" ;;
    *.zst) chroot "$R" zstd -q -dc "${f#"$R"}" > "$T/mods/$m.ko" ;;
    *) cp "$f" "$T/mods/$m.ko" ;;
  esac
done
cat > "$T/init" <<EOF
#!/bin/busybox sh
B=/bin/busybox
\$B mount -t devtmpfs devtmpfs /dev
\$B mount -t proc proc /proc
for m in $MODS; do [ -f /mods/\$m.ko ] && \$B insmod /mods/\$m.ko; done
root=/dev/vda
for a in \$(\$B cat /proc/cmdline); do case \$a in root=/dev/*) root=\${a#root=};; esac; done
i=0
while [ ! -b \$root ] && [ \$i -lt 500 ]; do \$B usleep 10000; i=\$((i+1)); done
\$B mount -t ext4 -o rw \$root /newroot || { echo "initrd: cannot mount \$root"; exec \$B sh; }
\$B umount /proc
\$B mount --move /dev /newroot/dev
exec \$B switch_root /newroot /sbin/init
EOF
chmod 755 "$T/init"
chroot "$R" sh -c 'cd /tmp/initrd-continuum && find . | cpio -o -H newc --quiet' > "$R/boot/initrd-continuum.img"
rm -rf "$T"

# Guest programs (continuum-endpoint, continuum-worker) when they were built: copied in by the
# caller before this hook into /usr/local/bin.
# Offline guests: no apt lists.
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
# systemd's "/usr was updated" units (ldconfig, journal catalog, ...: ConditionNeedsUpdate) run
# at a boot whose /usr is newer than /etc/.updated and /var/.updated. dpkg's triggers already did
# their work; under TCG, Debian 13's ldconfig.service alone held up the first boot for over a
# minute. Last in the hook, so nothing changes /usr after the stamps.
touch "$R/etc/.updated" "$R/var/.updated"
)HOOK";
}  // namespace continuum::infra
