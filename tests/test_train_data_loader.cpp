// kiln::DataLoader (train/data_loader.hpp): every sample once per epoch in a seeded order, batch
// sizes and drop_last, and batches prepared on the worker thread while the consumer works.
#include <doctest/doctest.h>

#include <kiln/train/data_loader.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace {

kiln::Tensor<float> iota_rows(kiln::index_t rows, kiln::index_t cols, float scale) {
  kiln::Tensor<float> t({rows, cols});
  for (kiln::index_t r = 0; r < rows; ++r)
    for (kiln::index_t c = 0; c < cols; ++c) t[r * cols + c] = scale * static_cast<float>(r) + static_cast<float>(c);
  return t;
}

// The sample ids of one epoch, in order, checking that x and y rows belong together.
std::vector<int> epoch_ids(kiln::DataLoader& dl, int epoch, std::vector<kiln::index_t>* sizes = nullptr) {
  std::vector<int> ids;
  dl.start_epoch(epoch);
  kiln::Batch b;
  while (dl.next(b)) {
    if (sizes) sizes->push_back(b.size);
    REQUIRE(b.x.shape() == (kiln::Shape{b.size, 3}));
    REQUIRE(b.y.shape() == (kiln::Shape{b.size, 1}));
    for (kiln::index_t r = 0; r < b.size; ++r) {
      const int id = static_cast<int>(b.x[r * 3] / 10.f);
      CHECK(b.x[r * 3 + 2] == 10.f * static_cast<float>(id) + 2.f);
      CHECK(b.y[r] == -static_cast<float>(id));
      ids.push_back(id);
    }
  }
  return ids;
}

}  // namespace

TEST_CASE("DataLoader: each sample once per epoch, seeded order, batch sizes, drop_last") {
  const kiln::Tensor<float> x = iota_rows(23, 3, 10.f), y = iota_rows(23, 1, -1.f);
  for (int prefetch : {0, 2}) {
    INFO("prefetch " << prefetch);
    kiln::DataLoader a(x, y, {5, true, false, 7, prefetch}), b(x, y, {5, true, false, 7, prefetch}),
        c(x, y, {5, true, false, 8, prefetch});
    std::vector<kiln::index_t> sizes;
    const std::vector<int> e0 = epoch_ids(a, 0, &sizes), e1 = epoch_ids(a, 1);
    CHECK(sizes == std::vector<kiln::index_t>{5, 5, 5, 5, 3});
    CHECK(a.batches() == 5);
    std::vector<int> sorted = e0;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < 23; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
    CHECK(e0 != e1);                    // a new order each epoch
    CHECK(epoch_ids(b, 0) == e0);       // the same seed gives the same order
    CHECK(epoch_ids(b, 1) == e1);
    CHECK(epoch_ids(c, 0) != e0);       // another seed another
    kiln::DataLoader d(x, y, {5, true, true, 7, prefetch});
    sizes.clear();
    CHECK(epoch_ids(d, 0, &sizes).size() == 20);  // drop_last
    CHECK(sizes == std::vector<kiln::index_t>{5, 5, 5, 5});
    kiln::DataLoader plain(x, y, {4, false, false, 0, prefetch});
    const std::vector<int> ordered = epoch_ids(plain, 3);
    for (int i = 0; i < 23; ++i) CHECK(ordered[static_cast<std::size_t>(i)] == i);
    // Restarting an epoch in the middle starts it over.
    a.start_epoch(0);
    kiln::Batch first;
    REQUIRE(a.next(first));
    CHECK(epoch_ids(a, 0) == e0);
  }
}

TEST_CASE("DataLoader: the worker prepares the next batches while the consumer still holds one") {
  // The sample function reports every batch it finished. The consumer takes batch 0 and, without
  // asking for more, waits for batches 1 and 2 to be built: only a loader that prepares batches
  // in the background gets there (no timing is measured; the wait's bound only stops a hang).
  std::mutex m;
  std::condition_variable cv;
  int samples_done = 0;
  auto fill = [&](kiln::index_t i, float* x, float* y) {
    x[0] = static_cast<float>(i);
    y[0] = 0.f;
    std::lock_guard<std::mutex> lock(m);
    ++samples_done;
    cv.notify_all();
  };
  for (int prefetch : {2, 0}) {
    {
      std::lock_guard<std::mutex> lock(m);
      samples_done = 0;
    }
    kiln::DataLoader dl(40, kiln::Shape{1}, kiln::Shape{1}, fill, {4, true, false, 1, prefetch});
    dl.start_epoch(0);
    kiln::Batch b;
    REQUIRE(dl.next(b));
    std::unique_lock<std::mutex> lock(m);
    const bool ahead = cv.wait_for(lock, std::chrono::seconds(prefetch ? 20 : 0), [&] { return samples_done >= 12; });
    CHECK(ahead == (prefetch > 0));
    CHECK(samples_done <= 4 + 4 * prefetch);  // never more than `prefetch` batches ahead
  }
}
