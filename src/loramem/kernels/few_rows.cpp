// y (N, O) (+)= x (N, K) . w (O, K)^T for a few rows N: each weight row read once, against every row of x.
//
// A decode step multiplies each weight by one token per batch row. BLAS GEMMs are tuned for large
// operands; for N up to ~24 they fall well short of streaming the weight once (see few_rows.py for
// the measurements). Here each weight row is loaded once, 8 floats at a time, and multiplied into
// up to 8 accumulators, one per row of x (which stays in L1); rows past 8 take a second pass over
// the same weight row while it is still in cache. Portable GCC/Clang vector extensions: the
// compiler picks the machine's widest FMA for `-march=native`.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>

namespace {

typedef float v8 __attribute__((vector_size(32)));

inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

// y[n * ldy] (+)= dot(w, x[n]) for n < R: one weight row of length K against R rows of x.
template <int R>
void dots(const float* w, const float* x, int64_t K, float* y, int64_t ldy, bool accumulate) {
  v8 sums[R];
  for (int n = 0; n < R; ++n) sums[n] = v8{};
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const v8 wk = load8(w + k);
    for (int n = 0; n < R; ++n) sums[n] += wk * load8(x + n * K + k);
  }
  for (int n = 0; n < R; ++n) {
    float t = 0;
    for (int i = 0; i < 8; ++i) t += sums[n][i];
    for (int64_t j = k; j < K; ++j) t += w[j] * x[n * K + j];
    y[n * ldy] = accumulate ? y[n * ldy] + t : t;
  }
}

using Dots = void (*)(const float*, const float*, int64_t, float*, int64_t, bool);
constexpr Dots kDots[8] = {dots<1>, dots<2>, dots<3>, dots<4>, dots<5>, dots<6>, dots<7>, dots<8>};

}  // namespace

void few_rows(const at::Tensor& x, const at::Tensor& w, at::Tensor& y, bool accumulate) {
  TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && y.dim() == 2, "few_rows takes 2-d x, w and y");
  for (const at::Tensor& t : {x, w, static_cast<const at::Tensor&>(y)}) {
    TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
                "few_rows takes contiguous float32 CPU tensors");
  }
  const int64_t N = x.size(0), K = x.size(1), O = w.size(0);
  TORCH_CHECK(w.size(1) == K && y.size(0) == N && y.size(1) == O, "few_rows: x (N, K), w (O, K), y (N, O)");
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, O, 16, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; ++o) {
      for (int64_t n = 0; n < N; n += 8) {
        kDots[std::min<int64_t>(8, N - n) - 1](wp + o * K, xp + n * K, K, yp + n * O + o, O, accumulate);
      }
    }
  });
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("few_rows", &few_rows, "y (N, O) (+)= x (N, K) w (O, K)^T, float32, for a few rows N");
}
