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

}  // namespace imagecore
