#include "fusefs/commit_gate.h"

namespace fusefs {

void CommitGate::enter_change() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return state_ == State::Open; });
  ++changes_;
}

void CommitGate::leave_change() {
  std::lock_guard lock(mu_);
  --changes_;
  ++change_count_;
  cv_.notify_all();
}

void CommitGate::wait_for_writes() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return state_ != State::Paused; });
  ++change_count_;
}

void CommitGate::writer_opened() {
  std::lock_guard lock(mu_);
  ++writers_;
}

void CommitGate::writer_closed() {
  std::lock_guard lock(mu_);
  --writers_;
  cv_.notify_all();
}

bool CommitGate::pause(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return state_ == State::Open; });  // one commit at a time
  state_ = State::Draining;
  if (!cv_.wait_for(lock, timeout, [&] { return writers_ == 0 && changes_ == 0; }))
    return false;
  state_ = State::Paused;
  return true;
}

void CommitGate::resume() {
  std::lock_guard lock(mu_);
  state_ = State::Open;
  cv_.notify_all();
}

uint64_t CommitGate::change_count() {
  std::lock_guard lock(mu_);
  return change_count_;
}

}  // namespace fusefs
