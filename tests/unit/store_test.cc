// The staging store against base images made at test time by xorriso: lazy import, what the
// commit is told (snapshot), copy-up, durability across reopen, discard, and the lock.
#include "stage/store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "imagecore/base/error.h"
#include "imagecore/base/source.h"
#include "imagecore/open.h"
#include "tests/unit/file_text.h"

namespace stage {
namespace {

using namespace imagecore;
using burner::StagedEntry;

namespace fs = std::filesystem;

using testing_files::slurp;
using testing_files::spit;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v xorriso >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "xorriso is not installed";
    char tmpl[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    src_ = root_ + "/src";
    fs::create_directories(src_ + "/a/deep");
    fs::create_directories(src_ + "/b");
    spit(src_ + "/a/x", "base x\n");
    spit(src_ + "/a/deep/z", std::string(100000, 'z'));
    spit(src_ + "/b/y", "base y contents\n");
    spit(src_ + "/top", "top\n");
    image_ = root_ + "/base.iso";
    const std::string cmd = "xorriso -outdev " + image_ + " -map " + src_ + " / -commit >" + root_ +
                            "/xorriso.log 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(root_ + "/xorriso.log");
    tree_ = open_tree(open_file_source(image_), OpenOptions{});
    store_dir_ = root_ + "/store";
  }
  void TearDown() override {
    if (!root_.empty())
      fs::remove_all(root_);
  }

  std::unique_ptr<Store> open_store() {
    StoreOptions o;
    o.target = image_;
    o.mountpoint = "/mnt/test";
    auto s = std::make_unique<Store>(store_dir_, o);
    s->use_base(tree_, 32, 100);
    return s;
  }

  static const StagedEntry* find(const StagedEntry& dir, const std::string& name) {
    for (const StagedEntry& c : dir.children)
      if (c.name == name)
        return &c;
    return nullptr;
  }

  std::string root_, src_, image_, store_dir_;
  std::shared_ptr<const FileTree> tree_;
};

TEST_F(StoreTest, BaseDirectoriesAreImportedOnlyWhenVisited) {
  auto s = open_store();
  StagedEntry snap = s->snapshot();
  EXPECT_TRUE(snap.whole_base_dir) << "nothing visited: the root is the base root";
  StoreEntry a = s->lookup(kRootIno, "a");
  EXPECT_EQ(a.attr.type, FileType::Directory);
  EXPECT_EQ(a.base_path, "/a");
  snap = s->snapshot();
  EXPECT_FALSE(snap.whole_base_dir);
  ASSERT_EQ(snap.children.size(), 3u);
  const StagedEntry* sa = find(snap, "a");
  ASSERT_NE(sa, nullptr);
  EXPECT_TRUE(sa->whole_base_dir);
  EXPECT_TRUE(sa->children.empty());
  const StagedEntry* top = find(snap, "top");
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(top->data, StagedEntry::Data::Base);
  EXPECT_EQ(top->base_path, "/top");
  EXPECT_EQ(top->size, 4u);
  const StoreStatus st = s->status();
  EXPECT_EQ(st.added + st.changed + st.deleted + st.renamed, 0u);
}

TEST_F(StoreTest, APureRenameKeepsTheDirectoryWhole) {
  auto s = open_store();
  StoreEntry b = s->lookup(kRootIno, "b");
  s->make(kRootIno, "moved", FileType::Directory, 0755, 0, 0, 0, "");
  const Ino moved = s->lookup(kRootIno, "moved").attr.ino;
  s->rename(kRootIno, "a", moved, "a2", false);
  s->rename(kRootIno, "b", kRootIno, "b2", false);
  const StagedEntry snap = s->snapshot();
  EXPECT_EQ(find(snap, "a"), nullptr);
  const StagedEntry* m = find(snap, "moved");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->base_path.empty()) << "made on the stage";
  const StagedEntry* a2 = find(*m, "a2");
  ASSERT_NE(a2, nullptr);
  EXPECT_TRUE(a2->whole_base_dir);
  EXPECT_EQ(a2->base_path, "/a");
  const StagedEntry* b2 = find(snap, "b2");
  ASSERT_NE(b2, nullptr);
  EXPECT_TRUE(b2->whole_base_dir);
  EXPECT_EQ(b2->base_path, "/b");
  EXPECT_EQ(s->status().renamed, 2u);
  EXPECT_EQ(s->status().added, 1u);
  // The renamed folder still lists its base children.
  EXPECT_EQ(s->lookup(s->lookup(moved, "a2").attr.ino, "x").base_path, "/a/x");
  // A folder cannot move below itself.
  try {
    s->rename(kRootIno, "moved", s->lookup(moved, "a2").attr.ino, "loop", false);
    FAIL() << "moved a folder into itself";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EINVAL);
  }
}

TEST_F(StoreTest, AddsOverwritesAndDeletesReachTheSnapshot) {
  auto s = open_store();
  const Ino b = s->lookup(kRootIno, "b").attr.ino;
  // Add.
  StoreEntry n = s->make(b, "new", FileType::Regular, 0640, 1000, 1000, 0, "");
  spit(s->local_path(n.attr.ino), "fresh");
  s->record_size(n.attr.ino, 5, Timestamp{1234, 5});
  s->make(kRootIno, "ln", FileType::Symlink, 0777, 0, 0, 0, "b/new");
  s->make(kRootIno, "dev", FileType::CharDevice, 0600, 0, 0, makedev(1, 3), "");
  // Overwrite a base file: copy-up, then change a byte.
  const Ino y = s->lookup(b, "y").attr.ino;
  StoreEntry ly = s->make_local(y, std::nullopt);
  EXPECT_EQ(ly.data, StoreEntry::Data::Local);
  EXPECT_EQ(slurp(s->local_path(y)), slurp(src_ + "/b/y")) << "copy-up keeps the base bytes";
  // Delete.
  s->unlink(kRootIno, "top");
  try {
    s->rmdir(kRootIno, "a");
    FAIL() << "removed a folder that is not empty";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOTEMPTY);
  }
  const StagedEntry snap = s->snapshot();
  EXPECT_EQ(find(snap, "top"), nullptr);
  const StagedEntry* sb = find(snap, "b");
  ASSERT_NE(sb, nullptr);
  EXPECT_FALSE(sb->whole_base_dir);
  const StagedEntry* sn = find(*sb, "new");
  ASSERT_NE(sn, nullptr);
  EXPECT_EQ(sn->data, StagedEntry::Data::Local);
  EXPECT_EQ(sn->size, 5u);
  EXPECT_EQ(sn->perm, 0640u);
  EXPECT_EQ(sn->uid, 1000u);
  EXPECT_EQ(sn->mtime, (Timestamp{1234, 5}));
  EXPECT_EQ(slurp(sn->local_path), "fresh");
  const StagedEntry* sy = find(*sb, "y");
  ASSERT_NE(sy, nullptr);
  EXPECT_EQ(sy->data, StagedEntry::Data::Local);
  EXPECT_EQ(sy->base_path, "/b/y");
  const StagedEntry* ln = find(snap, "ln");
  ASSERT_NE(ln, nullptr);
  EXPECT_EQ(ln->symlink_target, "b/new");
  const StagedEntry* dev = find(snap, "dev");
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->rdev, makedev(1, 3));
  const StoreStatus st = s->status();
  EXPECT_EQ(st.added, 3u);
  EXPECT_EQ(st.changed, 3u) << "y's contents, and the two folders whose entries changed";
  EXPECT_EQ(st.deleted, 1u);
  EXPECT_EQ(st.bytes_staged, 5u + slurp(src_ + "/b/y").size());
}

TEST_F(StoreTest, HardLinksShareAnInodeAndAGroup) {
  auto s = open_store();
  const Ino top = s->lookup(kRootIno, "top").attr.ino;
  StoreEntry l = s->link(top, kRootIno, "top2");
  EXPECT_EQ(l.attr.nlink, 2u);
  const StagedEntry snap = s->snapshot();
  ASSERT_NE(find(snap, "top2"), nullptr);
  EXPECT_NE(find(snap, "top")->link_group, 0u);
  EXPECT_EQ(find(snap, "top")->link_group, find(snap, "top2")->link_group);
  EXPECT_EQ(find(snap, "top")->nlink, 2u) << "the commit needs every name's count";
}

TEST_F(StoreTest, EverythingThatReturnedIsThereAfterReopen) {
  {
    auto s = open_store();
    const Ino a = s->lookup(kRootIno, "a").attr.ino;
    StoreEntry n = s->make(a, "kept", FileType::Regular, 0600, 7, 8, 0, "");
    spit(s->local_path(n.attr.ino), "kept data");
    s->record_size(n.attr.ino, 9, Timestamp{99, 0});
    s->rename(kRootIno, "b", a, "b_inside", false);
    AttrChange c;
    c.perm = 0700;
    s->set_attr(s->lookup(a, "x").attr.ino, c);
    s->unlink(kRootIno, "top");
  }
  auto s = open_store();
  const Ino a = s->lookup(kRootIno, "a").attr.ino;
  StoreEntry kept = s->lookup(a, "kept");
  EXPECT_EQ(kept.attr.size, 9u);
  EXPECT_EQ(kept.attr.uid, 7u);
  EXPECT_EQ(slurp(s->local_path(kept.attr.ino)), "kept data");
  EXPECT_EQ(s->lookup(a, "x").attr.perm, 0700u);
  EXPECT_EQ(s->lookup(a, "b_inside").base_path, "/b");
  EXPECT_THROW(s->lookup(kRootIno, "top"), Error);
  EXPECT_THROW(s->lookup(kRootIno, "b"), Error);
  EXPECT_EQ(s->status().bytes_staged, 9u);
}

TEST_F(StoreTest, TimesRecordedWithTheSizeAreThereAfterReopen) {
  Ino ino = 0;
  {
    auto s = open_store();
    ino = s->make(kRootIno, "t", FileType::Regular, 0644, 0, 0, 0, "").attr.ino;
    spit(s->local_path(ino), "abc");
    s->record_size(ino, 3, Timestamp{1600000000, 7}, Timestamp{1700000000, 8},
                   Timestamp{1500000000, 9});
  }
  auto s = open_store();
  const StoreEntry e = s->get(ino);
  EXPECT_EQ(e.attr.size, 3u);
  EXPECT_EQ(e.attr.mtime.sec, 1600000000);
  EXPECT_EQ(e.attr.mtime.nsec, 7);
  EXPECT_EQ(e.attr.ctime.sec, 1700000000);
  EXPECT_EQ(e.attr.atime.sec, 1500000000);
  EXPECT_EQ(e.attr.atime.nsec, 9);
  // Without an atime the stored one stays.
  s->record_size(ino, 3, Timestamp{1600000001, 0});
  EXPECT_EQ(s->get(ino).attr.atime.sec, 1500000000);
  EXPECT_EQ(s->get(ino).attr.ctime.sec, 1600000001);
}

TEST_F(StoreTest, AnAttributeChangeThatChangesNothingStagesNothing) {
  auto s = open_store();
  const Ino a = s->lookup(kRootIno, "a").attr.ino;
  const StoreEntry x = s->lookup(a, "x");
  AttrChange same;
  same.perm = x.attr.perm;
  same.uid = x.attr.uid;
  same.gid = x.attr.gid;
  s->set_attr(x.attr.ino, same);
  EXPECT_EQ(s->status().changed, 0u);
  EXPECT_EQ(s->get(x.attr.ino).attr.ctime.sec, x.attr.ctime.sec);
  AttrChange other;
  other.perm = x.attr.perm ^ 0100;
  s->set_attr(x.attr.ino, other);
  EXPECT_EQ(s->status().changed, 1u);
}

TEST_F(StoreTest, UnrecordedWritesAreTakenFromTheFileAfterACrash) {
  Ino ino = 0;
  {
    auto s = open_store();
    ino = s->make(kRootIno, "w", FileType::Regular, 0644, 0, 0, 0, "").attr.ino;
    spit(s->local_path(ino), "written but never flushed");
    spit(store_dir_ + "/data/999999.tmp", "an unfinished copy-up");
  }
  auto s = open_store();
  EXPECT_EQ(s->get(ino).attr.size, 25u);
  EXPECT_FALSE(fs::exists(store_dir_ + "/data/999999.tmp"));
}

TEST_F(StoreTest, ASecondOpenIsRefusedNamingTheHolder) {
  auto s = open_store();
  try {
    open_store();
    FAIL() << "a second store of one target opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EBUSY);
    const std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(::getpid())), std::string::npos) << what;
    EXPECT_NE(what.find("/mnt/test"), std::string::npos) << what;
  }
  s.reset();
  EXPECT_NO_THROW(open_store());
}

TEST_F(StoreTest, AStoreOfAnotherSessionIsNoticed) {
  { open_store(); }
  StoreOptions o;
  o.target = image_;
  Store s(store_dir_, o);
  EXPECT_TRUE(s.has_base());
  EXPECT_TRUE(s.base_matches(32, 100));
  EXPECT_FALSE(s.base_matches(32, 101));
  try {
    s.use_base(tree_, 160, 50);
    FAIL() << "took a store made on another session";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ESTALE);
  }
}

TEST_F(StoreTest, DiscardPutsBaseEntriesBack) {
  auto s = open_store();
  const Ino b = s->lookup(kRootIno, "b").attr.ino;
  const Ino y = s->lookup(b, "y").attr.ino;
  s->make_local(y, 3);
  s->make(b, "extra", FileType::Regular, 0644, 0, 0, 0, "");
  s->rename(kRootIno, "a", kRootIno, "a_renamed", false);
  s->unlink(kRootIno, "top");
  s->discard({"/b/y", "b/extra", "/a_renamed", "/top"});
  const StagedEntry snap = s->snapshot();
  const StagedEntry* sa = find(snap, "a");
  ASSERT_NE(sa, nullptr) << "the renamed folder went back";
  EXPECT_TRUE(sa->whole_base_dir);
  EXPECT_EQ(find(snap, "a_renamed"), nullptr);
  ASSERT_NE(find(snap, "top"), nullptr);
  EXPECT_EQ(find(snap, "top")->data, StagedEntry::Data::Base);
  const StagedEntry* sb = find(snap, "b");
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(find(*sb, "extra"), nullptr);
  ASSERT_NE(find(*sb, "y"), nullptr);
  EXPECT_EQ(find(*sb, "y")->data, StagedEntry::Data::Base);
  EXPECT_EQ(find(*sb, "y")->size, slurp(src_ + "/b/y").size());
  const StoreStatus st = s->status();
  EXPECT_EQ(st.deleted, 0u);
  EXPECT_EQ(st.renamed, 0u);
  EXPECT_EQ(st.bytes_staged, 0u);
  size_t files = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(store_dir_ + "/data"))
    ++files;
  EXPECT_EQ(files, 0u) << "discarded contents are removed";
}

TEST_F(StoreTest, DiscardAllAndANewBaseClearEverything) {
  auto s = open_store();
  StoreEntry n = s->make(kRootIno, "n", FileType::Regular, 0644, 0, 0, 0, "");
  spit(s->local_path(n.attr.ino), "abc");
  s->record_size(n.attr.ino, 3, Timestamp{});
  s->discard_all();
  EXPECT_THROW(s->lookup(kRootIno, "n"), Error);
  EXPECT_FALSE(fs::exists(s->local_path(n.attr.ino)));
  EXPECT_EQ(s->lookup(kRootIno, "top").data, StoreEntry::Data::Base);
  n = s->make(kRootIno, "n", FileType::Regular, 0644, 0, 0, 0, "");
  s->reset_to_new_base(nullptr, 0, 0);
  EXPECT_TRUE(s->base_matches(0, 0));
  EXPECT_TRUE(s->list(kRootIno).empty()) << "a blank base";
  EXPECT_FALSE(fs::exists(s->local_path(n.attr.ino)));
}

TEST_F(StoreTest, DiscardAllRemovesFilesNoRowOwns) {
  auto s = open_store();
  // What a copy-up cut short by a full disk leaves behind while the store is open.
  spit(store_dir_ + "/data/4242.tmp", "half a copy");
  s->discard_all();
  EXPECT_FALSE(fs::exists(store_dir_ + "/data/4242.tmp"));
  spit(store_dir_ + "/data/4243.tmp", "another half");
  s->reset_to_new_base(tree_, 32, 100);
  EXPECT_FALSE(fs::exists(store_dir_ + "/data/4243.tmp")) << "every clear, not only the first";
}

TEST_F(StoreTest, TheLimitRefusesGrowthAndCopyUps) {
  auto s = open_store();
  s->set_limit(10);
  StoreEntry n = s->make(kRootIno, "n", FileType::Regular, 0644, 0, 0, 0, "");
  EXPECT_TRUE(s->try_grow(n.attr.ino, 8));
  EXPECT_FALSE(s->try_grow(n.attr.ino, 11));
  const Ino deep = s->lookup(s->lookup(kRootIno, "a").attr.ino, "deep").attr.ino;
  try {
    s->make_local(s->lookup(deep, "z").attr.ino, std::nullopt);
    FAIL() << "copied 100000 bytes under a limit of 10";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOSPC);
  }
}

TEST_F(StoreTest, TheCapacityIsKeptAcrossReopenUntilReplaced) {
  {
    auto s = open_store();
    EXPECT_EQ(s->recorded_capacity(), std::nullopt);
    s->record_capacity(1 << 20);
    s->reset_to_new_base(tree_, 32, 100);  // a commit keeps it too
  }
  {
    auto s = open_store();
    EXPECT_EQ(s->recorded_capacity(), std::optional<uint64_t>(1 << 20));
    s->record_capacity(2 << 20);
  }
  EXPECT_EQ(open_store()->recorded_capacity(), std::optional<uint64_t>(2 << 20));
}

TEST_F(StoreTest, SubfoldersAreCountedWithoutImportingTheFolder) {
  auto s = open_store();
  const Ino a = s->lookup(kRootIno, "a").attr.ino;
  EXPECT_EQ(s->subdir_count(a), 1u);  // deep; x is a file
  EXPECT_EQ(s->subdir_count(kRootIno), 2u);
  s->make(a, "new", FileType::Directory, 0755, 0, 0, 0, "");
  EXPECT_EQ(s->subdir_count(a), 2u);
  s->rmdir(a, "new");
  s->rename(a, "deep", kRootIno, "deep", false);
  EXPECT_EQ(s->subdir_count(a), 0u);
  EXPECT_EQ(s->subdir_count(kRootIno), 3u);
  EXPECT_EQ(s->subdir_count(s->lookup(kRootIno, "top").attr.ino), 0u) << "not a folder";
}

TEST_F(StoreTest, WhatASessionCannotRecordIsRefusedWhenMade) {
  auto s = open_store();
  const auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return 0;
  };
  EXPECT_EQ(code_of([&] {
              s->make(kRootIno, "l", FileType::Symlink, 0777, 0, 0, 0, std::string(1025, 't'));
            }),
            ENAMETOOLONG);
  EXPECT_EQ(code_of([&] {
              s->make(kRootIno, "l", FileType::Symlink, 0777, 0, 0, 0,
                      "a/" + std::string(256, 'n'));
            }),
            ENAMETOOLONG);
  EXPECT_EQ(code_of([&] {
              s->make(kRootIno, "l", FileType::Symlink, 0777, 0, 0, 0,
                      std::string(255, 'n') + "/../" + std::string(255, 'm'));
            }),
            0);
  const Ino n = s->make(kRootIno, "n", FileType::Regular, 0644, 0, 0, 0, "").attr.ino;
  EXPECT_EQ(code_of([&] { s->make_local(n, kMaxFileBytes + 1); }), EFBIG);
}

TEST_F(StoreTest, ABlankTargetStartsEmpty) {
  StoreOptions o;
  o.target = root_ + "/new.iso";
  o.default_uid = 4321;
  Store s(store_dir_, o);
  EXPECT_FALSE(s.has_base());
  s.use_base(nullptr, 0, 0);
  EXPECT_TRUE(s.list(kRootIno).empty());
  EXPECT_EQ(s.get(kRootIno).attr.uid, 4321u);
  s.make(kRootIno, "d", FileType::Directory, 0755, 0, 0, 0, "");
  const StagedEntry snap = s.snapshot();
  EXPECT_FALSE(snap.whole_base_dir);
  ASSERT_EQ(snap.children.size(), 1u);
  EXPECT_FALSE(snap.children[0].whole_base_dir);
}

}  // namespace
}  // namespace stage
