// Parsing ansible-playbook's default output (ansible-core 2.14, callback_result_format=json).
// The sample files are real outputs captured from ansible-playbook runs.
#include <gtest/gtest.h>

#include "continuum/software/ansible_output.h"
#include "continuum/software/runner.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"

namespace continuum::software {
namespace {

ParsedOutput parse_file(const std::string& name) {
  auto text =
      util::read_file(std::filesystem::path(CONTINUUM_SOURCE_DIR) / "tests/data/software" / name);
  EXPECT_TRUE(text.ok());
  OutputParser p;
  for (const auto& line : util::split(text.ok() ? *text : "", '\n')) p.feed(line);
  p.finish();
  return p.result();
}

TEST(AnsibleOutput, RecapLine) {
  auto r = parse_recap_line(
      "node_a                     : ok=3    changed=1    unreachable=0    failed=1    skipped=1    "
      "rescued=0    ignored=1   ");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->first, "node_a");
  HostStats want;
  want.ok = 3;
  want.changed = 1;
  want.failed = 1;
  want.skipped = 1;
  want.ignored = 1;
  EXPECT_EQ(r->second, want);
  EXPECT_FALSE(parse_recap_line("TASK [x : y] ****"));
  EXPECT_FALSE(parse_recap_line("host : ok=x changed=1 unreachable=0 failed=0"));
  EXPECT_FALSE(parse_recap_line(""));
}

TEST(AnsibleOutput, FailuresIgnoredLoopsAndCommandStderr) {
  ParsedOutput o = parse_file("sample_failures.out");
  ASSERT_TRUE(o.saw_recap);
  ASSERT_EQ(o.recap.size(), 2u);
  EXPECT_EQ(o.recap["node_a"].failed, 1);
  EXPECT_EQ(o.recap["node_b"].ignored, 1);
  // The two ignore_errors failures are not reported; the loop item and the command are.
  ASSERT_EQ(o.failures.size(), 2u);
  EXPECT_EQ(o.failures[0].host, "node_b");
  EXPECT_EQ(o.failures[0].task, "Loop with one failing item on node_b");
  EXPECT_EQ(o.failures[0].play, "Sample [with brackets]");
  EXPECT_EQ(o.failures[1].host, "node_a");
  EXPECT_EQ(o.failures[1].task, "Command fails on node_a");
  EXPECT_EQ(o.failures[1].message, "non-zero return code; stderr: boom: disk full");
  EXPECT_FALSE(o.failures[1].unreachable);
}

TEST(AnsibleOutput, Unreachable) {
  ParsedOutput o = parse_file("sample_unreachable.out");
  ASSERT_EQ(o.failures.size(), 1u);
  EXPECT_TRUE(o.failures[0].unreachable);
  EXPECT_EQ(o.failures[0].host, "gone_host");
  EXPECT_NE(o.failures[0].message.find("Connection refused"), std::string::npos);
  EXPECT_EQ(o.recap["gone_host"].unreachable, 1);
}

TEST(AnsibleOutput, ErrorLineAndProgress) {
  OutputParser p;
  p.feed("PLAY [Brokers] ****");
  p.feed("TASK [Start mosquitto] ****");
  p.feed("ok: [a]");
  p.feed("changed: [b] => (item=x)");
  p.feed("changed: [b] => (item=y)");
  EXPECT_EQ(p.current_play(), "Brokers");
  EXPECT_EQ(p.current_task(), "Start mosquitto");
  EXPECT_EQ(p.hosts_done(), 2);
  p.feed("ERROR! the playbook: x.yml could not be found");
  p.finish();
  ASSERT_EQ(p.result().errors.size(), 1u);
  EXPECT_EQ(p.result().errors[0], "the playbook: x.yml could not be found");
}

TEST(AnsibleOutput, MultiLineJsonResult) {
  OutputParser p;
  p.feed("TASK [t] ***");
  p.feed("fatal: [h]: FAILED! => {");
  p.feed("    \"changed\": false,");
  p.feed("    \"msg\": \"multi line\"");
  p.feed("}");
  p.feed("PLAY RECAP ***");
  p.feed("h : ok=0 changed=0 unreachable=0 failed=1 skipped=0 rescued=0 ignored=0");
  p.finish();
  ASSERT_EQ(p.result().failures.size(), 1u);
  EXPECT_EQ(p.result().failures[0].message, "multi line");
  EXPECT_EQ(p.result().recap.at("h").failed, 1);
}

TEST(AnsibleOutput, ResultMessage) {
  EXPECT_EQ(result_message(R"({"msg": "plain"})"), "plain");
  EXPECT_EQ(result_message("not json"), "not json");
  EXPECT_EQ(
      result_message(R"({"rc": 1, "msg": "non-zero return code", "stdout": "a\nb", "stderr": ""})"),
      "non-zero return code; stdout: a\nb");
  EXPECT_EQ(
      result_message(
          R"({"msg": "One or more items failed", "results": [{"failed": false}, {"failed": true, "msg": "item bad"}]})"),
      "One or more items failed: item bad");
}

TEST(AnsibleOutput, DescribeFailureSkipsRescuedHosts) {
  PlaybookResult r;
  r.name = "mosquitto";
  r.started = true;
  r.exit_code = 2;
  r.log = "/run/software/mosquitto.log";
  r.output.saw_recap = true;
  r.output.recap["a"].failed = 0;  // a's failure was rescued
  r.output.recap["b"].failed = 1;
  r.output.failures = {{"a", "p", "t1", "m1", false}, {"b", "p", "t2", "m2", false}};
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(describe_failure(r),
            "playbook mosquitto failed on b in task 't2': m2 (log: /run/software/mosquitto.log)");
  r.timed_out = true;
  r.seconds = 61.2;
  r.last_task = "Wait";
  EXPECT_EQ(
      describe_failure(r),
      "playbook mosquitto timed out after 61 s in task 'Wait' (log: /run/software/mosquitto.log)");
}

TEST(AnsibleOutput, ArgvRunsInsideNetnsWithoutShell) {
  RunnerOptions o;
  o.netns = "cntm-test";
  PlaybookRun r{"base", "/p/base/base.yml", {}, {{"continuum_app_bin", "/a b/app"}}};
  EXPECT_EQ(playbook_argv(o, r),
            (std::vector<std::string>{"ip", "netns", "exec", "cntm-test", "ansible-playbook",
                                      "--extra-vars", R"({"continuum_app_bin":"/a b/app"})",
                                      "/p/base/base.yml"}));
}

}  // namespace
}  // namespace continuum::software
