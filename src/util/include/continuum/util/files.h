#pragma once
// File helpers. Every state, metrics or generated file is written atomically (temp file in the
// same directory + fsync + rename), so a crash or Ctrl-C never leaves a half-written file that a
// later `destroy` or `report` would trust.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "continuum/util/expected.h"

namespace continuum::util {

/// Reads a whole file. The error names the path and the OS reason.
Expected<std::string> read_file(const std::filesystem::path& path);

/// Bytes of the regular files under `dir` (symlinks not followed, unreadable parts skipped): what a
/// cached image or root filesystem takes on disk.
uintmax_t directory_bytes(const std::filesystem::path& dir);

/// Writes `content` to `path` atomically; creates parent directories. `mode` is applied before
/// the rename, so a private key is never visible with wider permissions.
Status write_file_atomic(const std::filesystem::path& path, std::string_view content,
                         std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                                       std::filesystem::perms::owner_write |
                                                       std::filesystem::perms::group_read |
                                                       std::filesystem::perms::others_read);

/// Removes `path` and everything under it; a missing path is success. The directory is first
/// renamed aside (a hidden sibling), because something may still be writing into it: a host
/// Scaphandre feeding a VM's share, say. Once renamed, new files cannot land in it by name, so
/// the removal cannot fail with "Directory not empty" as a plain remove_all racing a writer does.
Status remove_tree(const std::filesystem::path& path);

/// Expands a leading `~` or `~/` to $HOME (as the original does for base_path).
std::filesystem::path expand_user(std::string_view path);

/// True if every directory from / down to `dir` (existing ones) can be entered by "others".
/// QEMU under qemu:///system runs as libvirt-qemu, which cannot enter /root (mode 700): disks and
/// images continuum hands to libvirt must live where this holds.
bool traversable_by_others(const std::filesystem::path& dir);

/// Where root keeps files QEMU must read when `preferred` is not traversable:
/// /var/lib/continuum/<sub>. Returns `preferred` unchanged when it is fine or when continuum does
/// not run as root.
std::filesystem::path qemu_reachable(const std::filesystem::path& preferred,
                                     const std::string& sub);

}  // namespace continuum::util
