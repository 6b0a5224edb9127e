// Passwords are kept only as digests under a random per-instance seed (XXH3-128), and
// a guess is checked by comparing digests byte by byte without an early exit. The work
// then depends on the guess alone: neither the stored password's contents nor its
// length show in the timing, which a plain memcmp / length check would reveal.
#include "auth/authenticator.h"

#include <xxhash.h>

#include <cstring>
#include <random>

namespace respite::auth {
namespace {

constexpr std::string_view kDefaultUser = "default";

uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

Authenticator::Authenticator(const config::ClientConfig& cfg) : seed_(random_seed()) {
  required_ = !cfg.password.empty() || !cfg.users.empty();
  if (!cfg.password.empty()) default_digest_ = digest(cfg.password);
  for (const auto& u : cfg.users) {
    if (u.name == kDefaultUser) {
      default_digest_ = digest(u.password);  // the user entry wins over client.password
    } else {
      users_.push_back(User{u.name, digest(u.password)});
    }
  }
}

bool Authenticator::required() const { return required_; }

Authenticator::Result Authenticator::check(std::string_view user, std::string_view password) const {
  const bool is_default = user.empty() || user == kDefaultUser;
  if (!required_) return is_default ? Result::NoPasswordConfigured : Result::WrongPass;

  const Digest* expected = nullptr;
  if (is_default) {
    if (default_digest_) expected = &*default_digest_;
  } else {
    for (const auto& u : users_) {
      if (u.name == user) {
        expected = &u.digest;
        break;
      }
    }
  }
  // An unknown or disabled user costs the same hashing as a known one.
  static const Digest kNever{};
  bool ok = matches(password, expected ? *expected : kNever);
  return (ok && expected != nullptr) ? Result::Ok : Result::WrongPass;
}

Authenticator::Digest Authenticator::digest(std::string_view password) const {
  XXH128_hash_t h = XXH3_128bits_withSeed(password.data(), password.size(), seed_);
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, h);
  Digest d;
  static_assert(sizeof canonical.digest == std::tuple_size_v<Digest>);
  std::memcpy(d.data(), canonical.digest, d.size());
  return d;
}

bool Authenticator::matches(std::string_view password, const Digest& expected) const {
  const Digest actual = digest(password);
  // volatile keeps the compiler from turning the loop into an early-exit comparison.
  volatile uint8_t diff = 0;
  for (size_t i = 0; i < actual.size(); ++i) diff = diff | (actual[i] ^ expected[i]);
  return diff == 0;
}

bool Authenticator::user_exists(std::string_view user) const {
  if (user == "default") return true;
  for (const auto& u : users_) {
    if (u.name == user) return true;
  }
  return false;
}

}  // namespace respite::auth
