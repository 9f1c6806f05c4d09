#pragma once
// <run>/environment.json: the platform a run's numbers came from (docs/run.md). Energy and
// latency measured under TCG and under KVM, on another CPU, kernel, QEMU or guest image are not
// comparable, so every run records what it ran on and `continuum compare` lists what differs.
//
// This header holds the data, its JSON and the facts about this machine (CPU, kernel, continuum's
// own build). What needs libvirt or the guests is collected by infra::collect_environment
// (continuum/infra/environment_probe.h), which fills the same struct.
//
//   {"format":"continuum-environment","version":1,"collected":"<RFC 3339>",
//    "continuum":{"version":"0.1.0","git_commit":"<sha1>","git_dirty":false},
//    "host":{"hostname":..,"cpu_model":..,"logical_cpus":2,"os":"Linux","kernel_release":..,
//            "kernel_version":..,"machine":"x86_64"},
//    "accelerator":"tcg",
//    "hypervisors":{"qemu:///system":{"type":"QEMU","hypervisor_version":"7.2.0",
//                   "libvirt_version":"9.0.0","hostname":..,"cpu_arch":"x86_64","cpus":2,
//                   "memory_kib":..,"accelerator":"tcg"}},
//    "image":{"source":"offline","id":"offline-default-<hash12>","recipe_sha256":..,...},
//    "guests":{"cloud0":{"domain":"cloud0_alice","uri":"qemu:///system","accelerator":"tcg",
//              "kernel":"6.1.0-27-amd64","cpu_model":"QEMU Virtual CPU version 2.5+","vcpus":1}},
//    "errors":["what could not be found out, and why"]}
// Unknown values are null, never a guess. Maps are keyed (URI, node id) rather than arrays so that
// two runs' files line up field by field.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "continuum/util/expected.h"

namespace continuum::record {

inline constexpr const char* kEnvironmentFile = "environment.json";

/// The continuum that ran. The commit is the source tree's HEAD read when the binary runs from
/// its build tree (the binary was built from that tree); an installed binary has none.
struct BuildFacts {
  std::string version;     ///< kVersion (CMake's project version)
  std::string git_commit;  ///< "" = unknown
  bool git_known = false;  ///< git_commit and git_dirty were read
  bool git_dirty = false;  ///< tracked files differed from the commit
};

struct HostFacts {
  std::string hostname;
  std::string cpu_model;  ///< /proc/cpuinfo "model name" (or the architecture's equivalent)
  int logical_cpus = 0;   ///< online logical CPUs
  std::string os, kernel_release, kernel_version, machine;  ///< uname
};

/// One libvirt connection of the run (one per physical host).
struct HypervisorFacts {
  std::string uri;
  std::string type;                ///< virConnectGetType: QEMU, TEST, ...
  std::string hypervisor_version;  ///< virConnectGetVersion (QEMU's version for qemu://)
  std::string libvirt_version;     ///< virConnectGetLibVersion (the daemon's libvirt)
  std::string hostname;            ///< virConnectGetHostname
  std::string cpu_arch;            ///< virNodeGetInfo model (x86_64, ...)
  int cpus = 0;                    ///< virNodeGetInfo cpus
  unsigned long long memory_kib = 0;
  std::string accelerator;  ///< kvm | tcg: what this host's guests were defined with
};

/// The guest image every VM booted from (overlays are backed by it).
struct ImageFacts {
  std::string source;                  ///< offline | url | path
  std::string id;                      ///< offline-<variant>-<hash12>, url-<hash12>, or the path
  std::string path;                    ///< the image directory or file
  std::string recipe_sha256;           ///< offline: image.json's recipe hash
  std::string variant, suite, kernel;  ///< offline: from image.json
  std::string url;                     ///< url: where it came from
  std::string sha256;  ///< url: of the download; path: base_image_sha256 when configured
};

struct GuestFacts {
  std::string node;         ///< plan node id: cloud0
  std::string domain;       ///< cloud0_<user>
  std::string uri;          ///< libvirt connection it runs on
  std::string accelerator;  ///< kvm | tcg, from the domain definition
  std::string kernel;       ///< `uname -r` in the guest
  std::string cpu_model;    ///< the guest's /proc/cpuinfo model name
  int vcpus = 0;            ///< `nproc` in the guest
};

struct Environment {
  std::string collected;  ///< RFC 3339 UTC
  BuildFacts continuum;
  HostFacts host;
  std::vector<HypervisorFacts> hypervisors;
  ImageFacts image;
  std::vector<GuestFacts> guests;
  std::vector<std::string> errors;  ///< what could not be found out
  /// kvm, tcg, or "kvm+tcg" when hosts differ; "" when unknown.
  std::string accelerator() const;
};

nlohmann::json to_json(const Environment& env);

/// libvirt's encoded versions (major * 1000000 + minor * 1000 + release) as "9.0.0".
std::string libvirt_version_string(unsigned long long v);

/// The CPU model from /proc/cpuinfo text: "model name" (x86), else "Model", "cpu model" or
/// "Processor" (ARM, MIPS); "" when none is there.
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);

/// This machine: hostname, CPU model (from `proc_cpuinfo`), online CPUs, uname.
HostFacts local_host(const std::filesystem::path& proc_cpuinfo = "/proc/cpuinfo");

/// The running continuum's version and, from a build tree, its source tree's git commit.
/// `source_dir` defaults to the tree the binary was built from.
BuildFacts this_build(const std::filesystem::path& source_dir = {});

/// Writes <run>/environment.json atomically.
Status write_environment(const std::filesystem::path& run_dir, const Environment& env);

}  // namespace continuum::record
