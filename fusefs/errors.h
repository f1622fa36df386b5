// The one place where exceptions become errno replies.
#pragma once

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include <exception>

namespace fusefs {

// The errno for an exception: imagecore::Error and std::system_error keep theirs, bad_alloc
// is ENOMEM, anything else EIO. Logs damage (EIO) once per occurrence.
int errno_for(std::exception_ptr e);

// Runs `f`, which must reply to `req` exactly once unless it throws; a throw is answered
// with fuse_reply_err. `f` must not throw after it has replied.
template <typename F>
void guarded(fuse_req_t req, F&& f) {
  try {
    f();
  } catch (...) {
    fuse_reply_err(req, errno_for(std::current_exception()));
  }
}

}  // namespace fusefs
