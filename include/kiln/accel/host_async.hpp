// kiln/accel/host_async.hpp — make a synchronous backend asynchronous with a host worker thread.
//
//   kiln::accel::HostAsync async(my_backend);          // my_backend.run does the work
//   opts.offload = kiln::accel::offload(async.backend());
//
// submit() queues the region's run for the worker and returns; wait() blocks until it finished.
// Meanwhile the executable runs the CPU steps that do not depend on the region (see
// accel/offload.hpp). One worker per HostAsync: regions of one model run on it in submission
// order. Host only (threads): not available with KILN_NO_THREADS.
#pragma once

#if !defined(KILN_NO_THREADS)

#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "backend.hpp"

namespace kiln::accel {

class HostAsync {
 public:
  /// `inner` must have compile and run; it (and this object) must outlive the compiled models.
  explicit HostAsync(const Backend& inner) : inner_(inner), worker_([this] { loop(); }) {}
  HostAsync(const HostAsync&) = delete;
  HostAsync& operator=(const HostAsync&) = delete;
  ~HostAsync() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }

  /// The asynchronous backend: inner's target, compile and release; submit/wait on the worker.
  Backend backend() const {
    Backend b = inner_;
    b.context = const_cast<HostAsync*>(this);
    b.compile = [](void* ctx, const Region& r, Status& why) -> void* {
      const Backend& in = static_cast<HostAsync*>(ctx)->inner_;
      return in.compile(in.context, r, why);
    };
    b.release = [](void* ctx, void* handle) {
      const Backend& in = static_cast<HostAsync*>(ctx)->inner_;
      if (in.release) in.release(in.context, handle);
    };
    b.run = nullptr;
    b.submit = [](void* ctx, void* handle, const void* const* ins, void* const* outs, Status&) {
      static_cast<HostAsync*>(ctx)->push(handle, ins, outs);
      return true;
    };
    b.wait = [](void* ctx, void* handle, Status& why) { return static_cast<HostAsync*>(ctx)->wait_for(handle, why); };
    return b;
  }

 private:
  struct Job {
    void* handle = nullptr;
    const void* ins[kMaxGraphIO]{};
    void* outs[kMaxGraphIO]{};
    bool done = false, ok = false;
    Status why;
  };

  void push(void* handle, const void* const* ins, void* const* outs) {
    Job j;
    j.handle = handle;
    for (int k = 0; k < kMaxGraphIO; ++k) {  // the executable passes kMaxGraphIO-sized arrays
      j.ins[k] = ins[k];
      j.outs[k] = outs[k];
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(j);
    }
    cv_.notify_all();
  }

  bool wait_for(void* handle, Status& why) {
    std::unique_lock<std::mutex> lock(mu_);
    auto mine = [&] {
      for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
        if (it->handle == handle) return it;
      return jobs_.end();
    };
    cv_.wait(lock, [&] { return mine() == jobs_.end() || mine()->done; });
    const auto it = mine();
    if (it == jobs_.end()) {
      why = Status(Errc::invalid_argument) << "HostAsync: wait without submit";
      return false;
    }
    const bool ok = it->ok;
    why = it->why;
    jobs_.erase(it);
    return ok;
  }

  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      Job* next = nullptr;
      cv_.wait(lock, [&] {
        for (Job& j : jobs_)
          if (!j.done && !next) next = &j;
        return stop_ || next;
      });
      if (!next) return;  // stopping with nothing queued
      Job& j = *next;
      lock.unlock();
      Status why;
      bool ok = false;
#if KILN_EXCEPTIONS
      try {
        ok = inner_.run(inner_.context, j.handle, j.ins, j.outs, why);
      } catch (...) {
        why = Status(Errc::not_supported) << "the backend threw";
      }
#else
      ok = inner_.run(inner_.context, j.handle, j.ins, j.outs, why);
#endif
      lock.lock();
      j.ok = ok;
      j.why = why;
      j.done = true;
      cv_.notify_all();
    }
  }

  Backend inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Job> jobs_;  // submitted, not yet waited for (a list: the worker holds a reference while others are erased)
  bool stop_ = false;
  std::thread worker_;  // last: starts after everything it uses
};

}  // namespace kiln::accel

#endif  // !KILN_NO_THREADS
