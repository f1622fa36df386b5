// Wall-clock timestamps for what the stage view records (write times, touch with "now").
#pragma once

#include <time.h>

#include "imagecore/base/timestamp.h"

namespace fusefs {

// The current time of day. Throws nothing.
inline imagecore::Timestamp now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return imagecore::Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

// A timestamp from a stat(2) time. Throws nothing.
inline imagecore::Timestamp from_timespec(const timespec& ts) {
  return imagecore::Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

}  // namespace fusefs
