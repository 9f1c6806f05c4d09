#include "continuum/util/hash.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

namespace continuum::util {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }

Status Sha256::update_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path.string());
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return make_error("error reading " + path.string());
  return {};
}

std::string Sha256::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& data) {
  Sha256 s;
  s.update(data);
  return s.hex();
}

Expected<std::string> sha256_file(const std::filesystem::path& path) {
  Sha256 s;
  TRY_STATUS(s.update_file(path));
  return s.hex();
}

}  // namespace continuum::util
