// Unit tests of config::preflight: which valid configurations this build refuses, with the key's
// file and line, and which accepted keys are reported as having no effect.
#include "continuum/config/preflight.h"

#include <gtest/gtest.h>

#include <string>

#include "continuum/config/config.h"

using continuum::config::Config;
using continuum::config::load_text;
using continuum::config::Preflight;
using continuum::config::preflight;

namespace {

// Lines 1-11; [benchmark] starts at line 13.
const std::string kInfra = R"([infrastructure]
provider = qemu
cloud_nodes = 2
cloud_cores = 2
cloud_memory = 2
cloud_quota = 1.0
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
network_emulation = True

)";

Preflight check(const std::string& text) {
  auto c = load_text(text, "p.cfg");
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  if (!c.ok()) return {};
  return preflight(*c);
}

std::string all(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
  return all(v).find(needle) != std::string::npos;
}

}  // namespace

TEST(Preflight, EndpointOnlyAndDirectOffloadRun) {
  Preflight p = check(
      kInfra +
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
  EXPECT_TRUE(p.notes.empty()) << all(p.notes);
  p = check(
      kInfra +
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n"
      "direct_offload = True\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
  EXPECT_TRUE(p.notes.empty()) << all(p.notes);
}

TEST(Preflight, ContainerBenchmarkIsRefusedOnTheResourceManagerLine) {
  for (const char* rm : {"kubernetes", "kubecontrol"}) {
    std::string text = kInfra + "[benchmark]\nresource_manager = " + rm +
                       "\napplication = image_classification\nfrequency = 5\n";
    if (std::string(rm) == "kubecontrol") {
      // image_classification does not run with kubecontrol even in the original: load rejects it.
      EXPECT_FALSE(load_text(text, "p.cfg").ok());
      continue;
    }
    Preflight p = check(text);
    ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
    EXPECT_EQ(
        p.refusals[0].rfind(
            "p.cfg:14: [benchmark] resource_manager = kubernetes: not supported by this build: "
            "image_classification with resource_manager = kubernetes runs the original's "
            "worker containers as Kubernetes Jobs",
            0),
        0u)
        << p.refusals[0];
    EXPECT_TRUE(has(p.refusals, "use resource_manager = none")) << p.refusals[0];
  }
  // Installing the cluster only stays allowed.
  Preflight only =
      check(kInfra + "[benchmark]\nresource_manager = kubernetes\nresource_manager_only = True\n");
  EXPECT_TRUE(only.ok()) << all(only.refusals);
}

TEST(Preflight, MistEdgeAndOpenfaas) {
  const std::string mist = R"([infrastructure]
provider = qemu
edge_nodes = 1
edge_cores = 1
edge_memory = 1
edge_quota = 1
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 1
[benchmark]
resource_manager = mist
application = image_classification
frequency = 1
)";
  // mist runs here: containers on the edge and the endpoint, images from the run's registry. Its
  // docker keys have their original effect, so nothing is noted about them.
  Preflight p = check(mist + "docker_pull = True\napplication_worker_cpu = 0.5\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
  EXPECT_TRUE(p.notes.empty()) << all(p.notes);
  // Two worker containers on one edge would share its broker's topic.
  p = check(mist + "applications_per_worker = 2\n");
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_TRUE(has(p.refusals,
                  "p.cfg:15: [benchmark] applications_per_worker = 2: not supported by this "
                  "build: several worker containers on one edge would share its broker's topic"))
      << all(p.refusals);

  const std::string faas =
      kInfra +
      "[benchmark]\nresource_manager = kubernetes\napplication = image_classification\n"
      "frequency = 5\n[execution_model]\nmodel = openfaas\n";
  p = check(faas);
  ASSERT_EQ(p.refusals.size(), 2u) << all(p.refusals);
  EXPECT_EQ(p.refusals[0].rfind("p.cfg:14: [benchmark] resource_manager = kubernetes", 0), 0u)
      << all(p.refusals);
  EXPECT_EQ(p.refusals[1].rfind(
                "p.cfg:18: [execution_model] model = openfaas: not supported by this build: the "
                "OpenFaaS benchmark",
                0),
            0u)
      << all(p.refusals);
  // OpenFaaS installed on the cluster, without a benchmark: allowed.
  p = check(kInfra +
            "[benchmark]\nresource_manager = kubernetes\nresource_manager_only = "
            "True\n[execution_model]\nmodel = openfaas\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
}

TEST(Preflight, ControlPlaneApplicationsAndKata) {
  for (const char* app : {"empty", "stress", "mem_usage"}) {
    std::string extra = std::string(app) == "empty"    ? "sleep_time = 5\n"
                        : std::string(app) == "stress" ? "stress_app_timeout = 5\n"
                                                       : "";
    Preflight p =
        check(kInfra + "[benchmark]\nresource_manager = kubecontrol\napplication = " + app + "\n" +
              extra);
    ASSERT_EQ(p.refusals.size(), 1u) << app << "\n" << all(p.refusals);
    EXPECT_EQ(p.refusals[0].rfind(
                  "p.cfg:15: [benchmark] application = " + std::string(app) +
                      ": not supported by this build: the original's control-plane benchmark",
                  0),
              0u)
        << p.refusals[0];
    EXPECT_TRUE(
        has(p.notes,
            "p.cfg:14: [benchmark] resource_manager = kubecontrol: accepted for compatibility; "
            "differs from the original: installs stock Kubernetes v1.27.0"))
        << all(p.notes);
  }
  Preflight kata =
      check(kInfra +
            "[benchmark]\nresource_manager = kube_kata\nresource_manager_only = True\n"
            "runtime = kata-qemu\nruntime_filesystem = devmapper\nkube_deployment = call\n");
  ASSERT_EQ(kata.refusals.size(), 1u) << all(kata.refusals);
  EXPECT_EQ(kata.refusals[0].rfind(
                "p.cfg:16: [benchmark] runtime = kata-qemu: not supported by this build: Kata "
                "Containers is not installed",
                0),
            0u)
      << kata.refusals[0];
  EXPECT_TRUE(has(kata.notes,
                  "p.cfg:17: [benchmark] runtime_filesystem = devmapper: accepted for "
                  "compatibility; no effect"));
  EXPECT_TRUE(
      has(kata.notes,
          "p.cfg:18: [benchmark] kube_deployment = call: accepted for compatibility; no effect"));
  Preflight runc = check(
      kInfra +
      "[benchmark]\nresource_manager = kube_kata\nresource_manager_only = True\nruntime = runc\n");
  EXPECT_TRUE(runc.ok()) << all(runc.refusals);
}

TEST(Preflight, InfrastructureRefusals) {
  std::string text = kInfra;
  text.replace(text.find("network_emulation"), 0,
               "external_physical_machines = alice@host1, bob@host2\nnetperf = yes\n"
               "image_variant = default\n");
  Preflight p = check(
      text +
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n");
  // VMs on other hosts run (docs/multi-host.md); netperf needs Debian 13's package: refused with
  // an image variant that is Debian 12.
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_EQ(p.refusals[0].rfind(
                "p.cfg:12: [infrastructure] netperf = yes: not supported by this build: the "
                "netperf matrix needs netperf in the guests, which only Debian 13 packages; the "
                "image_variant default is Debian 12 without it",
                0),
            0u)
      << all(p.refusals);
  // With the image chosen automatically (energy, Debian 13) it runs, infra_only or not.
  std::string infra_only = kInfra;
  infra_only.replace(infra_only.find("network_emulation"), 0,
                     "infra_only = True\nnetperf = True\n");
  p = check(infra_only);
  EXPECT_TRUE(p.refusals.empty()) << all(p.refusals);
  // A benchmark in containers boots the docker image (Debian 12): refused, saying so.
  const std::string mist = R"([infrastructure]
provider = qemu
cloud_nodes = 0
edge_nodes = 1
edge_cores = 1
edge_memory = 1
edge_quota = 1.0
endpoint_nodes = 1
endpoint_cores = 1
endpoint_memory = 1
endpoint_quota = 0.5
netperf = True

[benchmark]
resource_manager = mist
application = image_classification
frequency = 1
)";
  p = check(mist);
  EXPECT_TRUE(has(p.refusals,
                  "p.cfg:12: [infrastructure] netperf = True: not supported by this "
                  "build: the netperf matrix needs netperf in the guests, and this "
                  "benchmark runs containers"))
      << all(p.refusals);

  std::string gcp = R"([infrastructure]
provider = gcp
infra_only = True
cloud_nodes = 1
cloud_cores = 2
cloud_memory = 2
cloud_quota = 1
gcp_cloud = e2-small
gcp_region = europe-west4
gcp_zone = europe-west4-a
gcp_project = p
gcp_credentials = ~/c.json
)";
  p = check(gcp);
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_EQ(p.refusals[0].rfind(
                "p.cfg:2: [infrastructure] provider = gcp: not supported by this build: continuum "
                "creates its VMs with QEMU/libvirt",
                0),
            0u)
      << p.refusals[0];
  EXPECT_TRUE(has(p.refusals, "use provider = qemu"));
}

TEST(Preflight, ExternalMachinesOnTheUsersBridgeRunAndSharedFoldersThereDoNot) {
  std::string text = kInfra;
  text.replace(text.find("network_emulation"), 0,
               "external_physical_machines = alice@host1\nnetwork_mode = bridge\n"
               "bridge_name = br0\n");
  const std::string bench =
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n";
  Preflight ok = check(text + bench);
  EXPECT_TRUE(ok.refusals.empty()) << all(ok.refusals);
  std::string shares = text;
  shares.replace(shares.find("network_emulation"), 0, "virtiofs = True\n");
  Preflight p = check(shares + bench);
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_NE(p.refusals[0].find("external_physical_machines = alice@host1: not supported by this "
                               "build: virtiofs shares are directories on this machine"),
            std::string::npos)
      << all(p.refusals);
}

TEST(Preflight, IsolatedGuestsCannotInstallKubernetes) {
  std::string isolated = kInfra;
  isolated.replace(isolated.find("network_emulation"), 0, "guest_internet = none\n");
  Preflight p = check(isolated +
                      "[benchmark]\nresource_manager = kubernetes\nresource_manager_only = True\n");
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_EQ(
      p.refusals[0].rfind(
          "p.cfg:11: [infrastructure] guest_internet = none: not supported by this build: the "
          "guests are isolated, and the kubernetes playbooks download",
          0),
      0u)
      << p.refusals[0];
  // A mirror and a proxy the guests can reach make it possible; none needs no download.
  std::string proxied = isolated;
  proxied.replace(proxied.find("network_emulation"), 0,
                  "guest_http_proxy = http://10.0.0.1:3128\n");
  EXPECT_TRUE(
      check(proxied + "[benchmark]\nresource_manager = kubernetes\nresource_manager_only = True\n")
          .ok());
  EXPECT_TRUE(check(isolated + "[benchmark]\nresource_manager = none\napplication = "
                               "image_classification\nfrequency = 1\n")
                  .ok());
}

TEST(Preflight, KeysWithoutEffectAreNamed) {
  std::string text = kInfra;
  text.replace(text.find("network_emulation"), 0, "middleIP_base = 91\n");
  // Endpoint-only: worker resources have no effect; endpoint CPU sets threads only.
  Preflight p = check(
      text +
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n"
      "docker_pull = True\napplications_per_worker = 2\napplication_worker_cpu = 2\n"
      "application_worker_memory = 1\napplication_endpoint_cpu = 1\napplication_endpoint_memory = "
      "1\n"
      "observability = True\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
  // Each note: where, key = value, then what the original did with it.
  const std::string compat = ": accepted for compatibility; ";
  const std::string endpoint_only = "no effect: the endpoint-only mode";
  const std::vector<std::string> expected = {
      "p.cfg:11: [infrastructure] middleIP_base = 91" + compat + "no effect: ",
      "p.cfg:18: [benchmark] docker_pull = True" + compat + "no effect: ",
      "p.cfg:19: [benchmark] applications_per_worker = 2" + compat + endpoint_only,
      "p.cfg:20: [benchmark] application_worker_cpu = 2" + compat + endpoint_only,
      "p.cfg:21: [benchmark] application_worker_memory = 1" + compat + "no effect",
      "p.cfg:22: [benchmark] application_endpoint_cpu = 1" + compat +
          "differs from the original: sets the threads",
      "p.cfg:23: [benchmark] application_endpoint_memory = 1" + compat + "no effect",
      "p.cfg:24: [benchmark] observability = True" + compat + "no effect"};
  ASSERT_EQ(p.notes.size(), expected.size()) << all(p.notes);
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(p.notes[i].rfind(expected[i], 0), 0u) << p.notes[i];

  // direct_offload: several applications per worker are refused; worker CPU sets threads.
  p = check(
      kInfra +
      "[benchmark]\nresource_manager = none\napplication = image_classification\nfrequency = 1\n"
      "direct_offload = True\napplications_per_worker = 2\napplication_worker_cpu = 2\n");
  ASSERT_EQ(p.refusals.size(), 1u) << all(p.refusals);
  EXPECT_EQ(
      p.refusals[0].rfind(
          "p.cfg:18: [benchmark] applications_per_worker = 2: not supported by this build", 0),
      0u);
  EXPECT_TRUE(
      has(p.notes,
          "p.cfg:19: [benchmark] application_worker_cpu = 2: accepted for compatibility; differs "
          "from the original: sets the worker program's threads"))
      << all(p.notes);

  // resource_manager_only: the application keys have no effect, as in the original.
  p = check(kInfra +
            "[benchmark]\nresource_manager = kubernetes\nresource_manager_only = "
            "True\ncache_worker = True\n");
  EXPECT_TRUE(p.ok());
  EXPECT_TRUE(
      has(p.notes,
          "p.cfg:16: [benchmark] cache_worker = True: accepted for compatibility; no effect: "
          "resource_manager_only = True runs no application"))
      << all(p.notes);
}

TEST(Preflight, ExporterProgramMustBeOnThisHost) {
  const std::string base =
      kInfra +
      "[benchmark]\nresource_manager = none\n[workload w]\ncommand = true\nnodes = cloud\n"
      "[energy]\nenabled = True\n";
  // Line 20: exporter_command. Its NAME=value words are the environment, not the program.
  Preflight p = check(base + "exporter_command = A=1 continuum-no-such-exporter --port {port}\n");
  EXPECT_FALSE(p.ok());
  EXPECT_TRUE(has(p.refusals,
                  "p.cfg:20: [energy] exporter_command = A=1 continuum-no-such-exporter --port "
                  "{port}: cannot run on this host: its program `continuum-no-such-exporter` is "
                  "not on this host"))
      << all(p.refusals);
  p = check(base + "exporter_command = A=1 sh -c 'exec true' {port}\n");
  EXPECT_TRUE(p.ok()) << all(p.refusals);
}
