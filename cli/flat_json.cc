#include "cli/flat_json.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdint>

#include "imagecore/base/error.h"

namespace discfs {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  std::map<std::string, FlatJsonValue> object() {
    std::map<std::string, FlatJsonValue> members = members_of(true);
    skip_space();
    if (pos_ != s_.size())
      fail("text after the object");
    return members;
  }

 private:
  [[noreturn]] void fail(std::string_view what) const {
    throw imagecore::Error(EPROTO, fmt::format("malformed JSON at offset {}: {}", pos_, what));
  }
  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool take(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!take(c))
      fail(fmt::format("'{}' expected", c));
  }
  bool take_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w)
      return false;
    pos_ += w.size();
    return true;
  }

  // "{...}"; arrays among the members only when `top`.
  std::map<std::string, FlatJsonValue> members_of(bool top) {
    std::map<std::string, FlatJsonValue> members;
    expect('{');
    if (!take('}')) {
      do {
        std::string key = string();
        expect(':');
        members[std::move(key)] = value(top);
      } while (take(','));
      expect('}');
    }
    return members;
  }

  FlatJsonValue value(bool arrays) {
    skip_space();
    if (arrays && take('[')) {
      FlatJsonValue v{FlatJsonValue::Kind::Array, "", {}};
      if (!take(']')) {
        do
          v.items.push_back(members_of(false));
        while (take(','));
        expect(']');
      }
      return v;
    }
    if (pos_ < s_.size() && s_[pos_] == '"')
      return {FlatJsonValue::Kind::String, string(), {}};
    if (take_word("true"))
      return {FlatJsonValue::Kind::True, "", {}};
    if (take_word("false"))
      return {FlatJsonValue::Kind::False, "", {}};
    if (take_word("null"))
      return {FlatJsonValue::Kind::Null, "", {}};
    const size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-')
      ++pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
      ++pos_;
    if (pos_ == start || s_[pos_ - 1] == '-')
      fail("a string, a whole number, true, false or null expected");
    return {FlatJsonValue::Kind::Number, std::string(s_.substr(start, pos_ - start)), {}};
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (pos_ >= s_.size())
        fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"')
        return out;
      if (static_cast<unsigned char>(c) < 0x20)
        fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size())
        fail("unterminated string");
      switch (const char e = s_[pos_++]) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u':
          append_utf8(out, code_point());
          break;
        default:
          fail("unknown escape");
      }
    }
  }

  // The code point of \uXXXX (after the "\u"), joining a surrogate pair.
  uint32_t code_point() {
    const uint32_t high = hex4();
    if (high < 0xD800 || high > 0xDFFF)
      return high;
    if (high > 0xDBFF || !take_word("\\u"))
      fail("unpaired surrogate");
    const uint32_t low = hex4();
    if (low < 0xDC00 || low > 0xDFFF)
      fail("unpaired surrogate");
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
  }
  uint32_t hex4() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      if (pos_ >= s_.size())
        fail("short \\u escape");
      const char c = s_[pos_];
      const int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
      if (digit < 0)
        fail("bad \\u escape");
      v = v * 16 + static_cast<uint32_t>(digit);
    }
    return v;
  }
  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::map<std::string, FlatJsonValue> parse_flat_json(std::string_view json) {
  return Reader(json).object();
}

}  // namespace discfs
