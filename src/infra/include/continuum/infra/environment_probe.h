#pragma once
// Collects <run>/environment.json (continuum/record/environment.h) after the infrastructure
// phase: this machine, every libvirt connection of the plan (type, QEMU and libvirt versions,
// node info), the accelerator each domain was defined with (the run's own
// infrastructure/<vm>.xml: what the deployment used, not what the configuration asked), the base
// image (image.json of the offline image the domains boot, or the configured path/URL and its
// sha256), and each guest's kernel over its SSH session.
//
// Nothing here fails the run: what cannot be found out is null in the file and a line in
// "errors", so a reader sees that it is unknown rather than a guess.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"
#include "continuum/plan/plan.h"
#include "continuum/record/environment.h"
#include "continuum/util/expected.h"
#include "continuum/util/interrupt.h"
#include "continuum/util/ssh.h"

namespace continuum::infra {

struct EnvironmentProbeOptions {
  /// Opens a session to a guest; default: util::ssh_connect to its deployment target.
  std::function<Expected<util::RemotePtr>(const Deployment&, const DeployedNode&)> connect;
  std::chrono::milliseconds timeout{std::chrono::seconds(20)};  ///< per guest
  /// Once true, no guest is asked any more (Ctrl-C). Default: the process's interrupt flag.
  const std::atomic<bool>* cancel = util::interrupt_flag();
  /// Where URL base images are cached ("" = image_cache_dir of the configuration).
  std::filesystem::path image_cache;
  std::filesystem::path proc_cpuinfo = "/proc/cpuinfo";
  /// The source tree whose git commit is recorded ("" = the one this binary was built from).
  std::filesystem::path source_dir;
};

/// One libvirt connection's facts (read-only connection, closed again). `accelerator` is left
/// empty: it comes from the domains.
Expected<record::HypervisorFacts> probe_hypervisor(const std::string& uri);

/// "kvm" or "tcg" from a libvirt domain XML's `<domain type=...>` (kvm, qemu); another type
/// (test, xen) as is; "" when there is none.
std::string accelerator_of_domain_xml(std::string_view xml);

/// The `<kernel>` path of a domain XML (direct kernel boot), "" when it boots from its disk.
std::string kernel_of_domain_xml(std::string_view xml);

/// The base image: offline when `domain_kernel` lies in an image directory with image.json,
/// else the configuration's base_image (URL: the cache's record of the download; path: the
/// configured sha256). Errors (an unreadable image.json) go to `errors`.
record::ImageFacts probe_image(const std::filesystem::path& domain_kernel,
                               const config::Infrastructure& infra,
                               const std::filesystem::path& image_cache,
                               std::vector<std::string>& errors);

/// The guest command whose output parse_guest_output reads: kernel, CPUs, CPU model.
std::string guest_probe_command();
/// Fills kernel, vcpus and cpu_model from guest_probe_command's output; an Error when the output
/// does not have its shape.
Status parse_guest_output(std::string_view out, record::GuestFacts& g);

/// Everything above for one deployed run (domain XMLs read from <run_dir>/infrastructure/);
/// never fails.
record::Environment collect_environment(const plan::Plan& plan, const config::Infrastructure& infra,
                                        const Deployment& d, const std::filesystem::path& run_dir,
                                        const EnvironmentProbeOptions& opt = {});

/// collect_environment, then <run_dir>/environment.json. An Error only when the file cannot be
/// written; what could not be collected is in the result's `errors`.
Expected<record::Environment> record_environment(const plan::Plan& plan,
                                                 const config::Infrastructure& infra,
                                                 const Deployment& d,
                                                 const std::filesystem::path& run_dir,
                                                 const EnvironmentProbeOptions& opt = {});

}  // namespace continuum::infra
