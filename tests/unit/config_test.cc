// Unit tests of config::load: types, defaults, derived defaults, cross-checks, warnings,
// comments, quotes, long lines, and the new [link]/[workload]/[energy] sections.
#include "continuum/config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using continuum::config::Config;
using continuum::config::load;
using continuum::config::Tier;

namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& text, const std::string& name = "c.cfg") {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  // Loads text that must be valid.
  Config ok(const std::string& text) {
    auto c = load(write(text));
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    if (!c.ok()) return Config{};
    return std::move(c).value();
  }
  // Loads text that must be invalid; returns the message.
  std::string bad(const std::string& text) {
    auto c = load(write(text));
    EXPECT_FALSE(c.ok()) << "unexpectedly valid:\n" << text;
    if (c.ok()) return "";
    EXPECT_EQ(c.error().exit_code, continuum::ExitCode::usage);
    return c.error().message;
  }

  fs::path dir_;
};

const std::string kCloud = R"([infrastructure]
provider = qemu
cloud_nodes = 2
cloud_cores = 4
cloud_memory = 4
cloud_quota = 1.0
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
network_emulation = True
wireless_network_preset = 4g

[benchmark]
resource_manager = kubernetes
application = image_classification
frequency = 5
)";

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n + (s.empty() || s.back() == '\n' ? 0 : 1);
}

bool has_warning(const Config& c, const std::string& needle) {
  for (const auto& w : c.warnings)
    if (w.find(needle) != std::string::npos) return true;
  return false;
}

TEST_F(ConfigTest, BenchCloudDefaultsAsUpstream) {
  Config c = ok(kCloud);
  EXPECT_EQ(c.infrastructure.provider, continuum::config::Provider::qemu);
  EXPECT_EQ(c.mode(), Tier::cloud);
  ASSERT_TRUE(c.benchmark);
  EXPECT_EQ(c.benchmark->duration, 300);
  EXPECT_DOUBLE_EQ(c.benchmark->application_worker_cpu, 3.5);
  EXPECT_DOUBLE_EQ(c.benchmark->application_worker_memory, 3.5);
  EXPECT_DOUBLE_EQ(c.benchmark->application_endpoint_cpu, 1);
  EXPECT_DOUBLE_EQ(c.benchmark->application_endpoint_memory, 1);
  EXPECT_EQ(c.benchmark->applications_per_worker, 1);
  EXPECT_EQ(c.benchmark->kube_version, "v1.27.0");
  EXPECT_EQ(c.benchmark->repeat, 1);
  EXPECT_EQ(c.infrastructure.prefix_ip, "192.168");
  EXPECT_EQ(c.infrastructure.middle_ip, 100);
  EXPECT_EQ(c.infrastructure.middle_ip_base, 90);
  EXPECT_EQ(c.infrastructure.cloud_link.latency_avg, -1);
  EXPECT_EQ(c.infrastructure.wireless_network_preset, "4g");
  EXPECT_EQ(c.infrastructure.libvirt_uri, "qemu:///system");
  EXPECT_EQ(c.infrastructure.accelerator, "auto");
  const char* home = std::getenv("HOME");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(c.infrastructure.base_path, std::string(home));
  EXPECT_EQ(c.infrastructure.ssh_key, std::string(home) + "/.ssh/id_rsa_continuum");
  EXPECT_FALSE(c.execution_model);
  EXPECT_TRUE(c.warnings.empty());
}

TEST_F(ConfigTest, WhereRecordsFileAndLineOfEveryKey) {
  Config c = ok(kCloud);
  ASSERT_TRUE(c.where.count("infrastructure.cloud_nodes"));
  EXPECT_EQ(c.where["infrastructure.cloud_nodes"].line, 3);
  EXPECT_EQ(c.where["benchmark.frequency"].line, 17);
  EXPECT_NE(c.where["benchmark.frequency"].file.find("c.cfg"), std::string::npos);
  EXPECT_FALSE(c.where.count("benchmark.duration"));  // not in the file
}

TEST_F(ConfigTest, DerivedDefaultsFollowTheMode) {
  Config edge = ok(R"([infrastructure]
provider = qemu
cloud_nodes = 1
cloud_cores = 4
cloud_memory = 4
cloud_quota = 1.0
edge_nodes = 2
edge_cores = 2
edge_memory = 3
edge_quota = 0.75
endpoint_nodes = 2
endpoint_cores = 1
endpoint_memory = 2
endpoint_quota = 0.5
[benchmark]
resource_manager = kubeedge
application = image_classification
frequency = 5
)");
  EXPECT_EQ(edge.mode(), Tier::edge);
  EXPECT_DOUBLE_EQ(edge.benchmark->application_worker_cpu, 1.5);
  EXPECT_DOUBLE_EQ(edge.benchmark->application_worker_memory, 2.5);
  EXPECT_DOUBLE_EQ(edge.benchmark->application_endpoint_memory, 2);

  Config ep = ok(R"([infrastructure]
provider = qemu
endpoint_nodes = 1
endpoint_cores = 2
endpoint_memory = 1
endpoint_quota = 0.5
[benchmark]
resource_manager = none
application = image_classification
frequency = 5
)");
  EXPECT_EQ(ep.mode(), Tier::endpoint);
  EXPECT_DOUBLE_EQ(ep.benchmark->application_worker_cpu, 0);
  EXPECT_DOUBLE_EQ(ep.benchmark->application_endpoint_cpu, 2);
}

TEST_F(ConfigTest, BooleanSpellingsAnyCase) {
  for (const char* t : {"1", "yes", "true", "on", "TRUE", "Yes", "On"}) {
    Config c = ok(std::string(kCloud) + "docker_pull = " + t + "\n");
    EXPECT_TRUE(c.benchmark->docker_pull) << t;
  }
  for (const char* f : {"0", "no", "false", "off", "FALSE", "No", "oFF"}) {
    Config c = ok(std::string(kCloud) + "docker_pull = " + f + "\n");
    EXPECT_FALSE(c.benchmark->docker_pull) << f;
  }
  std::string m = bad(std::string(kCloud) + "docker_pull = maybe\n");
  EXPECT_NE(m.find(":18: [benchmark] docker_pull = maybe: expected a boolean"), std::string::npos)
      << m;
}

TEST_F(ConfigTest, WrongTypesAndRangesNameLineKeyAndAllowed) {
  std::string m = bad(std::string(kCloud) + "duration = 5.5\napplications_per_worker = 0\n");
  EXPECT_NE(
      m.find("c.cfg:18: [benchmark] duration = 5.5: expected an integer; allowed: an integer >= 1"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:19: [benchmark] applications_per_worker = 0: out of range; allowed: an "
                   "integer >= 1"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, AllErrorsOfAFileAtOnceSortedByLine) {
  std::string m = bad(R"([infrastructure]
provider = qemux
cloud_nodes = -1
endpoint_nodes = 1
endpoint_cores = 0
endpoint_memory = 1
endpoint_quota = 2
[benchmark]
resource_manager = none
application = image_classification
frequency = 0
)");
  EXPECT_EQ(count_lines(m), 5) << m;
  EXPECT_NE(
      m.find(":2: [infrastructure] provider = qemux: not a valid provider (did you mean `qemu`?)"),
      std::string::npos)
      << m;
  EXPECT_LT(m.find(":3:"), m.find(":5:"));
  EXPECT_LT(m.find(":7:"), m.find(":11:"));
}

TEST_F(ConfigTest, InlineCommentsAreStripped) {
  Config c = ok(R"([infrastructure]
provider = qemu         # Options: qemu, gcp
cloud_nodes = 2 ; two
cloud_cores = 4
cloud_memory = 4
cloud_quota = 1.0
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
network_emulation = True    # on
cloud_endpoint_throughput = 7.21# no space before the hash
base_image = /images/a#b.qcow2
[benchmark]
resource_manager = kubernetes   # comment
application = image_classification
frequency = 5;x
)");
  EXPECT_EQ(c.infrastructure.provider, continuum::config::Provider::qemu);
  EXPECT_EQ(c.infrastructure.cloud.nodes, 2);
  EXPECT_DOUBLE_EQ(c.infrastructure.cloud_endpoint_link.throughput, 7.21);
  // In a string a # only starts a comment after whitespace.
  EXPECT_EQ(c.infrastructure.base_image, "/images/a#b.qcow2");
  EXPECT_EQ(c.benchmark->frequency, 5);
}

TEST_F(ConfigTest, QuotedValuesAreUnquotedAndLiteral) {
  Config c = ok(std::string(kCloud) + R"(
[workload q]
command = "echo a ; echo b # not a comment"   # but this is
nodes = 'cloud0'
)");
  ASSERT_EQ(c.workloads.size(), 1u);
  EXPECT_EQ(c.workloads[0].command, "echo a ; echo b # not a comment");
  EXPECT_EQ(c.workloads[0].nodes, std::vector<std::string>{"cloud0"});

  Config g = ok(R"([infrastructure]
provider = gcp
infra_only = True
cloud_nodes = 1
cloud_cores = 2
cloud_memory = 4
cloud_quota = 1.0
gcp_cloud = "e2-medium"
gcp_region = 'europe-west4'
gcp_zone = europe-west4-a
gcp_project = "p"
gcp_credentials = "/k.json"
)");
  EXPECT_EQ(g.infrastructure.provider_options["gcp_cloud"], "e2-medium");
  EXPECT_EQ(g.infrastructure.provider_options["gcp_region"], "europe-west4");
  EXPECT_TRUE(has_warning(g, "deploys only with provider = qemu"));
  // An empty quoted value is empty, hence missing when mandatory.
  std::string m = bad(R"([infrastructure]
provider = gcp
infra_only = True
cloud_nodes = 1
cloud_cores = 2
cloud_memory = 4
cloud_quota = 1.0
gcp_cloud = "e2-medium"
gcp_region = ""
gcp_zone = z
gcp_project = p
gcp_credentials = /k
)");
  EXPECT_NE(m.find(":9: [infrastructure] gcp_region = : empty; mandatory with provider = gcp"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, UnterminatedQuoteIsAnError) {
  std::string m = bad(std::string(kCloud) + "[workload q]\ncommand = \"echo hi\nnodes = cloud0\n");
  EXPECT_NE(m.find(":19: key `command`: the value starts with \" but has no closing \""),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, LongLinesAreNotCut) {
  std::string cmd = "echo " + std::string(400, 'x');
  Config c = ok(std::string(kCloud) + "[workload long]\ncommand = " + cmd + "\nnodes = cloud0\n");
  ASSERT_EQ(c.workloads.size(), 1u);
  EXPECT_EQ(c.workloads[0].command, cmd);
  EXPECT_EQ(c.where["workload long.nodes"].line, 20);  // line numbers stay right after a long line

  std::string key(300, 'k');
  std::string m = bad(std::string(kCloud) + key + " = 1\n");
  EXPECT_NE(m.find(":18: [benchmark] " + key + " = 1: unknown key"), std::string::npos) << m;
}

TEST_F(ConfigTest, LongLineWithoutSeparatorIsReportedOnItsLine) {
  std::string m = bad(std::string(kCloud) + std::string(250, 'z') + "\nduration = 10\n");
  EXPECT_NE(m.find(":18: `zzzz"), std::string::npos) << m;
  EXPECT_NE(m.find("not a `key = value` line"), std::string::npos) << m;
  EXPECT_EQ(count_lines(m), 1) << m;
}

TEST_F(ConfigTest, CrLfAndByteOrderMarkAreAccepted) {
  std::string text = "\xEF\xBB\xBF" + kCloud;
  std::string crlf;
  for (char ch : text) {
    if (ch == '\n') crlf += '\r';
    crlf += ch;
  }
  Config c = ok(crlf);
  EXPECT_EQ(c.benchmark->frequency, 5);
  EXPECT_EQ(c.where["benchmark.frequency"].line, 17);
}

TEST_F(ConfigTest, KeysAreCaseInsensitiveSectionsAreNot) {
  std::string t = kCloud;
  t.replace(t.find("provider"), 8, "PROVIDER");
  Config c = ok(t);
  EXPECT_EQ(c.infrastructure.provider, continuum::config::Provider::qemu);
  std::string m = bad(std::string(kCloud) + "[Energy]\nenabled = False\n");
  EXPECT_NE(m.find(":18: [Energy]: unknown section (did you mean [energy]?)"), std::string::npos)
      << m;
}

TEST_F(ConfigTest, PrefixAndMiddleIp) {
  Config c = ok(R"([infrastructure]
provider = qemu
infra_only = yes
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
prefixIP = 10.20
middleIP = 200
middleIP_base = 201
base_path = ~/work/
)");
  EXPECT_EQ(c.infrastructure.prefix_ip, "10.20");
  EXPECT_EQ(c.infrastructure.middle_ip, 200);
  EXPECT_EQ(c.infrastructure.base_path, std::string(std::getenv("HOME")) + "/work");
  EXPECT_FALSE(c.benchmark);
  std::string m = bad(R"([infrastructure]
provider = qemu
infra_only = yes
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
prefixIP = 10.255
middleIP = 90
)");
  EXPECT_NE(m.find(":8: [infrastructure] prefixIP = 10.255: not two dot-separated numbers"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":9: [infrastructure] middleIP = 90: middleIP and middleIP_base are both 90"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, MandatoryTierKeysAndZeroNodes) {
  std::string m = bad("[infrastructure]\nprovider = qemu\ninfra_only = True\ncloud_nodes = 1\n");
  EXPECT_NE(m.find(":1: [infrastructure] cloud_cores: missing; mandatory when cloud_nodes > 0"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("cloud_memory: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("cloud_quota: missing"), std::string::npos) << m;
  m = bad("[infrastructure]\nprovider = qemu\ninfra_only = True\n");
  EXPECT_NE(m.find("cloud_nodes + edge_nodes + endpoint_nodes is 0"), std::string::npos) << m;
}

TEST_F(ConfigTest, SectionRules) {
  std::string m =
      bad("[infrastructure]\nprovider = qemu\nendpoint_nodes = 1\nendpoint_cores = 1\n"
          "endpoint_memory = 1\nendpoint_quota = 0.5\n");
  EXPECT_NE(m.find("[benchmark] section missing; required unless infra_only = True"),
            std::string::npos)
      << m;
  m = bad("[benchmark]\nresource_manager = none\n");
  EXPECT_NE(m.find("[infrastructure] section missing"), std::string::npos) << m;
}

TEST_F(ConfigTest, KnownButUnusedKeysWarnUnknownKeysFail) {
  Config c = ok(std::string(kCloud) + "runtime = kata-qemu\nsleep_time = 3\n" +
                "[execution_model]\nmodel = openfaas\n");
  EXPECT_TRUE(has_warning(c,
                          ":18: [benchmark] runtime = kata-qemu: ignored; only used when "
                          "resource_manager = kube_kata"));
  EXPECT_TRUE(
      has_warning(c, "sleep_time = 3: ignored; only used when application = empty or empty_kata"));
  ASSERT_TRUE(c.execution_model);
  EXPECT_EQ(c.execution_model->model, "openfaas");

  std::string m = bad(std::string(kCloud) + "frequncy = 5\n");
  EXPECT_NE(m.find(":18: [benchmark] frequncy = 5: unknown key (did you mean `frequency`?)"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, KubeVersionWithKubeEdgeAndGcpKeysWithQemuWarn) {
  Config c = ok(R"([infrastructure]
provider = qemu
cloud_nodes = 1
cloud_cores = 2
cloud_memory = 2
cloud_quota = 1
edge_nodes = 1
edge_cores = 1
edge_memory = 1
edge_quota = 1
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 1
gcp_zone = z
[benchmark]
resource_manager = kubeedge
kube_version = v1.27.0
application = image_classification
frequency = 1
)");
  EXPECT_TRUE(has_warning(c, "gcp_zone = z: ignored; only used when provider = gcp"));
  EXPECT_TRUE(has_warning(c,
                          "kube_version = v1.27.0: ignored; only used when resource_manager = "
                          "kubernetes, kubecontrol or kube_kata"));
}

TEST_F(ConfigTest, NetworkKeysNeedNetworkEmulation) {
  std::string text = kCloud;
  text.replace(text.find("network_emulation = True"), 24, "network_emulation = False");
  Config c = ok(text.replace(text.find("[benchmark]"), 0, "cloud_latency_avg = 5\n"));
  EXPECT_TRUE(has_warning(
      c, "wireless_network_preset = 4g: ignored; only used when network_emulation = True"));
  EXPECT_TRUE(has_warning(c, "cloud_latency_avg = 5: ignored"));
  EXPECT_EQ(c.infrastructure.cloud_link.latency_avg, -1);

  Config n = ok(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0,
                                            "endpoint_latency_avg = 2\nendpoint_throughput = 100\n"
                                            "cloud_endpoint_loss = 1.5\nlatency_is_rtt = True\n"
                                            "network_verify = off\nnetwork_strict = on\n"));
  EXPECT_DOUBLE_EQ(n.infrastructure.endpoint_link.latency_avg, 2);
  EXPECT_DOUBLE_EQ(n.infrastructure.endpoint_link.throughput, 100);
  EXPECT_DOUBLE_EQ(n.infrastructure.cloud_endpoint_link.loss, 1.5);
  EXPECT_TRUE(n.infrastructure.latency_is_rtt);
  EXPECT_FALSE(n.infrastructure.network_verify);
  EXPECT_TRUE(n.infrastructure.network_strict);
  std::string m = bad(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0,
                                                  "edge_loss = 101\ncloud_throughput = 0.5\n"));
  EXPECT_NE(m.find("edge_loss = 101: out of range; allowed: a number from 0 to 100"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("cloud_throughput = 0.5: out of range; allowed: a number >= 1"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, CrossChecksOfTheOriginal) {
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = kCloud;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  EXPECT_NE(bad(with("endpoint_nodes = 1",
                     "endpoint_nodes = 1\nedge_nodes = 1\nedge_cores = 1\nedge_memory = "
                     "1\nedge_quota = 1"))
                .find("kubernetes needs cloud_nodes >= 1 and edge_nodes = 0"),
            std::string::npos);
  EXPECT_NE(bad(with("cloud_nodes = 2", "cloud_nodes = 3")).find("multiple of the workers"),
            std::string::npos);
  EXPECT_NE(bad(with("endpoint_nodes = 1", "endpoint_nodes = 0")).find("needs at least 1 endpoint"),
            std::string::npos);
  EXPECT_NE(bad(with("resource_manager = kubernetes", "resource_manager = mist"))
                .find("mist needs cloud_nodes = 0"),
            std::string::npos);
  EXPECT_NE(bad(with("resource_manager = kubernetes", "resource_manager = kubeedge"))
                .find("kubeedge needs cloud_nodes = 1"),
            std::string::npos);
  EXPECT_NE(
      bad(kCloud + "resource_manager_only = True\n").find("set while resource_manager_only = True"),
      std::string::npos);
  EXPECT_NE(bad(with("application = image_classification\nfrequency = 5", ""))
                .find("mandatory when resource_manager_only = False"),
            std::string::npos);
  EXPECT_NE(bad(with("resource_manager = kubernetes", "resource_manager = kubecontrol"))
                .find("does not run with resource_manager = kubecontrol"),
            std::string::npos);
  EXPECT_NE(bad(with("application = image_classification\nfrequency = 5",
                     "application = empty\nsleep_time = 5"))
                .find("empty needs resource_manager = kubecontrol"),
            std::string::npos);
  EXPECT_NE(bad(with("resource_manager = kubernetes", "resource_manager = none") +
                "[execution_model]\nmodel = openfaas\n")
                .find("openfaas needs resource_manager = kubernetes"),
            std::string::npos);
  EXPECT_NE(bad(with("frequency = 5", ""))
                .find("frequency: missing; mandatory when application = image_classification"),
            std::string::npos);
}

TEST_F(ConfigTest, KataRules) {
  std::string kata = R"([infrastructure]
provider = qemu
cloud_nodes = 2
cloud_cores = 4
cloud_memory = 4
cloud_quota = 1
[benchmark]
resource_manager = kube_kata
runtime = kata-fc
runtime_filesystem = overlayfs
application = stress
stress_app_timeout = 5
kube_deployment = file
)";
  std::string m = bad(kata);
  EXPECT_NE(m.find(":10: [benchmark] runtime_filesystem = overlayfs: overlayfs cannot be used with "
                   "runtime = kata-fc"),
            std::string::npos)
      << m;
  Config c = ok(std::string(kata).replace(kata.find("overlayfs"), 9, "devmapper"));
  EXPECT_EQ(c.benchmark->runtime, "kata-fc");
  EXPECT_EQ(c.benchmark->kube_deployment, "file");
  EXPECT_EQ(c.benchmark->stress_app_timeout, 5);
}

TEST_F(ConfigTest, StructuralErrors) {
  std::string m = bad("cloud_nodes = 1\n" + kCloud);
  EXPECT_NE(m.find(":1: key `cloud_nodes` outside any section"), std::string::npos) << m;
  m = bad(kCloud + "frequency = 6\n");
  EXPECT_NE(m.find(":18: [benchmark] frequency = 6: duplicate key (first set at line 17)"),
            std::string::npos)
      << m;
  m = bad(kCloud + "[benchmark]\n");
  EXPECT_NE(m.find(":18: [benchmark]: duplicate section (first at line 14)"), std::string::npos)
      << m;
  m = bad(kCloud + "   more\n");
  EXPECT_NE(m.find(":18: indented line after `frequency` (line 17)"), std::string::npos) << m;
  m = bad(kCloud + "[workload x\n");
  EXPECT_NE(m.find(":18: section header `[workload x` has no closing `]`"), std::string::npos) << m;
}

TEST_F(ConfigTest, FileLevelErrors) {
  auto msg = [](const fs::path& p) {
    auto c = load(p);
    EXPECT_FALSE(c.ok());
    if (c.ok()) return std::string();
    EXPECT_EQ(c.error().exit_code, continuum::ExitCode::usage);
    return c.error().message;
  };
  EXPECT_NE(msg(dir_ / "nope.cfg").find("does not exist"), std::string::npos);
  EXPECT_NE(msg(dir_).find("is a directory"), std::string::npos);
  EXPECT_NE(msg(write("")).find("file is empty"), std::string::npos);
  EXPECT_NE(msg(write("  \n\n")).find("file is empty"), std::string::npos);
  EXPECT_NE(
      msg(write(std::string("[infrastructure]\nprovider = qemu\0\n", 33))).find(":2: binary file"),
      std::string::npos);
  EXPECT_NE(msg(write("[infrastructure]\n\nprovider = q\xC3\x28\n")).find(":3: not valid UTF-8"),
            std::string::npos);
  if (::geteuid() != 0) {  // root reads everything
    fs::path p = write(kCloud);
    fs::permissions(p, fs::perms::none);
    EXPECT_NE(msg(p).find("cannot read"), std::string::npos);
  }
}

TEST_F(ConfigTest, WorkloadSections) {
  Config c = ok(std::string(kCloud) + R"(
[workload uptime]
command = uptime && cat /proc/loadavg
nodes = cloud, endpoint0
repeat = 3
warmup = 1
timeout = 30
env = A=1, B_2=x=y
parallel = true
)");
  ASSERT_EQ(c.workloads.size(), 1u);
  const auto& w = c.workloads[0];
  EXPECT_EQ(w.name, "uptime");
  EXPECT_EQ(w.command, "uptime && cat /proc/loadavg");
  EXPECT_EQ(w.nodes, (std::vector<std::string>{"cloud", "endpoint0"}));
  EXPECT_EQ(w.repeat, 3);
  EXPECT_EQ(w.warmup, 1);
  EXPECT_DOUBLE_EQ(w.timeout, 30);
  EXPECT_EQ(w.env.at("A"), "1");
  EXPECT_EQ(w.env.at("B_2"), "x=y");
  EXPECT_TRUE(w.parallel);
  EXPECT_EQ(w.where.line, 19);

  // With one cloud node and kubernetes that node is the controller: cloud0 does not exist.
  std::string m =
      bad(std::string(kCloud).replace(kCloud.find("cloud_nodes = 2"), 15, "cloud_nodes = 1") +
          "[workload w]\ncommand = true\nnodes = cloud0\nenv = 1X=2\n");
  EXPECT_NE(m.find(":20: [workload w] nodes = cloud0: no node `cloud0` in this configuration"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("cloud_controller"), std::string::npos) << m;
  EXPECT_NE(m.find(":21: [workload w] env = 1X=2: `1X=2` is not NAME=VALUE"), std::string::npos)
      << m;
  m = bad(kCloud + "[workload w]\nnodes = cloud\n");
  EXPECT_NE(m.find(":18: [workload w] command: missing"), std::string::npos) << m;
  m = bad(kCloud + "[workload a b]\ncommand = x\nnodes = cloud\n");
  EXPECT_NE(m.find(":18: [workload a b]: a workload section has one name"), std::string::npos) << m;
}

TEST_F(ConfigTest, WorkloadReplacesTheApplication) {
  Config c = ok(R"([infrastructure]
provider = qemu
cloud_nodes = 1
cloud_cores = 1
cloud_memory = 1
cloud_quota = 1
[benchmark]
resource_manager = none
[workload q]
command = echo hi
nodes = cloud_controller
)");
  EXPECT_EQ(c.benchmark->application, continuum::config::Application::none);
  EXPECT_EQ(c.workloads.size(), 1u);
}

TEST_F(ConfigTest, LinkSections) {
  Config c = ok(kCloud + R"([link cloud0 endpoint0]
latency_avg = 20
latency_var = 2
throughput = 50
loss = 0.5
[link cloud endpoint]
latency_avg = 3
)");
  ASSERT_EQ(c.infrastructure.pair_overrides.size(), 2u);
  const auto& p = c.infrastructure.pair_overrides[0];
  EXPECT_EQ(p.a, "cloud0");
  EXPECT_EQ(p.b, "endpoint0");
  EXPECT_DOUBLE_EQ(p.values.latency_avg, 20);
  EXPECT_DOUBLE_EQ(p.values.loss, 0.5);
  EXPECT_EQ(p.where.line, 18);
  EXPECT_DOUBLE_EQ(c.infrastructure.pair_overrides[1].values.throughput, -1);

  std::string m = bad(
      kCloud +
      "[link cloud0 endpoint7]\nlatency_avg = 1\n[link cloud0]\n[link cloud0 edge0]\nloss = 200\n");
  EXPECT_NE(m.find(":18: [link cloud0 endpoint7]: no node `endpoint7` in this configuration (did "
                   "you mean `endpoint0`?)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":20: [link cloud0]: a link section names two nodes"), std::string::npos) << m;
  EXPECT_NE(m.find(":21: [link cloud0 edge0]: no node `edge0`"), std::string::npos) << m;
  EXPECT_NE(m.find(":22: [link cloud0 edge0] loss = 200: out of range"), std::string::npos) << m;
}

TEST_F(ConfigTest, EnergySection) {
  std::string infra_extra = "virtiofs = True\n";
  Config c = ok(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0, infra_extra) + R"(
[energy]
enabled = True
exporter = guest
host_port_base = 9100
interval = 0.5
scrape_timeout = 1
host_feed = on
path = /metrics
)");
  EXPECT_TRUE(c.energy.enabled);
  EXPECT_EQ(c.energy.exporter, continuum::config::Exporter::guest);
  EXPECT_EQ(c.energy.host_port_base, 9100);
  EXPECT_DOUBLE_EQ(c.energy.interval, 0.5);
  EXPECT_TRUE(c.energy.host_feed);
  EXPECT_TRUE(c.infrastructure.virtiofs);

  std::string m = bad(
      kCloud + "[energy]\nenabled = True\nexporter = guest\ninterval = 0\nguest_port = 70000\n");
  EXPECT_NE(m.find(":20: [energy] exporter = guest: needs virtiofs = True"), std::string::npos)
      << m;
  EXPECT_NE(m.find(":21: [energy] interval = 0: out of range; allowed: a number > 0"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":22: [energy] guest_port = 70000: out of range"), std::string::npos) << m;

  Config off = ok(kCloud + "[energy]\nenabled = False\ninterval = 2\n");
  EXPECT_FALSE(off.energy.enabled);
  EXPECT_TRUE(has_warning(off, "interval = 2: ignored; only used when enabled = True"));
}

TEST_F(ConfigTest, NewInfrastructureKeys) {
  std::string sha(64, 'a');
  Config c = ok(std::string(kCloud).replace(
      kCloud.find("[benchmark]"), 0,
      "libvirt_uri = test:///default\naccelerator = tcg\n"
      "base_image = https://example.invalid/x.qcow2\nbase_image_sha256 = " +
          sha + "\nnetwork_mode = bridge\nbridge_name = br0\nssh_key = ~/k\nboot_timeout = 90\n"));
  EXPECT_EQ(c.infrastructure.libvirt_uri, "test:///default");
  EXPECT_EQ(c.infrastructure.accelerator, "tcg");
  EXPECT_EQ(c.infrastructure.network_mode, "bridge");
  EXPECT_EQ(c.infrastructure.ssh_key, std::string(std::getenv("HOME")) + "/k");
  EXPECT_EQ(c.infrastructure.boot_timeout, 90);
  std::string m = bad(std::string(kCloud).replace(
      kCloud.find("[benchmark]"), 0,
      "accelerator = hvf\nbase_image_sha256 = abc\nbridge_name = a_very_long_bridge_name\n"));
  EXPECT_NE(m.find("accelerator = hvf: not a valid accelerator"), std::string::npos) << m;
  EXPECT_NE(m.find("; allowed: auto, kvm or tcg"), std::string::npos) << m;
  EXPECT_NE(m.find("base_image_sha256 = abc: not a SHA-256 checksum"), std::string::npos) << m;
  EXPECT_NE(m.find("bridge_name = a_very_long_bridge_name: not a network interface name"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, GuestInternetKeys) {
  auto infra = [&](const std::string& extra) {
    return std::string(kCloud).replace(kCloud.find("[benchmark]"), 0, extra);
  };
  Config d = ok(kCloud);
  EXPECT_EQ(d.infrastructure.guest_internet, "nat");
  EXPECT_TRUE(d.infrastructure.guest_http_proxy.empty());
  EXPECT_TRUE(d.infrastructure.reachability_check);
  EXPECT_DOUBLE_EQ(d.infrastructure.reachability_timeout, 5);

  Config c = ok(infra(
      "guest_internet = none\nguest_http_proxy = http://10.0.0.1:3128\n"
      "guest_https_proxy = https://proxy.lab/\nguest_no_proxy = localhost, 127.0.0.1,.lab\n"
      "guest_apt_proxy = http://[fd00::1]:3142\nguest_apt_mirror = http://mirror.lab:8080/debian\n"
      "reachability_check = False\nreachability_timeout = 0.5\n"));
  const auto& i = c.infrastructure;
  EXPECT_EQ(i.guest_internet, "none");
  EXPECT_EQ(i.guest_http_proxy, "http://10.0.0.1:3128");
  EXPECT_EQ(i.guest_https_proxy, "https://proxy.lab/");
  EXPECT_EQ(i.guest_no_proxy, "localhost, 127.0.0.1,.lab");
  EXPECT_EQ(i.guest_apt_proxy, "http://[fd00::1]:3142");
  EXPECT_EQ(i.guest_apt_mirror, "http://mirror.lab:8080/debian");
  EXPECT_FALSE(i.reachability_check);
  EXPECT_DOUBLE_EQ(i.reachability_timeout, 0.5);

  std::string m = bad(infra(
      "guest_internet = bridged\nguest_http_proxy = 10.0.0.1:3128\n"
      "guest_https_proxy = http://proxy:99999\nguest_apt_proxy = http://h:3142/acng\n"
      "guest_apt_mirror = ftp://m/debian\nguest_no_proxy = a b,c\nreachability_timeout = 0\n"));
  EXPECT_NE(
      m.find("c.cfg:14: [infrastructure] guest_internet = bridged: not a valid guest_internet"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:15: [infrastructure] guest_http_proxy = 10.0.0.1:3128: not an http:// or "
                   "https:// URL"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:16: [infrastructure] guest_https_proxy = http://proxy:99999: the port "
                   "`99999` is not 1 to 65535"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:17: [infrastructure] guest_apt_proxy = http://h:3142/acng: has a path"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:18: [infrastructure] guest_apt_mirror = ftp://m/debian: not an http:// "
                   "or https:// URL"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:19: [infrastructure] guest_no_proxy = a b,c: an entry has a space"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("c.cfg:20: [infrastructure] reachability_timeout = 0: out of range; allowed: a "
                   "number > 0"),
            std::string::npos)
      << m;

  m = bad(infra("guest_http_proxy = http://u:p@h:1\n"));
  EXPECT_NE(m.find("c.cfg:14: [infrastructure] guest_http_proxy = http://u:p@h:1: has user@"),
            std::string::npos)
      << m;

  Config br = ok(infra("network_mode = bridge\nguest_internet = nat\n"));
  EXPECT_TRUE(has_warning(br, "guest_internet = nat: ignored with network_mode = bridge"))
      << br.warnings.size();
}

TEST_F(ConfigTest, DirectOffloadOnlyWithoutResourceManager) {
  const std::string none = std::string(kCloud).replace(kCloud.find("kubernetes"), 10, "none");
  EXPECT_FALSE(ok(none).benchmark->direct_offload);
  EXPECT_TRUE(ok(none + "direct_offload = True\n").benchmark->direct_offload);
  std::string m = bad(kCloud + "direct_offload = True\n");
  EXPECT_NE(m.find("c.cfg:18: [benchmark] direct_offload = True: only meaningful with "
                   "resource_manager = none "
                   "(have kubernetes"),
            std::string::npos)
      << m;
  EXPECT_FALSE(ok(kCloud + "direct_offload = False\n").benchmark->direct_offload);
  std::string endpoints_only = R"([infrastructure]
provider = qemu
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5

[benchmark]
resource_manager = none
application = image_classification
frequency = 1
direct_offload = yes
)";
  m = bad(endpoints_only);
  EXPECT_NE(m.find("c.cfg:12: [benchmark] direct_offload = yes: needs cloud or edge nodes"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, EnergyMinCoverage) {
  Config d = ok(kCloud + "[energy]\nenabled = True\n");
  EXPECT_DOUBLE_EQ(d.energy.min_coverage, 0.5);
  EXPECT_DOUBLE_EQ(ok(kCloud + "[energy]\nenabled = True\nmin_coverage = 0\n").energy.min_coverage,
                   0);
  EXPECT_DOUBLE_EQ(ok(kCloud + "[energy]\nenabled = True\nmin_coverage = 1\n").energy.min_coverage,
                   1);
  std::string m = bad(kCloud + "[energy]\nenabled = True\nmin_coverage = 1.5\n");
  EXPECT_NE(
      m.find("c.cfg:20: [energy] min_coverage = 1.5: out of range; allowed: a number from 0 to 1"),
      std::string::npos)
      << m;
}

TEST_F(ConfigTest, SeedEnergyKeysAndExporterCommand) {
  // The seed's spelling of the share switch, its values as defaults, and the run-wide scope.
  std::string seed =
      std::string(kCloud).replace(kCloud.find("[benchmark]"), 0, "virtiofsd = true\n");
  Config c = ok(seed + R"([energy]
enabled = True
scope = run
exporter_kind = node_exporter
exporter_command = SCAPHANDRE_POWERCAP_PATH={share} scaphandre prometheus --address {address} --port {port} 'lit {{x}}'
exporter_start_timeout = 12
[experiment]
name = tpch no kube
)");
  EXPECT_TRUE(c.infrastructure.virtiofs);
  EXPECT_EQ(c.infrastructure.virtiofs_host_dir, "/var/lib/libvirt/scaphandre");
  EXPECT_EQ(c.infrastructure.virtiofs_guest_dir, "/var/scaphandre");
  EXPECT_EQ(c.energy.scope, continuum::config::EnergyScope::run);
  EXPECT_EQ(c.energy.exporter_kind, continuum::config::ExporterKind::node_exporter);
  EXPECT_EQ(
      c.energy.exporter_command,
      (std::vector<std::string>{"SCAPHANDRE_POWERCAP_PATH={share}", "scaphandre", "prometheus",
                                "--address", "{address}", "--port", "{port}", "lit {{x}}"}));
  EXPECT_DOUBLE_EQ(c.energy.exporter_start_timeout, 12);
  EXPECT_EQ(c.experiment, "tpch no kube");
  // Without [experiment], the configuration's name.
  EXPECT_EQ(ok(kCloud).experiment, "c");

  std::string m = bad(kCloud + R"([energy]
enabled = True
exporter_command = scaphandre --port {prot}
scope = always
[experiment]
name = a/b
)");
  EXPECT_NE(m.find(":20: [energy] exporter_command = scaphandre --port {prot}: unknown "
                   "placeholder {prot}; allowed: {address}, {index}, {port}, {share}, {vm}"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":21: [energy] scope = always"), std::string::npos) << m;
  EXPECT_NE(m.find(":23: [experiment] name = a/b: not an experiment name"), std::string::npos) << m;
  m = bad(kCloud + "[energy]\nenabled = True\nexporter_command = x 'open\n");
  EXPECT_NE(m.find(":20: [energy] exporter_command = x 'open: unclosed ' quote"), std::string::npos)
      << m;
  std::string guest =
      std::string(kCloud).replace(kCloud.find("[benchmark]"), 0, "virtiofs = True\n");
  m = bad(guest + "[energy]\nenabled = True\nexporter = guest\nexporter_command = x {port}\n");
  EXPECT_NE(m.find("exporter_command = x {port}: starts exporters on this host"), std::string::npos)
      << m;
  m = bad(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0,
                                      "virtiofs = False\nvirtiofsd = True\n"));
  EXPECT_NE(m.find("virtiofsd = True: contradicts virtiofs"), std::string::npos) << m;
  m = bad(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0,
                                      "base_image = /x.qcow2\nimage_variant = energy\n"));
  EXPECT_NE(m.find("image_variant = energy: chooses the offline image's recipe, but base_image"),
            std::string::npos)
      << m;
  EXPECT_EQ(
      ok(std::string(kCloud).replace(kCloud.find("[benchmark]"), 0, "image_variant = energy\n"))
          .infrastructure.image_variant,
      "energy");
}

TEST_F(ConfigTest, BenchmarkRepeatKeys) {
  Config c = ok(kCloud +
                "repeat = 4\nrepeat_pause = 2.5\nplaybook_timeout = 100\nbenchmark_timeout = 0\n");
  EXPECT_EQ(c.benchmark->repeat, 4);
  EXPECT_DOUBLE_EQ(c.benchmark->repeat_pause, 2.5);
  EXPECT_EQ(c.benchmark->playbook_timeout, 100);
  std::string m = bad(kCloud + "repeat = 0\nrepeat_pause = -1\n");
  EXPECT_NE(m.find(":18: [benchmark] repeat = 0: out of range; allowed: an integer >= 1"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":19: [benchmark] repeat_pause = -1: out of range; allowed: a number >= 0"),
            std::string::npos)
      << m;
}

TEST_F(ConfigTest, InfraOnlyIgnoresBenchmarkAndWorkloads) {
  Config c = ok(R"([infrastructure]
provider = qemu
infra_only = True
cloud_nodes = 1
cloud_cores = 1
cloud_memory = 1
cloud_quota = 1
[benchmark]
resource_manager = none
resource_manager_only = True
[workload w]
command = true
nodes = cloud0
)");
  EXPECT_FALSE(c.benchmark);
  EXPECT_TRUE(c.workloads.empty());
  EXPECT_TRUE(has_warning(c, ":8: [benchmark]: ignored; infra_only = True"));
  EXPECT_TRUE(has_warning(c, ":11: [workload w]: ignored"));
}

TEST_F(ConfigTest, LoadTextNamesTheGivenFile) {
  auto c = continuum::config::load_text(kCloud, "inline.cfg");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->where["benchmark.frequency"].file, "inline.cfg");
  auto e = continuum::config::load_text("[infrastructure]\n= qemu\nprovider = qemu\n", "x.cfg");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("x.cfg:2: `= qemu`: a value without a key name"),
            std::string::npos)
      << e.error().message;
}

TEST_F(ConfigTest, PercentSignsAreLiteral) {
  // configparser's interpolation made the original crash on a lone %.
  Config c = ok(kCloud + "[workload w]\ncommand = df -h | grep 100%\nnodes = cloud0\n");
  EXPECT_EQ(c.workloads.at(0).command, "df -h | grep 100%");
}

TEST_F(ConfigTest, CcgridNamesGetAHint) {
  std::string t = kCloud;
  t.replace(t.find("provider = qemu"), 15, "provider = terraform");
  std::string m = bad(t + "[execution_model]\nmodel = openFaas\n");
  EXPECT_NE(m.find(":2: [infrastructure] provider = terraform: the CCGRID artifact's name; this "
                   "version calls it `gcp`"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(":19: [execution_model] model = openFaas: the CCGRID artifact's name"),
            std::string::npos)
      << m;
}

}  // namespace
