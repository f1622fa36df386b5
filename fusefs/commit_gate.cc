#include "fusefs/commit_gate.h"

namespace fusefs {

bool CommitGate::passes(Kind kind) const {
  return state_ == State::Open || (kind == Kind::Write && state_ == State::Draining);
}

bool CommitGate::try_enter(Kind kind) {
  std::lock_guard lock(mu_);
  if (!passes(kind))
    return false;
  ++changes_;
  return true;
}

bool CommitGate::defer(Kind kind, Deferred later) {
  {
    std::lock_guard lock(mu_);
    if (!shut_) {
      if (passes(kind)) {
        ++changes_;
        return false;
      }
      held_.push_back(std::move(later));
      return true;
    }
  }
  if (later.drop)
    later.drop();
  return true;
}

void CommitGate::leave() {
  std::lock_guard lock(mu_);
  --changes_;
  ++change_count_;
  cv_.notify_all();
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

CommitGate::Paused CommitGate::pause(std::chrono::milliseconds timeout,
                                     const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return state_ == State::Open; });  // one commit at a time
  state_ = State::Draining;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto quiet = [&] { return writers_ == 0 && changes_ == 0; };
  for (;;) {
    if (quiet()) {
      state_ = State::Paused;
      return Paused::Yes;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return Paused::Busy;
    if (cancelled) {
      lock.unlock();
      const bool stop = cancelled();
      lock.lock();
      if (stop)
        return Paused::Cancelled;
    }
    const auto slice = cancelled ? std::chrono::milliseconds(100) : timeout;
    cv_.wait_until(lock, std::min(deadline, now + slice), quiet);
  }
}

void CommitGate::resume() {
  std::vector<Deferred> held;
  {
    std::lock_guard lock(mu_);
    state_ = State::Open;
    held.swap(held_);
    cv_.notify_all();
  }
  for (Deferred& d : held) {
    try {
      d.run();
    } catch (...) {  // bad_alloc while holding it again
      if (d.drop)
        d.drop();
    }
  }
}

void CommitGate::shut() {
  std::vector<Deferred> held;
  {
    std::lock_guard lock(mu_);
    shut_ = true;
    held.swap(held_);
  }
  for (Deferred& d : held)
    if (d.drop)
      d.drop();
}

uint64_t CommitGate::change_count() {
  std::lock_guard lock(mu_);
  return change_count_;
}

size_t CommitGate::deferred() {
  std::lock_guard lock(mu_);
  return held_.size();
}

}  // namespace fusefs
