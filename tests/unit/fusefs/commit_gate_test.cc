// The commit gate without a kernel: what a commit waits for, what is held during a commit
// (without waiting), and the quiet detector's count.
#include "fusefs/commit_gate.h"

#include <gtest/gtest.h>

#include <atomic>
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

using Kind = CommitGate::Kind;
using Paused = CommitGate::Paused;

// A request held at the gate: counts its runs; `pass` is whether it got through.
struct Held {
  int runs = 0, drops = 0;
  CommitGate::Deferred deferred(CommitGate& gate, Kind kind) {
    return {[this, &gate, kind] {
              ++runs;
              if (gate.try_enter(kind))
                gate.leave();
            },
            [this] { ++drops; }};
  }
};

TEST(CommitGate, PauseWithNothingGoingOnIsImmediate) {
  CommitGate gate;
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
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
  EXPECT_EQ(paused.get(), Paused::Yes);
  gate.resume();
}

TEST(CommitGate, PauseWaitsUntilTheChangesHaveFinished) {
  CommitGate gate;
  ASSERT_TRUE(gate.try_enter(Kind::Change));
  auto paused = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(paused, kBlocked)) << "paused during a change";
  gate.leave();
  EXPECT_TRUE(finishes_within(paused, kReleased));
  EXPECT_EQ(paused.get(), Paused::Yes);
  gate.resume();
}

TEST(CommitGate, PauseTimesOutWhileAFileStaysOpenForWriting) {
  CommitGate gate;
  gate.writer_opened();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(gate.pause(100ms), Paused::Busy);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms) << "gave up before the timeout";
  // Still closed until the caller has named what is busy and resumes.
  EXPECT_FALSE(gate.try_enter(Kind::Change)) << "a change went on before resume()";
  gate.resume();
  EXPECT_TRUE(gate.try_enter(Kind::Change));
  gate.leave();
  gate.writer_closed();
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
  gate.resume();
}

TEST(CommitGate, PauseStopsWaitingWhenCancelled) {
  CommitGate gate;
  gate.writer_opened();
  std::atomic<bool> cancel{false};
  auto paused = std::async(std::launch::async,
                           [&] { return gate.pause(60s, [&] { return cancel.load(); }); });
  EXPECT_FALSE(finishes_within(paused, kBlocked));
  cancel = true;
  EXPECT_TRUE(finishes_within(paused, kReleased)) << "a cancel did not end the wait";
  EXPECT_EQ(paused.get(), Paused::Cancelled);
  gate.resume();
  gate.writer_closed();
}

TEST(CommitGate, ChangesAreHeldWhilePausedAndRunOnResume) {
  CommitGate gate;
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
  Held change, write;
  EXPECT_FALSE(gate.try_enter(Kind::Change)) << "a change went on during a pause";
  EXPECT_FALSE(gate.try_enter(Kind::Write)) << "a write went on during a pause";
  EXPECT_TRUE(gate.defer(Kind::Change, change.deferred(gate, Kind::Change)));
  EXPECT_TRUE(gate.defer(Kind::Write, write.deferred(gate, Kind::Write)));
  EXPECT_EQ(gate.deferred(), 2u);
  EXPECT_EQ(change.runs + write.runs, 0);
  gate.resume();
  EXPECT_EQ(change.runs, 1);
  EXPECT_EQ(write.runs, 1);
  EXPECT_EQ(gate.deferred(), 0u);
  EXPECT_EQ(gate.pause(0ms), Paused::Yes) << "a replayed change was left counted";
  gate.resume();
}

TEST(CommitGate, WritesGoOnWhileThePauseWaitsForTheirFile) {
  CommitGate gate;
  gate.writer_opened();
  auto paused = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(paused, kBlocked));
  // The writer must be able to finish its file, or the pause would wait for nothing.
  EXPECT_TRUE(gate.try_enter(Kind::Write)) << "a write waited for the pause it blocks";
  gate.leave();
  EXPECT_FALSE(gate.try_enter(Kind::Change)) << "a new change went on while draining";
  Held change;
  EXPECT_TRUE(gate.defer(Kind::Change, change.deferred(gate, Kind::Change)));
  gate.writer_closed();
  EXPECT_TRUE(finishes_within(paused, kReleased));
  EXPECT_EQ(paused.get(), Paused::Yes);
  EXPECT_EQ(change.runs, 0);
  gate.resume();
  EXPECT_EQ(change.runs, 1);
}

TEST(CommitGate, ShutDropsHeldRequests) {
  CommitGate gate;
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
  Held a, b;
  EXPECT_TRUE(gate.defer(Kind::Change, a.deferred(gate, Kind::Change)));
  gate.shut();
  EXPECT_EQ(a.drops, 1);
  EXPECT_TRUE(gate.defer(Kind::Change, b.deferred(gate, Kind::Change)));
  EXPECT_EQ(b.drops, 1) << "held after the session ended";
  gate.resume();
  EXPECT_EQ(a.runs + b.runs, 0);
}

TEST(CommitGate, OneCommitAtATime) {
  CommitGate gate;
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
  auto second = std::async(std::launch::async, [&] { return gate.pause(60s); });
  EXPECT_FALSE(finishes_within(second, kBlocked)) << "two pauses at once";
  gate.resume();
  EXPECT_TRUE(finishes_within(second, kReleased));
  EXPECT_EQ(second.get(), Paused::Yes);
  gate.resume();
}

TEST(CommitGate, ChangeCountGrowsWithChangesAndWrites) {
  CommitGate gate;
  const uint64_t start = gate.change_count();
  ASSERT_TRUE(gate.try_enter(Kind::Change));
  gate.leave();
  EXPECT_EQ(gate.change_count(), start + 1);
  ASSERT_TRUE(gate.try_enter(Kind::Write));
  gate.leave();
  ASSERT_TRUE(gate.try_enter(Kind::Write));
  gate.leave();
  EXPECT_EQ(gate.change_count(), start + 3);
  EXPECT_EQ(gate.pause(0ms), Paused::Yes);
  gate.resume();
  EXPECT_EQ(gate.change_count(), start + 3) << "a pause is not a change";
}

}  // namespace
}  // namespace fusefs
