#include "imagecore/names.h"

#include <cstdint>

namespace imagecore {
namespace {

std::string_view drop_version(std::string_view id) {
  const size_t semi = id.rfind(';');
  if (semi != std::string_view::npos) {
    bool digits = semi + 1 < id.size();
    for (size_t i = semi + 1; i < id.size(); ++i)
      digits = digits && id[i] >= '0' && id[i] <= '9';
    if (digits || semi + 1 == id.size())
      id = id.substr(0, semi);
  }
  return id;
}

}  // namespace

std::string plain_name(std::string_view id) {
  id = drop_version(id);
  if (id.size() > 1 && id.back() == '.')
    id.remove_suffix(1);
  return std::string(id);
}

std::string joliet_name(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  const auto unit = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(id[i]) << 8 |
                                 static_cast<uint8_t>(id[i + 1]));
  };
  size_t i = 0;
  for (; i + 1 < id.size(); i += 2) {
    uint32_t cp = unit(i);
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 3 < id.size() && unit(i + 2) >= 0xDC00 &&
        unit(i + 2) <= 0xDFFF) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (unit(i + 2) - 0xDC00);
      i += 2;
    } else if (cp >= 0xD800 && cp <= 0xDFFF) {
      cp = 0xFFFD;
    }
    append_utf8(&out, cp);
  }
  if (i < id.size())
    append_utf8(&out, 0xFFFD);
  return std::string(drop_version(out));
}

bool sanitize_name(std::string* name) {
  constexpr size_t kNameMax = 255;  // what the kernel can look up
  if (name->size() > kNameMax) {
    size_t cut = kNameMax;
    while (cut > 0 && (static_cast<unsigned char>((*name)[cut]) & 0xC0) == 0x80)
      --cut;  // do not split a UTF-8 sequence
    name->resize(cut);
  }
  for (char& c : *name)
    if (c == '/' || c == '\0')
      c = '_';
  if (*name == "." || *name == "..")
    name->assign(name->size(), '_');
  return !name->empty();
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace imagecore
