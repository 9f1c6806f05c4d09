// libFuzzer target for the Prometheus text parser (built only with -DCONTINUUM_FUZZ=ON and clang;
// registered as the CTest test fuzz.prometheus, a fixed number of runs). Besides "no crash, no
// sanitizer report", it checks invariants: every delivered view points into the input or the
// parser's scratch buffer, counts agree, and canonical label sets parse back to the same labels.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "continuum/energy/prometheus.h"

using namespace continuum::energy::prom;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool strict : {false, true}) {
    Parser p({.strict = strict});
    size_t n = 0;
    auto r = p.parse(text, [&](const Sample& s) {
      ++n;
      auto inside = [&](std::string_view v) {
        return v.empty() || (v.data() >= text.data() && v.data() + v.size() <= text.data() + size);
      };
      if (!inside(s.name) || s.name.empty()) std::abort();
      if (s.line <= 0) std::abort();
      for (const auto& l : s.labels) {
        if (!inside(l.name) || l.name.empty()) std::abort();
        unsigned sum = 0;
        for (char c : l.value) sum += static_cast<unsigned char>(c);  // readable (ASan checks)
        if (sum > 255u * l.value.size()) std::abort();
      }
      std::string canon = canonical_labels(s.labels);
      std::vector<std::pair<std::string, std::string>> back;
      if (!s.labels.empty() && (!parse_label_set(canon, back) || back.size() != s.labels.size()))
        std::abort();
    });
    if (r.samples != n) std::abort();
    for (const auto& e : r.errors)
      if (e.line <= 0) std::abort();
  }
  return 0;
}
