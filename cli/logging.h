// Where the verbs log: spdlog's default logger, set up once by each verb for what it is (a
// short command, or a daemon that loses its terminal).
#pragma once

#include <spdlog/common.h>

#include <exception>

#include "cli/exit_codes.h"

namespace discfs {

// Whether the log also goes to syslog: a daemon's standard error goes to /dev/null once it
// detaches from the terminal.
enum class Syslog { No, Yes };

// Makes spdlog's default logger write "discfs: MESSAGE" to standard error, and to syslog
// (ident "discfs", with the pid) when `syslog` is Yes, dropping messages below `level`.
// Throws only std::bad_alloc.
void set_up_logging(spdlog::level::level_enum level, Syslog syslog);

// Logs the sentence exit_status_for(e) gives as an error ("discfs: SENTENCE" on standard
// error, and in syslog for a daemon) and returns its exit code. Never throws.
ExitCode report_failure(std::exception_ptr e) noexcept;

}  // namespace discfs
