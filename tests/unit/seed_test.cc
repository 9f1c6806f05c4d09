// NoCloud seeds: golden content for bench_cloud and an edge case (every tier, bridge mode without
// a gateway, virtiofs, another address range), plus the ISO image, the user key and known_hosts.
// Regenerate the golden files after an intended change with CONTINUUM_UPDATE_GOLDEN=1.
#include "continuum/infra/seed.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "continuum/config/config.h"
#include "continuum/plan/plan.h"
#include "continuum/util/files.h"
#include "continuum/util/process.h"

namespace fs = std::filesystem;
using namespace continuum;

namespace {

const fs::path kSource = CONTINUUM_SOURCE_DIR;

/// Fixed key material so the golden files are stable (render_seed does not parse keys).
infra::SshKeyPair fixed_host_key(const std::string& name) {
  return {"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-fake-for-" + name +
              "\nAAAAC3NzaC1lZDI1NTE5-line-two\n-----END OPENSSH PRIVATE KEY-----\n",
          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyFor" + name + " root@" + name};
}
const char* kUserKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeUserKeyForGoldenTests continuum";

/// The MAC rule the domain XML uses (infra::mac_address): 52:54:00 + the IP's last three octets.
std::string mac_of(const std::string& ip) {
  unsigned a, b, c, d;
  std::sscanf(ip.c_str(), "%u.%u.%u.%u", &a, &b, &c, &d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "52:54:00:%02x:%02x:%02x", b, c, d);
  return buf;
}

plan::Plan make_plan(const fs::path& cfg_file) {
  auto cfg = config::load(cfg_file);
  EXPECT_TRUE(cfg.ok()) << (cfg.ok() ? "" : cfg.error().message);
  plan::Environment env;
  env.user = "alice";
  env.local_cores = 8;
  auto p = plan::make(*cfg, env);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  return *p;
}

void check_golden(const fs::path& dir, const std::string& rel, const std::string& actual) {
  fs::path file = dir / rel;
  if (std::getenv("CONTINUUM_UPDATE_GOLDEN")) {
    ASSERT_TRUE(util::write_file_atomic(file, actual).ok());
    return;
  }
  auto expected = util::read_file(file);
  ASSERT_TRUE(expected.ok()) << "missing golden file " << file << " (CONTINUUM_UPDATE_GOLDEN=1)";
  EXPECT_EQ(actual, *expected) << "golden mismatch: " << file;
}

void golden_for_config(const std::string& cfg_rel, const std::string& golden_name,
                       const std::vector<infra::SeedMount>& mounts) {
  plan::Plan p = make_plan(kSource / cfg_rel);
  ASSERT_FALSE(p.nodes.empty());
  fs::path gdir = kSource / "tests/data/golden/seed" / golden_name;
  std::set<std::string> seen;
  for (const auto& n : p.nodes) {
    auto spec = infra::seed_spec(n, p.network, n.name + "-golden", kUserKey, fixed_host_key(n.name),
                                 mac_of(n.ip), mounts);
    auto files = infra::render_seed(spec);
    for (const auto& [rel, content] : files) {
      // One directory per VM keeps every file of every VM pinned.
      check_golden(gdir / n.name, rel, content);
      seen.insert(n.name + "/" + rel);
    }
  }
  if (!std::getenv("CONTINUUM_UPDATE_GOLDEN")) {
    // No stale golden file for a VM or file the seed no longer has.
    for (const auto& e : fs::recursive_directory_iterator(gdir)) {
      if (e.is_regular_file()) {
        EXPECT_TRUE(seen.count(fs::relative(e.path(), gdir).string()))
            << "stale golden file " << e.path();
      }
    }
  }
}

TEST(Seed, GoldenBenchCloud) {
  golden_for_config("tests/data/upstream-configs/bench_cloud.cfg", "bench_cloud", {});
}

TEST(Seed, GoldenEdgeBridgeVirtiofs) {
  golden_for_config("tests/data/seed/edge_virtiofs.cfg", "edge_virtiofs",
                    {{"share0", "/var/scaphandre"}});
}

TEST(Seed, FactsFollowThePlan) {
  plan::Plan p = make_plan(kSource / "tests/data/upstream-configs/bench_cloud.cfg");
  const plan::Node* c = p.find("cloud_controller");
  ASSERT_NE(c, nullptr);
  auto spec = infra::seed_spec(*c, p.network, "id-1", std::string(kUserKey) + "\n",
                               fixed_host_key("x"), "", {});
  auto f = infra::render_seed(spec);
  // Upstream naming: login user = VM name, hostname = name without '_'.
  EXPECT_EQ(f["continuum/user"], "cloud_controller_alice\n");
  EXPECT_EQ(f["continuum/hostname"], "cloudcontrolleralice\n");
  EXPECT_NE(f["user-data"].find("- name: \"cloud_controller_alice\""), std::string::npos);
  EXPECT_NE(f["user-data"].find("NOPASSWD:ALL"), std::string::npos);
  EXPECT_NE(f["network-config"].find("\"" + c->ip + "/16\""), std::string::npos);
  // Without a MAC the NIC is matched by name pattern, never a fixed name like ens2.
  EXPECT_NE(f["network-config"].find("name: \"e*\""), std::string::npos);
  EXPECT_NE(f["continuum/10-continuum.network"].find("Name=en* eth*"), std::string::npos);
  EXPECT_EQ(f["network-config"].find("ens2"), std::string::npos);
  // The key's trailing newline does not leak into YAML.
  EXPECT_EQ(f["continuum/authorized_keys"], std::string(kUserKey) + "\n");
  EXPECT_EQ(f.count("continuum/fstab"), 0u);
}

TEST(Seed, ValuesCannotBreakOutOfYaml) {
  plan::Node n;
  n.name = "evil";
  n.hostname = "evil\"\nruncmd: [reboot]";
  n.ssh_user = "u: x";
  n.ip = "10.0.0.2";
  plan::Network net;
  net.prefix_len = 16;
  auto spec = infra::seed_spec(n, net, "i", "ssh-ed25519 AAAA #c", fixed_host_key("e"), "", {});
  auto ud = infra::render_seed(spec)["user-data"];
  EXPECT_EQ(ud.find("\nruncmd:"), std::string::npos) << ud;
  EXPECT_NE(ud.find("hostname: \"evil\\\"\\nruncmd: [reboot]\""), std::string::npos) << ud;
}

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-seed-test.XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Seed, IsoImageHasLabelCidataAndAllFiles) {
  if (!util::have_program("genisoimage") && !util::have_program("xorriso"))
    GTEST_SKIP() << "genisoimage/xorriso not installed";
  TempDir tmp;
  plan::Node n;
  n.name = "cloud0_alice";
  n.hostname = "cloud0alice";
  n.ssh_user = "cloud0_alice";
  n.ip = "192.168.100.3";
  plan::Network net;
  net.gateway = "192.168.100.1";
  auto files = infra::render_seed(infra::seed_spec(n, net, "x", kUserKey, fixed_host_key("c"),
                                                   "52:54:00:64:00:03", {{"share0", "/mnt/s"}}));
  fs::path iso = tmp.path() / "seed.iso";
  ASSERT_TRUE(infra::write_seed_image(files, iso).ok());
  ASSERT_TRUE(fs::exists(iso));
  struct stat st;
  ASSERT_EQ(::stat(iso.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // it holds the guest's private host key
  // Nothing but the image is left in the directory (the staging dir is gone).
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);

  util::ProcessSpec info;
  info.argv = {"isoinfo", "-d", "-i", iso.string()};
  auto d = util::run_process(info);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->out.find("Volume id: cidata"), std::string::npos) << d->out;
  // Every file, byte for byte, under its Rock Ridge name.
  for (const auto& [rel, content] : files) {
    util::ProcessSpec x;
    x.argv = {"isoinfo", "-R", "-i", iso.string(), "-x", "/" + rel};
    auto r = util::run_process(x);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->out, content) << rel;
  }
}

TEST(Seed, WriteSeedImageFailsCleanlyForAMissingDirectoryParent) {
  TempDir tmp;
  // The parent is a regular file: nothing can be created there; a clear error, no leftovers.
  fs::path blocker = tmp.path() / "file";
  std::ofstream(blocker) << "x";
  auto st = infra::write_seed_image({{"meta-data", "x"}}, blocker / "seed.iso");
  EXPECT_FALSE(st.ok());
}

TEST(Seed, UserKeyIsCreatedOnceWithPrivateModes) {
  TempDir tmp;
  fs::path key = tmp.path() / "dot-ssh" / "id_rsa_continuum";
  auto pub = infra::ensure_user_key(key);
  ASSERT_TRUE(pub.ok()) << pub.error().message;
  EXPECT_EQ(pub->rfind("ssh-ed25519 ", 0), 0u);
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((key.string() + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(key.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto again = infra::ensure_user_key(key);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *pub);
  // A key without its .pub: the public half is derived, not a new key made.
  fs::remove(key.string() + ".pub");
  auto derived = infra::ensure_user_key(key);
  ASSERT_TRUE(derived.ok()) << derived.error().message;
  EXPECT_EQ(derived->substr(0, 80), pub->substr(0, 80));
}

TEST(Seed, HostKeysAreFreshAndKnownHostsPinsThem) {
  auto a = infra::generate_host_key("a");
  auto b = infra::generate_host_key("b");
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->public_key, b->public_key);
  EXPECT_NE(a->private_key.find("BEGIN OPENSSH PRIVATE KEY"), std::string::npos);
  std::string b64 = a->public_key.substr(12, a->public_key.find(' ', 12) - 12);
  EXPECT_EQ(infra::known_hosts_line("192.168.100.2", 22, a->public_key),
            "192.168.100.2 ssh-ed25519 " + b64 + "\n");
  EXPECT_EQ(infra::known_hosts_line("10.0.0.1", 2222, a->public_key),
            "[10.0.0.1]:2222 ssh-ed25519 " + b64 + "\n");
  TempDir tmp;
  ASSERT_TRUE(
      infra::write_known_hosts(tmp.path() / "known_hosts",
                               {{"192.168.100.2", a->public_key}, {"192.168.100.3", b->public_key}})
          .ok());
  auto kh = util::read_file(tmp.path() / "known_hosts");
  ASSERT_TRUE(kh.ok());
  EXPECT_EQ(*kh, infra::known_hosts_line("192.168.100.2", 22, a->public_key) +
                     infra::known_hosts_line("192.168.100.3", 22, b->public_key));
}

// The keys are made in-process (libssh); sshd in the guest reads the private key file, so OpenSSH's
// own tool must read it back and derive the same public key.
TEST(Seed, InProcessHostKeyIsReadByOpenSsh) {
  if (!util::have_program("ssh-keygen")) GTEST_SKIP() << "ssh-keygen not installed";
  auto k = infra::generate_host_key("cloud0");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->public_key.substr(0, 12), "ssh-ed25519 ");
  EXPECT_EQ(k->public_key.substr(k->public_key.size() - 7), " cloud0");
  TempDir tmp;
  const fs::path f = tmp.path() / "ssh_host_ed25519_key";
  ASSERT_TRUE(
      util::write_file_atomic(f, k->private_key, fs::perms::owner_read | fs::perms::owner_write)
          .ok());
  util::ProcessSpec spec;
  spec.argv = {"ssh-keygen", "-y", "-f", f.string()};
  auto r = util::run_process(spec);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_EQ(r->out.substr(0, r->out.find_last_not_of(" \n") + 1),
            k->public_key.substr(0, k->public_key.rfind(' ')));
}

}  // namespace
