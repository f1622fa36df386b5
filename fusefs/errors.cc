#include "fusefs/errors.h"

#include <spdlog/spdlog.h>

#include <new>
#include <system_error>

#include "imagecore/error.h"

namespace fusefs {

int errno_for(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const imagecore::Error& err) {
    if (err.code() == EIO || err.code() == EOPNOTSUPP)
      spdlog::warn("{}", err.what());
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
