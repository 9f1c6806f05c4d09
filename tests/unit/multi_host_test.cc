// The infrastructure phase over two hosts, each its own hypervisor connection: host A local
// (files on this machine), host B remote (files only through libvirt storage pools and volumes).
// Recording hypervisors stand in for the two libvirtds (the real two-host deployment is
// e2e.TwoHosts); seeds and host keys are made for real.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include "continuum/infra/apply.h"
#include "continuum/infra/destroy.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/ledger.h"
#include "continuum/util/files.h"
#include "continuum/util/strings.h"
#include "unit/infra_fixture.h"

namespace continuum::infra {
namespace {
namespace fs = std::filesystem;

constexpr const char* kUriA = "recording-a:///system";
constexpr const char* kUriB = "qemu+ssh://root@hostb/system?no_tty=1";

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-multihost-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Two cloud VMs on A, one endpoint on B, on the user's bridge (one L2 network across hosts).
plan::Plan two_host_plan() {
  using config::Tier;
  plan::Plan p = testing::base_plan("two_hosts", "alice");
  p.hosts.front().libvirt_uri = kUriA;
  p.hosts.push_back(plan::Host{"root@hostb", kUriB, 2});
  p.network.mode = "bridge";
  p.network.bridge = "br0";
  p.network.gateway.clear();
  auto c0 = testing::make_node("cloud0", "alice", Tier::cloud, 0, 1, 1024, 1.0, "192.168.100.2");
  auto c1 = testing::make_node("cloud1", "alice", Tier::cloud, 1, 1, 1024, 1.0, "192.168.100.3");
  auto e0 =
      testing::make_node("endpoint0", "alice", Tier::endpoint, 0, 1, 1024, 1.0, "192.168.100.4");
  e0.host = 1;
  p.nodes = {c0, c1, e0};
  return p;
}

struct TwoHosts {
  std::shared_ptr<RecordingHypervisor> a = std::make_shared<RecordingHypervisor>(kUriA, true);
  std::shared_ptr<RecordingHypervisor> b = std::make_shared<RecordingHypervisor>(kUriB, false);
  HypervisorFactory factory() const {
    auto ha = a, hb = b;
    return [ha, hb](const std::string& uri) -> Expected<HypervisorPtr> {
      if (uri == kUriA) return HypervisorPtr(ha);
      if (uri == kUriB) return HypervisorPtr(hb);
      return make_error("no hypervisor " + uri);
    };
  }
};

ApplyOptions options(const TempDir& tmp, HypervisorFactory f) {
  ApplyOptions o;
  o.output_dir = tmp.path() / "runs";
  o.hypervisors = std::move(f);
  o.accelerator = "tcg";
  o.workers = 1;  // in plan order: A's VMs are running when B's is started
  o.skip_ssh_wait = true;
  o.private_key = tmp.path() / "id_continuum";
  o.disk_dir = tmp.path() / "disks";
  const fs::path dir = tmp.path() / "image";
  fs::create_directories(dir);
  for (const char* f : {"disk.qcow2", "vmlinuz", "initrd.img"})  // once: a rewrite is a new image
    if (!fs::exists(dir / f)) {
      EXPECT_TRUE(util::write_file_atomic(dir / f, std::string(f) + " bytes\n").ok());
    }
  o.base_image = [dir]() -> Expected<BaseImage> {
    BaseImage b;
    b.disk = dir / "disk.qcow2";
    b.kernel = dir / "vmlinuz";
    b.initrd = dir / "initrd.img";
    b.cmdline = "root=/dev/vda";
    return b;
  };
  return o;
}

bool has_prefix(const std::set<std::string>& files, const std::string& prefix) {
  return std::any_of(files.begin(), files.end(),
                     [&](const std::string& f) { return f.starts_with(prefix); });
}

TEST(MultiHost, RemoteVmsFilesAreVolumesOnTheirHostAndDestroyRemovesBothHosts) {
  TempDir tmp;
  TwoHosts hosts;
  const fs::path run = tmp.path() / "runs" / "r1";
  auto dep = apply(two_host_plan(), run, options(tmp, hosts.factory()), nullptr);
  ASSERT_TRUE(dep.ok()) << dep.error().message;

  // A: the two cloud VMs, their overlays on this machine's disk directory.
  EXPECT_EQ(hosts.a->domains().size(), 2u);
  EXPECT_TRUE(hosts.a->files().count((tmp.path() / "disks" / "cloud0_alice.qcow2").string()));
  EXPECT_TRUE(hosts.a->pools().empty());
  // B: the endpoint, its overlay and seed in the run's pool there, the base image, kernel and
  // initrd in the image cache pool, uploaded once.
  EXPECT_EQ(hosts.b->domains().size(), 1u);
  EXPECT_TRUE(hosts.b->domains().count("endpoint0_alice"));
  auto pools = hosts.b->pools();
  ASSERT_TRUE(pools.count("continuum-r1"));
  EXPECT_EQ(pools.at("continuum-r1"), "/var/lib/continuum/disks/r1");
  ASSERT_TRUE(pools.count("continuum-images"));
  auto files = hosts.b->files();
  EXPECT_TRUE(files.count("/var/lib/continuum/disks/r1/endpoint0_alice.qcow2"));
  EXPECT_TRUE(files.count("/var/lib/continuum/disks/r1/endpoint0_alice.seed.iso"));
  EXPECT_EQ(std::count_if(
                files.begin(), files.end(),
                [](const std::string& f) { return f.starts_with("/var/lib/continuum/images/"); }),
            3);
  // The domain on B boots what B has: its overlay, seed, kernel and console log there.
  auto xml = util::read_file(run / "infrastructure" / "endpoint0_alice.xml");
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("/var/lib/continuum/disks/r1/endpoint0_alice.qcow2"), std::string::npos);
  EXPECT_NE(xml->find("/var/lib/continuum/disks/r1/endpoint0_alice.seed.iso"), std::string::npos);
  EXPECT_NE(xml->find("/var/lib/continuum/images/"), std::string::npos);
  EXPECT_EQ(xml->find(tmp.path().string()), std::string::npos) << *xml;
  auto xml_a = util::read_file(run / "infrastructure" / "cloud0_alice.xml");
  ASSERT_TRUE(xml_a.ok());
  EXPECT_NE(xml_a->find((tmp.path() / "image" / "vmlinuz").string()), std::string::npos);

  // destroy from the ledger alone: nothing of the run on either host; B's image cache stays.
  DestroyOptions d;
  d.hypervisors = hosts.factory();
  auto res = destroy_run(run, d);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(res->errors.empty());
  EXPECT_TRUE(hosts.a->domains().empty());
  EXPECT_TRUE(hosts.b->domains().empty());
  EXPECT_FALSE(hosts.b->pools().count("continuum-r1"));
  EXPECT_FALSE(has_prefix(hosts.b->files(), "/var/lib/continuum/disks/"));
  EXPECT_FALSE(has_prefix(hosts.a->files(), (tmp.path() / "disks").string()));
  EXPECT_TRUE(hosts.b->pools().count("continuum-images"));

  // A second run uploads nothing: the cache is reused.
  const auto uploads = [&] {
    auto c = hosts.b->calls();
    return std::count_if(c.begin(), c.end(),
                         [](const std::string& l) { return l.starts_with("cached_volume"); });
  };
  const auto before = uploads();
  auto again =
      apply(two_host_plan(), tmp.path() / "runs" / "r2", options(tmp, hosts.factory()), nullptr);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(uploads(), before);
  ASSERT_TRUE(destroy_run(tmp.path() / "runs" / "r2", d).ok());
}

TEST(MultiHost, AFailureOnHostBRollsBackBothHosts) {
  TempDir tmp;
  TwoHosts hosts;
  hosts.b->fail_on("start_domain endpoint0_alice");
  const fs::path run = tmp.path() / "runs" / "r1";
  auto dep = apply(two_host_plan(), run, options(tmp, hosts.factory()), nullptr);
  ASSERT_FALSE(dep.ok());
  EXPECT_NE(dep.error().message.find("injected failure"), std::string::npos) << dep.error().message;
  // A's VMs were running when B's failed to start, and were removed with it.
  auto calls_a = hosts.a->calls();
  auto at = [&](const std::string& l) {
    return std::find(calls_a.begin(), calls_a.end(), l) - calls_a.begin();
  };
  ASSERT_LT(at("start_domain cloud0_alice"), static_cast<long>(calls_a.size()));
  EXPECT_LT(at("start_domain cloud0_alice"), at("destroy_domain cloud0_alice"));
  EXPECT_LT(at("destroy_domain cloud0_alice"), static_cast<long>(calls_a.size()));
  EXPECT_TRUE(hosts.a->domains().empty());
  EXPECT_TRUE(hosts.b->domains().empty());
  EXPECT_FALSE(hosts.b->pools().count("continuum-r1"));
  EXPECT_FALSE(has_prefix(hosts.b->files(), "/var/lib/continuum/disks/"));
  EXPECT_TRUE(hosts.a->files().empty());
  auto ledger = Ledger::load(run / "state.json");
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ((*ledger)->info().status, "rolled_back");
  for (const auto& r : (*ledger)->resources())
    EXPECT_EQ(r.state, ResourceState::removed) << kind_name(r.kind) << " " << r.name;
}

TEST(MultiHost, ManagedNetworkSpansTheHostsWithATunnelThatDestroyRemoves) {
  TempDir tmp;
  TwoHosts hosts;
  plan::Plan p = two_host_plan();
  p.network = testing::base_plan("two_hosts", "alice").network;  // managed, gateway here
  // B's address is its name resolved here; this machine's end is the source address of its
  // route there: loopback names keep both on this machine.
  p.hosts[1].libvirt_uri = "qemu+ssh://root@127.0.0.1/system?no_tty=1";
  auto b = std::make_shared<RecordingHypervisor>(p.hosts[1].libvirt_uri, false);
  auto a = hosts.a;
  HypervisorFactory f = [a, b](const std::string& uri) -> Expected<HypervisorPtr> {
    if (uri == kUriA) return HypervisorPtr(a);
    if (uri == b->uri()) return HypervisorPtr(b);
    return make_error("no hypervisor " + uri);
  };
  std::mutex mu;
  std::vector<std::string> ran;  // "URI: argv"
  HostCommand cmd = [&](const std::string& uri,
                        const std::vector<std::string>& argv) -> Expected<util::ExecResult> {
    std::lock_guard g(mu);
    ran.push_back(uri + ": " + util::join(argv, " "));
    util::ExecResult r;
    r.exit_code = 0;
    return r;
  };
  auto o = options(tmp, f);
  o.host_command = cmd;
  const fs::path run = tmp.path() / "runs" / "r1";
  auto dep = apply(p, run, o, nullptr);
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  // The network on both hosts: with the gateway here, the bridge only on B.
  EXPECT_TRUE(a->networks().count("continuum-alice"));
  EXPECT_TRUE(b->networks().count("continuum-alice"));
  auto xml_b = util::read_file(run / "infrastructure" / "network.root@hostb.xml");
  ASSERT_TRUE(xml_b.ok());
  EXPECT_EQ(xml_b->find("<ip"), std::string::npos) << *xml_b;
  EXPECT_NE(xml_b->find("cntm-1a2b3c4d"), std::string::npos) << *xml_b;
  // Both tunnel ends, each flooding to the other.
  const std::string vni = std::to_string(tunnel_vni("cntm-1a2b3c4d"));
  EXPECT_NE(std::find(ran.begin(), ran.end(),
                      std::string(kUriA) + ": ip link add cntx-1a2b3c4d mtu 1500 type vxlan id " +
                          vni + " dstport 4789 local 127.0.0.1"),
            ran.end());
  EXPECT_NE(std::find(ran.begin(), ran.end(),
                      b->uri() + ": bridge fdb append 00:00:00:00:00:00 dev cntx-1a2b3c4d dst "
                                 "127.0.0.1"),
            ran.end());
  EXPECT_NE(std::find(ran.begin(), ran.end(),
                      b->uri() + ": ip link set cntx-1a2b3c4d master cntm-1a2b3c4d"),
            ran.end());
  ran.clear();
  DestroyOptions d;
  d.hypervisors = f;
  d.host_command = cmd;
  auto res = destroy_run(run, d);
  ASSERT_TRUE(res.ok()) << res.error().message;
  EXPECT_TRUE(res->errors.empty());
  std::sort(ran.begin(), ran.end());
  EXPECT_EQ(ran, (std::vector<std::string>{b->uri() + ": ip link del cntx-1a2b3c4d",
                                           std::string(kUriA) + ": ip link del cntx-1a2b3c4d"}));
  EXPECT_TRUE(a->networks().empty());
  EXPECT_TRUE(b->networks().empty());
  EXPECT_TRUE(b->domains().empty());
}

TEST(MultiHost, EachHostsFirstDomainStartsAloneBeforeTheOthers) {
  // libvirt's machine cgroup partition race (apply.cc): on each host the first domain is up
  // before any other is defined there, also with many workers.
  TempDir tmp;
  TwoHosts hosts;
  plan::Plan p = two_host_plan();
  for (int i = 2; i < 5; ++i)
    p.nodes.push_back(testing::make_node("cloud" + std::to_string(i), "alice", config::Tier::cloud,
                                         i, 1, 1024, 1.0, "192.168.100." + std::to_string(10 + i)));
  auto e1 = testing::make_node("endpoint1", "alice", config::Tier::endpoint, 1, 1, 1024, 1.0,
                               "192.168.100.20");
  e1.host = 1;
  p.nodes.push_back(e1);
  auto o = options(tmp, hosts.factory());
  o.workers = 8;
  auto dep = apply(p, tmp.path() / "runs" / "r1", o, nullptr);
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  for (const auto& [hv, first] : {std::pair{hosts.a, std::string("cloud0_alice")},
                                  std::pair{hosts.b, std::string("endpoint0_alice")}}) {
    auto calls = hv->calls();
    auto started = std::find(calls.begin(), calls.end(), "start_domain " + first);
    ASSERT_NE(started, calls.end()) << first;
    size_t defines_before = 0, defines = 0;
    for (auto it = calls.begin(); it != calls.end(); ++it)
      if (it->starts_with("define_domain ")) {
        ++defines;
        if (it < started) ++defines_before;
      }
    EXPECT_EQ(defines_before, 1u) << "only " << first << " is defined before it starts";
    EXPECT_GT(defines, 1u);
  }
}

TEST(MultiHost, SharedFoldersOnARemoteHostAreRefusedBeforeAnythingIsMade) {
  TempDir tmp;
  TwoHosts hosts;
  auto o = options(tmp, hosts.factory());
  o.virtiofs = true;
  o.virtiofs_host_dir = tmp.path() / "shares";
  auto dep = apply(two_host_plan(), tmp.path() / "runs" / "r1", o, nullptr);
  ASSERT_FALSE(dep.ok());
  EXPECT_NE(dep.error().message.find("shared folders on other hosts"), std::string::npos);
  EXPECT_TRUE(hosts.a->domains().empty());
  EXPECT_TRUE(hosts.b->pools().empty());
}

}  // namespace
}  // namespace continuum::infra
