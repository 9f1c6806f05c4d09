// Domain and network XML: golden files for bench_cloud and an edge config (cpu_pin, iotune,
// virtiofs), libvirt's own schema check (virt-xml-validate), and escaping of hostile values.
// Regenerate the golden files with CONTINUUM_UPDATE_GOLDEN=1 after an intended change.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "continuum/infra/domain_xml.h"
#include "continuum/infra/network_xml.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"
#include "unit/infra_fixture.h"

namespace continuum::infra {
namespace {
namespace fs = std::filesystem;

const fs::path kGolden = fs::path(CONTINUUM_SOURCE_DIR) / "tests/data/golden/infra";

DomainParams params_for(const plan::Node& n, bool virtiofs, bool kernel) {
  DomainParams p;
  p.accelerator = Accelerator::tcg;
  p.disk = "/var/lib/continuum/runs/r1/" + n.name + ".qcow2";
  p.seed = "/var/lib/continuum/runs/r1/" + n.name + ".seed.iso";
  p.console_log = "/home/alice/runs/r1/infrastructure/" + n.name + ".console.log";
  if (kernel) {
    p.kernel = "/var/cache/continuum/images/abc/vmlinuz";
    p.initrd = "/var/cache/continuum/images/abc/initrd.img";
    p.cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0";
  }
  if (virtiofs) p.shares.push_back({"/var/lib/libvirt/scaphandre/" + n.name, config::kVirtiofsTag});
  return p;
}

void expect_golden(const std::string& name, const std::string& actual) {
  fs::path file = kGolden / name;
  if (std::getenv("CONTINUUM_UPDATE_GOLDEN")) {
    ASSERT_TRUE(util::write_file_atomic(file, actual).ok());
    return;
  }
  auto expected = util::read_file(file);
  ASSERT_TRUE(expected.ok()) << expected.error().message
                             << " (set CONTINUUM_UPDATE_GOLDEN=1 to create)";
  EXPECT_EQ(*expected, actual) << "golden file " << file;
}

/// Runs libvirt's schema validator on a document; returns its output on failure.
std::string validate(const std::string& xml, const std::string& schema) {
  fs::path tmp =
      fs::temp_directory_path() / ("continuum-xml-" + std::to_string(::getpid()) + ".xml");
  EXPECT_TRUE(util::write_file_atomic(tmp, xml).ok());
  util::ProcessSpec spec;
  spec.argv = {"virt-xml-validate", tmp.string(), schema};
  auto r = util::run_process(spec);
  fs::remove(tmp);
  if (!r.ok()) return r.error().message;
  if (r->exit_code != 0) return r->out + r->err;
  return "";
}

TEST(InfraXml, BenchCloudDomainsMatchGoldenAndValidate) {
  auto plan = testing::bench_cloud_plan();
  for (const auto& n : plan.nodes) {
    std::string xml = domain_xml(n, plan.network, params_for(n, false, true));
    expect_golden("bench_cloud/" + n.name + ".xml", xml);
    EXPECT_EQ(validate(xml, "domain"), "") << n.name;
  }
  std::string net = network_xml(plan.network);
  expect_golden("bench_cloud/network.xml", net);
  EXPECT_EQ(validate(net, "network"), "");
}

TEST(InfraXml, IsolatedNetworkHasNoForwardAndValidates) {
  auto plan = testing::bench_cloud_plan();
  EXPECT_NE(network_xml(plan.network).find("<forward mode='nat'/>"), std::string::npos);
  plan.network.forward = "";  // guest_internet = none
  std::string net = network_xml(plan.network);
  EXPECT_EQ(net.find("<forward"), std::string::npos) << net;
  EXPECT_EQ(validate(net, "network"), "");
}

TEST(InfraXml, EdgeWithPinningThrottlingAndVirtiofsMatchesGoldenAndValidates) {
  auto plan = testing::edge_plan();
  for (const auto& n : plan.nodes) {
    std::string xml = domain_xml(n, plan.network, params_for(n, true, false));
    expect_golden("edge_pinned/" + n.name + ".xml", xml);
    EXPECT_EQ(validate(xml, "domain"), "") << n.name;
  }
}

TEST(InfraXml, ContentFollowsThePlan) {
  auto plan = testing::edge_plan();
  const auto& edge = plan.nodes[1];
  std::string xml = domain_xml(edge, plan.network, params_for(edge, true, false));
  EXPECT_NE(xml.find("<domain type='qemu'>"), std::string::npos);
  EXPECT_NE(xml.find("<memory unit='MiB'>1024</memory>"), std::string::npos);
  EXPECT_NE(xml.find("<vcpu placement='static'>2</vcpu>"), std::string::npos);
  EXPECT_NE(xml.find("<vcpupin vcpu='0' cpuset='2'/>"), std::string::npos);
  EXPECT_NE(xml.find("<vcpupin vcpu='1' cpuset='3'/>"), std::string::npos);
  EXPECT_NE(xml.find("<quota>50000</quota>"), std::string::npos);
  // 100 MB/s read, 50 MB/s write: bytes per second, not the raw MB/s number the original used.
  EXPECT_NE(xml.find("<read_bytes_sec>100000000</read_bytes_sec>"), std::string::npos);
  EXPECT_NE(xml.find("<write_bytes_sec>50000000</write_bytes_sec>"), std::string::npos);
  EXPECT_NE(xml.find("<source type='memfd'/>"), std::string::npos);
  EXPECT_NE(xml.find("<access mode='shared'/>"), std::string::npos);
  EXPECT_NE(xml.find("<driver type='virtiofs'/>"), std::string::npos);
  EXPECT_NE(xml.find("<source network='continuum-alice'/>"), std::string::npos);
  EXPECT_NE(xml.find("<mac address='52:54:00:a8:64:03'/>"), std::string::npos);
  EXPECT_NE(xml.find("<boot dev='hd'/>"), std::string::npos);

  // No shares: no shared memory; no pinning and no limit: no cputune; KVM: type kvm.
  plan::Node plain =
      testing::make_node("cloud0", "bob", config::Tier::cloud, 0, 1, 512, 0, "10.0.0.5");
  plain.cputune_quota = 0;
  DomainParams p = params_for(plain, false, false);
  p.accelerator = Accelerator::kvm;
  std::string x2 = domain_xml(plain, plan.network, p);
  EXPECT_NE(x2.find("<domain type='kvm'>"), std::string::npos);
  EXPECT_EQ(x2.find("memoryBacking"), std::string::npos);
  EXPECT_EQ(x2.find("cputune"), std::string::npos);
  EXPECT_EQ(x2.find("iotune"), std::string::npos);
}

TEST(InfraXml, BridgeModeUsesTheExistingBridge) {
  auto plan = testing::bench_cloud_plan();
  plan.network.mode = "bridge";
  plan.network.name = "";
  plan.network.bridge = "br0";
  const auto& n = plan.nodes[0];
  std::string xml = domain_xml(n, plan.network, params_for(n, false, true));
  EXPECT_NE(xml.find("<interface type='bridge'>"), std::string::npos);
  EXPECT_NE(xml.find("<source bridge='br0'/>"), std::string::npos);
  EXPECT_EQ(validate(xml, "domain"), "");
}

TEST(InfraXml, EveryValueIsEscaped) {
  auto plan = testing::bench_cloud_plan("x'><evil a='");
  const auto& n = plan.nodes[0];
  DomainParams p = params_for(n, true, true);
  p.cmdline = "a=\"b\" & c<d> 'e'";
  p.shares[0].host_dir = "/tmp/it's <here> & \"there\"";
  std::string xml = domain_xml(n, plan.network, p);
  EXPECT_EQ(xml.find("<evil"), std::string::npos);
  EXPECT_NE(xml.find("<cmdline>a=&quot;b&quot; &amp; c&lt;d&gt; &apos;e&apos;</cmdline>"),
            std::string::npos);
  EXPECT_NE(xml.find("dir='/tmp/it&apos;s &lt;here&gt; &amp; &quot;there&quot;'"),
            std::string::npos);
  // Still one well-formed document with the hostile name as text.
  EXPECT_EQ(validate(xml, "domain"), "");
}

TEST(InfraXml, MacAddressComesFromTheAddress) {
  plan::Node n;
  n.ip = "192.168.101.251";
  EXPECT_EQ(mac_address(n), "52:54:00:a8:65:fb");
  n.ip = "10.1.2.3";
  EXPECT_EQ(mac_address(n), "52:54:00:01:02:03");
}

}  // namespace
}  // namespace continuum::infra
