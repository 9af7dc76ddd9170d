// kiln/train/data_loader.hpp — minibatches for host-side training, prepared on a background thread.
//
// A host convenience (threads, heap): not part of kiln.hpp and never needed by firmware. The
// loader hands out batches of (x, y) rows in a seeded shuffled order — the order of epoch e
// depends only on (seed, e), never on thread timing — with drop_last as torch.utils.data's
// DataLoader. With prefetch > 0 a worker thread assembles up to `prefetch` batches ahead while
// the training step runs (the seed document's prefetching loader), which pays off when producing
// a sample costs something (decoding, augmentation: give a sample function instead of tensors).
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "../core/tensor.hpp"

namespace kiln {

struct DataLoaderOptions {
  index_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  std::uint32_t seed = 0;
  int prefetch = 2;  // batches prepared ahead on the worker thread; 0: prepared on next()'s call
};

struct Batch {
  Tensor<float> x, y;
  index_t size = 0;  // rows (the last batch of an epoch may be short unless drop_last)
};

class DataLoader {
 public:
  /// fill(i, x_row, y_row) writes sample i: x_shape.numel() and y_shape.numel() floats.
  using SampleFn = std::function<void(index_t, float*, float*)>;

  DataLoader(index_t samples, Shape x_shape, Shape y_shape, SampleFn fill, DataLoaderOptions o = {})
      : n_(samples), xs_(x_shape), ys_(y_shape), fill_(std::move(fill)), o_(o) {
    if (o_.batch_size < 1) o_.batch_size = 1;
    if (o_.prefetch > 0) worker_ = std::thread([this] { work(); });
  }
  /// Rows of two tensors with the same first dimension (copied per batch; the tensors must live
  /// as long as the loader).
  DataLoader(const Tensor<float>& x, const Tensor<float>& y, DataLoaderOptions o = {})
      : DataLoader(x.shape()[0], row_shape(x.shape()), row_shape(y.shape()), rows_of(x, y), o) {}

  ~DataLoader() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  /// Batches in an epoch.
  index_t batches() const { return o_.drop_last ? n_ / o_.batch_size : (n_ + o_.batch_size - 1) / o_.batch_size; }

  /// Starts epoch `epoch` (its order is a function of the seed and the epoch number).
  void start_epoch(int epoch) {
    std::vector<index_t> order(static_cast<std::size_t>(n_));
    std::iota(order.begin(), order.end(), index_t{0});
    if (o_.shuffle) {
      std::mt19937 rng(o_.seed * 2654435761u + static_cast<std::uint32_t>(epoch));
      std::shuffle(order.begin(), order.end(), rng);
    }
    std::lock_guard<std::mutex> lock(m_);
    order_ = std::make_shared<const std::vector<index_t>>(std::move(order));
    ++generation_;
    ready_.clear();
    produced_ = consumed_ = 0;
    cv_.notify_all();
  }

  /// The next batch of the epoch; false at its end.
  bool next(Batch& out) {
    if (o_.prefetch <= 0) {
      if (consumed_ >= batches()) return false;
      if (!order_) return false;
      out = make(consumed_++, *order_);
      return true;
    }
    std::unique_lock<std::mutex> lock(m_);
    if (!order_ || consumed_ >= batches()) return false;
    cv_.wait(lock, [this] { return !ready_.empty(); });
    out = std::move(ready_.front());
    ready_.pop_front();
    ++consumed_;
    cv_.notify_all();
    return true;
  }

 private:
  static Shape row_shape(const Shape& s) {
    Shape r = Shape::of_rank(s.rank() - 1);
    for (int d = 1; d < s.rank(); ++d) r[d - 1] = s[d];
    return r;
  }
  static SampleFn rows_of(const Tensor<float>& x, const Tensor<float>& y) {
    const float* xp = x.data();
    const float* yp = y.data();
    const index_t xr = x.size() / x.shape()[0], yr = y.size() / y.shape()[0];
    return [xp, yp, xr, yr](index_t i, float* xo, float* yo) {
      std::copy_n(xp + i * xr, xr, xo);
      std::copy_n(yp + i * yr, yr, yo);
    };
  }
  static Shape with_rows(index_t rows, const Shape& s) {
    Shape r = Shape::of_rank(s.rank() + 1);
    r[0] = rows;
    for (int d = 0; d < s.rank(); ++d) r[d + 1] = s[d];
    return r;
  }
  Batch make(index_t b, const std::vector<index_t>& order) const {
    const index_t begin = b * o_.batch_size, rows = std::min(o_.batch_size, n_ - begin);
    Batch out{Tensor<float>(with_rows(rows, xs_)), Tensor<float>(with_rows(rows, ys_)), rows};
    const index_t xn = xs_.numel(), yn = ys_.numel();
    for (index_t r = 0; r < rows; ++r)
      fill_(order[static_cast<std::size_t>(begin + r)], out.x.data() + r * xn, out.y.data() + r * yn);
    return out;
  }
  // The worker: assembles the current epoch's batches in order, at most `prefetch` ahead.
  void work() {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      cv_.wait(lock, [this] {
        return stop_ || (order_ && produced_ < batches() && static_cast<int>(ready_.size()) < o_.prefetch);
      });
      if (stop_) return;
      const index_t b = produced_;
      const std::shared_ptr<const std::vector<index_t>> order = order_;  // kept: a new epoch may start
      const std::uint64_t generation = generation_;
      lock.unlock();
      Batch batch = make(b, *order);
      lock.lock();
      if (generation == generation_) {  // else the epoch was restarted meanwhile: drop it
        ready_.push_back(std::move(batch));
        ++produced_;
        cv_.notify_all();
      }
    }
  }

  index_t n_;
  Shape xs_, ys_;
  SampleFn fill_;
  DataLoaderOptions o_;
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<Batch> ready_;
  std::shared_ptr<const std::vector<index_t>> order_;  // null until the first start_epoch
  std::uint64_t generation_ = 0;
  index_t produced_ = 0, consumed_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace kiln
