#pragma once
// SHA-256 (OpenSSL's EVP): the content hashes that name cached artefacts (base images, container
// images) and check downloads. FNV-1a: short stable names (bridge and tunnel devices, lock
// files), where a cryptographic hash is not needed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "continuum/util/expected.h"

struct evp_md_ctx_st;

namespace continuum::util {

/// Incremental SHA-256: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  void update(const std::string& s) { update(s.data(), s.size()); }
  /// Adds a file's content; an error names the file.
  Status update_file(const std::filesystem::path& path);
  /// The digest as 64 lowercase hex digits.
  std::string hex();

 private:
  evp_md_ctx_st* ctx_;
};

/// 32-bit FNV-1a of `s`.
constexpr uint32_t fnv1a32(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

/// Hex SHA-256 of a string.
std::string sha256_hex(const std::string& data);
/// Hex SHA-256 of a file's content.
Expected<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace continuum::util
