// What `discfs status` and `discfs commit` print, as text and as --json, and reading back
// the JSON a stage daemon answers with. The expected texts are what the verbs printed before
// the reports were structs: scripts read them.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "cli/stage_report.h"
#include "imagecore/base/error.h"

namespace discfs {
namespace {

StatusReport typical() {
  StatusReport r;
  r.target = "/tmp/img.iso";
  r.store = "/tmp/S";
  r.added = 1;
  r.changed = 2;
  r.deleted = 3;
  r.renamed = 4;
  r.bytes_staged = 303898;
  r.free_bytes_after_commit = 729115680;
  using Kind = stage::StagedChange::Kind;
  r.changes = {{Kind::Added, "/new", "", false},
               {Kind::Modified, "/a", "", false},
               {Kind::Renamed, "/b2", "/b", true},
               {Kind::Deleted, "/gone", "", false}};
  return r;
}

void expect_same(const StatusReport& a, const StatusReport& b) {
  EXPECT_EQ(a.target, b.target);
  EXPECT_EQ(a.store, b.store);
  EXPECT_EQ(a.added, b.added);
  EXPECT_EQ(a.changed, b.changed);
  EXPECT_EQ(a.deleted, b.deleted);
  EXPECT_EQ(a.renamed, b.renamed);
  EXPECT_EQ(a.bytes_staged, b.bytes_staged);
  EXPECT_EQ(a.free_bytes_after_commit, b.free_bytes_after_commit);
  EXPECT_EQ(a.changes, b.changes);
}

int error_code_of(void (*f)()) {
  try {
    f();
  } catch (const imagecore::Error& e) {
    return e.code();
  }
  return 0;
}

TEST(StatusReport, TextIsOneAlignedLinePerField) {
  EXPECT_EQ(to_text(typical()),
            "target:                   /tmp/img.iso\n"
            "store:                    /tmp/S\n"
            "added:                    1\n"
            "changed:                  2\n"
            "deleted:                  3\n"
            "renamed:                  4\n"
            "bytes staged:             303898\n"
            "free bytes after commit:  729115680\n"
            "\n"
            "A  /new\n"
            "M  /a\n"
            "RM /b -> /b2\n"
            "D  /gone\n");
}

TEST(StatusReport, NothingStagedSaysSoAndAnOlderDaemonListsNothing) {
  StatusReport r = typical();
  r.changes.emplace();
  EXPECT_TRUE(to_text(r).ends_with("729115680\n\nnothing is staged\n")) << to_text(r);
  r.changes.reset();
  EXPECT_TRUE(to_text(r).ends_with("729115680\n")) << to_text(r);
  EXPECT_EQ(to_json(r).find("changes"), std::string::npos);
}

TEST(StatusReport, JsonHasEveryFieldInOrder) {
  EXPECT_EQ(to_json(typical()),
            R"({"target":"/tmp/img.iso","store":"/tmp/S","added":1,"changed":2,"deleted":3,)"
            R"("renamed":4,"bytes_staged":303898,"free_bytes_after_commit":729115680,)"
            R"("changes":[{"change":"added","path":"/new"},{"change":"modified","path":"/a"},)"
            R"({"change":"renamed","path":"/b2","from":"/b","modified":true},)"
            R"({"change":"deleted","path":"/gone"}]})");
}

TEST(StatusReport, NoLimitIsUnlimitedInTextAndNullInJson) {
  StatusReport r = typical();
  r.free_bytes_after_commit.reset();
  EXPECT_NE(to_text(r).find("\nfree bytes after commit:  unlimited\n"), std::string::npos);
  EXPECT_NE(to_json(r).find(R"("free_bytes_after_commit":null,)"), std::string::npos);
}

TEST(StatusReport, OddTargetNamesAreQuotedInJsonAndEscapedInText) {
  StatusReport r = typical();
  r.target = "/tmp/odd \"q\" \\b,c \xc3\xa9\tt.iso";
  const std::string json_start = R"({"target":"/tmp/odd \"q\" \\b,c é\tt.iso","store")";
  EXPECT_EQ(to_json(r).substr(0, json_start.size()), json_start);
  EXPECT_EQ(to_text(r).substr(0, to_text(r).find('\n') + 1),
            "target:                   /tmp/odd \\\"q\\\" \\\\b,c \xc3\xa9\\tt.iso\n");
}

TEST(StatusReport, EveryFieldKeepsItsLineWhateverTheNames) {
  // A trailing backslash once ran the fields together; a newline must not split a line.
  StatusReport r = typical();
  r.target = "/tmp/end\\";
  r.store = "/tmp/two\nlines,\"x\":1";
  const std::string text = to_text(r);
  EXPECT_EQ(text.substr(0, text.find("added:")),
            "target:                   /tmp/end\\\\\n"
            "store:                    /tmp/two\\nlines,\\\"x\\\":1\n");
  size_t lines = 0;
  for (char c : text)
    lines += c == '\n';
  EXPECT_EQ(lines, 8u + 1 + 4);  // and an empty line before the four changes
}

TEST(StatusReport, JsonReadsBackToTheSameReport) {
  StatusReport r = typical();
  r.target = "/tmp/odd \"q\" \\b,c \xc3\xa9\tt\x01.iso\\";
  r.bytes_staged = UINT64_MAX;
  r.changes->push_back({stage::StagedChange::Kind::Renamed, "/odd \"x\"\n\\", "/\t", false});
  expect_same(status_from_json(to_json(r)), r);
  r.free_bytes_after_commit.reset();
  expect_same(status_from_json(to_json(r)), r);
}

TEST(StatusReport, ReadsWhatADaemonOfTheSameFormatSends) {
  // A daemon keeps running across an upgrade of the command: its answer must still read.
  const StatusReport r = status_from_json(
      R"({"target":"/tmp/clisplit-cmp/img.iso","store":"/tmp/clisplit-cmp/S","added":1,)"
      R"("changed":2,"deleted":0,"renamed":0,"bytes_staged":303898,)"
      R"("free_bytes_after_commit":null})");
  EXPECT_EQ(r.target, "/tmp/clisplit-cmp/img.iso");
  EXPECT_EQ(r.changed, 2u);
  EXPECT_EQ(r.bytes_staged, 303898u);
  EXPECT_FALSE(r.free_bytes_after_commit);
  EXPECT_FALSE(r.changes);
}

TEST(StatusReport, MalformedAnswersAreProtocolErrors) {
  EXPECT_EQ(error_code_of([] { status_from_json(""); }), EPROTO);
  EXPECT_EQ(error_code_of([] { status_from_json(R"({"target":"/t"})"); }), EPROTO);
  EXPECT_EQ(error_code_of([] {
              status_from_json(R"({"target":"/t","store":"/s","added":"1","changed":0,"deleted":0,)"
                               R"("renamed":0,"bytes_staged":0,"free_bytes_after_commit":null})");
            }),
            EPROTO);
  EXPECT_EQ(error_code_of([] {
              status_from_json(R"({"target":"/t","store":"/s","added":-1,"changed":0,"deleted":0,)"
                               R"("renamed":0,"bytes_staged":0,"free_bytes_after_commit":null})");
            }),
            EPROTO);
  EXPECT_EQ(error_code_of([] {
              status_from_json(R"({"target":"/t","store":"/s","added":1,"changed":0,"deleted":0,)"
                               R"("renamed":0,"bytes_staged":18446744073709551616,)"
                               R"("free_bytes_after_commit":null})");
            }),
            EPROTO);
}

CommitReport committed() {
  CommitReport r;
  r.result.session = 2;
  r.result.start_lba = 192;
  r.result.blocks = 182;
  r.result.data_bytes = 303898;
  r.result.verified = true;
  return r;
}

TEST(CommitReport, TextIsAReadableSummary) {
  EXPECT_EQ(to_text(committed()),
            "committed: session 2, 364.0 KiB at block 192 (296.8 KiB of new file data); "
            "MD5 verified\n");
  CommitReport r = committed();
  r.to = "/tmp/copy.iso";
  r.result.verified = false;
  r.result.boot_note = "El Torito kept";
  EXPECT_EQ(to_text(r),
            "written: /tmp/copy.iso, a new single-session image of 364.0 KiB; not verified "
            "(no MD5 tags)\nnote: El Torito kept\n");
  r = committed();
  r.result.dummy = true;
  EXPECT_EQ(to_text(r),
            "dry run: the session would take 364.0 KiB at block 192; nothing was written\n");
  EXPECT_EQ(to_text(r).find('{'), std::string::npos);
}

TEST(CommitReport, SizesForPeople) {
  EXPECT_EQ(size_text(0), "0 bytes");
  EXPECT_EQ(size_text(1023), "1023 bytes");
  EXPECT_EQ(size_text(1536), "1.5 KiB");
  EXPECT_EQ(size_text(200ull << 20), "200.0 MiB");
  EXPECT_EQ(size_text(5ull << 40), "5.0 TiB");
}

TEST(CommitReport, NothingStagedSaysSo) {
  CommitReport r = committed();
  r.result.unchanged = true;
  EXPECT_EQ(to_text(r), "nothing to commit: nothing is staged, so the target is unchanged\n");
  EXPECT_NE(to_json(r).find(R"("unchanged":true)"), std::string::npos);
}

TEST(CommitReport, ToPathAndBootNoteAreQuoted) {
  CommitReport r = committed();
  r.to = "/tmp/a \"copy\".iso";
  r.result.boot_note = "El Torito kept; \"isolinux\" patched";
  EXPECT_NE(to_json(r).find(R"("to":"/tmp/a \"copy\".iso")"), std::string::npos);
  EXPECT_NE(to_json(r).find(R"("boot_note":"El Torito kept; \"isolinux\" patched"})"),
            std::string::npos);
}

TEST(CommitReport, JsonReadsBackToTheSameText) {
  CommitReport r = committed();
  r.to = "/tmp/a \"copy\"\\.iso";
  r.result.dummy = true;
  r.result.boot_note = "note";
  const CommitReport back = commit_from_json(to_json(r));
  EXPECT_EQ(back.to, r.to);
  EXPECT_EQ(back.result.boot_note, "note");
  EXPECT_TRUE(back.result.dummy);
  EXPECT_EQ(to_text(back), to_text(r));
  r.result.unchanged = true;
  r.to.clear();
  EXPECT_EQ(to_json(commit_from_json(to_json(r))), to_json(r));
}

TEST(CommitReport, MalformedAnswersAreProtocolErrors) {
  EXPECT_EQ(error_code_of([] { commit_from_json(R"({"session":2})"); }), EPROTO);
  EXPECT_EQ(
      error_code_of([] {
        commit_from_json(R"({"session":2,"start_lba":0,"blocks":1,"data_bytes":0,"verified":1,)"
                         R"("dummy":false,"unchanged":false,"to":null,"boot_note":""})");
      }),
      EPROTO);
  EXPECT_EQ(error_code_of([] {
              commit_from_json(
                  R"({"session":4294967296,"start_lba":0,"blocks":1,"data_bytes":0,)"
                  R"("verified":true,"dummy":false,"unchanged":false,"to":null,"boot_note":""})");
            }),
            EPROTO);
}

}  // namespace
}  // namespace discfs
