// JSON string quoting for the test tools and the CLI's --json output.
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace imagecore {

// `s` as a quoted JSON string; bytes that are not valid UTF-8 pass through unchanged.
inline std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

// `s` as JSON quotes it, without the quotes: how the CLI's text output shows names with
// control characters in them.
inline std::string json_escaped(std::string_view s) {
  const std::string quoted = json_string(s);
  return quoted.substr(1, quoted.size() - 2);
}

}  // namespace imagecore
