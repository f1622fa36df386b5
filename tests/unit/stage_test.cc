// The staging library (stage/) on a real image file: the commit protocol through
// burner::commit (libburn's stdio: pseudo-drive), what it tells the gate of a mount, the
// recovery of a store whose commit was stopped after writing, discard, and the locks. Base
// images are made at test time by xorriso.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "burner/commit.h"
#include "burner/target.h"
#include "imagecore/base/error.h"
#include "imagecore/base/source.h"
#include "imagecore/open.h"
#include "stage/base.h"
#include "stage/commit.h"
#include "stage/lock_file.h"
#include "stage/stage.h"
#include "stage/target_lock.h"
#include "tests/unit/file_text.h"

namespace stage {
namespace {

using imagecore::Error;
using imagecore::FileType;
using imagecore::kRootIno;

namespace fs = std::filesystem;

using testing_files::slurp;
using testing_files::spit;

// A gate that records the steps the protocol takes, and can refuse to pause.
class RecordingGate : public Gate {
 public:
  void pause() override {
    steps += "pause ";
    if (refuse)
      throw Error(EBUSY, "files are still open for writing: /open");
  }
  void resume() override { steps += "resume "; }
  void resume_with_new_base(Store& store, const Base& base, const burner::TargetInfo& t) override {
    steps += "new-base ";
    Gate::resume_with_new_base(store, base, t);
  }
  void remember_cached() override { steps += "remember "; }
  void forget_cached() override { steps += "forget "; }

  std::string steps;
  bool refuse = false;
};

class StageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v xorriso >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "xorriso is not installed: no base image to stage on";
    char tmpl[] = "/tmp/stage_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    const std::string src = root_ + "/src";
    fs::create_directories(src + "/docs");
    spit(src + "/docs/a.txt", "base a\n");
    spit(src + "/top", "top\n");
    image_ = root_ + "/base.iso";
    xorriso("-outdev " + image_ + " -map " + src + " /");
    store_dir_ = root_ + "/store";
    lock_path_ = root_ + "/run/target.lock";
  }
  void TearDown() override {
    if (!root_.empty())
      fs::remove_all(root_);
  }

  // Runs xorriso with `args` and -commit; fails the test when it fails.
  void xorriso(const std::string& args) {
    const std::string cmd = "xorriso " + args + " -commit >" + root_ + "/xorriso.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(root_ + "/xorriso.log");
  }

  Stage open_mount() {
    return open_for_mount(image_, std::nullopt, store_dir_, "/mnt/test", lock_path_);
  }

  size_t sessions() { return burner::probe_target(image_, std::nullopt).sessions.size(); }

  // Stages a new file /name holding `text`.
  static void stage_file(Store& s, const std::string& name, const std::string& text) {
    const StoreEntry e = s.make(kRootIno, name, FileType::Regular, 0644, 0, 0, 0, "");
    spit(s.local_path(e.attr.ino), text);
    s.record_size(e.attr.ino, text.size(), imagecore::Timestamp{1700000000, 0});
  }

  // The contents of /name in the newest session of the image, as an independent reader sees.
  std::string on_image(const std::string& name) {
    auto tree = imagecore::open_tree(imagecore::open_file_source(image_), {});
    const imagecore::Node n = tree->lookup(kRootIno, name);
    std::string out(n.attr.size, '\0');
    tree->read(n, 0, std::as_writable_bytes(std::span(out.data(), out.size())));
    return out;
  }

  burner::CommitOptions options() {
    burner::CommitOptions o;
    o.target = image_;
    return o;
  }

  std::string root_, image_, store_dir_, lock_path_;
};

TEST_F(StageTest, ACommitAppendsASessionAndClearsTheStore) {
  Stage st = open_mount();
  ASSERT_EQ(sessions(), 1u);
  stage_file(*st.store, "new", "fresh contents\n");
  RecordingGate gate;
  const burner::CommitResult r = commit(*st.store, options(), gate);
  EXPECT_EQ(r.session, 2);
  EXPECT_FALSE(r.unchanged);
  EXPECT_TRUE(r.verified);
  EXPECT_EQ(sessions(), 2u);
  EXPECT_EQ(on_image("new"), "fresh contents\n");
  EXPECT_EQ(on_image("top"), "top\n") << "the base's files are in the new session too";
  EXPECT_EQ(gate.steps, "pause remember new-base forget ");
  // The store stages nothing now, on the new session.
  EXPECT_TRUE(st.store->status().empty());
  EXPECT_EQ(st.store->status().bytes_staged, 0u);
  EXPECT_TRUE(st.store->base_matches(r.start_lba, r.blocks));
  EXPECT_FALSE(st.store->pending_session());
  EXPECT_EQ(st.store->lookup(kRootIno, "new").data, StoreEntry::Data::Base);
}

TEST_F(StageTest, AFailedCommitKeepsThePreviousSessionAndTheStagedChanges) {
  Stage st = open_mount();
  stage_file(*st.store, "new", "fresh contents\n");
  burner::CommitOptions o = options();
  o.fail_before_activation = true;
  RecordingGate gate;
  EXPECT_THROW(commit(*st.store, o, gate), Error);
  EXPECT_EQ(gate.steps, "pause resume ");
  EXPECT_EQ(sessions(), 1u);
  EXPECT_THROW(on_image("new"), Error) << "the target shows its previous session";
  EXPECT_EQ(st.store->status().added, 1u);
  EXPECT_EQ(slurp(st.store->local_path(st.store->lookup(kRootIno, "new").attr.ino)),
            "fresh contents\n");
  EXPECT_FALSE(st.store->pending_session());
  // The next commit goes through.
  EXPECT_EQ(commit(*st.store, options(), gate).session, 2);
  EXPECT_EQ(on_image("new"), "fresh contents\n");
}

TEST_F(StageTest, NothingStagedWritesNothing) {
  Stage st = open_mount();
  RecordingGate gate;
  const burner::CommitResult r = commit(*st.store, options(), gate);
  EXPECT_TRUE(r.unchanged);
  EXPECT_EQ(r.session, 1);
  EXPECT_EQ(sessions(), 1u);
  EXPECT_EQ(gate.steps, "pause resume ");
  // A new volume id is a change of its own.
  burner::CommitOptions o = options();
  o.volid = "RENAMED";
  EXPECT_FALSE(commit(*st.store, o, gate).unchanged);
  EXPECT_EQ(sessions(), 2u);
}

TEST_F(StageTest, ACopyElsewhereLeavesTheTargetAndTheStore) {
  Stage st = open_mount();
  stage_file(*st.store, "new", "fresh contents\n");
  burner::CommitOptions o = options();
  o.to_path = root_ + "/copy.iso";
  RecordingGate gate;
  EXPECT_EQ(commit(*st.store, o, gate).session, 1);
  EXPECT_EQ(gate.steps, "pause resume ");
  EXPECT_EQ(sessions(), 1u);
  EXPECT_EQ(st.store->status().added, 1u);
  auto copy = imagecore::open_tree(imagecore::open_file_source(root_ + "/copy.iso"), {});
  EXPECT_EQ(copy->lookup(kRootIno, "new").attr.size, 15u);
}

TEST_F(StageTest, AGateThatRefusesToPauseStopsTheCommit) {
  Stage st = open_mount();
  stage_file(*st.store, "new", "x");
  RecordingGate gate;
  gate.refuse = true;
  try {
    commit(*st.store, options(), gate);
    FAIL() << "committed with files open for writing";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EBUSY);
  }
  EXPECT_EQ(gate.steps, "pause ");
  EXPECT_EQ(sessions(), 1u);
  EXPECT_FALSE(st.store->pending_session());
}

TEST_F(StageTest, AStoreWhoseCommitWasStoppedAfterWritingIsRecovered) {
  {
    Stage st = open_mount();
    stage_file(*st.store, "new", "fresh contents\n");
    // What a daemon killed inside its commit leaves: the session pending, then written, and
    // the store never reset.
    st.store->set_pending_session(st.info.next_writable);
    burner::CommitOptions o = options();
    burner::commit(o, st.store->snapshot());
  }
  ASSERT_EQ(sessions(), 2u);
  Stage st = open_store(store_dir_, false);
  EXPECT_EQ(st.target, image_);
  EXPECT_TRUE(st.store->status().empty()) << "the changes are on the target now";
  EXPECT_FALSE(st.store->pending_session());
  const burner::SessionInfo* newest = st.info.newest();
  ASSERT_NE(newest, nullptr);
  EXPECT_TRUE(st.store->base_matches(newest->start_lba, newest->blocks));
  EXPECT_EQ(st.store->lookup(kRootIno, "new").data, StoreEntry::Data::Base);
}

TEST_F(StageTest, AStoreOfAnOlderSessionIsRefusedOrDropped) {
  { stage_file(*open_mount().store, "new", "staged on session 1"); }
  xorriso("-dev " + image_ + " -map " + root_ + "/src/top /other");  // session 2, not ours
  try {
    open_store(store_dir_, false);
    FAIL() << "staged on a session that is no longer the newest";
  } catch (const imagecore::Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("discfs discard --all --store"), std::string::npos)
        << e.what();
  }
  Stage st = open_store(store_dir_, true);
  EXPECT_TRUE(st.store->status().empty());
  EXPECT_THROW(st.store->lookup(kRootIno, "new"), Error);
  EXPECT_EQ(st.store->lookup(kRootIno, "other").data, StoreEntry::Data::Base);
}

TEST_F(StageTest, DiscardPausesTheGateAndPutsTheBaseBack) {
  Stage st = open_mount();
  stage_file(*st.store, "new", "x");
  st.store->unlink(kRootIno, "top");
  RecordingGate gate;
  gate.refuse = true;
  EXPECT_THROW(discard(*st.store, {}, gate), Error);
  EXPECT_EQ(st.store->status().added, 1u) << "a refused discard drops nothing";
  gate.refuse = false;
  gate.steps.clear();
  discard(*st.store, {"/top"}, gate);
  EXPECT_EQ(gate.steps, "pause remember resume forget ");
  EXPECT_EQ(st.store->lookup(kRootIno, "top").data, StoreEntry::Data::Base);
  EXPECT_EQ(st.store->status().added, 1u);
  discard(*st.store, {}, gate);
  EXPECT_TRUE(st.store->status().empty());
}

TEST_F(StageTest, ASecondStageOfOneTargetIsRefusedNamingTheFirst) {
  Stage first = open_mount();
  try {
    open_for_mount(image_, std::nullopt, root_ + "/other-store", "/mnt/other", lock_path_);
    FAIL() << "two stores staged one target";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EBUSY);
    const std::string what = e.what();
    EXPECT_NE(what.find(image_ + ": already staged or being committed"), std::string::npos) << what;
    EXPECT_NE(what.find(fmt::format("process {}, store {}", ::getpid(), store_dir_)),
              std::string::npos)
        << what;
  }
}

TEST(LockFileTest, ASecondHolderIsRefusedNamingTheFirst) {
  char tmpl[] = "/tmp/lock_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/lock";
  std::string seen;
  auto busy = [&seen](const std::string& holder) {
    seen = holder;
    return "held by " + holder;
  };
  {
    LockFile first(path, 0600, busy);
    ASSERT_TRUE(first.record("process 1\n/mnt/first\n"));
    try {
      LockFile second(path, 0600, busy);
      FAIL() << "took a lock that is held";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), EBUSY);
      EXPECT_EQ(seen, "process 1\n/mnt/first\n");
      EXPECT_EQ(std::string(e.what()), "held by process 1\n/mnt/first\n");
    }
  }
  EXPECT_NO_THROW(LockFile(path, 0600, busy)) << "released with its holder";
  fs::remove_all(tmpl);
}

TEST(LockFileTest, AFileThatCannotBeOpenedIsNamed) {
  try {
    LockFile("/nonexistent-folder/lock", 0600, [](const std::string&) { return ""; });
    FAIL() << "locked a file in a folder that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-folder/lock"), std::string::npos);
  }
}

}  // namespace
}  // namespace stage
