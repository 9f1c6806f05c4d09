// The preflight with the real binary. Every tests/data/preflight/*.cfg except runnable_* is a
// configuration the original accepts and this build refuses; its header lists each refusal as
// `# refused: line N [section] key = value`. For each:
//  - `continuum validate --compat` accepts it (exit 0), `continuum validate` refuses it (exit 2)
//    with exactly those FILE:N: [section] key = value: not supported by this build: ... lines;
//  - `continuum -o OUT CONFIG`, with HOME (so base_path, ssh_key and the run locks) in a fresh
//    temporary directory and libvirt_uri on a socket that does not exist, exits 2 with the same
//    lines and creates nothing: OUT does not exist, HOME stays empty, and under strace the
//    process ran no other program, started no thread or process, opened no socket and made no
//    directory.
// runnable_endpoint_only.cfg is the control: it passes the preflight and fails later at the
// libvirt socket (exit 1), after creating its run directory, which shows the checks above can see
// what a run creates.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace fs = std::filesystem;
using continuum::util::ProcessSpec;
using continuum::util::run_process;

namespace {

const fs::path kDir = fs::path(CONTINUUM_SOURCE_DIR) / "tests/data/preflight";

std::vector<std::string> expected_refusals(const fs::path& f) {
  std::vector<std::string> out;
  std::ifstream in(f);
  std::string l;
  static const std::regex re("^# refused: line ([0-9]+) (.+)$");
  while (std::getline(in, l)) {
    std::smatch m;
    if (std::regex_match(l, m, re))
      out.push_back(f.string() + ":" + m[1].str() + ": " + m[2].str());
  }
  return out;
}

// The refusal lines of stderr, cut before the reason.
std::vector<std::string> refusals_in(const std::string& err) {
  std::vector<std::string> out;
  const std::string mark = ": not supported by this build: ";
  for (const auto& l : continuum::util::split(err, '\n')) {
    auto p = l.find(mark);
    if (p == std::string::npos) continue;
    EXPECT_GT(l.size(), p + mark.size() + 20) << "a refusal says why: " << l;
    out.push_back(l.substr(0, p));
  }
  return out;
}

std::string key_on_line(const fs::path& f, int line) {
  std::ifstream in(f);
  std::string l;
  for (int n = 0; n < line && std::getline(in, l);) ++n;
  return std::string(continuum::util::trim(l.substr(0, l.find('='))));
}

bool strace_available() { return fs::exists("/usr/bin/strace"); }

class PreflightCli : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() /
           ("preflight_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override { fs::remove_all(tmp_); }

  struct Run {
    int code = -1;
    std::string err;
    std::string trace;  // strace output ("" without strace)
  };

  // `continuum -o OUT CONFIG` with HOME = home, under strace when available.
  Run run(const fs::path& cfg, const fs::path& home, const fs::path& out,
          const fs::path& trace_file) {
    fs::create_directories(home);
    ProcessSpec spec;
    if (strace_available())
      spec.argv = {"/usr/bin/strace",
                   "-f",
                   "-qq",
                   "-e",
                   "trace=execve,clone,clone3,fork,vfork,socket,connect,mkdir,mkdirat",
                   "-o",
                   trace_file.string()};
    spec.argv.insert(spec.argv.end(), {CONTINUUM_BINARY, "-o", out.string(), cfg.string()});
    spec.env["HOME"] = home.string();
    spec.timeout = std::chrono::seconds(60);
    auto r = run_process(spec);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) return {};
    Run res{r->exit_code, r->err, ""};
    if (strace_available()) {
      auto t = continuum::util::read_file(trace_file);
      res.trace = t.ok() ? *t : "";
    }
    return res;
  }

  fs::path tmp_;
};

std::vector<fs::path> refused_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kDir))
    if (e.path().extension() == ".cfg" &&
        !continuum::util::starts_with(e.path().filename().string(), "runnable"))
      files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_F(PreflightCli, ValidateRefusesWhatTheOriginalAccepts) {
  auto files = refused_files();
  ASSERT_GE(files.size(), 14u);
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    auto expected = expected_refusals(f);
    ASSERT_FALSE(expected.empty()) << "no `# refused: line N [section] key = value` header";
    ProcessSpec compat;
    compat.argv = {CONTINUUM_BINARY, "validate", "--compat", f.string()};
    auto c = run_process(compat);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->exit_code, 0) << "the original's rules accept it:\n" << c->err;

    ProcessSpec plain;
    plain.argv = {CONTINUUM_BINARY, "validate", f.string()};
    auto p = run_process(plain);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->exit_code, 2) << p->err;
    EXPECT_EQ(p->out, "");
    EXPECT_EQ(refusals_in(p->err), expected) << p->err;
    // Each line named holds the key named.
    for (const auto& e : expected) {
      std::smatch m;
      std::regex re(":([0-9]+): \\[[a-z_]+\\] ([A-Za-z_]+) = ");
      ASSERT_TRUE(std::regex_search(e, m, re)) << e;
      EXPECT_EQ(continuum::util::to_lower(key_on_line(f, std::stoi(m[1].str()))),
                continuum::util::to_lower(m[2].str()))
          << e;
    }
  }
}

TEST_F(PreflightCli, RunRefusesBeforeCreatingAnything) {
  for (const auto& f : refused_files()) {
    SCOPED_TRACE(f.filename().string());
    const fs::path case_dir = tmp_ / f.stem();
    const fs::path home = case_dir / "home", out = case_dir / "runs";
    Run r = run(f, home, out, case_dir / "strace.txt");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(refusals_in(r.err), expected_refusals(f)) << r.err;
    EXPECT_NE(r.err.find(f.string() + ": refused before anything was created"), std::string::npos)
        << r.err;
    EXPECT_FALSE(fs::exists(out)) << "run directory parent created";
    EXPECT_TRUE(fs::is_empty(home))
        << "something was created under HOME (base_path, ssh key, locks)";
    if (strace_available()) {
      int execs = 0;
      for (const auto& l : continuum::util::split(r.trace, '\n')) {
        if (l.find("execve(") != std::string::npos) ++execs;
        for (const char* call :
             {"clone(", "clone3(", "fork(", "vfork(", "socket(", "connect(", "mkdir(", "mkdirat("})
          EXPECT_EQ(l.find(call), std::string::npos) << l;
      }
      EXPECT_EQ(execs, 1) << "only continuum itself ran:\n" << r.trace;
    }
  }
  if (!strace_available())
    GTEST_SKIP() << "strace not installed: threads, processes and sockets not checked";
}

TEST_F(PreflightCli, RunnableConfigurationGetsPastThePreflight) {
  const fs::path f = kDir / "runnable_endpoint_only.cfg";
  const fs::path home = tmp_ / "home", out = tmp_ / "runs";
  Run r = run(f, home, out, tmp_ / "strace.txt");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_TRUE(refusals_in(r.err).empty()) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/continuum-preflight-test.sock"), std::string::npos) << r.err;
  // What the checks of the refused runs look for does appear here.
  EXPECT_TRUE(fs::exists(out)) << "the run directory was not created";
  EXPECT_FALSE(fs::is_empty(home)) << "the run lock under HOME was not created";
  if (strace_available()) {
    EXPECT_NE(r.trace.find("connect("), std::string::npos);
    EXPECT_NE(r.trace.find("mkdir"), std::string::npos);
  }
}
