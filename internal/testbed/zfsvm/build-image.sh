#!/usr/bin/env bash
# build-image.sh OUTDIR MIRROR
#
# Builds the root filesystem of the testbed's ZFS VM: Debian bookworm with
# OpenZFS 2.3 from bookworm-backports (built by DKMS for the image's own
# kernel), OpenSSH, restic and sudo. It runs as root on a Debian host with
# debootstrap and e2fsprogs, and writes into OUTDIR:
#
#   rootfs.raw                 ext4 image labelled "rootfs" (3G, sparse)
#   vmlinuz, initrd.img        the image's kernel and initramfs (boot with -kernel)
#   id_ed25519, id_ed25519.pub a generated key authorized for root
#   ssh_host_ed25519_key.pub   the image's only SSH host key
#
# MIRROR is a Debian archive URI (e.g. the one in the host's apt sources);
# nothing else is downloaded. The Go side (EnsureZFSImage) runs this script
# in a private mount namespace and caches OUTDIR by the hash of this file, so
# any change here produces a new image.
#
# A cold build takes about five minutes, most of it DKMS compiling ZFS.
set -euo pipefail

if [ "$#" -ne 2 ]; then
  echo "usage: $0 OUTDIR MIRROR" >&2
  exit 2
fi
OUT=$(realpath -m "$1")
MIRROR=$2
ROOT="$OUT/root"
SUITE=bookworm
HOSTNAME_=zfs-lab
IMAGE_SIZE=3G

# Packages of the image besides the debootstrap base.
BASE_PACKAGES=systemd-sysv,udev,openssh-server,kmod,iproute2,ifupdown,isc-dhcp-client,ca-certificates
KERNEL_PACKAGES=(linux-image-amd64 linux-headers-amd64 initramfs-tools)
TOOL_PACKAGES=(sudo restic dbus procps util-linux gdisk)
ZFS_PACKAGES=(zfs-dkms zfsutils-linux zfs-zed)

# Units that only slow down a throwaway test VM. The zfs-* units stay.
MASKED_UNITS=(
  apt-daily.timer apt-daily.service apt-daily-upgrade.timer apt-daily-upgrade.service
  dpkg-db-backup.timer dpkg-db-backup.service
  e2scrub_all.timer e2scrub_all.service e2scrub_reap.service
  fstrim.timer fstrim.service
  systemd-networkd-wait-online.service
  serial-getty@ttyS0.service getty@tty1.service
)

log() { echo "build-image: $(date +%T) $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "build-image: must run as root" >&2
  exit 1
fi
for tool in debootstrap mke2fs chroot mount umount mountpoint; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool not found" >&2; exit 1; }
done

# unmount_chroot unmounts the pseudo filesystems below ROOT, innermost
# first. It is safe to call repeatedly and runs on every exit.
unmount_chroot() {
  local m
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$ROOT/$m" 2>/dev/null; then
      umount "$ROOT/$m" 2>/dev/null || umount -l "$ROOT/$m"
    fi
  done
}
trap unmount_chroot EXIT
trap 'exit 130' INT TERM

# require_unmounted fails unless nothing is mounted below ROOT, so that a
# recursive delete of ROOT can never reach the host's /dev, /proc or /sys.
require_unmounted() {
  if awk -v root="$ROOT/" 'index($5, root) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "build-image: something is still mounted below $ROOT; not removing it" >&2
    exit 1
  fi
}

# in_chroot runs a command inside ROOT with a clean, non-interactive env.
in_chroot() {
  chroot "$ROOT" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
    ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
    "$@"
}

# write_file PATH [MODE] writes stdin to ROOT/PATH.
write_file() {
  mkdir -p "$(dirname "$ROOT/$1")"
  cat >"$ROOT/$1"
  chmod "${2:-0644}" "$ROOT/$1"
}

mkdir -p "$OUT"
unmount_chroot
require_unmounted
rm -rf "$ROOT"

log "debootstrap $SUITE from $MIRROR"
debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 ||
  { tail -n 30 "$OUT/debootstrap.log" >&2; exit 1; }

mount -t proc proc "$ROOT/proc"
mount -t sysfs sysfs "$ROOT/sys"
mount --bind /dev "$ROOT/dev"
mount --bind /dev/pts "$ROOT/dev/pts"

# Name resolution for apt during the build only; the guest gets its own
# from DHCP.
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp -L /etc/hosts "$ROOT/etc/hosts"

# Never start services inside the chroot.
write_file usr/sbin/policy-rc.d 0755 <<'EOF'
#!/bin/sh
exit 101
EOF

rm -f "$ROOT/etc/apt/sources.list"
write_file etc/apt/sources.list.d/debian.sources <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE ${SUITE}-backports
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# The archive may be a frozen snapshot whose Release files are past their
# Valid-Until date; signatures are still checked.
write_file etc/apt/apt.conf.d/90testbed <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Retries "3";
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
EOF
# Documentation is dead weight in a test VM.
write_file etc/dpkg/dpkg.cfg.d/90testbed-nodoc <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF

log "installing the kernel and tools"
in_chroot apt-get update -qq
in_chroot apt-get install -y -qq "${KERNEL_PACKAGES[@]}" "${TOOL_PACKAGES[@]}" >"$OUT/apt-kernel.log" 2>&1 ||
  { tail -n 30 "$OUT/apt-kernel.log" >&2; exit 1; }

KVERS=("$ROOT"/lib/modules/*)
if [ "${#KVERS[@]}" -ne 1 ] || [ ! -d "${KVERS[0]}" ]; then
  echo "build-image: expected exactly one kernel in the image, found: ${KVERS[*]}" >&2
  exit 1
fi
KVER=$(basename "${KVERS[0]}")

log "installing OpenZFS from ${SUITE}-backports (DKMS build for $KVER, several minutes)"
in_chroot apt-get install -y -qq -t "${SUITE}-backports" "${ZFS_PACKAGES[@]}" >"$OUT/apt-zfs.log" 2>&1 ||
  { tail -n 40 "$OUT/apt-zfs.log" >&2; exit 1; }
# DKMS builds for the kernels it finds; make sure ours is among them.
if ! in_chroot modinfo -k "$KVER" zfs >/dev/null 2>&1; then
  log "zfs module missing for $KVER; running dkms autoinstall"
  in_chroot dkms autoinstall -k "$KVER" >>"$OUT/apt-zfs.log" 2>&1 ||
    { tail -n 40 "$OUT/apt-zfs.log" >&2; exit 1; }
  in_chroot modinfo -k "$KVER" zfs >/dev/null ||
    { echo "build-image: DKMS did not build zfs for $KVER" >&2; exit 1; }
fi

log "configuring the guest"
echo "$HOSTNAME_" | write_file etc/hostname
write_file etc/hosts <<EOF
127.0.0.1 localhost
127.0.1.1 $HOSTNAME_
::1 localhost ip6-localhost ip6-loopback
EOF
write_file etc/fstab <<'EOF'
LABEL=rootfs / ext4 defaults,noatime 0 0
EOF
write_file etc/network/interfaces <<'EOF'
auto lo
iface lo inet loopback

auto eth0
iface eth0 inet dhcp
EOF
echo zfs | write_file etc/modules-load.d/zfs.conf
write_file etc/systemd/journald.conf.d/testbed.conf <<'EOF'
[Journal]
Storage=volatile
EOF
# A fixed machine id: an empty one would make every boot a "first boot".
tr -d '-' </proc/sys/kernel/random/uuid >"$ROOT/etc/machine-id"

for unit in "${MASKED_UNITS[@]}"; do
  ln -sf /dev/null "$ROOT/etc/systemd/system/$unit"
done

# SSH: only the generated ed25519 host key, root by key only, no PAM (no
# logind session and user manager per login, which is slow under TCG).
rm -f "$ROOT"/etc/ssh/ssh_host_*
in_chroot ssh-keygen -q -t ed25519 -N '' -C "root@$HOSTNAME_" -f /etc/ssh/ssh_host_ed25519_key
write_file etc/ssh/sshd_config.d/testbed.conf <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxSessions 32
MaxStartups 32:30:64
EOF
# The root password stays locked for passwords but must not be "!"-locked,
# which sshd (without PAM) treats as a disabled account.
in_chroot usermod -p '*' root
in_chroot ssh-keygen -q -t ed25519 -N '' -C testbed@zfs-lab -f /root/testbed_key
install -d -m 0700 "$ROOT/root/.ssh"
install -m 0600 "$ROOT/root/testbed_key.pub" "$ROOT/root/.ssh/authorized_keys"
install -m 0600 "$ROOT/root/testbed_key" "$OUT/id_ed25519"
install -m 0644 "$ROOT/root/testbed_key.pub" "$OUT/id_ed25519.pub"
rm -f "$ROOT/root/testbed_key" "$ROOT/root/testbed_key.pub"
install -m 0644 "$ROOT/etc/ssh/ssh_host_ed25519_key.pub" "$OUT/ssh_host_ed25519_key.pub"

log "cleaning up"
in_chroot apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/*.log \
  "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/usr/sbin/policy-rc.d
rm -rf "$ROOT"/var/lib/dkms/zfs/*/build
: >"$ROOT/etc/resolv.conf"
unmount_chroot
require_unmounted

install -m 0644 "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
install -m 0644 "$ROOT/boot/initrd.img-$KVER" "$OUT/initrd.img"

log "packing rootfs.raw ($IMAGE_SIZE ext4)"
rm -f "$OUT/rootfs.raw"
mke2fs -q -F -t ext4 -L rootfs -d "$ROOT" "$OUT/rootfs.raw" "$IMAGE_SIZE"
rm -rf "$ROOT"
log "done: kernel $KVER, $(du -sh --apparent-size "$OUT/rootfs.raw" | cut -f1) apparent, $(du -sh "$OUT/rootfs.raw" | cut -f1) on disk"
