#include "cnn.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace capp {

Cnn::Cnn(int input, int cost, uint32_t seed) : input_(input), cost_(std::max(1, cost)) {
  std::mt19937 rng(seed);
  auto make = [&](int in, int out, int stride) {
    Conv c{in, out, stride, std::vector<float>(static_cast<size_t>(out * in * 9)),
           std::vector<float>(static_cast<size_t>(out))};
    // He initialisation keeps activations in a sane range through the ReLUs.
    std::normal_distribution<float> d(0.f, std::sqrt(2.f / static_cast<float>(in * 9)));
    for (auto& w : c.w) w = d(rng);
    for (auto& b : c.b) b = 0.01f;
    return c;
  };
  // Roughly MobileNet's first stages in miniature: ~30 M multiply-adds per pass at 112x112.
  convs_.push_back(make(3, 16, 2));
  convs_.push_back(make(16, 32, 1));
  convs_.push_back(make(32, 64, 2));
  convs_.push_back(make(64, 64, 2));
  std::normal_distribution<float> d(0.f, std::sqrt(1.f / 64.f));
  fc_w_.resize(static_cast<size_t>(classes_ * 64));
  for (auto& w : fc_w_) w = d(rng);
  fc_b_.assign(static_cast<size_t>(classes_), 0.f);
}

std::vector<float> Cnn::conv_relu(const Conv& c, const std::vector<float>& x, int side,
                                  int* out_side) const {
  const int os = (side + c.stride - 1) / c.stride;
  *out_side = os;
  std::vector<float> y(static_cast<size_t>(c.out * os * os));
  for (int o = 0; o < c.out; ++o) {
    float* yo = &y[static_cast<size_t>(o * os * os)];
    std::fill(yo, yo + os * os, c.b[static_cast<size_t>(o)]);
    for (int i = 0; i < c.in; ++i) {
      const float* xi = &x[static_cast<size_t>(i * side * side)];
      const float* w = &c.w[static_cast<size_t>((o * c.in + i) * 9)];
      for (int ky = 0; ky < 3; ++ky) {
        for (int kx = 0; kx < 3; ++kx) {
          const float wk = w[ky * 3 + kx];
          for (int yy = 0; yy < os; ++yy) {
            const int sy = yy * c.stride + ky - 1;
            if (sy < 0 || sy >= side) continue;
            const float* row = xi + sy * side;
            float* out = yo + yy * os;
            for (int xx = 0; xx < os; ++xx) {
              const int sx = xx * c.stride + kx - 1;
              if (sx >= 0 && sx < side) out[xx] += wk * row[sx];
            }
          }
        }
      }
    }
    for (int k = 0; k < os * os; ++k) yo[k] = std::max(0.f, yo[k]);
  }
  return y;
}

std::vector<float> Cnn::forward(const std::vector<float>& chw) const {
  std::vector<float> scores;
  for (int pass = 0; pass < cost_; ++pass) {
    std::vector<float> x = chw;
    int side = input_;
    for (const auto& c : convs_) {
      int os = 0;
      x = conv_relu(c, x, side, &os);
      side = os;
    }
    // Global average pool, fully connected, softmax.
    const int ch = convs_.back().out;
    std::vector<float> pooled(static_cast<size_t>(ch));
    for (int c = 0; c < ch; ++c) {
      const float* p = &x[static_cast<size_t>(c * side * side)];
      pooled[static_cast<size_t>(c)] =
          std::accumulate(p, p + side * side, 0.f) / static_cast<float>(side * side);
    }
    scores.assign(static_cast<size_t>(classes_), 0.f);
    for (int k = 0; k < classes_; ++k) {
      float s = fc_b_[static_cast<size_t>(k)];
      for (int c = 0; c < ch; ++c)
        s += fc_w_[static_cast<size_t>(k * ch + c)] * pooled[static_cast<size_t>(c)];
      scores[static_cast<size_t>(k)] = s;
    }
    float mx = *std::max_element(scores.begin(), scores.end());
    float sum = 0;
    for (auto& s : scores) sum += (s = std::exp(s - mx));
    for (auto& s : scores) s /= sum;
  }
  return scores;
}

std::vector<float> image_from_bytes(const std::string& data, size_t len, int side) {
  len = std::min(len, data.size());
  const size_t src =
      std::max<size_t>(1, static_cast<size_t>(std::sqrt(static_cast<double>(len) / 3.0)));
  auto px = [&](size_t y, size_t x, int c) -> float {
    size_t idx = (y * src + x) * 3 + static_cast<size_t>(c);
    return idx < len ? static_cast<float>(static_cast<unsigned char>(data[idx])) : 0.f;
  };
  std::vector<float> out(static_cast<size_t>(3 * side * side));
  const double scale = static_cast<double>(src) / side;
  for (int y = 0; y < side; ++y) {
    double fy = std::min((y + 0.5) * scale - 0.5, static_cast<double>(src - 1));
    fy = std::max(0.0, fy);
    size_t y0 = static_cast<size_t>(fy), y1 = std::min(y0 + 1, src - 1);
    double ay = fy - static_cast<double>(y0);
    for (int x = 0; x < side; ++x) {
      double fx = std::max(0.0, std::min((x + 0.5) * scale - 0.5, static_cast<double>(src - 1)));
      size_t x0 = static_cast<size_t>(fx), x1 = std::min(x0 + 1, src - 1);
      double ax = fx - static_cast<double>(x0);
      for (int c = 0; c < 3; ++c) {
        double v = (1 - ay) * ((1 - ax) * px(y0, x0, c) + ax * px(y0, x1, c)) +
                   ay * ((1 - ax) * px(y1, x0, c) + ax * px(y1, x1, c));
        out[static_cast<size_t>((c * side + y) * side + x)] =
            static_cast<float>((v - 127.5) / 127.5);
      }
    }
  }
  return out;
}

std::vector<std::pair<int, float>> top_k(const std::vector<float>& scores, int k) {
  std::vector<int> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min<int>(k, static_cast<int>(idx.size()));
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)];
  });
  std::vector<std::pair<int, float>> r;
  for (int i = 0; i < k; ++i)
    r.emplace_back(idx[static_cast<size_t>(i)],
                   scores[static_cast<size_t>(idx[static_cast<size_t>(i)])]);
  return r;
}

}  // namespace capp
