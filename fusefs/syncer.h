// A few threads that run fsync-like calls for a caller that has other syncs to wait for
// meanwhile: the disk then works on them together, and the caller waits about as long as
// for the slowest one instead of for their sum.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace fusefs {

class Syncer {
 public:
  explicit Syncer(unsigned threads) {
    // Signals stay with the threads that serve requests (session.cc relies on that to end
    // its loop on SIGINT/SIGTERM): these threads block them all.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (unsigned i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~Syncer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_)
      t.join();
  }
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  // Runs `job` on one of the threads; its result (0 or an errno) arrives in the future.
  std::future<int> submit(std::function<int()> job) {
    std::packaged_task<int()> task(std::move(job));
    std::future<int> result = task.get_future();
    {
      std::lock_guard lock(mu_);
      jobs_.push_back(std::move(task));
    }
    cv_.notify_one();
    return result;
  }

 private:
  void work() {
    for (;;) {
      std::packaged_task<int()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty())
          return;
        task = std::move(jobs_.front());
        jobs_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<int()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fusefs
