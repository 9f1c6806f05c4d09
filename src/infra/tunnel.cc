#include "continuum/infra/tunnel.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <pwd.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <regex>

#include "continuum/util/hash.h"
#include "continuum/util/process.h"
#include "continuum/util/strings.h"

namespace continuum::infra {
namespace fs = std::filesystem;

namespace {

std::string bridge_suffix(const std::string& bridge) {
  auto dash = bridge.find('-');
  return dash == std::string::npos ? bridge : bridge.substr(dash + 1);
}

fs::path passwd_home() {
  if (passwd* pw = getpwuid(geteuid()); pw && pw->pw_dir) return pw->pw_dir;
  return "/root";
}

std::string user_name() {
  if (passwd* pw = getpwuid(geteuid()); pw && pw->pw_name) return pw->pw_name;
  return "root";
}

}  // namespace

std::string tunnel_device(const std::string& bridge) {
  std::string name = "cntx-" + bridge_suffix(bridge);
  return name.size() > 15 ? name.substr(0, 15) : name;  // IFNAMSIZ
}

int tunnel_vni(const std::string& bridge) {
  int v = static_cast<int>(util::fnv1a32(bridge) & 0xFFFFFFu);
  return v == 0 ? 1 : v;
}

std::vector<std::vector<std::string>> tunnel_commands(const TunnelEnd& end,
                                                      const std::string& bridge) {
  const std::string dev = tunnel_device(bridge);
  std::vector<std::vector<std::string>> c;
  c.push_back({"ip", "link", "add", dev, "mtu", "1500", "type", "vxlan", "id",
               std::to_string(tunnel_vni(bridge)), "dstport", "4789", "local", end.underlay});
  for (const auto& p : end.peers)
    c.push_back({"bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", p});
  c.push_back({"ip", "link", "set", dev, "master", bridge});
  c.push_back({"ip", "link", "set", dev, "up"});
  return c;
}

std::vector<std::string> tunnel_remove_command(const std::string& device) {
  return {"ip", "link", "del", device};
}

bool device_absent(const util::ExecResult& r) {
  return r.err.find("Cannot find device") != std::string::npos ||
         r.err.find("does not exist") != std::string::npos;
}

Expected<std::string> local_address_towards(const std::string& peer) {
  util::ProcessSpec spec;
  spec.argv = {"ip", "-4", "route", "get", peer};
  spec.timeout = std::chrono::seconds(10);
  auto r = TRY(util::run_process(spec));
  static const std::regex src(R"(\bsrc\s+(\d+\.\d+\.\d+\.\d+))");
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.out, m, src))
    return make_error("no route from this machine to " + peer +
                      " (ip route get: " + std::string(util::trim(r.err + r.out)) + ")");
  return m[1].str();
}

Expected<std::string> resolve_ipv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res) return make_error("cannot resolve " + host + ": " + gai_strerror(rc));
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, buf, sizeof buf);
  ::freeaddrinfo(res);
  return std::string(buf);
}

HostCommand ssh_host_command(const std::string& netns) {
  struct Sessions {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<util::Remote>> by_uri;
    std::map<std::string, std::shared_ptr<std::mutex>> locks;  // one command at a time per host
  };
  auto sessions = std::make_shared<Sessions>();
  return [sessions, netns](const std::string& uri,
                           const std::vector<std::string>& argv) -> Expected<util::ExecResult> {
    auto h = uri_host(uri);
    if (!h) {
      util::ProcessSpec spec;
      spec.argv = argv;
      spec.timeout = std::chrono::seconds(30);
      auto r = TRY(util::run_process(spec));
      util::ExecResult e;
      e.exit_code = r.exit_code;
      e.timed_out = r.timed_out;
      e.out = r.out;
      e.err = r.err;
      return e;
    }
    std::shared_ptr<util::Remote> remote;
    std::shared_ptr<std::mutex> lock;
    {
      std::lock_guard g(sessions->mu);
      auto& l = sessions->locks[uri];
      if (!l) l = std::make_shared<std::mutex>();
      lock = l;
    }
    std::lock_guard one(*lock);
    {
      std::lock_guard g(sessions->mu);
      remote = sessions->by_uri[uri];
    }
    const std::string user = h->user.empty() ? user_name() : h->user;
    if (!remote) {
      const fs::path ssh = passwd_home() / ".ssh";
      util::SshTarget t;
      t.host = h->host;
      t.port = h->port;
      t.user = user;
      t.known_hosts = ssh / "known_hosts";
      t.netns = netns;
      for (const char* k : {"id_ed25519", "id_ecdsa", "id_rsa"})
        if (std::error_code ec; fs::exists(ssh / k, ec)) {
          t.private_key = ssh / k;
          break;
        }
      if (t.private_key.empty())
        return make_error("no SSH key in " + ssh.string() +
                          " (id_ed25519, id_ecdsa or id_rsa) to "
                          "log in to " +
                          user + "@" + h->host);
      auto r = util::ssh_connect(t, std::chrono::seconds(30));
      if (!r) return make_error("SSH to the host of " + uri + ": " + r.error().message);
      remote = std::shared_ptr<util::Remote>(std::move(*r));
      std::lock_guard g(sessions->mu);
      sessions->by_uri[uri] = remote;
    }
    std::string line = util::shell_join(argv);
    if (user != "root") line = "sudo -n " + line;
    return remote->exec(line, std::chrono::seconds(30));
  };
}

}  // namespace continuum::infra
