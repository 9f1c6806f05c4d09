#pragma once
// The worker's inference-like CPU work: a small convolutional network with fixed, seeded weights.
// It stands in for the original's TFLite MobileNetV2 (which cannot be shipped offline); what
// matters for the benchmark is a realistic, deterministic and tunable CPU cost per frame.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace capp {

class Cnn {
 public:
  /// `input` is the side of the square RGB input; `cost` repeats the forward pass (>= 1), the
  /// knob for matching a target processing time on a given CPU.
  Cnn(int input, int cost, uint32_t seed = 20211014);
  int input_size() const { return input_; }
  /// Class scores (softmax) for a CHW float image of input_size()^2 x 3.
  std::vector<float> forward(const std::vector<float>& chw) const;

 private:
  struct Conv {
    int in, out, stride;
    std::vector<float> w, b;  // w[out][in][3][3]
  };
  std::vector<float> conv_relu(const Conv& c, const std::vector<float>& x, int side,
                               int* out_side) const;
  int input_, cost_;
  std::vector<Conv> convs_;
  std::vector<float> fc_w_, fc_b_;
  int classes_ = 1000;
};

/// "Decodes" a JPEG-like payload to an RGB image: the bytes are read as a square pixel grid,
/// resized (bilinear) to side x side and normalised as the original does for float models
/// ((x - 127.5) / 127.5). Returns CHW floats.
std::vector<float> image_from_bytes(const std::string& data, size_t len, int side);

/// Indices and scores of the k best classes, best first.
std::vector<std::pair<int, float>> top_k(const std::vector<float>& scores, int k);

}  // namespace capp
