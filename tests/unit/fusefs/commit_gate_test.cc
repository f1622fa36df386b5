// The commit gate without a kernel: what a commit waits for, what waits for a commit, and the
// quiet detector's count.
#include "fusefs/commit_gate.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>

namespace fusefs {
namespace {

using namespace std::chrono_literals;

// Long enough for a call that does not wait to have returned; a call still running after it
// is taken to be waiting.
constexpr auto kBlocked = 200ms;
// Long enough for a call that has been let go to return on a loaded machine.
constexpr auto kReleased = 10s;

// Every test lets go of whatever it blocked before it ends, failed or not: a future of
// std::async waits for its call when it goes out of scope.

template <typename T>
bool finishes_within(std::future<T>& f, std::chrono::milliseconds d) {
  return f.wait_for(d) == std::future_status::ready;
}

TEST(CommitGate, PauseWithNothingGoingOnIsImmediate) {
  CommitGate gate;
  EXPECT_TRUE(gate.pause(0ms));
  gate.resume();
}

TEST(CommitGate, PauseWaitsUntilTheWritersHaveClosed) {
  CommitGate gate;
  gate.writer_opened();
  gate.writer_opened();
  auto paused = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(paused, kBlocked)) << "paused with two files open for writing";
  gate.writer_closed();
  EXPECT_FALSE(finishes_within(paused, kBlocked)) << "paused with a file open for writing";
  gate.writer_closed();
  EXPECT_TRUE(finishes_within(paused, kReleased));
  EXPECT_TRUE(paused.get());
  gate.resume();
}

TEST(CommitGate, PauseWaitsUntilTheChangesHaveFinished) {
  CommitGate gate;
  gate.enter_change();
  auto paused = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(paused, kBlocked)) << "paused during a change";
  gate.leave_change();
  EXPECT_TRUE(finishes_within(paused, kReleased));
  EXPECT_TRUE(paused.get());
  gate.resume();
}

TEST(CommitGate, PauseTimesOutWhileAFileStaysOpenForWriting) {
  CommitGate gate;
  gate.writer_opened();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(gate.pause(100ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms) << "gave up before the timeout";
  // Still closed until the caller has named what is busy and resumes.
  auto change = std::async(std::launch::async, [&] { gate.enter_change(); });
  EXPECT_FALSE(finishes_within(change, kBlocked)) << "a change went on before resume()";
  gate.resume();
  EXPECT_TRUE(finishes_within(change, kReleased));
  gate.leave_change();
  gate.writer_closed();
  EXPECT_TRUE(gate.pause(0ms));
  gate.resume();
}

TEST(CommitGate, ChangesWaitWhilePausedAndGoOnAfterResume) {
  CommitGate gate;
  EXPECT_TRUE(gate.pause(0ms));
  auto change = std::async(std::launch::async, [&] { gate.enter_change(); });
  auto write = std::async(std::launch::async, [&] { gate.wait_for_writes(); });
  EXPECT_FALSE(finishes_within(change, kBlocked)) << "a change went on during a pause";
  EXPECT_FALSE(finishes_within(write, 0ms)) << "a write went on during a pause";
  gate.resume();
  EXPECT_TRUE(finishes_within(change, kReleased));
  EXPECT_TRUE(finishes_within(write, kReleased));
  gate.leave_change();
}

TEST(CommitGate, WritesGoOnWhileThePauseWaitsForTheirFile) {
  CommitGate gate;
  gate.writer_opened();
  auto paused = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(paused, kBlocked));
  // The writer must be able to finish its file, or the pause would wait for nothing.
  auto write = std::async(std::launch::async, [&] { gate.wait_for_writes(); });
  EXPECT_TRUE(finishes_within(write, kReleased)) << "a write waited for the pause it blocks";
  auto change = std::async(std::launch::async, [&] { gate.enter_change(); });
  EXPECT_FALSE(finishes_within(change, kBlocked)) << "a new change went on while draining";
  gate.writer_closed();
  EXPECT_TRUE(finishes_within(paused, kReleased));
  EXPECT_TRUE(paused.get());
  gate.resume();
  EXPECT_TRUE(finishes_within(change, kReleased));
  gate.leave_change();
}

TEST(CommitGate, OneCommitAtATime) {
  CommitGate gate;
  EXPECT_TRUE(gate.pause(0ms));
  auto second = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(second, kBlocked)) << "two pauses at once";
  gate.resume();
  EXPECT_TRUE(finishes_within(second, kReleased));
  EXPECT_TRUE(second.get());
  gate.resume();
}

TEST(CommitGate, ChangeCountGrowsWithChangesAndWrites) {
  CommitGate gate;
  const uint64_t start = gate.change_count();
  gate.enter_change();
  gate.leave_change();
  EXPECT_EQ(gate.change_count(), start + 1);
  gate.wait_for_writes();
  gate.wait_for_writes();
  EXPECT_EQ(gate.change_count(), start + 3);
  EXPECT_TRUE(gate.pause(0ms));
  gate.resume();
  EXPECT_EQ(gate.change_count(), start + 3) << "a pause is not a change";
}

}  // namespace
}  // namespace fusefs
