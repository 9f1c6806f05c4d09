// The libvirt layer and the ledger through the real libvirt API on the in-process test driver
// (test:///default: no daemon). Guests never boot there, so SSH readiness is skipped; disks,
// seeds and host keys are made for real (qemu-img, genisoimage, ssh-keygen).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "continuum/infra/apply.h"
#include "continuum/infra/destroy.h"
#include "continuum/infra/domain_xml.h"
#include "continuum/infra/hypervisor.h"
#include "continuum/infra/ledger.h"
#include "continuum/util/background.h"
#include "continuum/util/files.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/parallel.h"
#include "continuum/util/process.h"
#include "unit/infra_fixture.h"

namespace continuum::infra {
namespace {
namespace fs = std::filesystem;
constexpr const char* kTestUri = "test:///default";

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "continuum-infra-XXXXXX").string();
    path_ = ::mkdtemp(t.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Wraps a hypervisor and fails the k-th call (0-based) of one operation, to test rollback.
class FailingHypervisor : public Hypervisor {
 public:
  FailingHypervisor(HypervisorPtr inner, std::string op, int fail_at)
      : inner_(std::move(inner)), op_(std::move(op)), fail_at_(fail_at) {}
  std::string uri() const override { return inner_->uri(); }
  Status define_domain(const std::string& n, const std::string& x) override {
    TRY_STATUS(maybe_fail("define_domain", n));
    return inner_->define_domain(n, x);
  }
  Status start_domain(const std::string& n) override {
    TRY_STATUS(maybe_fail("start_domain", n));
    return inner_->start_domain(n);
  }
  Status destroy_domain(const std::string& n) override { return inner_->destroy_domain(n); }
  Status undefine_domain(const std::string& n) override { return inner_->undefine_domain(n); }
  Expected<DomainState> domain_state(const std::string& n) override {
    return inner_->domain_state(n);
  }
  Expected<std::vector<std::string>> list_domains() override { return inner_->list_domains(); }
  Status define_network(const std::string& n, const std::string& x) override {
    return inner_->define_network(n, x);
  }
  Status start_network(const std::string& n) override { return inner_->start_network(n); }
  Status destroy_network(const std::string& n) override { return inner_->destroy_network(n); }
  Status undefine_network(const std::string& n) override { return inner_->undefine_network(n); }
  Expected<bool> network_exists(const std::string& n) override { return inner_->network_exists(n); }
  Status create_overlay(const fs::path& b, const std::string& f, const fs::path& p) override {
    TRY_STATUS(maybe_fail("create_overlay", p.string()));
    return inner_->create_overlay(b, f, p);
  }
  Status remove_path(const fs::path& p) override { return inner_->remove_path(p); }
  Expected<Accelerator> choose_accelerator(const std::string& r, const fs::path& k) override {
    return inner_->choose_accelerator(r, k);
  }
  /// How many calls of the watched operation were made.
  int calls() const { return count_.load(); }

 private:
  Status maybe_fail(const std::string& op, const std::string& what) {
    if (op != op_) return {};
    if (count_++ == fail_at_) return make_error("injected failure: " + op + " " + what);
    return {};
  }
  HypervisorPtr inner_;
  std::string op_;
  int fail_at_;
  std::atomic<int> count_{0};
};

/// Real qcow2 base image for overlays (tiny, sparse).
fs::path make_base(const fs::path& dir) {
  fs::path base = dir / "base.qcow2";
  util::ProcessSpec s;
  s.argv = {"qemu-img", "create", "-q", "-f", "qcow2", base.string(), "64M"};
  auto r = util::run_process(s);
  EXPECT_TRUE(r.ok() && r->exit_code == 0);
  return base;
}

ApplyOptions test_options(const TempDir& tmp, HypervisorFactory f) {
  ApplyOptions o;
  o.output_dir = tmp.path() / "runs";
  o.hypervisors = std::move(f);
  o.accelerator = "auto";
  o.workers = 4;
  o.skip_ssh_wait = true;
  o.private_key = tmp.path() / "id_continuum";
  o.virtiofs = true;
  o.virtiofs_host_dir = tmp.path() / "shares";
  o.virtiofs_guest_dir = "/var/scaphandre";
  fs::path base = make_base(tmp.path());
  o.base_image = [base]() -> Expected<BaseImage> {
    BaseImage b;
    b.disk = base;
    b.format = "qcow2";
    return b;
  };
  return o;
}

size_t count_with_suffix(Hypervisor& h, const std::string& suffix) {
  auto names = h.list_domains();
  EXPECT_TRUE(names.ok());
  return static_cast<size_t>(std::count_if(names->begin(), names->end(), [&](const std::string& n) {
    return n.size() > suffix.size() &&
           n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
  }));
}

TEST(InfraLibvirt, HundredDomainsDefinedStartedAndDestroyedThroughTheRealApi) {
  auto hv = connect_libvirt(kTestUri);
  ASSERT_TRUE(hv.ok()) << hv.error().message;
  auto plan = testing::many_plan(100, "hundred", kTestUri);
  std::vector<std::string> xmls;
  for (const auto& n : plan.nodes) {
    DomainParams p;
    p.disk = "/nonexistent/" + n.name + ".qcow2";
    p.console_log = "/nonexistent/" + n.name + ".log";
    xmls.push_back(domain_xml(n, plan.network, p));
  }
  auto h = *hv;
  ASSERT_TRUE(util::for_each_parallel(100, 8, [&](size_t i) -> Status {
                TRY_STATUS(h->define_domain(plan.nodes[i].name, xmls[i]));
                return h->start_domain(plan.nodes[i].name);
              }).ok());
  EXPECT_EQ(count_with_suffix(*h, "_hundred"), 100u);
  for (const auto& n : plan.nodes)
    EXPECT_EQ(*h->domain_state(n.name), DomainState::running) << n.name;
  // Defining a name twice is an error naming the domain.
  auto again = h->define_domain(plan.nodes[0].name, xmls[0]);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("endpoint0_hundred"), std::string::npos);

  ASSERT_TRUE(util::for_each_parallel(100, 8, [&](size_t i) -> Status {
                TRY_STATUS(h->destroy_domain(plan.nodes[i].name));
                return h->undefine_domain(plan.nodes[i].name);
              }).ok());
  EXPECT_EQ(count_with_suffix(*h, "_hundred"), 0u);
  // Removal of what is not there succeeds (a ledger replay relies on it).
  EXPECT_TRUE(h->destroy_domain("endpoint0_hundred").ok());
  EXPECT_TRUE(h->undefine_domain("endpoint0_hundred").ok());
  EXPECT_EQ(*h->domain_state("endpoint0_hundred"), DomainState::absent);
}

TEST(InfraLibvirt, InvalidDomainXmlIsRejectedWithTheName) {
  auto h = connect_libvirt(kTestUri);
  ASSERT_TRUE(h.ok());
  // Not well-formed (unclosed), and a domain without memory: both refused by libvirt.
  auto bad = (*h)->define_domain("unclosed", "<domain type='qemu'><name>unclosed</name>");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unclosed"), std::string::npos);
  auto s = (*h)->define_domain(
      "broken", "<domain type='qemu'><name>broken</name><os><type>hvm</type></os></domain>");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("broken"), std::string::npos);
  EXPECT_EQ(*(*h)->domain_state("broken"), DomainState::absent);
}

TEST(InfraLibvirt, ApplyThenDestroyFromTheLedgerAloneRemovesEverything) {
  TempDir tmp;
  auto keep = connect_libvirt(kTestUri);  // keeps the test driver's state alive across factories
  ASSERT_TRUE(keep.ok());
  auto plan = testing::many_plan(5, "replay", kTestUri);
  fs::path run = tmp.path() / "runs" / "r1";
  auto opts = test_options(tmp, libvirt_factory());
  auto dep = apply(plan, run, opts, nullptr);
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  EXPECT_EQ(dep->nodes.size(), 5u);
  EXPECT_EQ(count_with_suffix(**keep, "_replay"), 5u);
  EXPECT_TRUE(*(*keep)->network_exists("continuum-replay"));
  for (const auto& n : plan.nodes) {
    EXPECT_TRUE(fs::exists(run / "infrastructure/disks" / (n.name + ".qcow2")));
    EXPECT_TRUE(fs::exists(run / "infrastructure/disks" / (n.name + ".seed.iso")));
    EXPECT_TRUE(fs::exists(run / "infrastructure" / (n.name + ".xml")));
    EXPECT_TRUE(fs::is_directory(tmp.path() / "shares" / n.name));
  }
  EXPECT_TRUE(fs::exists(run / "infrastructure/network.xml"));
  EXPECT_TRUE(fs::exists(run / "known_hosts"));
  EXPECT_TRUE(fs::exists(run / "deployment.json"));

  // The ledger has every resource, all created.
  auto ledger = Ledger::load(run / "state.json");
  ASSERT_TRUE(ledger.ok()) << ledger.error().message;
  EXPECT_EQ((*ledger)->info().status, "deployed");
  auto res = (*ledger)->resources();
  EXPECT_EQ(res.size(), 1u + 5 * 4);  // network + per VM: seed, share, overlay, domain
  for (const auto& r : res) EXPECT_EQ(r.state, ResourceState::created) << r.name;

  // Destroy with a fresh factory and nothing but the run directory.
  DestroyOptions d;
  d.hypervisors = libvirt_factory();
  auto r1 = destroy_run(run, d);
  ASSERT_TRUE(r1.ok()) << r1.error().message;
  EXPECT_EQ(r1->removed, res.size());
  EXPECT_TRUE(r1->errors.empty());
  EXPECT_EQ(count_with_suffix(**keep, "_replay"), 0u);
  EXPECT_FALSE(*(*keep)->network_exists("continuum-replay"));
  for (const auto& n : plan.nodes) {
    EXPECT_FALSE(fs::exists(run / "infrastructure/disks" / (n.name + ".qcow2")));
    EXPECT_FALSE(fs::exists(run / "infrastructure/disks" / (n.name + ".seed.iso")));
    EXPECT_FALSE(fs::exists(tmp.path() / "shares" / n.name));
  }
  // The run's record stays: XML, logs, the ledger itself.
  EXPECT_TRUE(fs::exists(run / "infrastructure" / (plan.nodes[0].name + ".xml")));
  EXPECT_EQ((*Ledger::load(run / "state.json"))->info().status, "destroyed");

  // Second destroy: nothing to do.
  auto r2 = destroy_run(run, d);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->removed, 0u);
  EXPECT_EQ(r2->already_removed, res.size());
}

TEST(InfraLibvirt, DestroyAfterACrashBetweenIntentAndCreate) {
  TempDir tmp;
  auto keep = connect_libvirt(kTestUri);
  ASSERT_TRUE(keep.ok());
  fs::path run = tmp.path() / "run";
  // A crash after the intent of two domains, when only the first had been defined.
  auto plan = testing::many_plan(2, "crash", kTestUri);
  DomainParams p;
  p.disk = "/nonexistent/x.qcow2";
  ASSERT_TRUE(
      (*keep)->define_domain(plan.nodes[0].name, domain_xml(plan.nodes[0], plan.network, p)).ok());
  {
    auto l = Ledger::create(run / "state.json", {run.string(), "crash", "many", "applying"});
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE(
        (*l)->intend({{0, ResourceKind::domain, kTestUri, plan.nodes[0].name, "endpoint0", {}},
                      {0, ResourceKind::domain, kTestUri, plan.nodes[1].name, "endpoint1", {}},
                      {0, ResourceKind::file, "", (tmp.path() / "never-made").string(), "", {}}})
            .ok());
  }
  DestroyOptions d;
  d.hypervisors = libvirt_factory();
  auto r = destroy_run(run, d);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->removed, 3u);
  EXPECT_TRUE(r->errors.empty());
  EXPECT_EQ(*(*keep)->domain_state(plan.nodes[0].name), DomainState::absent);
}

class InjectedFailure : public ::testing::TestWithParam<int> {};

TEST_P(InjectedFailure, FailureAtVmKRollsBackEverythingBeforeIt) {
  const int k = GetParam();
  TempDir tmp;
  auto keep = connect_libvirt(kTestUri);
  ASSERT_TRUE(keep.ok());
  std::string user = "inject" + std::to_string(k);
  auto plan = testing::many_plan(6, user, kTestUri);
  auto real = libvirt_factory();
  auto failing = std::make_shared<FailingHypervisor>(*real(kTestUri), "start_domain", k);
  auto opts = test_options(tmp, [failing](const std::string&) -> Expected<HypervisorPtr> {
    return HypervisorPtr(failing);
  });
  opts.workers = 1;  // VMs start in plan order, so VMs 0..k-1 are running when k fails
  fs::path run = tmp.path() / "runs" / "r";
  auto dep = apply(plan, run, opts, nullptr);
  ASSERT_FALSE(dep.ok());
  EXPECT_NE(dep.error().message.find("injected failure: start_domain endpoint" + std::to_string(k)),
            std::string::npos)
      << dep.error().message;
  EXPECT_EQ(dep.error().exit_code, continuum::ExitCode::failure);
  // VMs 0..k-1 were started, k failed, none after it was attempted; all are gone again.
  EXPECT_EQ(failing->calls(), k + 1);
  EXPECT_EQ(count_with_suffix(**keep, "_" + user), 0u);
  EXPECT_FALSE(*(*keep)->network_exists("continuum-" + user));
  EXPECT_FALSE(fs::exists(tmp.path() / "shares" / plan.nodes[0].name));
  for (const auto& n : plan.nodes)
    EXPECT_FALSE(fs::exists(run / "infrastructure/disks" / (n.name + ".qcow2")));
  auto l = Ledger::load(run / "state.json");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ((*l)->info().status, "rolled_back");
  for (const auto& r : (*l)->resources()) EXPECT_EQ(r.state, ResourceState::removed) << r.name;
}

INSTANTIATE_TEST_SUITE_P(AtVm, InjectedFailure, ::testing::Values(0, 3, 5));

TEST(InfraLibvirt, InterruptRollsBackAndExits130) {
  TempDir tmp;
  auto keep = connect_libvirt(kTestUri);
  ASSERT_TRUE(keep.ok());
  auto plan = testing::many_plan(3, "interrupted", kTestUri);
  auto real = libvirt_factory();
  // Ctrl-C arrives while the overlays are being made (after network and seeds exist).
  struct Interrupting : FailingHypervisor {
    using FailingHypervisor::FailingHypervisor;
    Status create_overlay(const fs::path& b, const std::string& f, const fs::path& p) override {
      util::request_interrupt();
      return FailingHypervisor::create_overlay(b, f, p);
    }
  };
  auto h = std::make_shared<Interrupting>(*real(kTestUri), "none", 0);
  auto opts = test_options(
      tmp, [h](const std::string&) -> Expected<HypervisorPtr> { return HypervisorPtr(h); });
  fs::path run = tmp.path() / "runs" / "r";
  auto dep = apply(plan, run, opts, nullptr);
  util::clear_interrupt();
  ASSERT_FALSE(dep.ok());
  EXPECT_EQ(dep.error().exit_code, continuum::ExitCode::interrupted);
  EXPECT_FALSE(*(*keep)->network_exists("continuum-interrupted"));
  EXPECT_EQ(count_with_suffix(**keep, "_interrupted"), 0u);
  for (const auto& n : plan.nodes) {
    EXPECT_FALSE(fs::exists(run / "infrastructure/disks" / (n.name + ".seed.iso")));
    EXPECT_FALSE(fs::exists(run / "infrastructure/disks" / (n.name + ".qcow2")));
  }
}

TEST(InfraLibvirt, RerunRemovesLeftoversOfTheEarlierRun) {
  TempDir tmp;
  auto keep = connect_libvirt(kTestUri);
  ASSERT_TRUE(keep.ok());
  auto plan = testing::many_plan(3, "rerun", kTestUri);
  auto opts = test_options(tmp, libvirt_factory());
  fs::path first = tmp.path() / "runs" / "first";
  ASSERT_TRUE(apply(plan, first, opts, nullptr).ok());
  // A stray domain of this plan without any ledger (e.g. its run dir was deleted).
  auto other = testing::many_plan(4, "rerun", kTestUri);
  DomainParams p;
  p.disk = "/nonexistent/x.qcow2";
  ASSERT_TRUE((*keep)
                  ->define_domain(other.nodes[3].name, domain_xml(other.nodes[3], other.network, p))
                  .ok());

  fs::path second = tmp.path() / "runs" / "second";
  auto dep = apply(other, second, opts, nullptr);
  ASSERT_TRUE(dep.ok()) << dep.error().message;
  EXPECT_EQ((*Ledger::load(first / "state.json"))->info().status, "destroyed");
  EXPECT_FALSE(fs::exists(first / "infrastructure/disks" / (plan.nodes[0].name + ".qcow2")));
  EXPECT_EQ(count_with_suffix(**keep, "_rerun"), 4u);
  DestroyOptions d;
  ASSERT_TRUE(destroy_run(second, d).ok());
  EXPECT_EQ(count_with_suffix(**keep, "_rerun"), 0u);
}

TEST(InfraLedger, RejectsWhatIsNotALedger) {
  TempDir tmp;
  ASSERT_TRUE(util::write_file_atomic(tmp.path() / "state.json", "{\"format\":\"other\"}").ok());
  auto l = Ledger::load(tmp.path() / "state.json");
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.error().message.find("state.json"), std::string::npos);
  EXPECT_FALSE(Ledger::create(tmp.path() / "state.json", {}).ok());  // never overwritten
  DestroyOptions d;
  auto r = destroy_run(tmp.path() / "missing", d);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, continuum::ExitCode::usage);
}

TEST(InfraLedger, DestroyStopsTheRunsDaemonByIdentityAndSparesAReusedPid) {
  // The run's registry after a crash of continuum: the ledger has its PID and start time.
  TempDir tmp;
  fs::path run = tmp.path() / "run";
  continuum::util::ProcessSpec spec;
  spec.argv = {"sleep", "300"};
  auto daemon = continuum::util::Background::start(spec, tmp.path() / "daemon.log");
  auto bystander = continuum::util::Background::start(spec, tmp.path() / "bystander.log");
  ASSERT_TRUE(daemon.ok() && bystander.ok());
  auto id = continuum::util::process_identity((*daemon)->pid());
  auto other = continuum::util::process_identity((*bystander)->pid());
  ASSERT_TRUE(id && other);
  other->start_ticks += 1;  // as if the bystander had reused a recorded PID
  auto l = Ledger::create(run / "state.json", {run.string(), "u", "c", "deployed"});
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->intend({{0, ResourceKind::process, "", id->str(), "", {}},
                            {0, ResourceKind::process, "", other->str(), "", {}}})
                  .ok());
  DestroyOptions d;
  auto r = destroy(**l, d);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->errors.empty());
  EXPECT_EQ(r->removed, 2u);
  EXPECT_EQ((*daemon)->exit_status(), 128 + SIGTERM);
  EXPECT_TRUE((*bystander)->running());
  EXPECT_EQ((*l)->resources()[0].state, ResourceState::removed);
  // A ledger entry that is no process identity is an error, not a guess.
  auto l2 = Ledger::create(tmp.path() / "run2" / "state.json", {"r2", "u", "c", "deployed"});
  ASSERT_TRUE(l2.ok());
  ASSERT_TRUE((*l2)->intend({{0, ResourceKind::process, "", "registry", "", {}}}).ok());
  auto r2 = destroy(**l2, d);
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r2->errors.size(), 1u);
  EXPECT_NE(r2->errors[0].find("PID:START"), std::string::npos) << r2->errors[0];
}

TEST(InfraLedger, RefusesToRemoveShallowOrRelativePaths) {
  TempDir tmp;
  fs::path run = tmp.path() / "run";
  auto l = Ledger::create(run / "state.json", {run.string(), "u", "c", "deployed"});
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->intend({{0, ResourceKind::file, "", "/var", "", {}},
                            {0, ResourceKind::file, "", "relative/path", "", {}}})
                  .ok());
  DestroyOptions d;
  auto r = destroy(**l, d);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->errors.size(), 2u);
  EXPECT_TRUE(fs::exists("/var"));
  EXPECT_EQ((*l)->info().status, "destroy_failed");
}

TEST(InfraHypervisor, RecordingHypervisorTouchesNothingAndLogsCalls) {
  RecordingHypervisor r;
  EXPECT_TRUE(r.define_network("n", "<network/>").ok());
  EXPECT_TRUE(r.start_network("n").ok());
  EXPECT_TRUE(r.create_overlay("/b.qcow2", "qcow2", "/tmp/never/x.qcow2").ok());
  EXPECT_TRUE(r.define_domain("d", "<domain/>").ok());
  EXPECT_TRUE(r.start_domain("d").ok());
  EXPECT_FALSE(fs::exists("/tmp/never/x.qcow2"));
  EXPECT_EQ(r.domains().at("d"), DomainState::running);
  EXPECT_EQ(r.calls().size(), 5u);
  EXPECT_TRUE(r.destroy_domain("d").ok());
  EXPECT_TRUE(r.undefine_domain("d").ok());
  EXPECT_TRUE(r.domains().empty());
  EXPECT_EQ(*r.choose_accelerator("auto", ""), Accelerator::tcg);
}

}  // namespace
}  // namespace continuum::infra
