#pragma once
// image_classification deployment (docs/original.md §7.3): who is a worker, which endpoints talk to
// which worker, and the exact commands that start the programs for each resource manager.
//   none        the programs started directly over SSH (setsid nohup, output to a file in the
//               guest, PID recorded). Without direct_offload the original's endpoint-only mode:
//               each endpoint runs continuum-endpoint in combined mode (generates and classifies
//               its own images). With direct_offload = True (continuum's own mode) continuum-worker
//               runs on the cloud or edge nodes and the endpoints offload to them.
//   kubernetes, kubeedge   a batch/v1 Job per worker app + docker endpoints, as the original.
//   mist        docker worker containers on the edges + docker endpoints, as the original.
// mist runs continuum's own images (app/ programs on a Debian root filesystem, built on the host
// and served by the run's registry: src/containers); Kubernetes/KubeEdge are refused by the
// preflight for the application, as they need the internet in the guests.
#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/benchmark/benchmark.h"
#include "continuum/benchmark/metrics.h"
#include "continuum/config/config.h"
#include "continuum/infra/deployment.h"

namespace continuum::benchmark {

/// Who does what in one application run.
struct Assignment {
  std::string mode;                                 ///< cloud | edge | endpoint (tables)
  std::vector<const infra::DeployedNode*> workers;  ///< empty in endpoint (combined) mode
  std::vector<const infra::DeployedNode*> endpoints;
  std::vector<int> endpoint_worker;  ///< worker index per endpoint; -1 combined
  /// Endpoints served by worker w (ENDPOINT_CONNECTED).
  int connected(size_t w) const;
};

/// RM none without direct_offload: no workers, every endpoint combined (mode "endpoint").
/// Otherwise workers are the edge nodes if there are any, else the cloud nodes that are not the
/// controller (the original's placement); with RM none and direct_offload the controller when it
/// is the only cloud node. Endpoint i goes to worker i / ceil(endpoints / workers), the
/// original's contiguous blocks; workers left without endpoints are dropped. Errors: no
/// endpoints, no worker node.
Expected<Assignment> assign(const config::Config& cfg, const infra::Deployment& d);

/// Values every launch needs.
struct AppSettings {
  int frequency = 5;
  int duration = 300;
  int worker_threads = 1;    ///< CPU_THREADS of a worker: max(1, int(application_worker_cpu))
  int endpoint_threads = 1;  ///< CPU_THREADS in combined mode
  double worker_cpu = 0;     ///< docker/k8s limits
  double worker_memory_gb = 0;
  double endpoint_cpu = 0;
  double endpoint_memory_gb = 0;
  int timeout_s = 0;     ///< whole run; benchmark_timeout or duration * 3 + 600
  std::string bin_dir;   ///< "" = programs in PATH
  std::string registry;  ///< docker registry for the original's images ("" = docker hub)
  /// continuum's images in the run's registry by role (subscriber, publisher, combined);
  /// preferred over the original's image names (infra::Deployment::images).
  std::map<std::string, std::string> images;
};
AppSettings app_settings(const config::Config& cfg, const infra::Deployment& d,
                         const Assignment& a);

/// Environment of worker w / endpoint e (upstream variable names).
std::map<std::string, std::string> worker_env(const Assignment& a, size_t w, const AppSettings& s);
std::map<std::string, std::string> endpoint_env(const Assignment& a, size_t e,
                                                const AppSettings& s);

/// RM none: starts `program args` detached in `dir` (relative to home): output to dir/out, exit
/// status to dir/rc, PID printed and saved to dir/pid. Every value is shell-quoted.
std::string direct_launch_command(const std::string& dir, const std::string& program,
                                  const std::vector<std::string>& args,
                                  const std::map<std::string, std::string>& env);
/// Prints "<rc>" once the program ended, "running" while it runs, "gone" if it ended without
/// writing rc (killed). A program that writes rc and exits while the command runs reads as its
/// rc, never as "gone" (rc is read again after a failed kill -0).
std::string direct_status_command(const std::string& dir);
/// Waits in the guest, for at most `max_seconds`, until the program has ended (GNU tail --pid,
/// which looks every 0.1 s without starting a process per look), then prints what
/// direct_status_command prints. One command per wait instead of one per poll: the end is seen
/// within 0.1 s, not a poll interval later.
std::string direct_wait_command(const std::string& dir, int max_seconds);
/// Prints "yes" once the program's output holds `text`, "no" when `max_seconds` passed first or
/// the program ended without it (looking every 0.25 s in the guest: only while a worker starts).
std::string direct_wait_output_command(const std::string& dir, const std::string& text,
                                       int max_seconds);
/// Stops the program's process group (SIGTERM, then SIGKILL after 5 s).
std::string direct_stop_command(const std::string& dir);

/// kubernetes/kubeedge: the original's Job for worker app `index` (containerPort 1883, requests,
/// env MQTT_LOCAL_IP from status.hostIP, restartPolicy Never).
std::string kubernetes_job_yaml(const std::string& app_name, int index, const std::string& image,
                                const AppSettings& s, int endpoints_connected);
/// docker run of an endpoint container as the original (name <mode><w>_endpoint<k>).
std::string docker_endpoint_command(const std::string& name, const std::string& image,
                                    const std::map<std::string, std::string>& env,
                                    const AppSettings& s);
/// mist: docker run of a worker container on an edge node.
std::string docker_worker_command(const std::string& name, const std::string& image,
                                  const std::map<std::string, std::string>& env,
                                  const AppSettings& s);

/// Runs image_classification once with RM none (directly over SSH) and parses the output. Raw
/// output goes to out_dir/<node>.<role>.log. Problems are appended to `errors`; metrics are
/// returned for whatever output there is.
Expected<AppMetrics> run_direct(const Assignment& a, const AppSettings& s, int repeat,
                                const infra::Deployment& d, const std::filesystem::path& out_dir,
                                const Hooks& hooks, const RemoteFactory& connect,
                                record::EventLog* events, const std::atomic<bool>* interrupted,
                                std::vector<std::string>* errors);

/// Same through docker/Kubernetes (resource managers kubernetes, kubeedge, mist).
Expected<AppMetrics> run_containers(const config::Config& cfg, const Assignment& a,
                                    const AppSettings& s, int repeat, const infra::Deployment& d,
                                    const std::filesystem::path& out_dir, const Hooks& hooks,
                                    const RemoteFactory& connect, record::EventLog* events,
                                    const std::atomic<bool>* interrupted,
                                    std::vector<std::string>* errors);

/// Metrics from the collected raw outputs (worker w's and endpoint e's text).
AppMetrics metrics_from_outputs(const Assignment& a, const std::vector<std::string>& worker_out,
                                const std::vector<std::string>& endpoint_out);

}  // namespace continuum::benchmark
