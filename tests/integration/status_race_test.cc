// The status race of resource_manager = none, with the real status command through /bin/sh and a
// program that exits exactly between its rc check and its kill -0
// (tests/integration/status_race_support.h). Over the real sshd:
// tests/integration/benchmark_ssh_test.cc. Integration label for its 20 s (500 launches), not for
// any daemon.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "continuum/benchmark/image_classification.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "integration/status_race_support.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {

struct Sh {
  fs::path home;
  std::string racing_path;  ///< PATH with the stand-in cat first, for the status command only
  util::ProcessResult run(const std::string& cmd, bool racing = false) const {
    util::ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", cmd};
    spec.cwd = home;
    spec.env = {{"PATH", racing ? racing_path : std::string("/usr/bin:/bin")}};
    spec.timeout = std::chrono::seconds(30);
    auto r = util::run_process(spec);
    return r.ok() ? *r : util::ProcessResult{};
  }
};

/// Launches the program in `dir` (relative to home) with the real launch command, reaps its
/// wrapper, and returns what `status` prints for it.
std::string race_once(const Sh& sh, const std::string& dir, const std::string& status) {
  fs::remove(sh.home / dir / "go");
  auto launched = sh.run(
      benchmark::direct_launch_command(dir, "/bin/sh", {"-c", status_race::kProgramScript}, {}));
  pid_t pid = static_cast<pid_t>(std::atol(std::string(util::trim(launched.out)).c_str()));
  if (launched.exit_code != 0 || pid <= 0) return "<launch failed: " + launched.err + ">";
  std::thread reaper = status_race::reap(pid);
  auto st = sh.run(status, true);
  reaper.join();
  return std::string(util::trim(st.out));
}

}  // namespace

TEST(StatusRace, ProgramExitingBetweenRcCheckAndKill0ReadsAsItsExitStatus) {
  ASSERT_TRUE(status_race::become_subreaper());
  char tmpl[] = "/tmp/cntm-race-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path home = tmpl;
  Sh sh{home, status_race::make_racing_cat(home).string() + ":/usr/bin:/bin"};

  // The forced race is real: the command as it was reads it as "gone".
  EXPECT_EQ(race_once(sh, "old", status_race::old_status_command("old")), "gone");

  const int iterations = 500;
  int gone = 0, other = 0;
  std::string first_other;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iterations; ++i) {
    const std::string out = race_once(sh, "job", benchmark::direct_status_command("job"));
    if (out == "gone")
      ++gone;
    else if (out != "7" && other++ == 0)
      first_other = out;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[measure] status race: %d iterations through /bin/sh in %.1f s, gone=%d\n",
              iterations, secs, gone);
  EXPECT_EQ(gone, 0) << "read as gone although rc was written";
  EXPECT_EQ(other, 0) << "first unexpected answer: " << first_other;
  fs::remove_all(home);
}
