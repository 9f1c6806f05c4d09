#include "continuum/record/run_dir.h"

#include <gtest/gtest.h>

#include <filesystem>

using namespace continuum::record;
namespace fs = std::filesystem;

TEST(RunDir, CreatesTimestampedDirectoryWithSubdirsAndNeverReusesOne) {
  fs::path parent = fs::temp_directory_path() / ("continuum_runs_" + std::to_string(::getpid()));
  fs::remove_all(parent);
  auto now = std::chrono::system_clock::from_time_t(1796032800);  // 2026-11-30T10:00:00Z
  auto a = create_run_dir(parent, "bench_cloud", now);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->filename(), "2026-11-30T10-00-00_bench_cloud");
  for (const char* sub : {"infrastructure", "software", "benchmark", "energy", "plots"})
    EXPECT_TRUE(fs::is_directory(*a / sub)) << sub;
  auto b = create_run_dir(parent, "bench_cloud", now);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(b->filename(), "2026-11-30T10-00-00_bench_cloud-2");
  EXPECT_FALSE(is_run_dir(*a));
  fs::remove_all(parent);
}
