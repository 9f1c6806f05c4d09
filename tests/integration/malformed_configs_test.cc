// Every file in tests/data/malformed/ carries `# expect: line N key K` in its header. The real
// `continuum validate` must exit 2, print FILE:N: and name K, and say nothing is valid.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "continuum/util/process.h"

namespace fs = std::filesystem;

namespace {

const fs::path kDir = fs::path(CONTINUUM_SOURCE_DIR) / "tests/data/malformed";

struct Expect {
  int line = 0;
  std::string key;
};

bool read_expect(const fs::path& p, Expect& e) {
  std::ifstream in(p, std::ios::binary);
  std::string l;
  static const std::regex re("^# expect: line ([0-9]+) key (.+)$");
  for (int i = 0; i < 5 && std::getline(in, l); ++i) {
    std::smatch m;
    if (std::regex_match(l, m, re)) {
      e.line = std::stoi(m[1]);
      e.key = m[2];
      return true;
    }
  }
  return false;
}

TEST(MalformedConfigs, ValidateExitsTwoNamingLineAndKey) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.path().extension() == ".cfg") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 40u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    Expect ex;
    ASSERT_TRUE(read_expect(f, ex)) << "no `# expect: line N key K` header";
    continuum::util::ProcessSpec spec;
    spec.argv = {CONTINUUM_BINARY, "validate", f.string()};
    spec.timeout = std::chrono::seconds(30);
    auto r = continuum::util::run_process(spec);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->exit_code, 2) << r->err;
    EXPECT_EQ(r->out.find("valid"), std::string::npos) << r->out;
    const std::string where = f.string() + ":" + std::to_string(ex.line) + ":";
    bool found = false;
    // The line that names FILE:LINE must also name the key.
    std::istringstream lines(r->err);
    std::string l;
    while (std::getline(lines, l))
      if (l.rfind(where, 0) == 0 && l.find(ex.key) != std::string::npos) found = true;
    EXPECT_TRUE(found) << "expected a line starting with " << where << " naming " << ex.key
                       << ", got:\n"
                       << r->err;
  }
}

}  // namespace
