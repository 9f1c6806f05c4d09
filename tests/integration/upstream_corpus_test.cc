// The compatibility corpus: every configuration shipped by the original tool, run through the real
// `continuum validate --compat` (the original's rules only), must be accepted or rejected as
// tests/data/upstream-configs/verdicts.tsv says (column "continuum": the original's verdict, except
// the differences documented in docs/compatibility.md). Then, for every configuration accepted
// there, plain `continuum validate` (with the preflight: what this build can run) must refuse
// exactly as tests/data/upstream-configs/preflight.tsv lists, each refusal naming file:line:key.
// Also checks the configurations continuum ships in configuration/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
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

Outcome validate(const fs::path& file, bool compat = false) {
  ProcessSpec spec;
  spec.argv = {CONTINUUM_BINARY, "validate", file.string()};
  if (compat) spec.argv.insert(spec.argv.begin() + 2, "--compat");
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
  for (const auto& [f, _] : verdicts)
    EXPECT_TRUE(files.count(f)) << f << " in verdicts.tsv but not on disk";
}

TEST(UpstreamCorpus, ValidateAgreesWithVerdicts) {
  auto verdicts = read_verdicts();
  ASSERT_FALSE(verdicts.empty());
  int accepted = 0, rejected = 0, differs = 0;
  for (const auto& [file, v] : verdicts) {
    ASSERT_TRUE(v.continuum == "accept" || v.continuum == "reject") << file;
    EXPECT_EQ(v.agreement, v.original == v.continuum ? "agree" : "differs") << file;
    Outcome o = validate(kCorpus / file, true);
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

// One refusal line: "<path>:<line>: [<section>] <key> = <value>: not supported by this build:
// <why>".
const std::regex kRefusal(
    R"(^(.+):([0-9]+): \[([a-z_]+)\] ([A-Za-z_]+) = (.*): not supported by this build: (.+)$)");

TEST(UpstreamCorpus, PreflightRefusesWhatThisBuildCannotRun) {
  // For every configuration the original accepts (and continuum with --compat): does plain
  // validate refuse it, and on which keys. Expected: tests/data/upstream-configs/preflight.tsv
  // (CONTINUUM_UPDATE_GOLDEN=1 rewrites it from this build's answers).
  auto verdicts = read_verdicts();
  ASSERT_FALSE(verdicts.empty());
  std::string got =
      "# file\tverdict of plain `continuum validate`: runs, or refused: section.key,... (file "
      "order)\n";
  int runs = 0, refused = 0;
  for (const auto& [file, v] : verdicts) {
    if (v.continuum != "accept") continue;
    const fs::path path = kCorpus / file;
    Outcome o = validate(path);
    ASSERT_TRUE(o.code == 0 || o.code == 2) << file << "\n" << o.err;
    std::vector<std::string> keys;
    for (const auto& line : continuum::util::split(o.err, '\n')) {
      if (line.find(": not supported by this build: ") == std::string::npos) continue;
      std::smatch m;
      ASSERT_TRUE(std::regex_match(line, m, kRefusal))
          << "not FILE:LINE: [section] key = value: " << line;
      EXPECT_EQ(m[1].str(), path.string()) << line;
      EXPECT_GT(std::stoi(m[2].str()), 0) << line;
      // The line named is the key's line in the file.
      std::ifstream in(path);
      std::string text;
      for (int n = 0; n < std::stoi(m[2].str()) && std::getline(in, text);) ++n;
      EXPECT_EQ(continuum::util::to_lower(
                    std::string(continuum::util::trim(text.substr(0, text.find('='))))),
                continuum::util::to_lower(m[4].str()))
          << line;
      keys.push_back(m[3].str() + "." + continuum::util::to_lower(m[4].str()));
    }
    EXPECT_EQ(o.code == 2, !keys.empty()) << file << "\n" << o.err;
    got += file + "\t" + (keys.empty() ? "runs" : "refused: " + continuum::util::join(keys, ",")) +
           "\n";
    (keys.empty() ? runs : refused)++;
  }
  const fs::path expected_file = kCorpus / "preflight.tsv";
  if (const char* u = std::getenv("CONTINUUM_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(expected_file) << got;
  }
  std::ifstream in(expected_file);
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), got) << "plain validate disagrees with " << expected_file;
  std::cout << "preflight over the accepted corpus: " << runs << " run, " << refused
            << " refused\n";
}

TEST(ShippedConfigurations, LoadAsDocumented) {
  // Valid and runnable by this build: the examples a user starts from, including the offline
  // quickstart and the template, without a warning or a note.
  for (const char* f : {"quickstart.cfg", "template.cfg", "bench_endpoint.cfg", "infra_only.cfg"}) {
    Outcome o = validate(kSource / "configuration" / f);
    EXPECT_EQ(o.code, 0) << f << "\n" << o.err;
    EXPECT_EQ(o.err, "") << f;
  }
  // Runnable, with a note: middleIP_base has no effect here.
  Outcome kube_only = validate(kSource / "configuration" / "qemu_kube_only.cfg");
  EXPECT_EQ(kube_only.code, 0) << kube_only.err;
  EXPECT_NE(kube_only.err.find(
                "qemu_kube_only.cfg:10: [infrastructure] middleIP_base = 201: accepted for "
                "compatibility; no effect"),
            std::string::npos)
      << kube_only.err;
  // The original's container benchmarks: valid for the original, refused by this build.
  for (const char* f : {"bench_cloud.cfg", "bench_edge.cfg", "bench_openfaas.cfg"}) {
    EXPECT_EQ(validate(kSource / "configuration" / f, true).code, 0) << f;
    Outcome o = validate(kSource / "configuration" / f);
    EXPECT_EQ(o.code, 2) << f;
    EXPECT_NE(o.err.find("] resource_manager = "), std::string::npos) << o.err;
    EXPECT_NE(o.err.find(": not supported by this build: "), std::string::npos) << o.err;
  }
  // Copied verbatim from the original, which rejects them too (blank GCP fields; baremetal).
  for (const char* f : {"bench_cloud_terraform.cfg", "baremetal.cfg"}) {
    EXPECT_EQ(validate(kSource / "configuration" / f, true).code, 2) << f;
    EXPECT_EQ(validate(kSource / "configuration" / f).code, 2) << f;
  }
  // The originals are verbatim copies of the corpus files.
  for (const char* f :
       {"bench_cloud.cfg", "bench_edge.cfg", "bench_endpoint.cfg", "bench_openfaas.cfg",
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
