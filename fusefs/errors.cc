#include "fusefs/errors.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <unordered_set>

#include "imagecore/base/error.h"

namespace fusefs {
namespace {

// A damaged file is reported once, not on every read of it; the set is capped so a hostile
// image cannot grow it without bound.
void warn_once(const std::string& message) {
  constexpr size_t kMaxRemembered = 4096;
  static std::mutex mu;
  static std::unordered_set<std::string> seen;
  {
    std::lock_guard lock(mu);
    if (seen.size() >= kMaxRemembered || !seen.insert(message).second)
      return;
  }
  spdlog::warn("{}", message);
}

}  // namespace

int errno_for(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const imagecore::Error& err) {
    if (err.code() == EIO || err.code() == EOPNOTSUPP)
      warn_once(err.what());
    return err.code();
  } catch (const std::system_error& err) {
    return err.code().value();
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  } catch (const std::exception& err) {
    spdlog::error("unexpected error: {}", err.what());
    return EIO;
  } catch (...) {
    spdlog::error("unexpected error of unknown type");
    return EIO;
  }
}

}  // namespace fusefs
