// File identifiers as users see them (ECMA-119 7.5, Joliet, RRIP NM).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace imagecore {

// A plain ISO 9660 (or 9660:1999) identifier shown as xorriso, 7-Zip and bsdtar show it:
// case kept, the ";N" version and then a trailing "." dropped.
std::string plain_name(std::string_view id);

// A Joliet identifier (UCS-2/UTF-16 big-endian) as UTF-8, version dropped. Unpaired
// surrogates and an odd trailing byte become U+FFFD.
std::string joliet_name(std::string_view id);

// Makes a name safe to hand to the kernel: no '/', no NUL, not "." or "..", not empty, at
// most 255 bytes (cut at a UTF-8 character boundary).
// Returns false when nothing usable is left; otherwise rewrites offending bytes to '_'.
bool sanitize_name(std::string* name);

// Appends the UTF-8 encoding of a code point (below 0x110000).
void append_utf8(std::string* out, uint32_t cp);

}  // namespace imagecore
