#pragma once
// Per-VM NoCloud seed (docs/design.md §5): the one contract between continuum and a guest. The seed
// is an ISO 9660 image with volume label `cidata`, attached as a read-only virtio disk, holding
//   meta-data, user-data, network-config   standard cloud-init NoCloud files, for cloud images
//   continuum/…                              the same facts pre-rendered as plain files, read by
//   the
//                                            offline image's tiny first-boot unit (continuum-seed),
//                                            which is ~17 s faster than cloud-init under TCG
// Both views are rendered from one SeedSpec, so they cannot disagree; golden tests pin them.
//
// The guest's SSH host key is generated HERE, on the host, and put into the seed, so the run's
// known_hosts is complete before any VM boots: no connection ever trusts a key on first use.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "continuum/plan/plan.h"
#include "continuum/util/expected.h"

namespace continuum::infra {

/// An SSH key pair in OpenSSH text form.
struct SshKeyPair {
  std::string private_key;  ///< "-----BEGIN OPENSSH PRIVATE KEY-----\n…"
  std::string public_key;   ///< "ssh-ed25519 AAAA… comment" (one line, no newline)
};

/// A virtiofs share as the guest mounts it.
struct SeedMount {
  std::string tag;        ///< virtiofs mount tag (domain XML <target dir=…>)
  std::string guest_dir;  ///< e.g. /var/scaphandre
};

/// Everything a guest learns from its seed.
struct SeedSpec {
  std::string instance_id;     ///< changes per run, so cloud-init treats each run as a new instance
  std::string hostname;        ///< node.hostname (VM name without '_', as upstream)
  std::string user;            ///< login user = VM name (upstream), passwordless sudo
  std::string authorized_key;  ///< public key line the user accepts
  std::string ip;
  int prefix_len = 16;
  std::string gateway;  ///< "" = no default route
  std::string mac;      ///< the NIC to configure; "" = any en*/eth* interface
  SshKeyPair host_key;  ///< ed25519 host key of the guest
  std::vector<SeedMount> mounts;
};

/// The seed's files: relative path -> content.
using SeedFiles = std::map<std::string, std::string>;

/// SeedSpec for a plan node. `instance_id` should be unique per run (e.g. "<vm>-<run stamp>").
SeedSpec seed_spec(const plan::Node& node, const plan::Network& net, const std::string& instance_id,
                   const std::string& authorized_key, const SshKeyPair& host_key,
                   const std::string& mac, const std::vector<SeedMount>& mounts);

/// Renders every file of the seed. Pure and deterministic (golden tests).
SeedFiles render_seed(const SeedSpec& spec);

/// Writes the seed as an ISO 9660 image (label cidata, Rock Ridge + Joliet) with genisoimage or
/// xorriso. Built under a temp name and renamed into place, so a half-written seed never exists.
Status write_seed_image(const SeedFiles& files, const std::filesystem::path& image);

/// Generates a fresh ed25519 key pair in-process (libssh): the private key in OpenSSH format, the
/// public key as one `ssh-ed25519 <base64> <comment>` line. Thread-safe; no files, no processes.
Expected<SshKeyPair> generate_host_key(const std::string& comment);

/// The user's key for VMs: reads `<private_key>.pub`, or, when the private key does not exist,
/// creates it first (ed25519, no passphrase, mode 600; upstream made RSA 4096 at the same path,
/// ~/.ssh/id_rsa_continuum, and such a key keeps working). Returns the public key line.
Expected<std::string> ensure_user_key(const std::filesystem::path& private_key);

/// One known_hosts line for `host` (port 22) or `[host]:port`, from a public key line.
std::string known_hosts_line(const std::string& host, int port, const std::string& public_key);

/// Writes the run's known_hosts atomically from (host, public key) pairs, port 22.
Status write_known_hosts(const std::filesystem::path& file,
                         const std::vector<std::pair<std::string, std::string>>& host_keys);

}  // namespace continuum::infra
