// Whole files as strings, for tests that make source trees and read back what was staged.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace testing_files {

// The bytes of `path`; empty when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replaces the contents of `path` with `text` (creating it).
inline void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

}  // namespace testing_files
