// environment.json (record/environment.h, infra/environment_probe.h): the JSON and its nulls,
// /proc/cpuinfo and uname, the git commit of a real repository, the libvirt facts of the
// test:///default driver, the accelerator and image from domain XMLs and image.json, and the
// guests' kernels through a fake SSH session (no VM needed).
#include "continuum/record/environment.h"

#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "continuum/infra/environment_probe.h"
#include "continuum/util/files.h"
#include "continuum/util/hash.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"
#include "support/temp_dir.h"

using namespace continuum;
namespace fs = std::filesystem;

namespace {

using test_support::TempDir;

std::string run_ok(const std::vector<std::string>& argv) {
  util::ProcessSpec spec;
  spec.argv = argv;
  auto r = util::run_process(spec);
  EXPECT_TRUE(r.ok());
  if (!r) return "";
  EXPECT_EQ(r->exit_code, 0) << util::join(argv, " ") << ": " << r->err;
  return std::string(util::trim(r->out));
}

/// A guest that answers the probe command as a Debian guest under TCG does.
class FakeGuest : public util::Remote {
 public:
  explicit FakeGuest(std::string answer, int exit_code = 0)
      : answer_(std::move(answer)), exit_code_(exit_code) {}
  Expected<util::ExecResult> exec(const std::string& command, std::chrono::milliseconds) override {
    util::ExecResult r;
    EXPECT_EQ(command, infra::guest_probe_command());
    r.exit_code = exit_code_;
    r.out = answer_;
    if (exit_code_) r.err = "sed: not found";
    return r;
  }
  Status upload(const std::string&, const std::string&, int) override { return {}; }
  std::string describe() const override { return "fake"; }

 private:
  std::string answer_;
  int exit_code_;
};

}  // namespace

TEST(Environment, JsonHasEveryFieldAndNullForUnknown) {
  record::Environment env;
  env.collected = "2026-12-02T03:00:00.000000000Z";
  env.continuum = {"0.1.0", std::string(40, 'a'), true, false};
  env.host = {
      "lab",   "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", 2, "Linux", "6.1.0-27-amd64", "#1 SMP",
      "x86_64"};
  record::HypervisorFacts hv;
  hv.uri = "qemu:///system";
  hv.type = "QEMU";
  hv.hypervisor_version = "7.2.0";
  hv.libvirt_version = "9.0.0";
  hv.accelerator = "tcg";
  env.hypervisors.push_back(hv);
  env.image.source = "offline";
  env.image.id = "offline-default-0123456789ab";
  env.image.recipe_sha256 = std::string(64, 'b');
  record::GuestFacts g;
  g.node = "cloud0";
  g.domain = "cloud0_alice";
  g.accelerator = "tcg";
  g.kernel = "6.1.0-27-amd64";
  g.vcpus = 1;
  env.guests.push_back(g);
  env.errors.push_back("guest edge0: cannot connect");

  auto j = record::to_json(env);
  EXPECT_EQ(j["format"], "continuum-environment");
  EXPECT_EQ(j["version"], 1);
  EXPECT_EQ(j["continuum"]["git_commit"], std::string(40, 'a'));
  EXPECT_EQ(j["continuum"]["git_dirty"], false);
  EXPECT_EQ(j["host"]["logical_cpus"], 2);
  EXPECT_EQ(j["accelerator"], "tcg");
  EXPECT_EQ(j["hypervisors"]["qemu:///system"]["hypervisor_version"], "7.2.0");
  EXPECT_TRUE(j["hypervisors"]["qemu:///system"]["hostname"].is_null());  // unknown, not ""
  EXPECT_TRUE(j["hypervisors"]["qemu:///system"]["cpus"].is_null());      // unknown, not 0
  EXPECT_EQ(j["image"]["recipe_sha256"], std::string(64, 'b'));
  EXPECT_FALSE(j["image"].contains("url"));  // an offline image has no URL field at all
  EXPECT_EQ(j["guests"]["cloud0"]["kernel"], "6.1.0-27-amd64");
  EXPECT_TRUE(j["guests"]["cloud0"]["cpu_model"].is_null());
  EXPECT_EQ(j["errors"][0], "guest edge0: cannot connect");

  // A git state that could not be read is unknown, not "clean".
  env.continuum.git_known = false;
  env.continuum.git_commit.clear();
  j = record::to_json(env);
  EXPECT_TRUE(j["continuum"]["git_commit"].is_null());
  EXPECT_TRUE(j["continuum"]["git_dirty"].is_null());

  // Hosts on different accelerators are named together.
  env.hypervisors.push_back(hv);
  env.hypervisors.back().uri = "qemu+ssh://b/system";
  env.hypervisors.back().accelerator = "kvm";
  EXPECT_EQ(env.accelerator(), "kvm+tcg");
}

TEST(Environment, LibvirtVersionsAndCpuModels) {
  EXPECT_EQ(record::libvirt_version_string(9000000), "9.0.0");
  EXPECT_EQ(record::libvirt_version_string(7002001), "7.2.1");
  EXPECT_EQ(record::cpu_model_from_cpuinfo("processor\t: 0\nvendor_id\t: GenuineIntel\n"
                                           "model\t\t: 85\nmodel name\t: Intel(R) Xeon(R) Gold "
                                           "6130 CPU @ 2.10GHz\n"),
            "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz");
  // ARM: no "model name" in older kernels, "Model" on a Raspberry Pi.
  EXPECT_EQ(record::cpu_model_from_cpuinfo("processor\t: 0\nBogoMIPS\t: 108.00\n\n"
                                           "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n"),
            "Raspberry Pi 4 Model B Rev 1.4");
  EXPECT_EQ(record::cpu_model_from_cpuinfo("processor : 0\n"), "");
}

TEST(Environment, LocalHostIsThisMachine) {
  TempDir t("host");
  ASSERT_TRUE(util::write_file_atomic(t.path / "cpuinfo",
                                      "processor\t: 0\nmodel name\t: Test CPU 9000\n\n"
                                      "processor\t: 1\nmodel name\t: Test CPU 9000\n")
                  .ok());
  auto h = record::local_host(t.path / "cpuinfo");
  EXPECT_EQ(h.cpu_model, "Test CPU 9000");
  EXPECT_EQ(h.logical_cpus, sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(h.kernel_release, u.release);
  EXPECT_EQ(h.os, u.sysname);
  EXPECT_EQ(h.machine, u.machine);
  EXPECT_FALSE(h.hostname.empty());
  // The real file names some CPU on any Linux machine this runs on.
  EXPECT_FALSE(record::local_host().cpu_model.empty());
}

TEST(Environment, GitCommitAndDirtyFromARealRepository) {
  if (!util::have_program("git")) GTEST_SKIP() << "git not installed";
  TempDir t("git");
  auto repo = t.path.string();
  run_ok({"git", "-C", repo, "init", "-q"});
  ASSERT_TRUE(util::write_file_atomic(t.path / "a.txt", "one\n").ok());
  run_ok({"git", "-C", repo, "add", "a.txt"});
  run_ok({"git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q",
          "-m", "first"});
  std::string head = run_ok({"git", "-C", repo, "rev-parse", "HEAD"});

  auto b = record::this_build(t.path);
  EXPECT_FALSE(b.version.empty());
  EXPECT_TRUE(b.git_known);
  EXPECT_EQ(b.git_commit, head);
  EXPECT_FALSE(b.git_dirty);

  // An untracked file is not a change to what was built; a modified tracked one is.
  ASSERT_TRUE(util::write_file_atomic(t.path / "new.txt", "x\n").ok());
  EXPECT_FALSE(record::this_build(t.path).git_dirty);
  ASSERT_TRUE(util::write_file_atomic(t.path / "a.txt", "two\n").ok());
  EXPECT_TRUE(record::this_build(t.path).git_dirty);

  TempDir plain("nogit");
  auto none = record::this_build(plain.path);
  EXPECT_FALSE(none.git_known);
  EXPECT_TRUE(none.git_commit.empty());
}

TEST(Environment, HypervisorFactsFromTheLibvirtTestDriver) {
  auto h = infra::probe_hypervisor("test:///default");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->uri, "test:///default");
  EXPECT_EQ(h->type, "TEST");
  // The library this process links is the "daemon" of the in-process test driver.
  unsigned long lib = 0;
  ASSERT_EQ(virGetVersion(&lib, nullptr, nullptr), 0);
  EXPECT_EQ(h->libvirt_version, record::libvirt_version_string(lib));
  EXPECT_FALSE(h->hypervisor_version.empty());
  EXPECT_GT(h->cpus, 0);
  EXPECT_FALSE(h->cpu_arch.empty());
  EXPECT_GT(h->memory_kib, 0u);

  auto bad = infra::probe_hypervisor("nosuchdriver:///x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("nosuchdriver:///x"), std::string::npos);
}

TEST(Environment, AcceleratorAndKernelFromDomainXml) {
  EXPECT_EQ(infra::accelerator_of_domain_xml("<domain type='kvm'>\n  <name>a</name>\n</domain>"),
            "kvm");
  EXPECT_EQ(infra::accelerator_of_domain_xml(
                "<?xml version=\"1.0\"?>\n<domain type=\"qemu\" xmlns:qemu=\"x\"><name>a</name>"),
            "tcg");
  // <domainbus ...> or similar must not be taken for <domain>.
  EXPECT_EQ(infra::accelerator_of_domain_xml("<domainx type='kvm'/><domain type='test'>"), "test");
  EXPECT_EQ(infra::accelerator_of_domain_xml("<network/>"), "");
  EXPECT_EQ(infra::kernel_of_domain_xml("<os><type>hvm</type><kernel>/img/a&amp;b/vmlinuz"
                                        "</kernel><initrd>/img/initrd.img</initrd></os>"),
            "/img/a&b/vmlinuz");
  EXPECT_EQ(infra::kernel_of_domain_xml("<os><boot dev='hd'/></os>"), "");
}

TEST(Environment, ImageFromImageJsonUrlRecordOrPath) {
  TempDir t("image");
  auto dir = t.path / "offline-default-0123456789ab";
  ASSERT_TRUE(util::write_file_atomic(dir / "vmlinuz", "k").ok());
  ASSERT_TRUE(util::write_file_atomic(
                  dir / "image.json",
                  R"({"id":"offline-default-0123456789ab","variant":"default","suite":"bookworm",
                      "recipe_sha256":"0123456789abcdef","kernel":"6.1.0-27-amd64"})")
                  .ok());
  config::Infrastructure infra;
  std::vector<std::string> errors;
  auto im = infra::probe_image(dir / "vmlinuz", infra, t.path, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(im.source, "offline");
  EXPECT_EQ(im.id, "offline-default-0123456789ab");
  EXPECT_EQ(im.recipe_sha256, "0123456789abcdef");
  EXPECT_EQ(im.kernel, "6.1.0-27-amd64");
  EXPECT_EQ(im.path, dir.string());

  // A downloaded image: the cache's record of the download, keyed as ensure_base_image keys it.
  infra.base_image = "https://example.org/debian.qcow2";
  std::string key = util::sha256_hex(infra.base_image).substr(0, 12);
  ASSERT_TRUE(util::write_file_atomic(t.path / ("url-" + key + ".json"),
                                      R"({"sha256":"feedface","url":"x"})")
                  .ok());
  im = infra::probe_image("", infra, t.path, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(im.source, "url");
  EXPECT_EQ(im.id, "url-" + key);
  EXPECT_EQ(im.sha256, "feedface");
  EXPECT_EQ(im.url, infra.base_image);

  // A local file: the configured checksum (lower case), not a hash of gigabytes.
  infra.base_image = (t.path / "disk.img").string();
  infra.base_image_sha256 = " ABCDEF ";
  im = infra::probe_image("", infra, t.path, errors);
  EXPECT_EQ(im.source, "path");
  EXPECT_EQ(im.path, (t.path / "disk.img").string());
  EXPECT_EQ(im.sha256, "abcdef");

  // No offline image where the domains boot and none configured: said, not guessed.
  infra.base_image.clear();
  im = infra::probe_image("/nowhere/vmlinuz", infra, t.path, errors);
  EXPECT_TRUE(im.source.empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nowhere/vmlinuz"), std::string::npos);
}

TEST(Environment, GuestOutputParsing) {
  record::GuestFacts g;
  ASSERT_TRUE(
      infra::parse_guest_output("6.1.0-27-amd64\n2\nQEMU Virtual CPU version 2.5+\n", g).ok());
  EXPECT_EQ(g.kernel, "6.1.0-27-amd64");
  EXPECT_EQ(g.vcpus, 2);
  EXPECT_EQ(g.cpu_model, "QEMU Virtual CPU version 2.5+");
  record::GuestFacts arm;
  ASSERT_TRUE(infra::parse_guest_output("6.1.0-rpi\n4\n", arm).ok());  // no model name line
  EXPECT_TRUE(arm.cpu_model.empty());
  EXPECT_FALSE(infra::parse_guest_output("", g).ok());
  EXPECT_FALSE(infra::parse_guest_output("sh: uname: not found\nx\n", g).ok());
}

TEST(Environment, GuestCommandRunsInARealShell) {
  // The command a guest runs, run here by /bin/sh: what it prints must be what this machine is.
  util::ProcessSpec spec;
  spec.argv = {"sh", "-c", infra::guest_probe_command()};
  auto r = util::run_process(spec);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  record::GuestFacts g;
  ASSERT_TRUE(infra::parse_guest_output(r->out, g).ok()) << r->out;
  auto host = record::local_host();
  EXPECT_EQ(g.kernel, host.kernel_release);
  EXPECT_EQ(g.vcpus, host.logical_cpus);
  EXPECT_EQ(g.cpu_model, host.cpu_model);
}

TEST(Environment, CollectedForADeploymentOnTheTestDriver) {
  TempDir t("collect");
  auto run = t.path / "run";
  auto img = t.path / "images" / "offline-default-aaaaaaaaaaaa";
  ASSERT_TRUE(util::write_file_atomic(img / "vmlinuz", "k").ok());
  ASSERT_TRUE(util::write_file_atomic(img / "image.json",
                                      R"({"id":"offline-default-aaaaaaaaaaaa","variant":"default",
                                          "recipe_sha256":"aaaa","kernel":"6.1.0-27-amd64"})")
                  .ok());
  plan::Plan plan;
  plan::Host host;
  host.name = "local";
  host.libvirt_uri = "test:///default";
  plan.hosts.push_back(host);
  infra::Deployment d;
  d.run_dir = run;
  for (const char* id : {"cloud0", "edge0"}) {
    plan::Node n;
    n.id = id;
    n.name = std::string(id) + "_alice";
    n.host = 0;
    plan.nodes.push_back(n);
    infra::DeployedNode dn;
    dn.id = n.id;
    dn.name = n.name;
    dn.ip = "192.168.100.2";
    d.nodes.push_back(dn);
    // What apply wrote for each domain (domain type "qemu": TCG).
    ASSERT_TRUE(util::write_file_atomic(run / "infrastructure" / (n.name + ".xml"),
                                        "<domain type='qemu'>\n  <name>" + n.name +
                                            "</name>\n  <os>\n    <kernel>" +
                                            (img / "vmlinuz").string() + "</kernel>\n  </os>\n")
                    .ok());
  }
  infra::EnvironmentProbeOptions opt;
  opt.cancel = nullptr;
  opt.image_cache = t.path / "images";
  opt.connect = [](const infra::Deployment&,
                   const infra::DeployedNode& n) -> Expected<util::RemotePtr> {
    if (n.id == "edge0") return make_error("connection refused");
    return util::RemotePtr(new FakeGuest("6.1.0-27-amd64\n1\nQEMU Virtual CPU version 2.5+\n"));
  };
  auto env = infra::record_environment(plan, config::Infrastructure{}, d, run, opt);
  ASSERT_TRUE(env.ok()) << env.error().message;

  auto text = util::read_file(run / "environment.json");
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["accelerator"], "tcg");
  EXPECT_EQ(j["hypervisors"]["test:///default"]["type"], "TEST");
  EXPECT_EQ(j["hypervisors"]["test:///default"]["accelerator"], "tcg");
  EXPECT_EQ(j["image"]["source"], "offline");
  EXPECT_EQ(j["image"]["recipe_sha256"], "aaaa");
  EXPECT_EQ(j["guests"]["cloud0"]["kernel"], "6.1.0-27-amd64");
  EXPECT_EQ(j["guests"]["cloud0"]["vcpus"], 1);
  EXPECT_EQ(j["guests"]["cloud0"]["accelerator"], "tcg");
  EXPECT_EQ(j["guests"]["cloud0"]["uri"], "test:///default");
  EXPECT_TRUE(j["guests"]["edge0"]["kernel"].is_null());  // not reached: unknown
  EXPECT_EQ(j["guests"]["edge0"]["accelerator"], "tcg");  // but its definition is known
  ASSERT_EQ(j["errors"].size(), 1u) << j["errors"].dump();
  EXPECT_NE(j["errors"][0].get<std::string>().find("edge0"), std::string::npos);
  EXPECT_NE(j["errors"][0].get<std::string>().find("connection refused"), std::string::npos);
  EXPECT_FALSE(j["host"]["cpu_model"].is_null());
  EXPECT_FALSE(j["collected"].is_null());

  // A guest whose command fails is named with the command's error.
  opt.connect = [](const infra::Deployment&,
                   const infra::DeployedNode&) -> Expected<util::RemotePtr> {
    return util::RemotePtr(new FakeGuest("", 127));
  };
  auto env2 = infra::collect_environment(plan, config::Infrastructure{}, d, run, opt);
  EXPECT_EQ(env2.errors.size(), 2u);
  for (const auto& e : env2.errors) EXPECT_NE(e.find("sed: not found"), std::string::npos) << e;
}
