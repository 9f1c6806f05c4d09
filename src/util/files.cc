#include "continuum/util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace continuum::util {
namespace fs = std::filesystem;

Expected<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return make_error(path.string() + ": read error");
  return ss.str();
}

Status write_file_atomic(const fs::path& path, std::string_view content, fs::perms mode) {
  std::error_code ec;
  if (path.has_parent_path()) {
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      return make_error(path.parent_path().string() + ": cannot create directory: " + ec.message());
  }
  std::random_device rd;
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return make_error(tmp.string() + ": cannot create: " + std::strerror(errno));
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return make_error(path.string() + ": write failed: " + why);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0 || ::fsync(fd) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return make_error(path.string() + ": " + why);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    return make_error(path.string() + ": rename failed: " + why);
  }
  return {};
}

Status remove_tree(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return {};
  fs::path target = path;
  if (fs::is_directory(fs::symlink_status(path, ec))) {
    const fs::path aside = path.parent_path() / ("." + path.filename().string() + ".removing." +
                                                 std::to_string(::getpid()));
    fs::rename(path, aside, ec);
    if (!ec) target = aside;  // else: remove in place (e.g. a mount point cannot be renamed)
  }
  // A few tries: a writer that already held the directory open (by file descriptor, or its
  // working directory) can still add a file between remove_all's listing and its rmdir.
  for (int attempt = 0; attempt < 5; ++attempt) {
    ec.clear();
    fs::remove_all(target, ec);
    if (!ec) return {};
    if (ec != std::errc::directory_not_empty) break;
  }
  return make_error(path.string() + ": cannot remove: " + ec.message());
}

fs::path expand_user(std::string_view path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    std::string h = home ? home : "/root";
    return fs::path(h + std::string(path.substr(1)));
  }
  return fs::path(path);
}

bool traversable_by_others(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  fs::path cur = p.root_path();
  for (const auto& part : p.relative_path()) {
    cur /= part;
    struct stat st;
    if (::stat(cur.c_str(), &st) != 0) break;  // the rest does not exist yet: created 0755
    if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH)) return false;
  }
  return true;
}

fs::path qemu_reachable(const fs::path& preferred, const std::string& sub) {
  if (::geteuid() != 0 || traversable_by_others(preferred)) return preferred;
  return fs::path("/var/lib/continuum") / sub;
}

uintmax_t directory_bytes(const std::filesystem::path& dir) {
  uintmax_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(
           dir, std::filesystem::directory_options::skip_permission_denied, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace continuum::util
