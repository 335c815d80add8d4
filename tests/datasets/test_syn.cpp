// The syn generator: fonts found, seeded and prefix-stable, balanced classes,
// images that are neither blank nor constant.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "datasets/datasets.h"
#include "datasets/generators.h"
#include "gradcheck.h"
#include "skip.h"

using namespace neurn::data;

TEST_CASE("syn: fonts, determinism, prefix stability, balance, variety" *
          neurn::testing::skip_unless(!find_fonts().empty(), neurn::testing::kNoFonts)) {
  auto fonts = find_fonts();
  CHECK(fonts.size() >= 3);
  SynOptions opt;
  opt.fonts = fonts;
  Dataset a = generate_syn(120, 77, "train", opt);
  Dataset b = generate_syn(60, 77, "train", opt);
  CHECK(a.size() == 120);
  CHECK(a.channels() == 3);
  CHECK(a.height() == 32);
  for (int64_t i = 0; i < 60; ++i) {
    CHECK(a.label(i) == b.label(i));
    CHECK(std::memcmp(a.image(i), b.image(i), 3072) == 0);
  }
  Dataset c = generate_syn(60, 78, "train", opt);
  CHECK(std::memcmp(a.image(0), c.image(0), 3072) != 0);
  for (int64_t n : a.class_histogram()) CHECK(n == 12);
  // Every image has contrast (a digit on a background), and images differ.
  for (int64_t i = 0; i < a.size(); ++i) {
    const uint8_t* p = a.image(i);
    double s = 0, s2 = 0;
    for (int k = 0; k < 3072; ++k) {
      s += p[k];
      s2 += double(p[k]) * p[k];
    }
    double sd = std::sqrt(s2 / 3072 - (s / 3072) * (s / 3072));
    CHECK(sd > 8.0);
  }
  auto st = channel_stats(a);
  for (float m : st.mean) CHECK((m > 0.2f && m < 0.8f));
  CHECK_THROWS_CONTAINING(generate_syn(0, 1), "count 0");
  SynOptions bad;
  bad.fonts = {"/nonexistent/font.ttf"};
  CHECK_THROWS_CONTAINING(generate_syn(5, 1, "train", bad), "/nonexistent/font.ttf");
}
