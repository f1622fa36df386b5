// The kernel-cache bookkeeping: lookup counts, a count that would go negative, and the names
// a commit asks the kernel to forget.
#include "fusefs/kernel_cache.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "tests/unit/fusefs/temp_store.h"

namespace fusefs {
namespace {

class KernelCacheTest : public ::testing::Test {
 protected:
  testing::TempStore store_;
  KernelCache cache_{*store_, 1.0};
};

TEST_F(KernelCacheTest, AnInodeIsHeldUntilEveryLookupIsForgotten) {
  EXPECT_EQ(cache_.hand_out(5), 5u) << "without a commit, node ids are the store's numbers";
  cache_.looked_up(5, 5);
  cache_.looked_up(5, 5);
  EXPECT_TRUE(cache_.held(5));
  EXPECT_FALSE(cache_.forget(5, 2));
  EXPECT_TRUE(cache_.held(5));
  EXPECT_EQ(cache_.forget(5, 1), 5u) << "the last lookup was forgotten";
  EXPECT_FALSE(cache_.held(5));
  EXPECT_FALSE(cache_.held(6));
}

TEST_F(KernelCacheTest, ForgettingMoreThanWasLookedUpIsLoud) {
  // The message goes to stderr, where the death test looks for it.
  spdlog::set_default_logger(spdlog::stderr_logger_st("kernel_cache_test"));
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  cache_.looked_up(8, 8);
  EXPECT_DEBUG_DEATH(cache_.forget(8, 2), "INTERNAL ERROR: Negative lookup count for inode 8");
  EXPECT_DEBUG_DEATH(cache_.forget(9, 1), "INTERNAL ERROR: Negative lookup count for inode 9");
#ifdef NDEBUG
  // Release builds log it and go on: 8's one lookup is gone, 9 was never there.
  EXPECT_FALSE(cache_.held(8));
  EXPECT_FALSE(cache_.held(9));
#endif
  spdlog::drop("kernel_cache_test");
  spdlog::set_default_logger(spdlog::stdout_logger_st("default_after_kernel_cache_test"));
}

TEST_F(KernelCacheTest, KernelNamesListEveryNameOfEveryHeldInode) {
  const stage::StoreEntry a = store_.make_file("a");
  const stage::StoreEntry b = store_.make_file("b");
  store_->link(a.attr.ino, imagecore::kRootIno, "a2");
  cache_.looked_up(a.attr.ino, a.attr.ino);
  std::vector<KernelName> names = cache_.kernel_names();
  ASSERT_EQ(names.size(), 2u) << "b was never looked up; a has two names";
  std::sort(names.begin(), names.end(),
            [](const KernelName& x, const KernelName& y) { return x.name < y.name; });
  EXPECT_EQ(names[0].parent, imagecore::kRootIno);
  EXPECT_EQ(names[0].name, "a");
  EXPECT_EQ(names[0].ino, a.attr.ino);
  EXPECT_EQ(names[1].name, "a2");

  // A held inode with no name left is still listed, for its attributes and pages.
  cache_.looked_up(b.attr.ino, b.attr.ino);
  store_->unlink(imagecore::kRootIno, "b");
  names = cache_.kernel_names();
  ASSERT_EQ(names.size(), 3u);
  bool nameless_b = false;
  for (const KernelName& k : names)
    nameless_b |= k.ino == b.attr.ino && k.parent == 0 && k.name.empty();
  EXPECT_TRUE(nameless_b);
}

// After the store renumbered its inodes, a held node id stands for the new inode until the
// kernel forgets it; the replies give the kernel the old number, and only held ones are bound.
TEST_F(KernelCacheTest, HeldNodeIdsKeepTheirNumberAcrossARebind) {
  cache_.hand_out(5);
  cache_.hand_out(6);
  EXPECT_FALSE(cache_.forget(6, 1) == std::nullopt);
  cache_.rebind({{5, 50}, {6, 60}, {7, 70}});
  EXPECT_EQ(cache_.store_ino(5), 50u);
  EXPECT_EQ(cache_.nodeid(50), 5u);
  EXPECT_EQ(cache_.hand_out(50), 5u);
  EXPECT_TRUE(cache_.held(50));
  EXPECT_EQ(cache_.store_ino(6), 6u) << "6 was forgotten before";
  EXPECT_EQ(cache_.nodeid(60), 60u);
  EXPECT_EQ(cache_.nodeid(70), 70u) << "7 was never held";

  // A second renumbering composes: 5 follows its inode again.
  cache_.rebind({{5, 500}});
  EXPECT_EQ(cache_.store_ino(5), 500u);
  EXPECT_EQ(cache_.nodeid(50), 50u);

  EXPECT_EQ(cache_.forget(5, 2), 500u) << "the store inode it stood for, to purge";
  EXPECT_EQ(cache_.store_ino(5), 5u);
  EXPECT_EQ(cache_.nodeid(500), 500u);
  EXPECT_FALSE(cache_.held(500));
}

// One store inode gets one node id; one that keeps its own number comes first.
TEST_F(KernelCacheTest, ARebindGivesAStoreInodeOneNodeId) {
  cache_.hand_out(5);
  cache_.hand_out(9);
  cache_.rebind({{5, 9}, {9, 9}});
  EXPECT_EQ(cache_.store_ino(9), 9u);
  EXPECT_EQ(cache_.nodeid(9), 9u);
  EXPECT_EQ(cache_.store_ino(5), 5u) << "not bound: its old number gives ENOENT";
}

TEST_F(KernelCacheTest, NegativeEntriesAreRememberedUpToABound) {
  size_t remembered = 0;
  while (remembered < 100000 && cache_.remember_negative(imagecore::kRootIno, "missing"))
    ++remembered;
  EXPECT_EQ(remembered, 1u << 16) << "without a bound a lookup storm grows memory";
}

}  // namespace
}  // namespace fusefs
