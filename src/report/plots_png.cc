// png_info(): a minimal PNG reader (zlib inflate + scanline unfiltering) so that a blank or
// single-colour plot is caught after gnuplot ran. libpng would do it too, but this is all we need.
#include <zlib.h>

#include <cstring>
#include <unordered_set>

#include "continuum/report/plots.h"
#include "continuum/util/files.h"

namespace continuum::report {

namespace {
uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
int paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}
}  // namespace

Expected<PngInfo> png_info(const std::filesystem::path& png) {
  auto data = TRY(util::read_file(png));
  auto bad = [&](const std::string& why) { return make_error(png.string() + ": " + why); };
  const auto* d = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() < 33 || std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) != 0) return bad("not a PNG");
  PngInfo info;
  int depth = 0, ctype = 0;
  std::string idat;
  for (size_t off = 8; off + 12 <= data.size();) {
    uint32_t len = be32(d + off);
    std::string type(data.data() + off + 4, 4);
    if (off + 12 + len > data.size()) return bad("truncated chunk " + type);
    const unsigned char* body = d + off + 8;
    if (type == "IHDR") {
      info.width = static_cast<int>(be32(body));
      info.height = static_cast<int>(be32(body + 4));
      depth = body[8];
      ctype = body[9];
      if (body[12] != 0) return bad("interlaced PNG not supported");
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    } else if (type == "IEND") {
      break;
    }
    off += 12 + len;
  }
  if (depth != 8 || (ctype != 2 && ctype != 6)) return bad("only 8-bit RGB/RGBA is read");
  const size_t bpp = ctype == 6 ? 4 : 3;
  const size_t stride = bpp * static_cast<size_t>(info.width);
  std::string raw((stride + 1) * static_cast<size_t>(info.height), '\0');
  uLongf out_len = raw.size();
  if (uncompress(reinterpret_cast<Bytef*>(raw.data()), &out_len,
                 reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      out_len != raw.size())
    return bad("corrupt image data");
  std::vector<unsigned char> prev(stride, 0), cur(stride);
  std::unordered_set<uint32_t> colours;
  for (int y = 0; y < info.height; ++y) {
    const auto* row = reinterpret_cast<const unsigned char*>(raw.data()) + y * (stride + 1);
    int filter = row[0];
    for (size_t x = 0; x < stride; ++x) {
      int a = x >= bpp ? cur[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      int v = row[1 + x];
      switch (filter) {
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) / 2;
          break;
        case 4:
          v += paeth(a, b, c);
          break;
        default:
          break;
      }
      cur[x] = static_cast<unsigned char>(v);
    }
    for (size_t x = 0; x + bpp <= stride && colours.size() < 4096; x += bpp)
      colours.insert((uint32_t(cur[x]) << 16) | (uint32_t(cur[x + 1]) << 8) | cur[x + 2]);
    std::swap(prev, cur);
  }
  info.colours = colours.size();
  return info;
}

}  // namespace continuum::report
