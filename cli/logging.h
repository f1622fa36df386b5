// Where the verbs log: spdlog's default logger, set up once by each verb for what it is (a
// short command, or a daemon that loses its terminal).
#pragma once

#include <spdlog/common.h>

namespace discfs {

// Whether the log also goes to syslog: a daemon's standard error goes to /dev/null once it
// detaches from the terminal.
enum class Syslog { No, Yes };

// Makes spdlog's default logger write "discfs: MESSAGE" to standard error, and to syslog
// (ident "discfs", with the pid) when `syslog` is Yes, dropping messages below `level`.
// Throws only std::bad_alloc.
void set_up_logging(spdlog::level::level_enum level, Syslog syslog);

}  // namespace discfs
