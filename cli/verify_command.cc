#include "cli/verify_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "burner/image_check.h"
#include "cli/logging.h"
#include "cli/progress.h"
#include "imagecore/base/json.h"
#include "imagecore/base/source.h"
#include "imagecore/open.h"
#include "imagecore/tree_compare.h"

namespace discfs {
namespace {

using imagecore::json_string;

// Progress for the whole run: a phase line when the work changes, then at most about a
// hundred updates a phase (JSON lines stay few).
class Reporter {
 public:
  explicit Reporter(bool json) : bar_(json) {}
  void operator()(const std::string& phase, uint64_t done, uint64_t total) {
    if (phase != phase_) {
      phase_ = phase;
      last_ = 0;
      bar_.phase(phase);
    }
    if (done == total || total == 0 || done - last_ >= total / 100) {
      last_ = done;
      bar_.update(done, total);
    }
  }
  void done() { bar_.done(); }

 private:
  ProgressBar bar_;
  std::string phase_;
  uint64_t last_ = 0;
};

struct Published {
  burner::DigestKind kind;
  const char* name;
  std::string expected;  // lower-case hex
  burner::DigestCheck actual;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void check_hex(const std::string& value, size_t digits, const char* option) {
  const bool hex = std::all_of(value.begin(), value.end(),
                               [](unsigned char c) { return std::isxdigit(c) != 0; });
  if (value.size() != digits || !hex)
    throw Failure(ExitCode::Usage,
                  fmt::format("{} needs {} hexadecimal digits, not '{}'", option, digits, value));
}

const char* state_name(burner::SessionTagCheck::State s) {
  switch (s) {
    case burner::SessionTagCheck::State::Ok:
      return "ok";
    case burner::SessionTagCheck::State::NoTags:
      return "no-tags";
    case burner::SessionTagCheck::State::Mismatch:
      return "mismatch";
    case burner::SessionTagCheck::State::Unreadable:
      return "unreadable";
  }
  return "unreadable";
}

struct Result {
  burner::Md5Check md5;
  std::optional<Published> published;
  std::optional<std::vector<imagecore::TreeDifference>> against;
  bool mismatch = false, unreadable = false;
};

void print_text(const VerifyArgs& args, const Result& r) {
  for (const burner::SessionTagCheck& s : r.md5.sessions) {
    std::string line = fmt::format("session {} (block {}): ", s.number, s.start_lba);
    switch (s.state) {
      case burner::SessionTagCheck::State::Ok:
        line += fmt::format("MD5 tags match (blocks {}-{}{})", s.range_start,
                            s.range_start + s.blocks - 1,
                            s.range_start == s.start_lba ? "" : ", the copy of its tree");
        break;
      case burner::SessionTagCheck::State::NoTags:
        line += "no MD5 tags, unchecked";
        break;
      case burner::SessionTagCheck::State::Mismatch:
        line += "MD5 MISMATCH: " + s.detail;
        break;
      case burner::SessionTagCheck::State::Unreadable:
        line += "UNREADABLE: " + s.detail;
        break;
    }
    std::cout << line << "\n";
  }
  std::cout << fmt::format("files: {} checked against their recorded MD5, {} failed",
                           r.md5.files_checked, r.md5.files.size());
  if (r.md5.files_without_md5)
    std::cout << fmt::format(", {} without a recorded MD5", r.md5.files_without_md5);
  std::cout << "\n";
  for (const burner::FileCheckProblem& f : r.md5.files)
    std::cout << fmt::format("  session {}: {}: {}\n", f.session, f.path, f.what);
  for (const std::string& n : r.md5.notes)
    std::cout << "note: " << n << "\n";
  if (r.published) {
    const Published& p = *r.published;
    const bool ok = p.actual.hex == p.expected;
    std::cout << fmt::format("{} of {} bytes{}: {}\n", p.name, p.actual.bytes,
                             p.actual.whole_source ? "" : " (the image's size)",
                             ok ? "matches" : "MISMATCH: " + p.actual.hex);
  }
  if (r.against) {
    std::cout << fmt::format("against {}: {} difference{}\n", args.against, r.against->size(),
                             r.against->size() == 1 ? "" : "s");
    for (const imagecore::TreeDifference& d : *r.against)
      std::cout << fmt::format("  {}: {}{}\n", imagecore::difference_kind_name(d.kind), d.path,
                               d.what.empty() ? "" : ": " + d.what);
  }
  std::cout << (r.mismatch     ? "result: MISMATCH"
                : r.unreadable ? "result: UNREADABLE"
                               : "result: match")
            << "\n";
}

void print_json(const VerifyArgs& args, const Result& r) {
  std::string o = fmt::format("{{\"event\":\"result\",\"source\":{},\"result\":{},\"sessions\":[",
                              json_string(args.source),
                              json_string(r.mismatch     ? "mismatch"
                                          : r.unreadable ? "unreadable"
                                                         : "match"));
  bool first = true;
  for (const burner::SessionTagCheck& s : r.md5.sessions) {
    o += fmt::format(
        "{}{{\"number\":{},\"start_lba\":{},\"md5\":{},\"blocks\":{},\"range_start\":{},\"detail\":"
        "{}}}",
        first ? "" : ",", s.number, s.start_lba, json_string(state_name(s.state)), s.blocks,
        s.range_start, s.detail.empty() ? "null" : json_string(s.detail));
    first = false;
  }
  o += fmt::format("],\"files\":{{\"checked\":{},\"without_md5\":{},\"failed\":[",
                   r.md5.files_checked, r.md5.files_without_md5);
  first = true;
  for (const burner::FileCheckProblem& f : r.md5.files) {
    o += fmt::format("{}{{\"session\":{},\"path\":{},\"what\":{}}}", first ? "" : ",", f.session,
                     json_string(f.path), json_string(f.what));
    first = false;
  }
  o += "]},\"notes\":[";
  first = true;
  for (const std::string& n : r.md5.notes) {
    o += (first ? "" : ",") + json_string(n);
    first = false;
  }
  o += "]";
  if (r.published) {
    const Published& p = *r.published;
    o += fmt::format(
        ",\"checksum\":{{\"algorithm\":{},\"expected\":{},\"actual\":{},\"bytes\":{},\"match\":{}}"
        "}",
        json_string(p.name), json_string(p.expected), json_string(p.actual.hex), p.actual.bytes,
        p.actual.hex == p.expected);
  }
  if (r.against) {
    o += fmt::format(",\"against\":{{\"dir\":{},\"differences\":[", json_string(args.against));
    first = true;
    for (const imagecore::TreeDifference& d : *r.against) {
      o += fmt::format("{}{{\"kind\":{},\"path\":{},\"what\":{}}}", first ? "" : ",",
                       json_string(imagecore::difference_kind_name(d.kind)), json_string(d.path),
                       d.what.empty() ? "null" : json_string(d.what));
      first = false;
    }
    o += "]}";
  }
  o += "}";
  std::cout << o << "\n";
}

}  // namespace

CLI::App* add_verify_command(CLI::App& app, VerifyArgs& args) {
  CLI::App* v = app.add_subcommand(
      "verify",
      "Check an image, block device or disc against its MD5 tags and file MD5s (every "
      "session), a published checksum, and the directory it was made from.");
  v->add_option("SOURCE", args.source, "Image file, block device or drive")->required();
  CLI::Option* sha = v->add_option(
      "--sha256", args.sha256,
      "Published SHA-256 (hex) of the image; of a device, its first N bytes, N the image's size");
  CLI::Option* md5 = v->add_option("--md5", args.md5, "Published MD5 (hex), like --sha256");
  sha->excludes(md5);
  md5->excludes(sha);
  v->add_option("--against", args.against,
                "Also compare the newest tree with this directory: names, contents, modes, "
                "owners, mtimes, link targets");
  v->add_flag("--json", args.json, "Progress as JSON lines, then one JSON result object");
  return v;
}

ExitCode run_verify(const VerifyArgs& args) {
  set_up_logging(spdlog::level::err, Syslog::No);
  std::optional<Published> published;
  if (!args.sha256.empty()) {
    check_hex(args.sha256, 64, "--sha256");
    published = Published{burner::DigestKind::Sha256, "sha256", lower(args.sha256), {}};
  } else if (!args.md5.empty()) {
    check_hex(args.md5, 32, "--md5");
    published = Published{burner::DigestKind::Md5, "md5", lower(args.md5), {}};
  }

  Reporter reporter(args.json);
  const burner::CheckProgress progress = [&reporter](const std::string& phase, uint64_t done,
                                                     uint64_t total) {
    reporter(phase, done, total);
  };
  Result r;
  r.md5 = burner::check_md5(args.source, progress);
  if (published) {
    published->actual = burner::digest_image(args.source, published->kind, progress);
    r.published = std::move(published);
  }
  if (!args.against.empty()) {
    std::shared_ptr<const imagecore::Source> src = imagecore::open_file_source(args.source);
    const std::shared_ptr<const imagecore::FileTree> tree = imagecore::open_tree(src, {});
    r.against = imagecore::compare_tree(*tree, args.against, [&](uint64_t done, uint64_t total) {
      reporter("compare with " + args.against, done, total);
    });
  }
  reporter.done();

  for (const burner::SessionTagCheck& s : r.md5.sessions) {
    r.mismatch |= s.state == burner::SessionTagCheck::State::Mismatch;
    r.unreadable |= s.state == burner::SessionTagCheck::State::Unreadable;
  }
  r.mismatch |= !r.md5.files.empty();
  r.mismatch |= r.published && r.published->actual.hex != r.published->expected;
  r.mismatch |= r.against && !r.against->empty();
  if (args.json)
    print_json(args, r);
  else
    print_text(args, r);
  if (r.mismatch)
    return ExitCode::Mismatch;
  return r.unreadable ? ExitCode::CannotOpen : ExitCode::Ok;
}

}  // namespace discfs
