// examples/digits_data.hpp — the 8x8 handwritten digits Debian ships with python3-sklearn
// (1797 rows of 64 pixels 0..16 and a label), shared by the examples that train on them.
#pragma once

#include <kiln/kiln.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace digits {

constexpr int kPixels = 64, kClasses = 10;
inline const char* kDefaultData = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

struct Digits {
  std::vector<float> x;  // rows of kPixels, each pixel times the loader's scale
  std::vector<int> y;
  int rows() const { return static_cast<int>(y.size()); }
};

/// Reads digits.csv or digits.csv.gz (through gzip -dc); pixels are multiplied by `scale`.
inline bool load_digits(const std::string& path, Digits& d, float scale) {
  const bool gz = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  FILE* f = gz ? popen(("gzip -dc '" + path + "'").c_str(), "r") : std::fopen(path.c_str(), "r");
  if (!f) return false;
  char line[1024];
  while (std::fgets(line, sizeof line, f)) {
    float v[kPixels + 1];
    int n = 0;
    for (char* p = line; n <= kPixels && *p;) {
      char* end = nullptr;
      v[n] = std::strtof(p, &end);
      if (end == p) break;
      ++n;
      p = *end == ',' ? end + 1 : end;
    }
    if (n != kPixels + 1) continue;
    for (int i = 0; i < kPixels; ++i) d.x.push_back(v[i] * scale);
    d.y.push_back(static_cast<int>(v[kPixels]));
  }
  if (gz) pclose(f);
  else std::fclose(f);
  return d.rows() > 0;
}

/// Rows idx[from .. from + count) as a [count, kPixels] batch.
inline kiln::Tensor<float> rows_of(const Digits& d, const std::vector<int>& idx, std::size_t from, std::size_t count) {
  kiln::Tensor<float> t({static_cast<kiln::index_t>(count), kPixels});
  for (std::size_t r = 0; r < count; ++r)
    std::copy_n(d.x.begin() + idx[from + r] * kPixels, kPixels, t.data() + r * kPixels);
  return t;
}
inline std::vector<int> labels_of(const Digits& d, const std::vector<int>& idx, std::size_t from, std::size_t count) {
  std::vector<int> l(count);
  for (std::size_t r = 0; r < count; ++r) l[r] = d.y[static_cast<std::size_t>(idx[from + r])];
  return l;
}

}  // namespace digits
