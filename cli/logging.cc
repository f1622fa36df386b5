#include "cli/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

namespace discfs {

void set_up_logging(spdlog::level::level_enum level, Syslog syslog) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (syslog == Syslog::Yes)
    sinks.push_back(
        std::make_shared<spdlog::sinks::syslog_sink_mt>("discfs", LOG_PID, LOG_USER, false));
  auto logger = std::make_shared<spdlog::logger>("discfs", sinks.begin(), sinks.end());
  logger->set_pattern("discfs: %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
}

ExitCode report_failure(std::exception_ptr e) noexcept {
  const ExitStatus status = exit_status_for(std::move(e));
  try {
    spdlog::error("{}", status.message);
  } catch (...) {  // spdlog reports its own failures through its error handler, but be sure
  }
  return status.code;
}

}  // namespace discfs
