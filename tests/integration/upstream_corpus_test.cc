// The compatibility corpus: every configuration shipped by the original tool, run through the real
// `continuum validate`, must be accepted or rejected as tests/data/upstream-configs/verdicts.tsv
// says (column "continuum": the original's verdict, except the differences documented in
// docs/compatibility.md). Also checks the configurations continuum ships in configuration/.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace fs = std::filesystem;
using continuum::util::ProcessSpec;
using continuum::util::run_process;

namespace {

const fs::path kSource = CONTINUUM_SOURCE_DIR;
const fs::path kCorpus = kSource / "tests/data/upstream-configs";

struct Verdict {
  std::string original, continuum, agreement, reason;
};

std::map<std::string, Verdict> read_verdicts() {
  std::map<std::string, Verdict> v;
  std::ifstream in(kCorpus / "verdicts.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto f = continuum::util::split(line, '\t');
    if (f.size() != 5) {
      ADD_FAILURE() << "verdicts.tsv: not 5 columns: " << line;
      continue;
    }
    v[f[0]] = Verdict{f[1], f[2], f[3], f[4]};
  }
  return v;
}

struct Outcome {
  int code = -1;
  std::string err;
};

Outcome validate(const fs::path& file) {
  ProcessSpec spec;
  spec.argv = {CONTINUUM_BINARY, "validate", file.string()};
  spec.timeout = std::chrono::seconds(30);
  auto r = run_process(spec);
  if (!r.ok()) return {-1, r.error().message};
  return {r->exit_code, r->err};
}

TEST(UpstreamCorpus, EveryShippedConfigHasAVerdict) {
  auto verdicts = read_verdicts();
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(kCorpus))
    if (e.path().extension() == ".cfg") files.insert(fs::relative(e.path(), kCorpus).string());
  EXPECT_EQ(files.size(), 241u);
  for (const auto& f : files) EXPECT_TRUE(verdicts.count(f)) << f << " has no line in verdicts.tsv";
  for (const auto& [f, _] : verdicts) EXPECT_TRUE(files.count(f)) << f << " in verdicts.tsv but not on disk";
}

TEST(UpstreamCorpus, ValidateAgreesWithVerdicts) {
  auto verdicts = read_verdicts();
  ASSERT_FALSE(verdicts.empty());
  int accepted = 0, rejected = 0, differs = 0;
  for (const auto& [file, v] : verdicts) {
    ASSERT_TRUE(v.continuum == "accept" || v.continuum == "reject") << file;
    EXPECT_EQ(v.agreement, v.original == v.continuum ? "agree" : "differs") << file;
    Outcome o = validate(kCorpus / file);
    if (v.continuum == "accept") {
      EXPECT_EQ(o.code, 0) << file << " should be accepted (" << v.reason << ")\n" << o.err;
      ++accepted;
    } else {
      EXPECT_EQ(o.code, 2) << file << " should be rejected (" << v.reason << ")";
      // A rejection names the file and a line.
      EXPECT_NE(o.err.find(file.substr(file.rfind('/') + 1)), std::string::npos) << o.err;
      ++rejected;
    }
    differs += v.agreement == "differs";
  }
  std::cout << "corpus: " << accepted << " accepted, " << rejected << " rejected, " << differs
            << " differ from the original (docs/compatibility.md)\n";
}

TEST(ShippedConfigurations, LoadAsDocumented) {
  // Valid: the examples a user starts from, including the offline quickstart and the template.
  for (const char* f : {"quickstart.cfg", "template.cfg", "bench_cloud.cfg", "bench_edge.cfg",
                        "bench_endpoint.cfg", "bench_openfaas.cfg", "infra_only.cfg", "qemu_kube_only.cfg"}) {
    Outcome o = validate(kSource / "configuration" / f);
    EXPECT_EQ(o.code, 0) << f << "\n" << o.err;
  }
  // Copied verbatim from the original, which rejects them too (blank GCP fields; baremetal).
  for (const char* f : {"bench_cloud_terraform.cfg", "baremetal.cfg"}) {
    Outcome o = validate(kSource / "configuration" / f);
    EXPECT_EQ(o.code, 2) << f;
  }
  // The originals are verbatim copies of the corpus files.
  for (const char* f : {"bench_cloud.cfg", "bench_edge.cfg", "bench_endpoint.cfg", "bench_openfaas.cfg",
                        "bench_cloud_terraform.cfg", "infra_only.cfg", "qemu_kube_only.cfg", "baremetal.cfg"}) {
    std::ifstream a(kSource / "configuration" / f), b(kCorpus / f);
    std::stringstream sa, sb;
    sa << a.rdbuf();
    sb << b.rdbuf();
    EXPECT_EQ(sa.str(), sb.str()) << f << " is not a verbatim copy";
  }
}

TEST(ShippedConfigurations, TemplateDocumentsEveryKeyOfTheReference) {
  // Every key in docs/configuration.md's tables appears in configuration/template.cfg.
  std::ifstream doc(kSource / "docs/configuration.md");
  std::ifstream tpl_in(kSource / "configuration/template.cfg");
  std::stringstream ts;
  ts << tpl_in.rdbuf();
  const std::string tpl = ts.str();
  std::string line;
  int keys = 0;
  while (std::getline(doc, line)) {
    // Table rows look like: | `key` | type | default | ...
    if (!continuum::util::starts_with(line, "| `")) continue;
    size_t end = line.find('`', 3);
    std::string key = line.substr(3, end - 3);
    ++keys;
    EXPECT_NE(tpl.find(key), std::string::npos) << key << " is documented but not in template.cfg";
  }
  EXPECT_GT(keys, 100);
}

}  // namespace
